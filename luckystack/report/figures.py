"""The report's figures, drawn with matplotlib (Agg, imported only when a figure is drawn).

* :func:`quality_figure`: frame quality over time and sorted best-first, with a mark and the frame
  count at every stack size's cut, so a user sees how far down the quality curve each stack reaches.
* :func:`ap_figure`: the reference at full size (never scaled down) with every AP's box and number.
* :func:`local_quality_figure`: per region, how many good frames its APs had (where the stack will be
  weak), beside the same AP numbers.
* :func:`good_frames`: the count behind that map, a pure function.

Every figure is written as a PNG with its axes labelled and the margins trimmed.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

GOOD_FRACTION = 0.8  # a frame is good for an AP when its local quality is at least this share of the AP's best
BEST_PERCENTILE = 99.0  # an AP's "best" quality: robust to a single freak measurement
DPI = 100


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path, tight: bool = True) -> Path:
    """Write the figure as PNG through a temporary file renamed into place, and close it."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        fig.savefig(tmp, format="png", dpi=DPI, **({"bbox_inches": "tight", "pad_inches": 0.05} if tight else {}))
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
        _pyplot().close(fig)
    return path


def quality_figure(path: Path, score: np.ndarray, valid: np.ndarray,
                   cuts: Sequence[tuple[str, int]] = ()) -> Path:
    """Two panels: quality against frame number (rejected frames marked), and sorted best-first with a
    dashed line and a label at each ``(label, frames)`` cut. Quality is shown relative to the best frame."""
    plt = _pyplot()
    score = np.asarray(score, np.float64)
    good = np.asarray(valid, bool) & np.isfinite(score)
    top = float(np.max(score[good])) if good.any() else 1.0
    rel = score / (top or 1.0)
    fig, (ax_t, ax_s) = plt.subplots(1, 2, figsize=(11, 3.4), gridspec_kw={"width_ratios": [3, 2]})
    frames = np.arange(len(score))
    ax_t.plot(frames[good], rel[good], lw=0.8, color="tab:blue", label="quality of each frame")
    if (~good).any():
        ax_t.plot(frames[~good], np.zeros(int((~good).sum())), "|", color="tab:red", ms=8,
                  label=f"rejected ({int((~good).sum())} frames)")
    ax_t.set_xlabel("frame number")
    ax_t.set_ylabel("quality (best frame = 1)")
    ax_t.set_title("frame quality over time", fontsize=10)
    ax_t.set_xlim(0, max(1, len(score) - 1))
    ax_t.legend(loc="lower right", fontsize=8, framealpha=0.9)
    ranked = np.sort(rel[good])[::-1]
    ax_s.plot(np.arange(1, len(ranked) + 1), ranked, color="tab:orange", lw=1.5, label="frames, best first")
    for k, (label, count) in enumerate(sorted(cuts, key=lambda c: c[1])):
        if not 0 < count <= max(1, len(ranked)):
            continue
        ax_s.axvline(count, color="0.3", ls="--", lw=0.8, label="stack size cut" if k == 0 else None)
        ax_s.plot([count], [ranked[count - 1]], "o", color="0.2", ms=4)
        ax_s.text(count, 0.03, f" {label}: {count} frames", rotation=90, fontsize=8, va="bottom", ha="right")
    ax_s.set_xlabel("rank (1 = sharpest frame)")
    ax_s.set_ylabel("quality (best frame = 1)")
    ax_s.set_title("sorted, with each stack size's cut", fontsize=10)
    ax_s.set_xlim(0, max(2, len(ranked)))
    ax_s.legend(loc="upper right", fontsize=8, framealpha=0.9)
    for ax in (ax_t, ax_s):
        ax.set_ylim(0, 1.05)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return _save(fig, path)


def _display(image: np.ndarray) -> np.ndarray:
    img = np.asarray(image, np.float32)
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[..., 0]
    lo, hi = np.percentile(img, [0.5, 99.9])
    return np.clip((img - lo) / max(float(hi - lo), 1e-12), 0, 1)


def _boxes(ax, centres: np.ndarray, sizes: np.ndarray, colour: str, numbers: bool = True) -> None:
    from matplotlib.patches import Rectangle

    font = 7 if len(sizes) > 60 else 8
    for k, ((cy, cx), s) in enumerate(zip(np.asarray(centres), np.asarray(sizes))):
        ax.add_patch(Rectangle((cx - s / 2 - 0.5, cy - s / 2 - 0.5), s, s, fill=False, ec=colour, lw=0.8))
        if numbers:
            ax.text(cx, cy, str(k + 1), color="white", fontsize=font, ha="center", va="center",
                    bbox={"facecolor": "black", "alpha": 0.55, "pad": 1.0, "linewidth": 0})


def _image_axes(plt, shape: tuple[int, ...], scale: float, extra_width: float = 0.0):
    h, w = shape[:2]
    fig = plt.figure(figsize=(w * scale / DPI + extra_width, h * scale / DPI))
    ax = fig.add_axes((0, 0, w * scale / DPI / (w * scale / DPI + extra_width), 1))
    ax.set_axis_off()
    return fig, ax


def display_scale(shape: tuple[int, ...], least: int = 480) -> int:
    """Whole-number magnification so a small crop is at least ``least`` px wide (1 for larger ones)."""
    return max(1, int(np.ceil(least / max(1, shape[1]))))


def ap_figure(path: Path, reference: np.ndarray, centres: np.ndarray, sizes: np.ndarray) -> Path:
    """The reference at full size (small crops magnified by a whole factor) with every AP's box and number."""
    plt = _pyplot()
    disp = _display(reference)
    scale = display_scale(disp.shape)
    fig, ax = _image_axes(plt, disp.shape, scale)
    ax.imshow(disp, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    _boxes(ax, centres, sizes, "lime")
    ax.set_xlim(-0.5, disp.shape[1] - 0.5)
    ax.set_ylim(disp.shape[0] - 0.5, -0.5)
    return _save(fig, path, tight=False)


def good_frames(quality: np.ndarray, ok: np.ndarray | None, valid: np.ndarray | None) -> np.ndarray:
    """Per AP, the frames whose local quality reached :data:`GOOD_FRACTION` of the AP's best
    (its :data:`BEST_PERCENTILE`-th percentile), counting only valid frames whose shift was measured."""
    q = np.asarray(quality, np.float64)
    use = np.isfinite(q)
    if ok is not None:
        use &= np.asarray(ok, bool)
    if valid is not None:
        use &= np.asarray(valid, bool)[:, None]
    measured = use.any(axis=0)
    best = np.full(q.shape[1], np.inf)
    if measured.any():
        best[measured] = np.nanpercentile(np.where(use, q, np.nan)[:, measured], BEST_PERCENTILE, axis=0)
    return (use & (q >= GOOD_FRACTION * best[None, :])).sum(axis=0).astype(np.int64)


def coverage_map(shape: tuple[int, int], centres: np.ndarray, sizes: np.ndarray,
                 values: np.ndarray) -> np.ndarray:
    """A (H, W) map holding, at every pixel inside an AP box, the mean value of the boxes covering it
    (NaN outside every box)."""
    total = np.zeros(shape, np.float64)
    count = np.zeros(shape, np.float64)
    h, w = shape
    for (cy, cx), s, v in zip(np.asarray(centres), np.asarray(sizes), np.asarray(values, np.float64)):
        y0, x0 = max(0, int(cy) - int(s) // 2), max(0, int(cx) - int(s) // 2)
        y1, x1 = min(h, int(cy) - int(s) // 2 + int(s)), min(w, int(cx) - int(s) // 2 + int(s))
        total[y0:y1, x0:x1] += v
        count[y0:y1, x0:x1] += 1
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def local_quality_figure(path: Path, reference: np.ndarray, centres: np.ndarray, sizes: np.ndarray,
                         counts: np.ndarray) -> Path:
    """The reference dimmed, every region coloured by its APs' good-frame count, a colour bar, AP numbers."""
    plt = _pyplot()
    disp = _display(reference)
    scale = display_scale(disp.shape)
    fig, ax = _image_axes(plt, disp.shape, scale, extra_width=1.3)
    ax.imshow(disp, cmap="gray", vmin=0, vmax=1, interpolation="nearest", alpha=0.6)
    cmap = plt.get_cmap("RdYlGn").with_extremes(bad=(0.0, 0.0, 0.0, 0.0))
    values = coverage_map(disp.shape[:2], centres, sizes, counts)
    top = max(1, int(np.max(counts)) if len(counts) else 1)
    shown = ax.imshow(np.ma.masked_invalid(values), cmap=cmap, vmin=0, vmax=top, alpha=0.55,
                      interpolation="nearest")
    _boxes(ax, centres, sizes, "0.25")
    ax.set_xlim(-0.5, disp.shape[1] - 0.5)
    ax.set_ylim(disp.shape[0] - 0.5, -0.5)
    left = ax.get_position().x1 + 0.02
    cax = fig.add_axes((left, 0.08, 0.025 * 1.3 / max(1.3, fig.get_figwidth() / 4), 0.84))
    bar = fig.colorbar(shown, cax=cax)
    bar.set_label(f"good frames per AP (local quality ≥ {GOOD_FRACTION:.0%} of the AP's best)", fontsize=9)
    bar.ax.tick_params(labelsize=8)
    return _save(fig, path, tight=False)
