"""align-aps: alignment points on the reference, and every AP's sub-pixel local shift and quality per frame."""

from __future__ import annotations

from functools import partial
from typing import Literal

import numpy as np
import xxhash
from pydantic import Field, field_validator

from luckystack.graph.node import Context, NodeError, Params, Port, Result, node_type
from luckystack.imaging.apshift import (MATCH_SIGMA, Templates, make_templates, match_blur, measure,
                                       replace_lost)
from luckystack.imaging.colour import grey
from luckystack.imaging.placement import NEAREST_REACH, default_ap_size, match_boxes, neighbours, place_aps
from luckystack.imaging.quality import box_scores, detail_energy, smooth
from luckystack.nodes.bounds import ApSize, Coordinate, ap_sizes_fit
from luckystack.nodes.frames import aps_over_gaps, chunked, open_frames

CHUNK = 32
# Measured on the simulator (alignment_eval, 320×240 and 640×480): a 64 px matching window with a
# Gaussian weight of sigma 0.3 × window gave 0.11–0.15 px fair RMS on every scene; the AP boxes themselves
# (40–128 px by default) gave 0.17–0.33 px: small boxes see too little detail, large ones average a field
# that varies inside them. Quadratic field terms, more full-resolution steps and smoothing the shifts
# with neighbouring APs were all worse.
MATCH_SIZE = 64
MATCH_WINDOW = 0.3


class AlignApsParams(Params):
    ap_size: list[ApSize] | None = Field(None, min_length=1, max_length=16,
                                         description="AP box size in px, or a list of sizes (their grids "
                                                     "are mixed); default: chosen so a planet disc gets "
                                                     "about 25 APs")
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
    search: int = Field(8, ge=2, le=64, description="search radius of the local shift (px)")
    min_corr: float = Field(0.6, ge=0.0, le=1.0, description="a match below this correlation is lost")
    max_jump: float = Field(3.0, gt=0.0, le=64.0, description="a shift further than this (px) from the median "
                                                              "of its nearest neighbours is lost")
    method: Literal["gradient", "laplacian", "edge"] | None = Field(
        None, description="local quality estimator (default: the analyse node's method)")
    scale: float | None = Field(None, ge=2.0, le=8.0, description="local quality scale (default: analyse's)")
    normalize: bool | None = Field(None, description="normalise local quality by brightness (default: analyse's)")

    @field_validator("ap_size", mode="before")
    @classmethod
    def _one_or_many(cls, value: object) -> object:
        """A single size (as sweeps pass it) is a list of one."""
        return [value] if isinstance(value, (int, float, str)) and not isinstance(value, bool) else value


@node_type("align-aps", params=AlignApsParams,
           inputs={"frames": Port(kind="frames"), "shifts": Port(kind="shifts"),
                   "reference": Port(kind="reference"), "quality": Port(required=False, kind="quality")},
           outputs={"aps": "aps"}, version="8", reads_input=True, check_input=ap_sizes_fit)
def align_aps(ctx: Context) -> Result:
    """Place APs and measure each AP's local shift and local quality in every frame."""
    p: AlignApsParams = ctx.params
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
        raise NodeError(f"align-aps: the reference is {mono.shape[1]}×{mono.shape[0]} but the crop is "
                        f"{crop[3]}×{crop[2]}")
    try:
        centres, sizes = place_aps(mono, p.ap_size, p.margin, p.min_brightness, p.min_structure, p.manual)
    except ValueError as exc:
        raise NodeError(f"align-aps: {exc}") from exc
    if len(centres) == 0:
        raise NodeError("align-aps: no AP passed the brightness and structure limits; lower them or use "
                        "smaller AP sizes")
    n = stream.count
    chunks = chunked(range(n), CHUNK)
    windows = match_boxes(centres, sizes, mono.shape, p.match_size)
    fn = partial(align_chunk, stream, shift=shift, valid=valid, crop=crop, ref_mono=mono, centres=centres,
                 sizes=sizes, windows=windows, search=p.search, min_corr=p.min_corr, max_jump=p.max_jump,
                 method=method, scale=scale, normalize=normalize)
    parts = list(ctx.map(fn, chunks, total=len(chunks), label="align-aps"))
    local = np.concatenate([q[0] for q in parts]).astype(np.float32)
    lq = np.concatenate([q[1] for q in parts]).astype(np.float32)
    lq[aps_over_gaps(stream, shift, valid, crop, centres, sizes)] = np.nan  # no data there: left out of that AP's stack
    ok = np.concatenate([q[2] for q in parts])
    replaced = int((~ok[valid]).sum())
    if replaced:
        ctx.log(f"{replaced} of {ok[valid].size} AP measurements lost track and were replaced "
                "from neighbours")
    used_sizes = sorted({int(s) for s in sizes})
    return Result(arrays={"center": centres.astype(np.int32), "size": sizes.astype(np.int32), "shift": local,
                          "quality": lq, "ok": ok},
                  meta={"replaced": replaced, "ap_sizes": used_sizes, "match_size": p.match_size,
                        "search": p.search,
                        "method": method, "scale": scale,
                        "default_size": default_ap_size(mono, p.min_brightness) if p.ap_size is None else None})


REGION_MARGIN = 16  # px around the AP and matching boxes beyond the search radius: Gauss–Newton steps
#                    (≤ 4 px), bicubic sampling (2), smoothing (≤ 9 at scale 8) and the 2×2 binning


def _boxes_extent(centres: np.ndarray, sizes: np.ndarray) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) in crop coordinates of the union of square boxes."""
    top, left = centres[:, 0] - sizes // 2, centres[:, 1] - sizes // 2
    return int(top.min()), int((top + sizes).max()), int(left.min()), int((left + sizes).max())


def _work_region(extent: tuple[int, int, int, int], dy: int, dx: int, margin: int,
                 shape: tuple[int, int]) -> tuple[int, int, int, int]:
    """Frame rows ``[a, b)`` and columns ``[c, d)`` holding ``extent`` moved by (dy, dx) plus ``margin``;
    ``a`` and ``c`` even, so the region's 2×2 bins are the frame's."""
    top, bottom, left, right = extent
    a = max(0, (top + dy - margin) // 2 * 2)
    c = max(0, (left + dx - margin) // 2 * 2)
    return a, min(shape[0], bottom + dy + margin), c, min(shape[1], right + dx + margin)


_TEMPLATES: dict[bytes, Templates] = {}


def _templates(ref_mono: np.ndarray, centres: np.ndarray, sizes: np.ndarray, y0: int, x0: int) -> Templates:
    """make_templates, memoised per process for the last reference/AP set (every chunk of a run needs
    the same; building them costs as much as aligning a few frames)."""
    digest = xxhash.xxh3_128(f"{y0},{x0}".encode())  # 1.2 MB: 0.02 ms, where SHA-1 took 0.6 ms a chunk
    for a in (ref_mono, centres, sizes):
        digest.update(np.ascontiguousarray(a))
    key = digest.digest()
    tpl = _TEMPLATES.get(key)
    if tpl is None:
        tpl = make_templates(match_blur(ref_mono), centres, sizes, y0, x0, MATCH_WINDOW)
        _TEMPLATES.clear()
        _TEMPLATES[key] = tpl
    return tpl


def align_chunk(stream, chunk: range, shift: np.ndarray, valid: np.ndarray, crop: list[int],
                ref_mono: np.ndarray, centres: np.ndarray, sizes: np.ndarray,
                windows: tuple[np.ndarray, np.ndarray], search: int, min_corr: float,
                max_jump: float, method: str, scale: float, normalize: bool
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Local shifts (n, A, 2), local quality (n, A) and ok flags (n, A) for frames ``chunk``; the shifts
    are measured over the matching ``windows`` (centres, sizes), the quality over the AP boxes."""
    y0, x0 = crop[0], crop[1]
    tpl = _templates(ref_mono, windows[0], windows[1], y0, x0)
    nbrs = neighbours(centres, sizes, NEAREST_REACH)
    n, a_count = len(chunk), len(centres)
    loc = np.zeros((n, a_count, 2))
    score = np.zeros((n, a_count))
    found = np.zeros((n, a_count), bool)
    lq = np.full((n, a_count), np.nan)
    by, bx = centres[:, 0] - sizes // 2, centres[:, 1] - sizes // 2
    extent = _boxes_extent(np.concatenate([centres, windows[0]]), np.concatenate([sizes, windows[1]]))
    for k, i in enumerate(chunk):
        if not valid[i]:
            continue
        h, w = stream.height, stream.width
        ry, rx = int(round(shift[i, 0])), int(round(shift[i, 1]))
        # Read, smooth and measure only the APs' part of the frame (a planet's disc is a third of it).
        ra, rb, rc, rd = _work_region(extent, y0 + ry, x0 + rx, search + REGION_MARGIN, (h, w))
        if rb - ra < 2 or rd - rc < 2:  # the APs lie outside this frame: measure on all of it
            ra, rb, rc, rd = 0, h, 0, w
        region = stream.read_mono(i, (ra, rb, rc, rd))
        blurred = match_blur(region)
        loc[k], score[k], found[k] = measure(blurred, tpl, shift[i, 0] - ra, shift[i, 1] - rc, search)
        q_img = blurred if abs(scale / 4.0 - MATCH_SIGMA) < 1e-9 else smooth(region, scale)
        yy = np.clip(by + y0 + ry, 0, h - sizes) - ra
        xx = np.clip(bx + x0 + rx, 0, w - sizes) - rc
        # Detail energy only over the APs' bounding box (+1 px for the 3-tap derivatives: same values).
        ya, yb = max(0, int(yy.min()) - 1), min(rb - ra, int((yy + sizes).max()) + 1)
        xa, xb = max(0, int(xx.min()) - 1), min(rd - rc, int((xx + sizes).max()) + 1)
        q_box = q_img[ya:yb, xa:xb]
        lq[k] = box_scores(detail_energy(q_box, method), q_box if normalize else None, yy - ya, xx - xa,
                           sizes)
    loc, ok = replace_lost(loc, score, found, nbrs, min_corr, max_jump)
    ok &= valid[chunk.start:chunk.stop][:, None]
    return loc, lq, ok
