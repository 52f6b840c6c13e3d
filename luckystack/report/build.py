"""Build a run's ``report.html`` from its run record and the cached node results.

The report finds what it shows by node *type*, so it works for any pipeline: the reader's metadata
for the recording facts, ``analyse`` for the quality graph, ``reference`` + ``align-aps`` for the AP
overlay, ``choose`` (with ``merge``'s candidates) for what auto chose and why, and every exported result
image for the thumbnails.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import numpy as np

from luckystack.graph.runrecord import RunRecord
from luckystack.graph.store import CacheStore
from luckystack.report.contact import common_stretch, contact_sheet, to_display, write_png
from luckystack.report.html import NodeRow, Picture, ReportData, write_report

THUMB_SIDE = 320
IMAGE_SUFFIXES = (".tif", ".tiff", ".png", ".fits", ".fit")  # in order of preference


def _results_by_type(record: RunRecord, store: CacheStore) -> dict[str, dict[str, Any]]:
    """The first node of each type in the record → its results by port."""
    found: dict[str, dict[str, Any]] = {}
    for node in record.nodes.values():
        if node.type not in found and node.key:
            try:
                found[node.type] = store.load(node.key)
            except (KeyError, FileNotFoundError):
                continue
    return found


def read_image(path: Path) -> np.ndarray:
    """A result image file (TIFF, PNG, FITS) as float32 (H, W, C) on a 0..1 scale."""
    suffix = path.suffix.lower()
    if suffix in (".tif", ".tiff"):
        import tifffile

        data = tifffile.imread(path)
    elif suffix in (".fit", ".fits"):
        from astropy.io import fits

        data = np.asarray(fits.getdata(path), dtype=np.float32)
        if data.ndim == 3 and data.shape[0] in (1, 3):
            data = np.moveaxis(data, 0, -1)
        data = data[::-1]  # FITS rows go bottom-up (luckystack.export.write_fits flips them so)
    else:
        import cv2

        data = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        if data is None:
            raise OSError(f"cannot read image {path}")
        if data.ndim == 3:
            data = cv2.cvtColor(data, cv2.COLOR_BGR2RGB)
    if data.dtype == np.uint16:
        data = data.astype(np.float32) / 65535.0
    elif data.dtype == np.uint8:
        data = data.astype(np.float32) / 255.0
    data = np.asarray(data, dtype=np.float32)
    return data[..., None] if data.ndim == 2 else data


def result_files(record: RunRecord) -> list[Path]:
    """The result images a run exported, one per result: from the ``post`` node's exports (any node's
    if there is none), one per folder and file name, TIFF preferred over PNG over FITS when several
    formats were written, previews left out."""
    nodes = list(record.nodes.values())
    post = [n for n in nodes if n.type == "post"]
    best: dict[Path, Path] = {}
    for p in (Path(x) for n in (post or nodes) for x in n.exports):
        suffix = p.suffix.lower()
        if suffix not in IMAGE_SUFFIXES or p.stem.endswith("_preview") or not p.is_file():
            continue
        key = p.with_suffix("")
        if key not in best or IMAGE_SUFFIXES.index(suffix) < IMAGE_SUFFIXES.index(best[key].suffix.lower()):
            best[key] = p
    return list(best.values())


def _thumbnail(image: np.ndarray, path: Path) -> None:
    import cv2

    black, white = common_stretch([image], 0.05, 99.95)
    disp = to_display(image, black, white)
    scale = min(1.0, THUMB_SIDE / max(disp.shape[:2]))
    if scale < 1.0:
        disp = cv2.resize(disp, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    write_png(path, disp)


def _facts(frames_meta: dict[str, Any], frame_count: int | None) -> list[tuple[str, str]]:
    facts = []
    if "width" in frames_meta:
        facts.append(("size", f"{frames_meta['width']} × {frames_meta['height']} px"))
    for key, label in (("format", "format"), ("layout", "colour layout"), ("bit_depth", "bit depth"),
                       ("instrument", "camera"), ("telescope", "telescope"), ("observer", "observer")):
        if frames_meta.get(key) not in (None, ""):
            facts.append((label, str(frames_meta[key])))
    if frame_count is not None:
        facts.append(("frames", str(frame_count)))
    start = frames_meta.get("start_utc")
    if isinstance(start, (int, float)) and start > 0:
        facts.append(("start (UTC)", dt.datetime.fromtimestamp(start, dt.timezone.utc).isoformat(" ", "seconds")))
    elif isinstance(start, str) and start:
        facts.append(("start (UTC)", start))
    return facts


def _diagnostics(results: dict[str, dict[str, Any]], out_dir: Path) -> list[Picture]:
    from luckystack.imaging import plots

    pictures = []
    quality = next(iter(results.get("analyse", {}).values()), None)
    if quality is not None:
        write_png(out_dir / "quality.png", plots.quality_graph(quality.array("score"), quality.array("valid")))
        pictures.append(Picture("quality.png", "frame quality over time and sorted", wide=True))
    reference = next(iter(results.get("reference", {}).values()), None)
    aps = next(iter(results.get("align-aps", {}).values()), None)
    if reference is not None and aps is not None:
        overlay = plots.ap_overlay(reference.array("image"), aps.array("center"), aps.array("size"))
        write_png(out_dir / "ap_overlay.png", overlay)
        pictures.append(Picture("ap_overlay.png", f"{len(aps.array('size'))} alignment points on the reference"))
    return pictures


def _choice(results: dict[str, dict[str, Any]], out_dir: Path) -> tuple[list[str], list[list[str]], list[Picture]]:
    """What the ``choose`` node chose and why: a table of the candidates' scores and their contact sheet."""
    chosen = next(iter(results.get("choose", {}).values()), None)
    if chosen is None or "choice" not in chosen.meta:
        return [], [], []
    choice = chosen.meta["choice"]
    cands = choice["candidates"]
    best = max(c["score"] for c in cands)
    rows = [[c["label"], str(c["frames"]), f"{c['score']:.3f}", f"{c['score'] - best:+.3f}",
             "chosen" if c["label"] == choice["chosen"] else ""] for c in cands]
    columns = ["stack", "frames", "no-truth score", "vs best", f"pick: {choice['pick']}"]
    pictures = []
    merged = next(iter(results.get("merge", {}).values()), None)
    labels = [c["label"] for c in cands]
    if merged is not None and all(f"image_{lab}" in merged.arrays for lab in labels):
        sheet = contact_sheet([merged.array(f"image_{lab}") for lab in labels],
                              [f"{lab} {c['score']:.2f}" for lab, c in zip(labels, cands)])
        write_png(out_dir / "candidates.png", sheet)
        pictures.append(Picture("candidates.png", f"the candidates; {choice['chosen']} chosen by the no-truth score",
                                wide=True))
    return columns, rows, pictures


def _pipeline_used(record: RunRecord, store: CacheStore) -> dict[str, Any]:
    """Every node's type, version and full params (defaults included), from the cache's key.json."""
    nodes: dict[str, Any] = {}
    for node in record.nodes.values():
        try:
            pre = store.read_json(node.key, "key.json")
        except (KeyError, FileNotFoundError, OSError):
            pre = {}
        nodes[node.id] = {"type": node.type, "version": pre.get("version"), "params": pre.get("params", {})}
    return {"name": record.pipeline, "overrides": record.overrides, "nodes": nodes}


def write_run_report(record: RunRecord, out_dir: Path) -> Path:
    """Write ``report.html`` and its pictures into ``out_dir``; return the page's path."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    store = CacheStore(record.cache)
    results = _results_by_type(record, store)
    outputs = []
    for k, exported in enumerate(result_files(record)):
        name = f"thumb_{k:02d}_{exported.stem}.png"
        _thumbnail(read_image(exported), out_dir / name)
        try:
            rel = exported.resolve().relative_to(out_dir.resolve())
        except ValueError:
            rel = exported
        outputs.append(Picture(name, str(rel)))
    frames = next(iter(results.get("reader", {}).values()), None)
    frame_count = len(frames.array("frame_index")) if frames is not None and "frame_index" in frames.arrays else None
    pipeline = _pipeline_used(record, store)
    choice_columns, choice_rows, choice_pictures = _choice(results, out_dir)
    data = ReportData(
        title=f"{record.pipeline} — {Path(record.input).name if record.input else 'no input'}"
              + (f" — {record.variant}" if record.variant else ""),
        input_name=str(record.input),
        pipeline=pipeline,
        nodes=[NodeRow(n.id, n.type, n.status, n.seconds, "; ".join(n.reasons)) for n in record.nodes.values()],
        outputs=outputs,
        diagnostics=_diagnostics(results, out_dir),
        facts=_facts(frames.meta if frames is not None else {}, frame_count),
        notes=record.warnings(),
        comparison_columns=choice_columns,
        comparison_rows=choice_rows,
        comparison_pictures=choice_pictures,
    )
    return write_report(out_dir, data)
