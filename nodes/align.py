"""align: alignment points on the reference, and every AP's local quality per frame.

Local quality is measured on the globally stabilized frames, so it needs no local shift: the stack ranks
the frames per AP by it and measures each AP's sub-pixel shift only in the frames that AP stacks
(:mod:`luckystack.imaging.localshift`). The result carries what that needs: the grey reference, the
matching windows and the matching settings.

Where analyse scored the frames with the same estimator and was asked for their detail maps
(``analyse.detail_maps``: binned gradient energy and brightness summed over small cells of the scored
region), each AP's local quality is summed from those cells over its box and no frame is read again: the
faster, coarser way. Otherwise (no maps, the default; another estimator, or an AP box beyond the maps)
align measures the frames itself at full resolution.
"""

from __future__ import annotations

from functools import partial
from typing import Annotated, Literal, NamedTuple

import numpy as np
from pydantic import Field, field_validator

from luckystack.graph.node import Context, NodeError, Params, Port, Result, node_type
from luckystack.imaging.colour import grey
from luckystack.imaging.gaps import aps_over_gaps
from luckystack.imaging.localshift import ApMatching
from luckystack.imaging.placement import default_ap_size, match_boxes, place_aps
from luckystack.imaging.quality import box_scores, detail_energy, smooth, smooth_radius
from luckystack.nodes.apscale import auto_ap_size, measure_field
from luckystack.nodes.bounds import ApSize, Coordinate, ap_sizes_fit
from luckystack.nodes.frames import chunked, open_frames

CHUNK = 32
# Measured on the simulator (alignment_eval, 320×240 and 640×480): a 64 px matching window with a
# Gaussian weight of sigma 0.3 × window gave 0.11–0.15 px fair RMS on every scene; the AP boxes themselves
# (40–128 px by default) gave 0.17–0.33 px: small boxes see too little detail, large ones average a field
# that varies inside them. Quadratic field terms, more full-resolution steps and smoothing the shifts
# with neighbouring APs were all worse.
MATCH_SIZE = 64


class AlignParams(Params):
    ap_size: Annotated[list[ApSize], Field(min_length=1, max_length=16)] | Literal["auto"] | None = Field(
        None, description="AP box size in px, or a list of sizes (their grids are mixed); default: chosen "
        "so a planet disc gets about 25 APs; auto: the size over which the best frames' local shift field "
        "stays rigid (measured on a grid, at most the default; meta ap_choice says why)")
    min_brightness: float = Field(0.2, ge=0.0, le=1.0, description="drop APs whose mean is below this "
                                                                   "fraction of the reference's range")
    min_structure: float = Field(0.04, ge=0.0, le=1.0, description="drop APs whose structure (detail in both "
                                                                   "directions) is below this fraction of the best AP's")
    margin: int = Field(4, ge=0, le=512, description="distance of AP boxes from the crop edges (px)")
    manual: list[tuple[Coordinate, Coordinate, ApSize]] = Field(
        default_factory=list, max_length=10_000, description="extra APs (x, y, size) in crop coordinates")
    match_size: int | None = Field(MATCH_SIZE, ge=16, le=256, description="size (px) of the window over which "
                                   "each AP's shift is measured, whatever the AP box used for stacking (shrunk at "
                                   "the crop edges, never below the AP box); null: the AP box itself")
    match_step: int | None = Field(None, ge=8, le=128, description="measure the local shifts at points this "
                                   "many px apart, over windows twice as large but at most match_size, and give each AP the bilinear "
                                   "interpolation of the four around it (small APs then cost what the points "
                                   "do); null: each AP over its own matching window (match_size)")
    search: int = Field(8, ge=2, le=64, description="search radius of the local shift (px)")
    min_corr: float = Field(0.6, ge=0.0, le=1.0, description="a match below this correlation is lost")
    max_jump: float = Field(3.0, gt=0.0, le=64.0, description="a shift further than this (px) from the median "
                                                              "of its nearest neighbours is lost")
    method: Literal["gradient", "laplacian", "edge"] | None = Field(
        None, description="local quality estimator (default: the analyse node's method)")
    scale: float | None = Field(None, ge=2.0, le=8.0, description="local quality scale (default: analyse's)")
    normalize: bool | None = Field(None, description="normalise local quality by brightness (default: analyse's)")
    from_analyse: bool = Field(True, description="take the local quality from analyse's detail maps where "
                               "analyse made them (analyse.detail_maps, off by default) with this estimator, "
                               "reading no frame again; false always measures every frame at full resolution")

    @field_validator("ap_size", mode="before")
    @classmethod
    def _one_or_many(cls, value: object) -> object:
        """A single size (as sweeps pass it) is a list of one."""
        if isinstance(value, str) and not value.strip().isdigit():
            return value  # "auto", or a word the error names with the allowed forms
        return [value] if isinstance(value, (int, float, str)) and not isinstance(value, bool) else value


# Its former name: pipeline files may still say align-aps, and cache keys keep it, so cached results stay valid.
@node_type("align", params=AlignParams, aliases=("align-aps",), key_name="align-aps",
           inputs={"frames": Port(kind="frames"), "shifts": Port(kind="shifts"),
                   "reference": Port(kind="reference"), "quality": Port(required=False, kind="quality")},
           outputs={"aps": "aps"}, version="16", reads_input=True, check_input=ap_sizes_fit)
def align(ctx: Context) -> Result:
    """Place APs and measure each AP's local quality in every globally stabilized frame.

    The stack measures each AP's shift in the frames it stacks (:mod:`luckystack.imaging.localshift`)."""
    p: AlignParams = ctx.params
    stream = open_frames(ctx.inputs["frames"], ctx.input_file)
    shifts = ctx.inputs["shifts"]
    quality = ctx.inputs.get("quality")
    qmeta = quality.meta if quality is not None else {}
    method = p.method or qmeta.get("method", "gradient")
    scale = float(p.scale or qmeta.get("scale", 4.0))
    normalize = bool(p.normalize if p.normalize is not None else qmeta.get("normalize", False))
    valid = quality.array("valid") if quality is not None else shifts.array("valid")
    shift = shifts.array("shift")
    crop = [int(v) for v in shifts.meta["crop"]]
    ref = ctx.inputs["reference"].array("image")
    mono = grey(ref)
    if mono.shape != (crop[2], crop[3]):
        raise NodeError(f"align: the reference is {mono.shape[1]}×{mono.shape[0]} but the crop is "
                        f"{crop[3]}×{crop[2]}")
    ap_size, ap_choice = p.ap_size, None
    if ap_size == "auto":
        field = measure_field(stream, shift, valid, quality.array("score") if quality is not None else
                              np.where(valid, 0.0, np.nan), mono, crop, p.margin, p.min_brightness,
                              p.min_structure, p.search, p.min_corr, p.max_jump)
        chosen, largest = auto_ap_size(field, mono, p.min_brightness)
        ap_size, ap_choice = [chosen], {"chosen": chosen, "largest": largest, **field.as_meta()}
    try:
        centres, sizes = place_aps(mono, ap_size, p.margin, p.min_brightness, p.min_structure, p.manual)
    except ValueError as exc:
        raise NodeError(f"align: {exc}") from exc
    if len(centres) == 0:
        raise NodeError("align: no AP passed the brightness and structure limits; lower them or use "
                        "smaller AP sizes")
    windows = match_boxes(centres, sizes, mono.shape, p.match_size)
    matching = ApMatching(np.ascontiguousarray(mono, np.float32), centres.astype(np.int32),
                          sizes.astype(np.int32), windows[0], windows[1], (crop[0], crop[1]), p.search,
                          p.min_corr, p.max_jump, p.match_step or 0)
    cells = cells_of(quality, method, scale, centres, sizes, crop) if quality is not None and p.from_analyse \
        else None
    if cells is not None:  # analyse measured the detail on these frames already: sum its cells
        lq = cell_quality(quality, cells, valid, normalize).astype(np.float32)
    else:
        chunks = chunked(range(stream.count), CHUNK)
        # the AP boxes alone travel with each work item, not the matching's reference image (4.9 MB
        # on a 1280×960 Moon, pickled per item)
        fn = partial(quality_chunk, stream, shift=shift, valid=valid, boxes=ApBoxes.of(matching), method=method,
                     scale=scale, normalize=normalize)
        lq = np.concatenate(list(ctx.map(fn, chunks, total=len(chunks), label="align"))).astype(np.float32)
    gaps = aps_over_gaps(getattr(stream, "nonfinite_mask", None), shift, valid, crop, centres, sizes)
    lq[gaps] = np.nan  # no data there: left out of that AP's stack
    used_sizes = sorted({int(s) for s in sizes})
    return Result(arrays={"center": matching.centres, "size": matching.sizes, "quality": lq,
                          "window_center": matching.window_centres, "window_size": matching.window_sizes,
                          "reference": matching.reference},
                  meta={"ap_sizes": used_sizes, "match_size": p.match_size, "search": p.search,
                        "min_corr": p.min_corr, "max_jump": p.max_jump, "method": method, "scale": scale,
                        "default_size": default_ap_size(mono, p.min_brightness) if p.ap_size is None else None,
                        **({"match_step": p.match_step} if p.match_step else {}),
                        **({"ap_choice": ap_choice} if ap_choice is not None else {})})


def matching_of(aps: Result, crop: list[int]) -> ApMatching:
    """What measuring the local shifts of an ``aps`` result needs (see ``luckystack.nodes``)."""
    return ApMatching(np.ascontiguousarray(aps.array("reference"), np.float32),
                      aps.array("center").astype(np.int32), aps.array("size").astype(np.int32),
                      aps.array("window_center").astype(np.int32), aps.array("window_size").astype(np.int32),
                      (int(crop[0]), int(crop[1])), int(aps.meta["search"]), float(aps.meta["min_corr"]),
                      float(aps.meta["max_jump"]), int(aps.meta.get("match_step") or 0))


def local_shifts(stream, shift: np.ndarray, valid: np.ndarray, matching: ApMatching,
                 frames: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Every AP's local shift (N, A, 2) and whether it was measured well (N, A) in the valid frames
    ``frames`` (default all; other rows 0 and False): what the stack measures for the frames it stacks,
    for judging alignment on its own."""
    n, count = len(shift), matching.count
    local, ok = np.zeros((n, count, 2)), np.zeros((n, count), bool)
    everything = np.ones(count, bool)
    for i in (range(n) if frames is None else frames):
        if valid[i]:
            a, b, c, d = matching.region(shift[i], (stream.height, stream.width))
            local[i], ok[i], _ = matching.shifts(stream.read_mono(int(i), (a, b, c, d)), (a, c), shift[i],
                                                 everything)
    return local, ok


class CellBoxes(NamedTuple):
    """AP boxes in the binned px of analyse's detail maps: top, bottom, left, right (A,) float64, and
    the binned image's height and width the maps cover."""

    top: np.ndarray
    bottom: np.ndarray
    left: np.ndarray
    right: np.ndarray
    height: int
    width: int


def cells_of(quality: Result, method: str, scale: float, centres: np.ndarray, sizes: np.ndarray,
             crop: list[int]) -> CellBoxes | None:
    """The AP boxes on the analyse result's detail maps, when it has maps measured by ``method`` at
    ``scale`` that cover every AP box; None otherwise (align then measures the frames itself)."""
    cells = quality.meta.get("cells")
    if (cells is None or "cell_energy" not in quality.arrays or quality.meta.get("method") != method
            or float(quality.meta.get("scale", -1.0)) != float(scale)):
        return None
    ry, rx, rh, rw = (int(v) for v in cells["region"])
    b = int(cells["bin"])
    top = (centres[:, 0] - sizes // 2 + crop[0] - ry).astype(np.float64)
    left = (centres[:, 1] - sizes // 2 + crop[1] - rx).astype(np.float64)
    bottom, right = top + sizes, left + sizes
    if top.min() < 0 or left.min() < 0 or bottom.max() > rh // b * b or right.max() > rw // b * b:
        return None
    return CellBoxes(top / b, bottom / b, left / b, right / b, rh // b, rw // b)


def cell_quality(quality: Result, boxes: CellBoxes, valid: np.ndarray, normalize: bool,
                 frames_at_once: int = 512) -> np.ndarray:
    """Local quality (N, A) of every frame over the AP boxes from analyse's detail maps: the RMS
    gradient over each box (divided by its mean brightness with ``normalize``), the cells cut by a box
    edge counted by the part of them inside (their detail taken as even). NaN for invalid frames."""
    energy, bright = quality.arrays["cell_energy"], quality.arrays["cell_brightness"]
    cell = int(quality.meta["cells"]["cell"])
    n, rows, cols = energy.shape
    area = (boxes.bottom - boxes.top) * (boxes.right - boxes.left)
    out = np.full((n, len(area)), np.nan)
    for s in range(0, n, frames_at_once):
        e = _box_sums(np.asarray(energy[s:s + frames_at_once]), boxes, cell)
        score = np.sqrt(np.maximum(e, 0.0) / area)
        if normalize:
            mean = _box_sums(np.asarray(bright[s:s + frames_at_once]), boxes, cell) / area
            score = np.where(mean > 1e-6, score / np.maximum(mean, 1e-6), 0.0)
        out[s:s + len(score)] = score
    out[~valid] = np.nan
    return out


def _box_sums(cells: np.ndarray, boxes: CellBoxes, cell: int) -> np.ndarray:
    """(n, A) sums over the boxes of (n, rows, columns) cell sums, each cell counted by the share of it
    inside the box (its content taken as even; the last row and column of cells may be narrower): one
    matrix product with the boxes' cell weights."""
    n, rows, cols = cells.shape
    wy = _overlap(boxes.top, boxes.bottom, rows, cell, boxes.height)  # (A, rows)
    wx = _overlap(boxes.left, boxes.right, cols, cell, boxes.width)  # (A, cols)
    weights = (wy[:, :, None] * wx[:, None, :]).reshape(len(wy), rows * cols)
    return np.asarray(cells, np.float64).reshape(n, rows * cols) @ weights.T


def _overlap(lo: np.ndarray, hi: np.ndarray, count: int, cell: int, extent: int) -> np.ndarray:
    """(A, count): the share of each of ``count`` cells ([k·cell, min((k+1)·cell, extent))) inside
    [lo, hi) of each box."""
    start = np.arange(count) * cell
    end = np.minimum(start + cell, extent)
    inside = np.minimum(hi[:, None], end) - np.maximum(lo[:, None], start)
    return np.clip(inside, 0.0, None) / (end - start)


class ApBoxes(NamedTuple):
    """The AP boxes of an :class:`ApMatching` (crop origin in the frame): what :func:`quality_chunk`
    needs of it."""

    centres: np.ndarray
    sizes: np.ndarray
    crop: tuple[int, int]
    count: int

    @classmethod
    def of(cls, matching: ApMatching) -> "ApBoxes":
        return cls(matching.centres, matching.sizes, matching.crop, matching.count)


def quality_chunk(stream, chunk: range, shift: np.ndarray, valid: np.ndarray, boxes: ApBoxes | ApMatching,
                  method: str, scale: float, normalize: bool) -> np.ndarray:
    """Local quality (n, A) of frames ``chunk`` over the AP boxes, on the globally stabilized frames
    (whole-pixel global shift; NaN for invalid frames).

    Each frame is read over the APs' bounding box and the reach of the smoothing and derivatives only,
    as stored (uint8/uint16 samples are smoothed straight into float32); the scores are scaled to the
    0…1 samples afterwards (normalized scores need no scale)."""
    centres, sizes = boxes.centres, boxes.sizes
    y0, x0 = boxes.crop
    lq = np.full((len(chunk), boxes.count), np.nan)
    by, bx = centres[:, 0] - sizes // 2, centres[:, 1] - sizes // 2
    h, w = stream.height, stream.width
    reach = smooth_radius(scale) + 1  # the smoothing's kernel and the 3-tap derivatives
    for k, i in enumerate(chunk):
        if not valid[i]:
            continue
        yy = np.minimum(np.maximum(by + (y0 + int(round(shift[i, 0]))), 0), h - sizes)  # (np.clip: 3× dearer)
        xx = np.minimum(np.maximum(bx + (x0 + int(round(shift[i, 1]))), 0), w - sizes)
        top, bottom = int(yy.min()), int((yy + sizes).max())
        left, right = int(xx.min()), int((xx + sizes).max())
        ra, rc = max(0, top - reach), max(0, left - reach)
        samples, factor = stream.read_samples(i, (ra, min(h, bottom + reach), rc, min(w, right + reach)))
        q_img = smooth(samples, scale)
        # Detail energy only over the APs' bounding box (+1 px for the 3-tap derivatives: same values).
        ya, yb = max(0, top - 1 - ra), bottom + 1 - ra
        xa, xb = max(0, left - 1 - rc), right + 1 - rc
        q_box = q_img[ya:yb, xa:xb]
        lq[k] = box_scores(detail_energy(q_box, method), q_box if normalize else None, yy - ra - ya,
                           xx - rc - xa, sizes)
        if not normalize:
            lq[k] *= factor
    return lq
