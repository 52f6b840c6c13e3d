"""The report's quality chart, written as SVG: frame quality over time and sorted best-first, with a mark
and the frame count at every stack size's cut, so a user sees how far down the quality curve each stack
reaches. Text and lines stay sharp at any zoom; a long recording is drawn as each pixel column's lowest
and highest value, so 20,000 frames stay a small file.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from pathlib import Path

import numpy as np

from luckystack.graph.files import write_file

CHART_W, CHART_H = 1100, 340
BLUE, ORANGE, RED, GREY = "#1f77b4", "#ff7f0e", "#d62728", "#4d4d4d"


def nice_ticks(top: float, most: int = 7) -> np.ndarray:
    """Round tick values from 0 to ``top`` (steps of 1, 2 or 5 × a power of ten), at most ``most``."""
    top = max(float(top), 1e-9)
    raw = top / max(1, most - 1)
    power = 10.0 ** np.floor(np.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    return np.arange(0.0, top + step * 1e-9, step)


def tick_text(value: float) -> str:
    return f"{value:g}" if abs(value) < 1e5 else f"{value:.0f}"


class _Panel:
    """One plot area of the chart: data → SVG coordinates, axes, grid, title and legend."""

    def __init__(self, x0: float, y0: float, w: float, h: float, xmax: float, ymax: float = 1.05):
        self.x0, self.y0, self.w, self.h, self.xmax, self.ymax = x0, y0, w, h, xmax, ymax
        self.parts: list[str] = []

    def x(self, v):
        return self.x0 + np.asarray(v, np.float64) / self.xmax * self.w

    def y(self, v):
        return self.y0 + self.h - np.asarray(v, np.float64) / self.ymax * self.h

    def frame(self, title: str, xlabel: str, ylabel: str) -> None:
        p, x0, y0, w, h = self.parts, self.x0, self.y0, self.w, self.h
        for t in nice_ticks(self.xmax):
            p.append(f'<line x1="{self.x(t):.1f}" y1="{y0}" x2="{self.x(t):.1f}" y2="{y0 + h}" class="grid"/>'
                     f'<text x="{self.x(t):.1f}" y="{y0 + h + 14}" text-anchor="middle">{tick_text(t)}</text>')
        for t in np.arange(0.0, 1.01, 0.2):
            p.append(f'<line x1="{x0}" y1="{self.y(t):.1f}" x2="{x0 + w}" y2="{self.y(t):.1f}" class="grid"/>'
                     f'<text x="{x0 - 5}" y="{self.y(t) + 4:.1f}" text-anchor="end">{t:.1f}</text>')
        p.append(f'<rect x="{x0}" y="{y0}" width="{w}" height="{h}" class="axes"/>'
                 f'<text x="{x0 + w / 2}" y="{y0 - 8}" text-anchor="middle" class="title">{escape(title)}</text>'
                 f'<text x="{x0 + w / 2}" y="{y0 + h + 32}" text-anchor="middle" class="label">{escape(xlabel)}</text>'
                 f'<text transform="translate({x0 - 38},{y0 + h / 2}) rotate(-90)" text-anchor="middle" '
                 f'class="label">{escape(ylabel)}</text>')

    def line(self, xs: np.ndarray, ys: np.ndarray, colour: str, width: float) -> None:
        if len(xs):
            points = " ".join(f"{a:.1f},{b:.1f}" for a, b in zip(self.x(xs), self.y(ys)))
            self.parts.append(f'<polyline points="{points}" fill="none" stroke="{colour}" '
                              f'stroke-width="{width}" stroke-linejoin="round"/>')

    def legend(self, entries: Sequence[tuple[str, str, str]], corner: str) -> None:
        """``(kind, colour, text)`` entries (kind: line, dash, tick) in a box at the lower or upper right."""
        if not entries:
            return
        bw, bh = 8 + 30 + 6.6 * max(len(t) for _, _, t in entries), 8 + 15 * len(entries)
        bx = self.x0 + self.w - bw - 6
        by = self.y0 + 6 if corner == "upper" else self.y0 + self.h - bh - 6
        self.parts.append(f'<rect x="{bx:.1f}" y="{by:.1f}" width="{bw:.1f}" height="{bh}" class="legend"/>')
        for k, (kind, colour, text) in enumerate(entries):
            yy = by + 12 + 15 * k
            if kind == "tick":
                mark = f'<line x1="{bx + 20:.1f}" y1="{yy - 6:.1f}" x2="{bx + 20:.1f}" y2="{yy + 2:.1f}" stroke="{colour}"/>'
            else:
                dash = ' stroke-dasharray="4 3"' if kind == "dash" else ""
                mark = (f'<line x1="{bx + 6:.1f}" y1="{yy - 2:.1f}" x2="{bx + 32:.1f}" y2="{yy - 2:.1f}" '
                        f'stroke="{colour}" stroke-width="1.5"{dash}/>')
            self.parts.append(mark + f'<text x="{bx + 38:.1f}" y="{yy + 2:.1f}">{escape(text)}</text>')


def _envelope(xs: np.ndarray, ys: np.ndarray, bins: int) -> tuple[np.ndarray, np.ndarray]:
    """A long series cut to at most ``2 · bins`` points: each bin's lowest and highest value, in frame order,
    so the drawn line keeps every dip and peak a pixel can show."""
    if len(xs) <= 2 * bins:
        return xs, ys
    edges = np.linspace(0, len(xs), bins + 1).astype(int)
    out_x, out_y = [], []
    for a, b in zip(edges[:-1], edges[1:]):
        seg = ys[a:b]
        i, j = sorted((int(np.argmin(seg)), int(np.argmax(seg))))
        out_x += [xs[a + i], xs[a + j]]
        out_y += [seg[i], seg[j]]
    return np.array(out_x), np.array(out_y)


def quality_figure(path: Path, score: np.ndarray, valid: np.ndarray,
                   cuts: Sequence[tuple[str, int]] = ()) -> Path:
    """Two panels: quality against frame number (rejected frames marked), and sorted best-first with a
    dashed line and a label at each ``(label, frames)`` cut. Quality is shown relative to the best frame.
    Written as SVG."""
    score = np.asarray(score, np.float64)
    good = np.asarray(valid, bool) & np.isfinite(score)
    top = float(np.max(score[good])) if good.any() else 1.0
    rel = np.where(good, score / (top or 1.0), 0.0)
    frames = np.arange(len(score))
    left = _Panel(60, 28, 560, 250, max(1, len(score) - 1))
    left.frame("frame quality over time", "frame number", "quality (best frame = 1)")
    left.line(*_envelope(frames[good], rel[good], int(left.w)), BLUE, 0.8)
    rejected = int((~good).sum())
    if rejected:
        xs = np.unique(np.round(left.x(frames[~good]), 1))
        y_low = left.y(0.0)
        left.parts.append(f'<path d="{"".join(f"M{x:.1f} {y_low - 6:.1f}v12" for x in xs)}" stroke="{RED}"/>')
    left.legend([("line", BLUE, "quality of each frame")]
                + ([("tick", RED, f"rejected ({rejected} frames)")] if rejected else []), "lower")
    ranked = np.sort(rel[good])[::-1]
    right = _Panel(700, 28, 380, 250, max(2, len(ranked)))
    right.frame("sorted, with each stack size's cut", "rank (1 = sharpest frame)", "quality (best frame = 1)")
    right.line(*_envelope(np.arange(1, len(ranked) + 1), ranked, int(right.w)), ORANGE, 1.5)
    shown_cut = False
    for label, count in sorted(cuts, key=lambda c: c[1]):
        if not 0 < count <= max(1, len(ranked)) or not len(ranked):
            continue
        shown_cut = True
        x = float(right.x(count))
        right.parts.append(
            f'<line x1="{x:.1f}" y1="{right.y0}" x2="{x:.1f}" y2="{right.y0 + right.h}" stroke="{GREY}" '
            f'stroke-dasharray="4 3"/><circle cx="{x:.1f}" cy="{float(right.y(ranked[count - 1])):.1f}" r="2.5" '
            f'fill="#333"/><text transform="translate({x - 3:.1f},{right.y(0.03):.1f}) rotate(-90)">'
            f'{escape(f"{label}: {count} frames")}</text>')
    right.legend([("line", ORANGE, "frames, best first")] + ([("dash", GREY, "stack size cut")] if shown_cut else []),
                 "upper")
    svg = (f'<svg xmlns="http://www.w3.org/2000/svg" width="{CHART_W}" height="{CHART_H}" '
           f'viewBox="0 0 {CHART_W} {CHART_H}" font-family="DejaVu Sans, Arial, sans-serif" font-size="11">'
           '<style>.grid{stroke:#000;stroke-opacity:.12}.axes{fill:none;stroke:#000;stroke-width:.8}'
           '.title{font-size:13px}.label{font-size:12px}.legend{fill:#fff;fill-opacity:.9;stroke:#ccc}</style>'
           f'<rect width="{CHART_W}" height="{CHART_H}" fill="#fff"/>' + "".join(left.parts + right.parts) + "</svg>")
    write_file(Path(path), svg.encode())
    return Path(path)
