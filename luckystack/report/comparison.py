"""Comparing results side by side: the figures table, the ranking, the contact sheet, the blink GIF.

Used after a sweep or batch (:func:`write_comparison`, the engine's ``after_sweep`` hook) and by
``luckystack compare`` (:mod:`luckystack.compare`). Every result is measured on the same centre crop
(drizzled results brought to the common scale first), shown with one common display stretch.

Ranking: results are ranked by :func:`luckystack.imaging.image_metrics.score` (higher is better), which
needs no truth, so the ranking means the same for real and simulated recordings. When a truth is known
(a simulated recording's ``<name>.truth.npz``), PSNR and SSIM against it are shown alongside, with the
rank by PSNR and the Spearman correlation of the two rankings, so one sees whether the score agrees.

Layout of a sweep/batch comparison under the output root ``OUT``::

    OUT/<stem>/comparison/comparison.csv   one row per result (variant × stack size), best first
    OUT/<stem>/comparison/contact.png      every result, whole, same crop and stretch, labelled
    OUT/<stem>/comparison/detail.png       the same at 1:1 scale around the object's centre
    OUT/<stem>/comparison/blink.gif        the detail crops in rank order, for blinking
    OUT/<stem>/comparison/report.html      the above in one page
    OUT/comparison-summary.csv             several recordings: mean rank of each setting (best first)
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from luckystack.graph.files import WriteFailed, write_file
from luckystack.imaging import image_metrics
from luckystack.report.build import IMAGE_SUFFIXES, read_image, result_files
from luckystack.report.contact import (
    LABEL_HEIGHT, common_stretch, contact_sheet, detail_crops, fit_common, to_display, write_png,
)
from luckystack.report.html import Picture, ReportData, write_report

DETAIL_SIDE = 192  # px of the 1:1 detail crop
FIGURES = ("sharpness", "noise", "snr", "score")
TRUTH_FIGURES = ("psnr", "ssim")


@dataclass
class Measured:
    """One result image and its figures; ``setting`` names what produced it (variant, stack size)."""

    setting: str
    stack: str
    path: Path
    image: np.ndarray
    figures: dict[str, float] = field(default_factory=dict)
    order: int = 0  # position in the sweep (variant, stack size): the contact sheet's order
    rank: int = 0
    truth_rank: int | None = None

    @property
    def label(self) -> str:
        return " ".join(x for x in (self.setting, self.stack) if x)


# ---- truth -----------------------------------------------------------------------------------

def load_truth_image(path: Path | str) -> np.ndarray:
    """A truth image: a simulation's ``.truth.npz`` (or the ``.ser`` beside it), or an image file."""
    path = Path(path)
    if path.name.endswith(".npz") or path.suffix.lower() == ".ser":
        from luckystack.simulate import load_truth

        return np.asarray(load_truth(path).image, dtype=np.float32)
    return read_image(path)


def truth_for_input(recording: Path | None) -> np.ndarray | None:
    """The truth image of a simulated recording (``<name>.truth.npz`` beside it), else None."""
    if recording is None:
        return None
    try:
        from luckystack.simulate import truth_path
    except ImportError:
        return None
    tp = truth_path(recording)
    return load_truth_image(tp) if tp.is_file() else None


def truth_figures(image: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """PSNR (dB) and SSIM of ``image`` against ``truth`` after registration and a gain/offset fit.

    NaN when the result cannot be registered on the truth (e.g. a different object).
    """
    from luckystack.simulate.metrics import compare

    img = np.asarray(image, np.float32)
    tru = np.asarray(truth, np.float32)
    if img.shape[2] != tru.shape[2]:  # compare luminance when channel counts differ
        img, tru = img.mean(axis=2, keepdims=True), tru.mean(axis=2, keepdims=True)
    try:
        s = compare(img, tru)
    except ValueError:
        return {"psnr": math.nan, "ssim": math.nan}
    return {"psnr": float(s.psnr), "ssim": float(s.ssim)}


# ---- measuring and ranking -------------------------------------------------------------------

def measure(results: list[Measured], truth: np.ndarray | None = None) -> list[Measured]:
    """Bring all images to one crop, fill in their figures and ranks; return them best first."""
    if not results:
        raise ValueError("nothing to compare")
    for k, (r, img) in enumerate(zip(results, fit_common([r.image for r in results]))):
        r.order = k
        r.image = np.ascontiguousarray(img, dtype=np.float32)
        r.figures = image_metrics.figures(r.image)
        if truth is not None:
            r.figures.update(truth_figures(r.image, truth))
    order = sorted(range(len(results)), key=lambda k: -results[k].figures["score"])
    for rank, k in enumerate(order, 1):
        results[k].rank = rank
    if truth is not None:
        by_psnr = sorted(range(len(results)), key=lambda k: -np.nan_to_num(results[k].figures["psnr"], nan=-1e9))
        for rank, k in enumerate(by_psnr, 1):
            results[k].truth_rank = rank
    return [results[k] for k in order]


def rank_agreement(results: Sequence[Measured]) -> float | None:
    """Spearman correlation of the score ranking and the PSNR ranking (1 = identical), or None."""
    if len(results) < 3 or any(r.truth_rank is None for r in results):
        return None
    a = np.array([r.rank for r in results], float)
    b = np.array([r.truth_rank for r in results], float)
    n = len(a)
    return float(1 - 6 * np.sum((a - b) ** 2) / (n * (n * n - 1)))


def columns(results: Sequence[Measured]) -> list[str]:
    has_truth = any(r.truth_rank is not None for r in results)
    return ["result", "rank", *FIGURES, *((*TRUTH_FIGURES, "psnr_rank") if has_truth else ())]


def _fmt(v: float) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    return f"{v:.4g}" if abs(v) < 1e4 else f"{v:.0f}"


def rows(results: Sequence[Measured]) -> list[list[str]]:
    """Table rows matching :func:`columns` (figures formatted to 4 significant digits)."""
    has_truth = any(r.truth_rank is not None for r in results)
    out = []
    for r in results:
        row = [r.label, str(r.rank), *(_fmt(r.figures[f]) for f in FIGURES)]
        if has_truth:
            row += [*(_fmt(r.figures.get(f, math.nan)) for f in TRUTH_FIGURES), str(r.truth_rank)]
        out.append(row)
    return out


def write_csv(path: Path, results: Sequence[Measured]) -> Path:
    """The table as CSV (full precision, plus setting, stack and file columns)."""
    cols = columns(results)
    fh = io.StringIO(newline="")
    w = csv.writer(fh)
    w.writerow(["setting", "stack", *cols[1:], "file"])
    for r in results:
        vals = [r.figures.get(c, "") if c not in ("rank", "psnr_rank") else
                (r.rank if c == "rank" else r.truth_rank) for c in cols[1:]]
        w.writerow([r.setting, r.stack, *vals, str(r.path)])
    return write_file(path, fh.getvalue())


def format_table(results: Sequence[Measured]) -> str:
    """The table as aligned plain text, best first."""
    table = [columns(results), *rows(results)]
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths)))
             for row in table]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


# ---- pictures --------------------------------------------------------------------------------

def write_blink(path: Path, images: Sequence[np.ndarray], labels: Sequence[str], ms: int = 700) -> Path:
    """An animated GIF showing the images in turn with one common stretch, each labelled."""
    black, white = common_stretch(images)
    frames = []
    for img, label in zip(images, labels, strict=True):
        disp = to_display(img, black, white)
        frame = np.full((disp.shape[0] + LABEL_HEIGHT, disp.shape[1], 3), 32, np.uint8)
        frame[:disp.shape[0]] = disp
        cv2.putText(frame, label[: max(4, disp.shape[1] // 8)], (4, disp.shape[0] + 16),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.45, (235, 235, 235), 1, cv2.LINE_AA)
        frames.append(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    anim = cv2.Animation()
    anim.frames, anim.durations, anim.loop_count = frames, [ms] * len(frames), 0
    ok, encoded = cv2.imencodeanimation(".gif", anim)
    if not ok:
        raise WriteFailed(f"cannot write {path}: OpenCV cannot encode the animation")
    return write_file(path, encoded.tobytes())


def write_pictures(folder: Path, results: Sequence[Measured], sheet_columns: int | None = None
                   ) -> list[Picture]:
    """contact.png (whole results), detail.png (1:1 crops), blink.gif; in the given order."""
    folder.mkdir(parents=True, exist_ok=True)
    images = [r.image for r in results]
    labels = [f"#{r.rank} {r.label}" for r in results]
    write_png(folder / "contact.png", contact_sheet(images, labels, sheet_columns))
    details = detail_crops(images)
    write_png(folder / "detail.png", contact_sheet(details, labels, sheet_columns, tile=DETAIL_SIDE))
    ranked = sorted(range(len(results)), key=lambda k: results[k].rank)
    write_blink(folder / "blink.gif", [details[k] for k in ranked], [labels[k] for k in ranked])
    return [Picture("contact.png", "every result: same crop, same display stretch; #n = rank by score",
                    wide=True),
            Picture("detail.png", "1:1 detail around the object's centre", wide=True),
            Picture("blink.gif", "the details in rank order (animated)")]


def write_folder(folder: Path, results: list[Measured], title: str, input_name: str,
                 about: dict[str, Any], sheet_columns: int | None = None) -> Path:
    """Pictures, comparison.csv and report.html of measured ``results`` (best first) in ``folder``."""
    pictures = write_pictures(folder, sorted(results, key=lambda r: r.order), sheet_columns)
    write_csv(folder / "comparison.csv", results)
    notes = []
    rho = rank_agreement(results)
    if rho is not None:
        notes.append(f"Score ranking vs PSNR ranking: Spearman correlation {rho:.2f} (1 = same order).")
    data = ReportData(title=title, input_name=input_name, pipeline=about, comparison_columns=columns(results),
                      comparison_rows=rows(results), comparison_pictures=pictures, notes=notes)
    return write_report(folder, data)


# ---- sweeps and batches ----------------------------------------------------------------------

def run_results(run: Any) -> list[Measured]:
    """The result images one :class:`~luckystack.graph.api.VariantRun` exported, not yet measured.

    Taken from the ``post`` node's exports (any node's if there is none); one per stack size folder
    and file name, TIFF preferred over PNG over FITS when several formats were written.
    """
    out = []
    for p in result_files(run.record):
        stack = p.parent.name if p.parent.resolve() != Path(run.record.out_dir).resolve() else ""
        if p.stem.endswith("_sharp"):
            stack = f"{stack} sharp".strip()
        out.append(Measured(run.label, stack or ("" if run.label else p.stem), p, read_image(p)))
    return out


def _stem(run: Any) -> str:
    return Path(run.input).stem if run.input is not None else run.record.pipeline


def write_summary(out_root: Path, per_input: dict[str, list[Measured]]) -> Path:
    """``comparison-summary.csv`` (and .html): each setting's mean rank over the recordings, best first."""
    stats: dict[tuple[str, str], dict[str, list[float]]] = {}
    for results in per_input.values():
        for r in results:
            s = stats.setdefault((r.setting, r.stack), {"rank": [], "score": [], "psnr": [], "wins": []})
            s["rank"].append(r.rank)
            s["score"].append(r.figures["score"])
            s["wins"].append(r.rank == 1)
            if "psnr" in r.figures:
                s["psnr"].append(r.figures["psnr"])
    has_psnr = any(s["psnr"] for s in stats.values())
    cols = ["setting", "stack", "recordings", "mean_rank", "wins", "mean_score"]
    cols += ["mean_psnr"] if has_psnr else []
    table = []
    for (setting, stack), s in sorted(stats.items(), key=lambda kv: (np.mean(kv[1]["rank"]), kv[0])):
        row = [setting, stack, len(s["rank"]), float(np.mean(s["rank"])), int(sum(s["wins"])),
               float(np.mean(s["score"]))]
        if has_psnr:
            row.append(float(np.nanmean(s["psnr"])) if s["psnr"] else math.nan)
        table.append(row)
    path = out_root / "comparison-summary.csv"
    fh = io.StringIO(newline="")
    w = csv.writer(fh)
    w.writerow(cols)
    w.writerows(table)
    write_file(path, fh.getvalue())
    from luckystack.report.html import render

    data = ReportData(
        title=f"Comparison over {len(per_input)} recordings", input_name=", ".join(per_input),
        pipeline={"ranking": "mean rank by score (luckystack.imaging.image_metrics.score) over the recordings",
                  "recordings": {stem: f"{stem}/comparison/report.html" for stem in per_input}},
        comparison_columns=[f"{c}" for c in ["setting · stack", *cols[2:]]],
        comparison_rows=[[" ".join(x for x in row[:2] if x), *(
            _fmt(v) if isinstance(v, float) else str(v) for v in row[2:])] for row in table])
    write_file(out_root / "comparison-summary.html", render(data))
    return path


def write_comparison(runs: Sequence[Any], out_root: Path | str) -> Path | None:
    """Compare the results of a sweep and/or batch (a list of ``VariantRun``); see the module docstring.

    Returns ``OUT/comparison-summary.csv`` for several recordings, else the one recording's
    ``comparison/report.html``; None if the runs exported no result images.
    """
    out_root = Path(out_root)
    groups: dict[str, list[Any]] = {}
    for run in runs:
        groups.setdefault(_stem(run), []).append(run)
    per_input: dict[str, list[Measured]] = {}
    reports = []
    for stem, group in groups.items():
        per_run = [run_results(r) for r in group]
        results = [m for found in per_run for m in found]
        if not results:
            continue
        recording = Path(group[0].input) if group[0].input is not None else None
        measured = measure(results, truth_for_input(recording))
        per_input[stem] = measured
        stacks = max(len(found) for found in per_run)
        about = {"pipeline": group[0].record.pipeline, "recording": str(recording),
                 "variants": {r.label or "(default)": r.overrides for r in group},
                 "ranking": "by score = log(detail above the noise), image_metrics.score, no truth needed; "
                            "PSNR/SSIM against the simulation truth shown when known"}
        reports.append(write_folder(out_root / stem / "comparison", measured,
                                    f"Comparison — {stem} ({len(measured)} results)", str(recording), about,
                                    stacks if stacks > 1 else None))
    if len(per_input) >= 2:
        return write_summary(out_root, per_input)
    return reports[0] if reports else None
