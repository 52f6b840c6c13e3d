import numpy as np
import pytest
from pydantic import ValidationError

import luckystack.imaging.stacking
import luckystack.nodes.merge  # noqa: F401
import luckystack.nodes.stack  # noqa: F401
from luckystack.graph.context import LocalContext, run_node
from luckystack.graph.node import NodeError, Result, registry
from luckystack.io.frames import ArrayFrameStream
from luckystack.nodes.frames import memory_frames
from luckystack.nodes.stack import StackParams
from tests.nodes.stack_data import make, mid_power, psnr

PORTS = ("frames", "shifts", "aps", "quality")


@pytest.fixture(autouse=True)
def _tiny_recordings(monkeypatch):
    """The tests' recordings are tiny: lift the sums' cache budget, which they would not fit (its own
    test puts it back), cut them into several chunks, so the chunk sums' order is exercised, and send
    even their small passes to the workers."""
    monkeypatch.setattr(luckystack.nodes.stack, "SUMS_SHARE", 1e9)
    monkeypatch.setattr(luckystack.nodes.stack, "CHUNK", 16)
    monkeypatch.setattr(luckystack.nodes.stack, "PARALLEL_PATCHES", 0)  # every pass on the workers (jobs > 1)


def _stack(syn, jobs=1, **params):
    return run_node("stack", params, {k: syn.inputs[k] for k in PORTS}, jobs=jobs)["stacks"]


def _merged(syn, **params):
    return run_node("merge", {}, {"stacks": _stack(syn, **params)})["images"]


@pytest.mark.parametrize("seed", [0, 1])
def test_stack_from_true_shifts_beats_the_baselines(seed):
    syn = make(n=60, seed=seed)
    truth = syn.truth_crop()
    img = _merged(syn, percent=[10, 25]).array("image_P25")
    aligned = np.array([syn.aligned(i) for i in range(len(syn.frames))])
    order = np.argsort(syn.sigma)
    baselines = {"best": aligned[order[0]], "mean": aligned.mean(0), "best10": aligned[order[:6]].mean(0)}
    ours_p, ours_s = psnr(img, truth), mid_power(img, truth)
    for name, base in baselines.items():
        assert ours_p > psnr(base, truth) + 3.0, name
    assert ours_s > mid_power(baselines["mean"], truth) + 0.3
    assert ours_s > mid_power(baselines["best10"], truth)


def test_sizes_labels_counts_and_nesting():
    syn = make(n=40)
    st = _stack(syn, frames=[4, 20, 10])
    assert st.meta["labels"] == ["F4", "F20", "F10"]
    assert [s["frames"] for s in st.meta["sizes"]] == [4, 20, 10]
    assert (st.array("count_F10") == 10).all()
    a = _stack(syn, percent=25)  # a single number is a one-size list
    assert a.meta["labels"] == ["P25"] and a.meta["sizes"][0]["frames"] == 10
    # the F10 stack of the nested run equals a run of that size alone
    np.testing.assert_allclose(st.array("patch_F10"), _stack(syn, frames=10).array("patch_F10"), atol=1e-6)


def test_bad_sizes_are_rejected():
    with pytest.raises(ValidationError):
        luckystack.nodes.stack.StackParams(percent=[10], frames=[5])
    with pytest.raises(ValidationError):
        luckystack.nodes.stack.StackParams(percent=[0])
    syn = make(n=8)
    with pytest.raises(NodeError):
        run_node("stack", {"selection": "global"}, {k: syn.inputs[k] for k in PORTS[:3]})


def test_identical_bits_for_any_jobs():
    syn = make(n=70, h=64, w=80, ap_size=24)
    a = _stack(syn, jobs=1, percent=[20, 50], sigma_clip=2.5)
    b = _stack(syn, jobs=2, percent=[20, 50], sigma_clip=2.5)
    for name in a.arrays:
        assert np.array_equal(np.asarray(a.arrays[name]), np.asarray(b.arrays[name])), name


class _EarlierContext(LocalContext):
    """Offers ``earlier`` results, as the engine does from the cache, and notes the map labels."""

    def __init__(self, earlier, params, inputs, jobs=1):
        super().__init__(StackParams(**params), inputs, jobs=jobs)
        self._offered, self.labels, self.parallel = earlier, [], []

    def earlier(self):
        return iter(self._offered)

    def map(self, fn, items, *, total=None, label="", parallel=True, sizes=None):
        self.labels.append(label)
        self.parallel.append(parallel)
        return super().map(fn, items, total=total, label=label, parallel=parallel, sizes=sizes)


def _stack_after(syn, earlier, jobs=1, **params):
    ctx = _EarlierContext([{"stacks": e} for e in earlier], params, {k: syn.inputs[k] for k in PORTS}, jobs)
    return registry()["stack"].run(ctx)["stacks"], ctx.labels


@pytest.mark.parametrize("mode", [{}, {"spectral_weight": 0}, {"drizzle": 2}, {"normalize": 0.8},
                                  {"spectral_weight": [2, 4], "halves": True}])
def test_building_on_earlier_sizes_gives_the_same_bits(mode):
    syn = make(n=60, h=64, w=80, ap_size=24)
    first = _stack(syn, percent=[10, 25, 50], **mode)
    # 60 valid frames: the chain of sums runs through 3, 6, 12, 15, 18, 24 and 30 frames (the grid's 5, 10,
    # 20, 25, 30, 40 and 50 %), all kept here (the budget is lifted).
    assert [s["frames"] for s in first.meta["sums"]] == [3, 6, 12, 15, 18, 24, 30]
    for sizes, label in (([10, 25, 40], None),  # 24 frames: a chain state
                         ([10, 25, 42], "stack above 24 frames"),  # 25: a side band on 24
                         ([25, 10, 75, 50], "stack above 30 frames"),  # the chain on to 42, and 45 on it
                         ([15, 50], "stack above 6 frames"),  # 9 frames: a side band below the top
                         ([10, 20], None), ([4, 25], "stack"), ([5, 25], None), ([25, 10], None)):
        built, labels = _stack_after(syn, [first], jobs=2, percent=sizes, **mode)
        # The background's pass, then the APs' (one group here).
        assert labels == ([label.replace("stack", "background"), label] if label else []), sizes
        _assert_same_stacks(built, _stack(syn, percent=sizes, **mode))


def _assert_same_stacks(built, fresh):
    """The same outputs, bit for bit, and the same sums where both kept them (a rerun keeps those it took
    or made; a run from scratch has them all)."""
    assert {k: v for k, v in built.meta.items() if k != "sums"} == {k: v for k, v in fresh.meta.items() if k != "sums"}
    assert all(s in fresh.meta["sums"] for s in built.meta["sums"])
    outputs = {n for n in fresh.arrays if not n.startswith("sum_")}
    assert {n for n in built.arrays if not n.startswith("sum_")} == outputs
    for name in built.arrays:
        assert np.array_equal(built.array(name), fresh.array(name)), name


def test_states_and_sizes_come_from_every_earlier_result():
    syn = make(n=60, h=64, w=80, ap_size=24)
    low, high = _stack(syn, percent=[10]), _stack(syn, percent=[50, 5])
    built, labels = _stack_after(syn, [low, high], percent=[5, 10, 45])  # 45 %: a side band on 40 %'s state
    assert labels == ["background above 24 frames", "stack above 24 frames"]
    _assert_same_stacks(built, _stack(syn, percent=[5, 10, 45]))
    assert built.arrays["patch_P10"] is low.arrays["patch_P10"] and built.arrays["patch_P5"] is high.arrays["patch_P5"]


def test_sizes_taken_from_an_earlier_result_use_its_sums():
    syn = make(n=60, h=64, w=80, ap_size=24)
    first = _stack(syn, percent=[10, 25])
    doctored = Result(arrays=dict(first.arrays), meta=first.meta)
    doctored.arrays["background_P25"] = first.array("background_P25") * 2  # also the chain state's at 15 frames
    built, labels = _stack_after(syn, [doctored], percent=[25, 10])
    assert labels == [] and np.allclose(built.array("background_P25"), 2 * first.array("background_P25"))
    built, labels = _stack_after(syn, [doctored], percent=[10, 30])
    assert labels == ["background above 15 frames", "stack above 15 frames"]
    assert np.array_equal(built.array("background_P10"), first.array("background_P10"))
    assert not np.array_equal(built.array("background_P30"), _stack(syn, percent=[10, 30]).array("background_P30"))
    unreadable = Result(arrays={k: v for k, v in first.arrays.items() if not k.startswith("sum_num")},
                        meta=first.meta)  # a result that lost arrays is skipped, not an error
    built, labels = _stack_after(syn, [unreadable], percent=[10, 30])
    assert labels == ["background", "stack"] and np.array_equal(built.array("patch_P30"),
                                                  _stack(syn, percent=[10, 30]).array("patch_P30"))


def test_sums_are_kept_on_the_grid_below_the_largest_size():
    syn = make(n=60, h=64, w=80, ap_size=24)
    alone = _stack(syn, percent=[25])
    assert [s["frames"] for s in alone.meta["sums"]] == [3, 6, 12, 15]  # 5, 10, 20 and 25 %
    assert [s["background"] for s in alone.meta["sums"]] == ["sum_bg_3", "sum_bg_6", "sum_bg_12", "background_P25"]
    built, labels = _stack_after(syn, [alone], percent=[50])  # a sweep's next value builds on P25's run
    assert labels == ["background above 15 frames", "stack above 15 frames"]
    assert np.array_equal(built.array("patch_P50"), _stack(syn, percent=[50]).array("patch_P50"))
    built, labels = _stack_after(syn, [alone], percent=[10])
    assert labels == [] and np.array_equal(built.array("patch_P10"), _stack(syn, percent=[10]).array("patch_P10"))


def test_sigma_clipped_stacks_are_never_built_on_earlier_ones():
    syn = make(n=40, h=64, w=80, ap_size=24)
    first = _stack(syn, percent=[10, 25], sigma_clip=2.5)
    assert not [n for n in first.arrays if n.startswith("sum_")] and not first.meta["sums"]
    built, labels = _stack_after(syn, [first], percent=[10, 30], sigma_clip=2.5)
    assert labels == ["background", "stack", "sigma clip"]


def test_constant_image_stays_constant_with_partial_ap_cover():
    syn = make(n=12, constant=0.4, noise=0.0, ap_step=40)  # sparse APs leave gaps
    for params in ({}, {"drizzle": 2, "pixfrac": 0.6}, {"drizzle": 1.5, "drizzle_method": "resample"}):
        img = _merged(syn, percent=50, **params).array("image_P50")
        np.testing.assert_allclose(img, 0.4, atol=2e-4)


def test_sigma_clipping_rejects_an_outlier_frame():
    syn = make(n=30, noise=0.002, local_amp=0.0)
    best = int(np.argmin(syn.sigma))
    syn.frames[best][20:40, 30:60] = 1.0  # a satellite trail in the sharpest frame
    truth = syn.truth_crop()
    plain = _merged(syn, percent=50, weight_power=0).array("image_P50")
    clipped = _merged(syn, percent=50, weight_power=0, sigma_clip=2.5).array("image_P50")
    assert psnr(clipped, truth) > psnr(plain, truth) + 3


def test_normalize_puts_the_bright_part_at_target():
    syn = make(n=10)
    img = _merged(syn, percent=50, normalize=0.8).array("image_P50")
    assert abs(np.percentile(img, 99.9) - 0.8) < 0.03


def test_bayer_drizzle_stacks_colour_without_demosaicing():
    from luckystack.io.frames import ArrayFrameStream
    from luckystack.nodes.frames import memory_frames

    syn = make(n=24, constant=0.0, noise=0.0)
    h, w = syn.frames.shape[1:3]
    cfa = np.zeros((h, w), np.float32)
    cfa[0::2, 0::2], cfa[0::2, 1::2], cfa[1::2, 0::2], cfa[1::2, 1::2] = 0.6, 0.3, 0.3, 0.1  # RGGB

    class CfaStream(ArrayFrameStream):
        def read_cfa(self, i):
            return cfa

    rgb = np.broadcast_to(np.array([0.6, 0.3, 0.1], np.float32), (len(syn.frames), h, w, 3))
    inputs = dict(syn.inputs, frames=memory_frames(CfaStream(rgb.copy(), layout="RGGB")))
    st = run_node("stack", {"percent": 50, "bayer_drizzle": True, "pixfrac": 1.0},
                  {k: inputs[k] for k in PORTS})["stacks"]
    img = run_node("merge", {}, {"stacks": st})["images"].array("image_P50")
    assert img.shape[-1] == 3
    np.testing.assert_allclose(img.reshape(-1, 3).mean(0), [0.6, 0.3, 0.1], atol=1e-3)
    np.testing.assert_allclose(img, np.broadcast_to([0.6, 0.3, 0.1], img.shape), atol=2e-3)


def test_missing_inputs_mismatch_is_a_node_error():
    syn = make(n=10)
    bad = dict(syn.inputs)
    bad["shifts"] = Result(arrays={"shift": np.zeros((5, 2)), "valid": np.ones(5, bool)}, meta={})
    with pytest.raises(NodeError):
        run_node("stack", {}, {k: bad[k] for k in PORTS})


@pytest.mark.parametrize("scene", ["jupiter", "moon", "sun"])
def test_simulated_scenes_beat_the_baselines(scene):
    """Acceptance on the project simulator with true shifts (measured margins in the report)."""
    from luckystack.simulate import simulate
    from tests.nodes.sim_inputs import baselines, true_inputs

    sim = simulate(scene, frames=60, width=160, height=160, seed=1)
    inputs, crop, frames = true_inputs(sim)
    y0, x0, h, w = crop
    truth = sim.truth.image[y0:y0 + h, x0:x0 + w]
    st = run_node("stack", {"percent": [5]}, inputs)["stacks"]
    img = run_node("merge", {}, {"stacks": st})["images"].array("image_P5")
    ours_p, ours_s = psnr(img, truth), mid_power(img, truth)
    for name, base in baselines(sim, frames, crop).items():
        assert ours_p > psnr(base, truth) + 2.0, name  # measured ≥ +3.6 dB
        margin = 0.0 if name == "best frame" else 0.1  # measured +0.008 (sun) … +0.07
        assert ours_s > mid_power(base, truth) + margin, name


def test_colour_ser_recording_end_to_end(tmp_path):
    """A simulated RGGB SER file through reader → stack (true shifts) → merge → post → files."""
    import tifffile

    import luckystack.nodes.post  # noqa: F401
    import luckystack.nodes.reader  # noqa: F401
    from luckystack.simulate import simulate
    from luckystack.simulate.recording import write_recording
    from tests.nodes.sim_inputs import true_inputs

    sim = simulate("jupiter", frames=40, width=128, height=128, layout="RGGB", bit_depth=12, seed=2)
    ser = write_recording(tmp_path / "jup.ser", sim)
    frames = run_node("reader", {}, input_file=ser)["frames"]
    inputs, crop, _ = true_inputs(sim, ap_size=32, frames_result=frames)
    y0, x0, h, w = crop
    truth = sim.truth.image[y0:y0 + h, x0:x0 + w]
    results = {}
    for bayer in (False, True):
        st = run_node("stack", {"percent": 25, "bayer_drizzle": bayer, "pixfrac": 1.0}, inputs,
                      input_file=ser, jobs=2 if bayer else 1)["stacks"]
        results[bayer] = run_node("merge", {}, {"stacks": st})["images"]
        img = results[bayer].array("image_P25")
        assert img.shape == (h, w, 3)
        assert psnr(img, truth) > 28
    post = run_node("post", {"formats": ["tiff", "fits"]}, {"images": results[True], "frames": frames})
    paths = luckystack.nodes.post.export_images(post, luckystack.nodes.post.PostParams(formats=["tiff", "fits"]),
                                                tmp_path / "out", "jup")
    tif = tifffile.imread(tmp_path / "out" / "P25" / "jup_P25_ap32.tif")
    assert tif.shape == (h, w, 3) and tif.dtype == np.uint16 and len(paths) == 2


def test_spectral_weighting_defaults_and_limits():
    params = luckystack.nodes.stack.StackParams
    assert params().spectral_power() == 2.0
    assert params(drizzle=2).spectral_power() == 0.0  # the default steps aside for drizzle …
    assert params(sigma_clip=3).spectral_power() == 0.0  # … and for sigma clipping
    assert params(spectral_weight=0).spectral_power() == 0.0
    for other in ({"drizzle": 2}, {"sigma_clip": 3}, {"bayer_drizzle": True}):
        with pytest.raises(ValidationError, match="spectral_weight"):
            params(spectral_weight=2, **other)


def test_several_fourier_powers_in_one_pass_are_the_stacks_of_each_power():
    syn = make(n=40, seed=0)
    several = _merged(syn, percent=[10, 25], spectral_weight=[0, 2, 4])
    assert several.meta["labels"] == ["P10w0", "P10w2", "P10w4", "P25w0", "P25w2", "P25w4"]
    assert [(s["size"], s["power"]) for s in several.meta["sizes"]] == [
        ("P10", 0.0), ("P10", 2.0), ("P10", 4.0), ("P25", 0.0), ("P25", 2.0), ("P25", 4.0)]
    for power in (0, 2, 4):
        alone = _merged(syn, percent=[10, 25], spectral_weight=power)
        for size in ("P10", "P25"):
            got, want = several.array(f"image_{size}w{power}"), alone.array(f"image_{size}")
            if power:  # the same sums, added in the same order
                assert np.array_equal(got, want), (size, power)
            else:  # power 0 alone is summed as pixels, here as spectra (sub-pixel shifts taken circularly
                #      over each patch, see spectral.shifted_spectra): the same but at the patches' rims
                assert np.abs(got - want).mean() < 2e-5 and np.abs(got - want).max() < 2e-3
    truth = syn.truth_crop()
    assert psnr(several.array("image_P25w2"), truth) != psnr(several.array("image_P25w4"), truth)


def test_halves_put_out_each_candidates_noise():
    syn = make(n=40, seed=0)
    stacks = _stack(syn, percent=[10, 50], spectral_weight=[2, 4], halves=True)
    assert stacks.meta["halves"] == {f"{s}w{q}": f"{s}w{q}n" for s in ("P10", "P50") for q in (2, 4)}
    merged = run_node("merge", {}, {"stacks": stacks})["images"]
    alone = _merged(syn, percent=[10, 50], spectral_weight=4)
    # the whole candidate is the sum of its halves: the stack of the power alone up to rounding
    assert np.abs(merged.array("image_P50w4") - alone.array("image_P50")).max() < 1e-5
    rms = {label: float(np.sqrt(np.mean(np.square(merged.array(f"image_{label}n"))))) for label in stacks.meta["halves"]}
    # the noise falls with the frames stacked and rises with the power (fewer frames carry each frequency)
    assert rms["P50w2"] < rms["P10w2"] and rms["P50w4"] < rms["P10w4"]
    assert rms["P10w2"] < rms["P10w4"] and rms["P50w2"] < rms["P50w4"]
    assert 0 < rms["P50w2"] < 0.05 * float(merged.array("image_P50w2").mean())
    with pytest.raises(ValidationError, match="halves"):
        StackParams(halves=True, spectral_weight=0)
    for bad in ([], [1, 1], [9], [0, 2, 4, 6, 8, 1, 3]):
        with pytest.raises(ValidationError):
            StackParams(spectral_weight=bad)


def test_spectral_weighting_keeps_more_detail_than_one_weight_per_frame():
    syn = make(n=60, seed=0)
    truth = syn.truth_crop()
    plain = _merged(syn, percent=[25], spectral_weight=0).array("image_P25")
    spectral = _merged(syn, percent=[25]).array("image_P25")
    # measured: mid-band power 0.896 → 0.911, PSNR 46.65 → 47.00 dB
    assert mid_power(spectral, truth) > mid_power(plain, truth) + 0.008
    assert psnr(spectral, truth) > psnr(plain, truth)


@pytest.mark.parametrize("mode", [{}, {"spectral_weight": 0}, {"drizzle": 2}, {"sigma_clip": 2.5},
                                  {"spectral_weight": "auto", "halves": True}])
def test_many_aps_are_stacked_in_groups_with_the_same_bits(monkeypatch, mode):
    syn = make(n=40, h=64, w=80, ap_size=24)
    whole = _stack(syn, jobs=2, percent=[10, 25], **mode)
    whole40 = _stack(syn, percent=[10, 40], **mode)
    n_ap = whole.array("origin").shape[0]
    monkeypatch.setattr(luckystack.nodes.stack, "ONE_PASS_BYTES", 0)
    monkeypatch.setattr(luckystack.nodes.stack, "GROUP_BYTES", 1)  # one AP per pass
    ctx = _EarlierContext([], {"percent": [10, 25], **mode}, {k: syn.inputs[k] for k in PORTS}, jobs=2)
    grouped = registry()["stack"].run(ctx)["stacks"]
    assert len([label for label in ctx.labels if label.startswith("stack, APs")]) == n_ap > 1
    assert grouped.meta == whole.meta and set(grouped.arrays) == set(whole.arrays)
    for name in whole.arrays:
        assert np.array_equal(grouped.array(name), whole.array(name)), name
    first = _stack(syn, percent=[10, 25], **mode)
    if "sigma_clip" not in mode:  # building on earlier sums, group by group
        built, labels = _stack_after(syn, [first], percent=[10, 40], **mode)
        assert labels[0].startswith("background above") and labels[1].startswith("stack above")
        assert len(labels) == n_ap + 1
        for label in whole40.meta["labels"]:
            assert np.array_equal(built.array(f"patch_{label}"), whole40.array(f"patch_{label}"))


@pytest.mark.parametrize("mode", [{}, {"spectral_weight": 0, "interpolation": "lanczos"}, {"drizzle": 2},
                                  {"drizzle": 1.5, "drizzle_method": "resample", "interpolation": "lanczos"},
                                  {"sigma_clip": 2.5}])
def test_frames_read_only_where_their_patches_lie_give_the_same_bits(monkeypatch, mode):
    syn = make(n=40, h=64, w=80, ap_size=24)  # patches reach past the frame edges in many frames
    monkeypatch.setattr(luckystack.nodes.stack, "ONE_PASS_BYTES", 0)
    monkeypatch.setattr(luckystack.nodes.stack, "GROUP_BYTES", 1)  # groups after the first read no background
    boxes = []
    whole_frame = ArrayFrameStream.read

    def read(stream, i, box=None):
        boxes.append(box)
        return whole_frame(stream, i, box)

    monkeypatch.setattr(ArrayFrameStream, "read", read)
    boxed = _stack(syn, percent=[10, 25], **mode)
    parts = [b for b in boxes if b is not None]
    assert len(parts) > len(boxes) // 2 and all((b[1] - b[0]) * (b[3] - b[2]) < 64 * 80 for b in parts)
    monkeypatch.setattr(luckystack.imaging.stacking, "READ_BOXES", False)
    whole = _stack(syn, percent=[10, 25], **mode)
    for name in whole.arrays:
        assert np.array_equal(boxed.array(name), whole.array(name)), name


def test_without_a_quality_input_the_stack_measures_the_brightness_it_evens_out():
    syn = make(n=40, h=64, w=80, ap_size=24)
    dim = np.arange(40) % 2 == 1  # every other frame under thin cloud
    frames = syn.frames.copy()
    frames[dim] *= np.float32(0.6)
    inputs = {**{k: syn.inputs[k] for k in PORTS[:3]}, "frames": memory_frames(ArrayFrameStream(frames, bit_depth=8))}
    matched = run_node("stack", {"percent": [100]}, inputs)["stacks"]
    plain = run_node("stack", {"percent": [100], "match_brightness": False}, inputs)["stacks"]
    bright = syn.inputs["quality"].array("brightness")[~dim]  # the crop means of the clear frames
    assert matched.meta["level"] == pytest.approx(float(np.percentile(bright, 90)), rel=0.02)
    assert abs(matched.array("background_P100").mean() - bright.mean()) < 0.02 * bright.mean()
    assert plain.array("background_P100").mean() < 0.85 * bright.mean()


def test_the_highest_sums_that_fit_the_cache_budget_are_kept(monkeypatch):
    syn = make(n=60, h=64, w=80, ap_size=24)
    monkeypatch.setattr(luckystack.nodes.stack, "SUMS_SHARE", 0.03)  # the shipped share: far below the
    full = _stack(syn, percent=[10, 25, 50])  # floor on this tiny recording, which keeps all its sums
    assert [s["frames"] for s in full.meta["sums"]] == [3, 6, 12, 15, 18, 24, 30]
    two = sum(full.arrays[n].nbytes for n in ("sum_num_30", "sum_den_30", "sum_num_24", "sum_den_24", "sum_bg_24"))
    recording = 60 * 64 * 80  # frames × pixels, 8-bit mono
    monkeypatch.setattr(luckystack.nodes.stack, "SUMS_SHARE", (two + 1) / recording)
    monkeypatch.setattr(luckystack.nodes.stack, "SUMS_FLOOR", 0)
    ctx = _EarlierContext([], {"percent": [10, 25, 50]}, {k: syn.inputs[k] for k in PORTS})
    kept = registry()["stack"].run(ctx)["stacks"]
    assert [s["frames"] for s in kept.meta["sums"]] == [24, 30]  # P50's state shares its background
    assert not [n for n in kept.arrays if n.startswith("sum_") and not n.endswith(("_24", "_30"))]
    for name in kept.arrays:  # the outputs themselves do not change
        assert np.array_equal(kept.array(name), full.array(name)), name
    built, labels = _stack_after(syn, [kept], percent=[50, 45])  # P45 on the state at 24 frames
    assert labels == ["background above 24 frames", "stack above 24 frames"]
    assert np.array_equal(built.array("patch_P45"), _stack(syn, percent=[50, 45]).array("patch_P45"))
    built, labels = _stack_after(syn, [kept], percent=[10, 40])  # a rerun computes no state only to keep it
    assert labels == [] and [s["frames"] for s in built.meta["sums"]] == [24]
    _assert_same_stacks(built, _stack(syn, percent=[10, 40]))


def test_a_small_pass_runs_in_this_process(monkeypatch):
    syn = make(n=60, h=64, w=80, ap_size=24)
    first = _stack(syn, percent=[10, 25, 50])
    monkeypatch.setattr(luckystack.nodes.stack, "PARALLEL_PATCHES", 1500)  # the shipped threshold
    ctx = _EarlierContext([{"stacks": first}], {"percent": [10, 25, 42]}, {k: syn.inputs[k] for k in PORTS}, jobs=2)
    registry()["stack"].run(ctx)
    assert ctx.labels == ["background above 24 frames", "stack above 24 frames"] and ctx.parallel == [False, False]  # a rank per AP: no worker
