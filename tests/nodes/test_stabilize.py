import cv2
import numpy as np
import pytest
from tests.nodes.synthetic_planet import make_recording

import luckystack.nodes.stabilize  # noqa: F401
from luckystack.graph.context import run_node
from luckystack.graph.node import NodeError
from luckystack.io.frames import ArrayFrameStream
from luckystack.nodes.frames import memory_frames


@pytest.fixture(scope="module")
def sim():
    return make_recording(n=40, h=160, w=200, radius=50, drift=6.0, field=0.0, noise=0.01, seed=3)


def test_planet_shifts_are_subpixel_accurate(sim):
    out = run_node("stabilize", {}, {"frames": memory_frames(ArrayFrameStream(sim.frames))})["shifts"]
    shift, valid = out.array("shift"), out.array("valid")
    assert out.meta["mode"] == "planet" and valid.all()
    err = shift - sim.shift
    err -= err.mean(axis=0)
    rms = float(np.sqrt((err ** 2).sum(axis=1).mean()))
    assert rms < 0.1, rms
    y0, x0, h, w = out.meta["crop"]
    assert (y0 + shift[:, 0] >= -1e-9).all() and (y0 + h - 1 + shift[:, 0] <= 159 + 1e-9).all()
    assert (x0 + shift[:, 1] >= -1e-9).all() and (x0 + w - 1 + shift[:, 1] <= 199 + 1e-9).all()


def test_planet_mode_gives_the_object_box_in_reference_coordinates(sim):
    frames = sim.frames.copy()
    frames[:8] = np.roll(frames[:8], 12, axis=2)  # the reference frames lie 12 px right of the median
    out = run_node("stabilize", {}, {"frames": memory_frames(ArrayFrameStream(frames))})["shifts"]
    y, x, h, w = out.meta["object"]
    shift = out.array("shift")
    assert abs(np.median(shift[:, 1])) < 1 and shift[0, 1] > 8
    for i in (0, 17, 39):  # the box moved by a frame's shift holds that frame's disc and moon, snugly
        ys, xs = np.nonzero(frames[i] > 0.2 * frames[i].max())
        dy, dx = shift[i]
        assert abs(ys.min() - (y + dy)) < 3 and abs(ys.max() + 1 - (y + h + dy)) < 3
        assert abs(xs.min() - (x + dx)) < 3 and abs(xs.max() + 1 - (x + w + dx)) < 3


def test_frames_with_the_disc_at_the_edge_are_flagged_and_results_do_not_depend_on_jobs(sim):
    frames = sim.frames.copy()
    frames[5] = np.roll(frames[5], 90, axis=1)  # disc cut by the right edge
    frames[6] = 0.0
    fr = memory_frames(ArrayFrameStream(frames))
    a = run_node("stabilize", {"mode": "planet"}, {"frames": fr}, jobs=1)["shifts"]
    b = run_node("stabilize", {"mode": "planet"}, {"frames": fr}, jobs=2)["shifts"]
    assert not a.array("valid")[5] and a.array("reason")[5] == 2
    assert not a.array("valid")[6] and a.array("reason")[6] == 1
    for k in ("shift", "valid", "reason"):
        assert np.array_equal(a.array(k), b.array(k))
    assert a.meta == b.meta


def _textured_field(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """30 float frames (160×200) of a smooth random texture seen through a view that drifts by ``true``
    (30, 2) px, whole and sub-pixel (features move by −true)."""
    rng = np.random.default_rng(seed)
    big = cv2.GaussianBlur(rng.random((260, 300)).astype(np.float32), (0, 0), 2.5)
    big = (big - big.min()) / (big.max() - big.min()) * 0.6 + 0.2
    true = np.cumsum(rng.uniform(-1.5, 1.5, (30, 2)), axis=0)
    frames = np.stack([cv2.warpAffine(big, np.float32([[1, 0, 40 + dx], [0, 1, 40 + dy]]), (200, 160),
                                      flags=cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP) for dy, dx in true])
    return frames, true


def test_surface_mode_tracks_a_textured_field():
    frames, true = _textured_field(5)
    out = run_node("stabilize", {}, {"frames": memory_frames(ArrayFrameStream(frames))})["shifts"]
    assert out.meta["mode"] == "surface" and out.array("valid").all() and "object" not in out.meta
    err = out.array("shift") + true  # the view moves by +true, so features move by -true
    err -= err.mean(axis=0)
    assert float(np.sqrt((err ** 2).sum(axis=1).mean())) < 0.1


def test_a_recorded_8_bit_surface_is_matched_on_its_binned_samples_as_accurately(tmp_path):
    from luckystack.io.ser_format import SerHeader, write_ser

    frames, true = _textured_field(6)
    samples = np.round(frames * 255).astype(np.uint8)
    path = tmp_path / "surface.ser"
    write_ser(path, samples, SerHeader(200, 160))
    fr = run_node("reader", {}, {}, input_file=path)["frames"]
    out = run_node("stabilize", {"mode": "surface"}, {"frames": fr}, input_file=path)["shifts"]
    ref = run_node("stabilize", {"mode": "surface"},
                   {"frames": memory_frames(ArrayFrameStream(samples / np.float32(255)))})["shifts"]
    assert out.array("valid").all() and ref.array("valid").all()
    # uint8 samples are binned to whole levels, the float ones exactly: the shifts barely differ
    assert np.abs(out.array("shift") - ref.array("shift")).max() < 0.05
    err = out.array("shift") + true
    err -= err.mean(axis=0)
    assert float(np.sqrt((err ** 2).sum(axis=1).mean())) < 0.1


def test_user_size_and_errors(sim):
    fr = memory_frames(ArrayFrameStream(sim.frames))
    out = run_node("stabilize", {"size": (120, 100)}, {"frames": fr})["shifts"]
    assert out.meta["crop"][2:] == [100, 120]
    with pytest.raises(NodeError):
        run_node("stabilize", {"mode": "planet"}, {"frames": memory_frames(ArrayFrameStream(np.zeros((3, 50, 60))))})


def test_a_recorded_8_bit_planet_is_fitted_on_its_samples_as_accurately(sim, tmp_path):
    """A SER's stored bytes (read unconverted, fitted from the last frame's shift or, after a jump, a blank
    or an edge frame, from the whole frame) give the shifts of the same frames as floats."""
    from luckystack.io.ser_format import SerHeader, write_ser

    frames = np.round(sim.frames * 255).astype(np.uint8)
    frames[10] = np.roll(frames[10], 90, axis=1)  # disc cut by the right edge
    frames[11] = 0  # no object
    frames[25:] = np.roll(frames[25:], (14, -16), axis=(1, 2))  # a jump beyond the fit's reach
    path = tmp_path / "planet.ser"
    write_ser(path, frames, SerHeader(frames.shape[2], frames.shape[1]))
    fr = run_node("reader", {}, {}, input_file=path)["frames"]
    out = run_node("stabilize", {}, {"frames": fr}, input_file=path)["shifts"]
    ref = run_node("stabilize", {}, {"frames": memory_frames(ArrayFrameStream(frames / np.float32(255)))})["shifts"]
    valid, reason = out.array("valid"), out.array("reason")
    assert reason[10] == 2 and reason[11] == 1 and valid.sum() == len(frames) - 2
    np.testing.assert_array_equal(valid, ref.array("valid"))
    assert np.abs(out.array("shift") - ref.array("shift"))[valid].max() < 0.02
    truth = sim.shift + np.where(np.arange(len(frames))[:, None] >= 25, [14, -16], 0)
    err = out.array("shift")[valid] - truth[valid]
    err -= err.mean(axis=0)
    assert float(np.sqrt((err ** 2).sum(axis=1).mean())) < 0.1


def test_without_a_coarse_centroid_frames_fall_back_to_the_half_resolution_search(sim):
    """An object too small to find at a quarter of the resolution: every frame is found by the
    half-resolution centroid and the correlation surface, as accurately."""
    import dataclasses
    import math

    from luckystack.imaging.stabilization import planet_chunk, planet_reference

    stream = ArrayFrameStream(sim.frames)
    ref = planet_reference([stream.read_mono(i) for i in range(8)], 0.2)
    fitted = planet_chunk(stream, range(len(sim.frames)), ref, refine=True)
    searched = planet_chunk(stream, range(len(sim.frames)), dataclasses.replace(ref, coarse_cy=math.nan),
                            refine=True)
    assert fitted[1].all() and searched[1].all()
    assert np.abs(fitted[0] - searched[0]).max() < 0.1


def test_the_disc_fits_match_score_is_the_correlation_of_the_fitted_window_and_the_template(sim):
    """fit_template scores from the window's sums (no centred copy): the same as correlating the window
    resampled at the fitted shift (give or take its last step, under 0.01 px) with the template."""
    import cv2

    from luckystack.imaging.registration import half
    from luckystack.imaging.stabilization import (
        _planet_match_image, fit_box, fit_template, planet_chunk, planet_reference,
    )

    stream = ArrayFrameStream(sim.frames)
    ref = planet_reference([stream.read_mono(i) for i in range(8)], 0.2)
    start = planet_chunk(stream, range(len(sim.frames)), ref, refine=True)[0]
    th, tw = ref.template.shape
    checked = 0
    for i in range(len(sim.frames)):  # fitted again from the shift found
        box = fit_box(ref, *start[i])
        frame = stream.read_mono(i)
        fit = fit_template(ref, frame[box[0]:box[1], box[2]:box[3]], box, *start[i])
        if fit is None:
            continue
        dy, dx, score = fit
        checked += 1
        img = _planet_match_image(np.asarray(half(frame[box[0]:box[1], box[2]:box[3]]), np.float32))
        win = cv2.getRectSubPix(img, (tw, th), ((ref.cx - 0.5 + dx) / 2 - box[2] / 2,
                                                (ref.cy - 0.5 + dy) / 2 - box[0] / 2)).astype(np.float64)
        assert score == pytest.approx(np.corrcoef(win.ravel(), ref.template.ravel())[0, 1], abs=1e-5)
    assert checked >= 5
