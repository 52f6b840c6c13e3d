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
    (0 = best; disabled frames last), ``valid`` (N,) bool, ``reason`` (N,) int8. meta: ``method``,
    ``scale``, ``reasons``.
reference -> ``reference``
    arrays: ``image`` (height, width, C) float32 over the stabilize crop. meta: ``frames_used``.
align-aps -> ``aps``
    arrays: ``center`` (A, 2) int32 (y, x) in crop coordinates, ``size`` (A,) int32 box size,
    ``shift`` (N, A, 2) float32 local (dy, dx) *added to* the global shift, ``quality`` (N, A) float32
    local quality, ``ok`` (N, A) bool (False where the shift was replaced from neighbours).
    meta: ``replaced`` count, ``ap_sizes``.
stack -> ``stacks``
    one entry per stack size s: arrays ``patch_{s}`` (A, ph, pw, C) float32 AP patch means,
    ``background_{s}`` (height*z, width*z, C) float32 globally aligned mean of the same frames
    (z = drizzle factor), ``count_{s}`` (A,) int32 frames stacked per AP.
    meta: ``sizes`` [{"label": "P25", "frames": 123}, ...], ``drizzle``, ``patch_size``.
merge -> ``images``
    arrays ``image_{label}`` (H, W, C) float32, one per stack size. meta: ``labels``.
post -> ``images``
    the final (optionally RGB-aligned and sharpened) images, same layout as merge; its export writes
    the TIFF/PNG/FITS files.
"""

from luckystack.nodes import (  # noqa: F401  (imported for registration)
    align_aps,
    analyse,
    calibrate,
    master,
    merge,
    post,
    reader,
    reference,
    stabilize,
    stack,
)
