"""The stacking steps, one node type per module. Importing this package registers them all.

Data that flows between the nodes (the arrays and meta each Result carries):

reader -> ``frames``
    meta: a description of the recording that :func:`luckystack.nodes.frames.open_frames` turns into a
    stream (format, header offset, dtype, byte order, width, height, layout, bit depth, frame count,
    selected frame indices, ROI, capture metadata). arrays: ``frame_index`` (N,) int64 original frame
    numbers of the selection, ``timestamp`` (N,) float64 seconds since the Unix epoch (NaN if unknown).
calibrate -> ``frames``
    the reader's description plus calibration arrays (master dark/flat, pixel mask, pattern offsets);
    frames are calibrated on the fly when read.
stabilize -> ``shifts``
    arrays: ``shift`` (N, 2) float64 (dy, dx), ``valid`` (N,) bool, ``reason`` (N,) int8.
    meta: ``crop`` [y0, x0, height, width] of the common area in reference coordinates,
    ``reasons`` {code: text}, ``mode``.
    Convention: a feature at reference position p appears at p + shift[i] in frame i, so the aligned
    frame is ``aligned(p) = frame(p + shift[i])`` and the aligned crop is
    ``frame[y0+dy : y0+dy+height, x0+dx : x0+dx+width]`` (sub-pixel: interpolated).
analyse -> ``quality``
    arrays: ``score`` (N,) float64 (higher is sharper, NaN for disabled frames), ``rank`` (N,) int32
    (0 = best; disabled frames last), ``valid`` (N,) bool, ``reason`` (N,) int8, ``brightness`` (N,)
    float64 (mean of the crop inside the scoring margin: the frame's transparency; NaN for disabled
    frames). meta: ``method``, ``scale``, ``reasons``.
reference -> ``reference``
    arrays: ``image`` (height, width, C) float32 over the stabilize crop. meta: ``frames_used``.
align -> ``aps``
    arrays: ``center`` (A, 2) int32 (y, x) in crop coordinates, ``size`` (A,) int32 box size,
    ``quality`` (N, A) float32 local quality (on the globally stabilized frames; NaN for invalid
    frames), and what measuring the local shifts needs: ``window_center`` (A, 2) and ``window_size`` (A,)
    int32 matching windows, ``reference`` (height, width) float32 grey reference over the crop.
    meta: ``ap_sizes``, ``search``, ``min_corr``, ``max_jump``, ``match_size``, ``method``, ``scale``,
    ``default_size`` (ap_size unset), ``ap_choice`` (ap_size auto: ``chosen``, ``largest`` and the local
    shift field's ``lags``, ``structure``, ``pairs``, ``noise``, ``strain``, ``detail_frequency``,
    ``rigid_size``; absent otherwise).
    No shifts: the stack measures each AP's shift in the frames it stacks
    (:mod:`luckystack.imaging.localshift`). An ``aps`` result that carries ``shift`` (N, A, 2) local
    (dy, dx) *added to* the global shift (measured elsewhere, or true ones in tests) is stacked with those.
stack -> ``stacks``
    one entry per stack size, keyed by its label (``P25``, ``F200``): arrays ``patch_{label}``
    (A, p, p, C) float32 AP patch means, ``coverage_{label}`` (A, p, p, C) float32 relative weight per
    patch pixel (1 = full; drizzle leaves it uneven, 0 = no data), ``background_{label}``
    (height*z, width*z, C) float32 globally aligned mean of the globally best frames of that size
    (z = drizzle factor), ``count_{label}`` (A,) int32 frames stacked per AP; shared arrays
    ``origin`` (A, 2) int32 top-left of each patch and ``extent`` (A,) int32 blending window width,
    both in output (drizzled) pixels of the crop. p = ceil(1.5 × largest AP size × z), even.
    Without sigma clipping also cumulative sums, float32, for incremental reruns: states of the chain
    at 5, 10, 20, 25, 30, 40 … 100 % of the valid frames up to the largest size, the highest first while
    they take at most 5 % of the recording's size (a rerun keeps those it took or made): ``sum_num_{frames}`` and
    ``sum_den_{frames}`` (per AP, as accumulated: weighted spectra and weights on every second frequency
    bin, or weighted patches and weights); the background's state is ``background_{label}`` where a size has that count (and no
    ``normalize``), else ``sum_bg_{frames}``; meta ``sums`` lists them: [{"frames", "background"}]. When
    the stack measured the local shifts (an ``aps`` input without ``shift``) and they fit that budget
    first (and ``SHIFTS_MAX_BYTES``), ``local_shift`` (N, A, 2) float64 holds every one measured so far, by this run or the
    results it built on (NaN where none was), and meta ``local_shifts`` their count: a rerun whose
    bands they cover measures none.
    meta: ``sizes`` [{"label": "P25", "frames": 123}, ...] in request order, ``labels``,
    ``drizzle``, ``patch_size``, ``ap_size`` (most common AP size, for file names), ``method``,
    ``channels``, ``crop``, ``bit_depth``, ``layout``, ``level`` (the common brightness of
    ``match_brightness``, else null), ``shifts`` {"stacked", "measured", "replaced"}: this run's local
    shifts needed ((frame, AP) pairs stacked), measured (with the neighbours their check needs) and
    replaced from neighbours. A result built on earlier ones links their arrays for the sizes
    and sums it takes (the cache stores a reference, not a copy).
merge (input ``stacks`` only: the geometry travels with it) -> ``images``
    arrays ``image_{label}`` (H, W, C) float32, one per stack size. meta: ``labels``, ``sizes``,
    ``drizzle``, ``ap_size``, ``bit_depth``, ``layout``, ``channels``.
choose (input ``images``: merge's result) -> ``images``
    merge's form with only the stacks it keeps (``pick``: auto = the best by the no-truth score, a
    label, or all); meta as merge plus ``choice`` {"pick", "chosen", "best_by_score", "candidates":
    [{"label", "frames", "score"}]}.
post (inputs ``images``, optional ``frames`` for file metadata) -> ``images``
    the final RGB-aligned images ``image_{label}`` (the main product, never sharpened) plus
    ``sharp_{label}`` when sharpening is on; meta as merge plus ``sharpened``, ``rgb_offsets``
    {label: [[dy, dx] of R, [dy, dx] of B]}, ``recording`` (scalar capture metadata). Its export writes
    ``<out>/<label>/<stem>_<label>_ap<size>[_d<z>][_sharp].tif|png|fits``.
"""

from luckystack.graph.aliases import declare_resolved
from luckystack.graph.process import add_process_setup
from luckystack.nodes import (  # noqa: F401  (imported for registration)
    align,
    analyse,
    calibrate,
    choose,
    master,
    merge,
    post,
    reader,
    reference,
    stabilize,
    stack,
)


def limit_opencv_threads() -> None:
    """The nodes parallelise over frames with ``ctx.map``, one process per job. OpenCV's own thread
    pool on top of that would run jobs × cores threads, and would make ``--jobs 1`` spread over every
    core. Run by the engine in each process before nodes run, not on import."""
    import cv2

    cv2.setNumThreads(1)


add_process_setup(limit_opencv_threads)


def _chosen_ap_size(results):
    """The AP size align chose when ``ap_size`` was left automatic (None, or measured: auto): the same
    grid as ``[size]``."""
    meta = results["aps"].meta
    size = meta.get("default_size") or (meta.get("ap_choice") or {}).get("chosen")
    return [int(size)] if size else None


def _why_ap_size(results) -> str:
    choice = results["aps"].meta.get("ap_choice")
    if not choice:
        return "about 25 APs on the object"
    allows = f"allows {choice['rigid_size']:.0f} px" if choice.get("rigid_size") is not None else "is rigid"
    return (f"local shift field: strain {choice['strain']:.4f} px/px, detail {choice['detail_frequency']:.3f} "
            f"cycles/px {allows}; 24…{choice['largest']} px")


def _chosen_stack(results):
    return results["images"].meta["choice"]["chosen"]


def _why_stack(results) -> str:
    cands = results["images"].meta["choice"]["candidates"]
    ranked = sorted(cands, key=lambda c: -c["score"])
    more = f" … of {len(cands)}" if len(cands) > 6 else ""  # several Fourier powers: the best few
    return "no-truth score " + ", ".join(f"{c['label']} {c['score']:.3f}" for c in ranked[:6]) + more


# ``align.ap_size=88`` after a run where the automatic size was 88 px reuses that run's results.
declare_resolved("align", "ap_size", _chosen_ap_size, _why_ap_size)
declare_resolved("choose", "pick", _chosen_stack, _why_stack)
