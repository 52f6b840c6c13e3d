"""Build a run's ``report.html`` from its run record and the cached node results.

The report finds what it shows by node *type*, so it works for any pipeline: the reader's metadata
for the recording facts, ``analyse`` for the quality figure, ``stack`` (or ``merge``/``post``) for each
stack size's frame count, ``reference`` + ``align`` for the AP overlay and the local quality map,
``choose`` (with ``merge``'s candidates) for what auto chose and why, and every exported result image
for the results (thumbnail, whole image, 1:1 crop, blink).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import xxhash

from luckystack.graph.files import write_file
from luckystack.graph.node import find
from luckystack.graph.runrecord import RunRecord
from luckystack.graph.store import CacheStore
from luckystack.report import chart, figures
from luckystack.report.contact import common_stretch, contact_sheet, detail_crops, display_pixels, write_png
from luckystack.report.html import NodeRow, Picture, ReportData, ResultEntry, write_report

THUMB_SIDE = 320
PICTURES_VERSION = "1"  # of how result pictures are drawn: a change redraws those a cached rerun keeps
IMAGE_SUFFIXES = (".tif", ".tiff", ".png", ".fits", ".fit")  # in order of preference


def _results_by_type(record: RunRecord, store: CacheStore) -> dict[str, dict[str, Any]]:
    """The first node of each type in the record → its results by port."""
    found: dict[str, dict[str, Any]] = {}
    for node in record.nodes.values():
        known = find(node.type)  # a record written before a type was renamed names its former name
        type_name = known.name if known is not None else node.type
        if type_name not in found and node.key:
            try:
                found[type_name] = store.load(node.key)
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


def _thumbnail(disp: np.ndarray, path: Path) -> None:
    import cv2

    scale = min(1.0, THUMB_SIDE / max(disp.shape[:2]))
    if scale < 1.0:
        disp = cv2.resize(disp, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    write_png(path, disp)


def _relative(path: Path, folder: Path) -> str:
    try:
        return path.resolve().relative_to(folder.resolve()).as_posix()
    except ValueError:
        return path.resolve().as_uri()


def _entry_names(chosen: list[Path], out_dir: Path) -> list[tuple[str, str]]:
    """(label, picture base name) of each result image, in order."""
    names = []
    for k, path in enumerate(chosen):
        label = path.parent.name if path.parent.resolve() != out_dir.resolve() else path.stem
        if path.stem.endswith("_sharp"):
            label += " sharpened"
        names.append((label, f"{k:02d}_{path.stem}"))
    return names


def _pictures_source(chosen: list[Path]) -> str | None:
    """What the result pictures are drawn from: every chosen file, in order, with its content's digest
    (None when one cannot be read); the stretch and crops depend on all of them together."""
    from luckystack.graph.exports import file_digest

    digest = xxhash.xxh3_128(f"{PICTURES_VERSION}|{THUMB_SIDE}".encode())
    for path in chosen:
        content = file_digest(path)
        if content is None:
            return None
        digest.update(f"|{path.name}|{path.parent.name}|{content}".encode())
    return digest.hexdigest()


def _result_entries(record: RunRecord, out_dir: Path, sizes: dict[str, int]) -> tuple[list[ResultEntry], str]:
    """One entry per result image (stack size, sharpened or not), in the order of ``sizes``, with its
    pictures written: thumbnail, whole-image display PNG and 1:1 crop, all with one common stretch.

    Pictures an earlier report drew from the very same files (a cached rerun) are kept as they are;
    any others (an earlier run's stack sizes) are removed."""
    chosen = result_files(record)
    written = [Path(p) for n in record.nodes.values() for p in n.exports]
    order = {label: k for k, label in enumerate(sizes)}
    chosen.sort(key=lambda p: (order.get(p.parent.name, len(order)), p.parent.name, p.stem.endswith("_sharp")))
    names = _entry_names(chosen, out_dir)
    pictures = {f"{kind}_{base}.png" for _, base in names for kind in ("thumb", "view", "crop")}
    stamp = out_dir / ".results.source"
    source = _pictures_source(chosen) if chosen else None
    note = _kept_note(stamp, source, out_dir, pictures)
    for old in (*out_dir.glob("thumb_*.png"), *out_dir.glob("view_*.png"), *out_dir.glob("crop_*.png")):
        if note is None or old.name not in pictures:
            old.unlink()  # an earlier run's pictures of stack sizes this run may not have
    if not chosen:
        stamp.unlink(missing_ok=True)
        return [], ""
    if note is None:
        stamp.unlink(missing_ok=True)
        note = _draw_results(chosen, names, out_dir)
        if source is not None:
            write_file(stamp, json.dumps({"source": source, "crop_note": note}))
    entries = []
    for path, (label, base) in zip(chosen, names):
        files = [_relative(p, out_dir) for p in written
                 if p.with_suffix("") == path.with_suffix("") and not p.stem.endswith("_preview")]
        entries.append(ResultEntry(label, sizes.get(path.parent.name), files or [_relative(path, out_dir)],
                                   f"thumb_{base}.png", f"view_{base}.png", f"crop_{base}.png"))
    return entries, note


def _kept_note(stamp: Path, source: str | None, out_dir: Path, pictures: set[str]) -> str | None:
    """The crop note of the pictures in ``out_dir`` when they were drawn from ``source`` and are all
    there; None when they must be drawn."""
    if source is None or not stamp.is_file() or not all((out_dir / name).is_file() for name in pictures):
        return None
    try:
        kept = json.loads(stamp.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(kept, dict) or kept.get("source") != source or not isinstance(kept.get("crop_note"), str):
        return None
    return kept["crop_note"]


def _draw_results(chosen: list[Path], names: list[tuple[str, str]], out_dir: Path) -> str:
    """Draw every result's thumbnail, display PNG and 1:1 crop with one common stretch; return the
    crops' note."""
    images = [read_image(p) for p in chosen]
    black, white = common_stretch(images, 0.05, 99.95)
    shapes = {im.shape for im in images}
    crops = detail_crops(images) if len(shapes) == 1 else [detail_crops([im])[0] for im in images]
    for (_, base), image, crop in zip(names, images, crops):
        disp = display_pixels(image, black, white)
        write_png(out_dir / f"view_{base}.png", disp)
        _thumbnail(disp, out_dir / f"thumb_{base}.png")
        write_png(out_dir / f"crop_{base}.png", display_pixels(crop, black, white))
    h, w = crops[0].shape[:2]
    return (f"The same {w} × {h} px window of every result at 1:1 (one screen pixel per image pixel), "
            "around the object's centre, all with one display stretch.")


def _facts(frames_meta: dict[str, Any], frame_count: int | None) -> list[tuple[str, str]]:
    frames_meta = {**(frames_meta.get("capture") or {}), **frames_meta}
    facts = []
    if "width" in frames_meta:
        facts.append(("size", f"{frames_meta['width']} × {frames_meta['height']} px"))
    for key, label in (("format", "format"), ("layout", "colour layout"), ("bit_depth", "bit depth"),
                       ("instrument", "camera"), ("telescope", "telescope"), ("observer", "observer")):
        if frames_meta.get(key) not in (None, ""):
            facts.append((label, str(frames_meta[key])))
    if frame_count is not None:
        total = frames_meta.get("recording_frames")
        facts.append(("frames", f"{frame_count} of {total}" if total and total != frame_count else str(frame_count)))
    rate = frames_meta.get("frame_rate")
    if isinstance(rate, (int, float)) and rate > 0:
        facts.append(("frame rate", f"{rate:.1f} frames/s"))
    start = frames_meta.get("start_utc")
    if isinstance(start, (int, float)) and start > 0:
        facts.append(("start (UTC)", dt.datetime.fromtimestamp(start, dt.timezone.utc).isoformat(" ", "seconds")))
    elif isinstance(start, str) and start:
        facts.append(("start (UTC)", start))
    return facts


def _stack_sizes(results: dict[str, dict[str, Any]], by_size: bool = False) -> dict[str, int]:
    """Stack size label → frames per AP, in the order asked for: of the results put out (every
    candidate's label, ``P10w2``), or with ``by_size`` of every size stacked, each once (``P10``), also
    where a choose node kept one of them."""
    for node_type in ("stack", "merge", "post") if by_size else ("post", "merge", "stack"):
        found = next(iter(results.get(node_type, {}).values()), None)
        if found is not None and found.meta.get("sizes"):
            return {s.get("size", s["label"]) if by_size else s["label"]: int(s["frames"])
                    for s in found.meta["sizes"] if s.get("frames") is not None}
    return {}


def _quality_pictures(results: dict[str, dict[str, Any]], out_dir: Path) -> list[Picture]:
    quality = next(iter(results.get("analyse", {}).values()), None)
    if quality is None:
        return []
    sizes = _stack_sizes(results, by_size=True)  # one cut per stack size, whatever its candidates' powers
    score, valid_frames = np.asarray(quality.array("score")), np.asarray(quality.array("valid"))
    marks = np.frombuffer(json.dumps(list(sizes.items())).encode(), np.uint8)
    _draw_once(out_dir, ("quality.svg",), (score, valid_frames, marks),
               lambda: chart.quality_figure(out_dir / "quality.svg", score, valid_frames, list(sizes.items())))
    valid = int(np.asarray(valid_frames, bool).sum())
    return [Picture("quality.svg", f"frame quality: {valid} of {len(score)} frames usable; "
                                   "the dashed lines mark how many of the best frames each stack size takes",
                    wide=True)]


def _ap_section(results: dict[str, dict[str, Any]], out_dir: Path) -> tuple[list[Picture], list[str], list[list[str]]]:
    reference = next(iter(results.get("reference", {}).values()), None)
    aps = next(iter(results.get("align", {}).values()), None)
    if reference is None or aps is None:
        return [], [], []
    image = reference.array("image")
    centres, sizes = np.asarray(aps.array("center")), np.asarray(aps.array("size"))
    quality = next(iter(results.get("analyse", {}).values()), None)
    valid = np.asarray(quality.array("valid"), bool) if quality is not None else None
    ok = np.asarray(aps.array("ok"), bool) if "ok" in aps.arrays else None
    counts = figures.good_frames(np.asarray(aps.array("quality")), ok, valid)
    _draw_once(out_dir, ("ap_overlay.png", "local_quality.png"), (image, centres, sizes, counts),
               lambda: _both(lambda: figures.ap_figure(out_dir / "ap_overlay.png", image, centres, sizes),
                             lambda: figures.local_quality_figure(out_dir / "local_quality.png", image, centres,
                                                                  sizes, counts)))
    scale = figures.display_scale(image.shape)
    zoom = f", shown {scale}× enlarged" if scale > 1 else " at full size"
    weakest = np.argsort(counts, kind="stable")[:3] + 1
    pictures = [
        Picture("ap_overlay.png", f"{len(sizes)} alignment points on the reference{zoom}, numbered", full=True),
        Picture("local_quality.png", "local quality: how many good frames each AP had (red = few: the stack "
                                     f"is weakest there, e.g. APs {', '.join(map(str, weakest))})", full=True),
    ]
    replaced = (~ok).sum(axis=0) if ok is not None else np.zeros(len(sizes), int)
    rows = [[str(k + 1), str(int(cx)), str(int(cy)), str(int(s)), str(int(c)), str(int(r))]
            for k, ((cy, cx), s, c, r) in enumerate(zip(centres, sizes, counts, replaced))]
    return pictures, ["AP", "x", "y", "size", "good frames", "shifts replaced"], rows


def _both(first: Callable[[], Any], second: Callable[[], Any]) -> None:
    """``first()`` on a thread of its own while this one runs ``second()`` (drawing and PNG encoding run in
    OpenCV and numpy, which let other threads run meanwhile); raises what either raised."""
    with ThreadPoolExecutor(1, thread_name_prefix="lsk-report") as pool:
        other = pool.submit(first)
        second()
        other.result()


def _draw_once(out_dir: Path, names: tuple[str, ...], data: tuple[np.ndarray, ...], draw: Any) -> None:
    """Run ``draw()`` unless ``names`` in ``out_dir`` were drawn from the very same ``data`` (a rerun that
    changed only the stack sizes keeps the reference and APs: redrawing them took seconds on a Moon)."""
    digest = xxhash.xxh3_128()
    for a in data:
        a = np.ascontiguousarray(a)
        digest.update(f"{a.dtype.str}{a.shape}".encode())
        digest.update(a)
    stamp = out_dir / f".{names[0]}.source"
    if all((out_dir / n).is_file() for n in names) and stamp.is_file() and stamp.read_text() == digest.hexdigest():
        return
    draw()
    write_file(stamp, digest.hexdigest())


def _choice(results: dict[str, dict[str, Any]], out_dir: Path) -> tuple[list[str], list[list[str]], list[Picture]]:
    """What the ``choose`` node chose and why: a table of the candidates' scores and their contact sheet."""
    chosen = next(iter(results.get("choose", {}).values()), None)
    if chosen is None or "choice" not in chosen.meta:
        return [], [], []
    choice = chosen.meta["choice"]
    cands = choice["candidates"]
    best = max(c["score"] for c in cands)
    powers = any("power" in c for c in cands)  # candidates at several Fourier powers (stack.spectral_weight)
    rows = [[c["label"], str(c["frames"])] + ([f"{c['power']:g}"] if powers else [])
            + [f"{c['score']:.3f}", f"{c['score'] - best:+.3f}", "chosen" if c["label"] == choice["chosen"] else ""]
            for c in cands]
    columns = ["stack", "frames"] + (["Fourier power"] if powers else []) + [
        f"no-truth score ({choice.get('score', 'nested')})", "vs best", f"pick: {choice['pick']}"]
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


def _ap_choice(results: dict[str, dict[str, Any]]) -> str:
    """What ``align.ap_size: auto`` chose and why ("" when the size was given)."""
    aps = next(iter(results.get("align", {}).values()), None)
    choice = aps.meta.get("ap_choice") if aps is not None else None
    if not choice:
        return ""
    field = ", ".join(f"{lag} px: {v:.3f}" for lag, v in zip(choice["lags"], choice["structure"]))
    limit = (f"the field allows {choice['rigid_size']:.0f} px" if choice.get("rigid_size") is not None
             else "the field showed no measurable variation")
    return (f"AP size auto: {choice['chosen']} px. The best frames' local shifts, measured on a grid, differ by "
            f"(mean square per axis, px²) {field}: a strain of {choice['strain']:.4f} px/px; with the object's "
            f"detail at {choice['detail_frequency']:.3f} cycles/px {limit} (between 24 px and "
            f"{choice['largest']} px, the size that gives the object about 25 APs).")


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


def _summary(record: RunRecord, sizes: dict[str, int], frame_count: int | None) -> str:
    ran = sum(1 for n in record.nodes.values() if n.status == "ran")
    parts = []
    if sizes:
        parts.append(f"{len(sizes)} stack size{'s' if len(sizes) != 1 else ''} ("
                     + ", ".join(f"{k}: {v} frames" for k, v in sizes.items()) + ")")
    if frame_count is not None:
        parts.append(f"from {frame_count} frames")
    parts.append(f"{record.seconds:.2f} s" + (f", {ran} of {len(record.nodes)} nodes computed, the rest cached"
                                             if ran < len(record.nodes) else ""))
    return "; ".join(parts) + "."


def write_run_report(record: RunRecord, out_dir: Path) -> Path:
    """Write ``report.html`` and its pictures into ``out_dir``; return the page's path."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    store = CacheStore(record.cache)
    results = _results_by_type(record, store)
    sizes = _stack_sizes(results)
    with ThreadPoolExecutor(1, thread_name_prefix="lsk-report") as pool:  # the pictures of the APs meanwhile
        ap_section = pool.submit(_ap_section, results, out_dir)
        entries, crop_note = _result_entries(record, out_dir, sizes)
        ap_pictures, ap_columns, ap_rows = ap_section.result()
    frames = next(iter(results.get("reader", {}).values()), None)
    frame_count = len(frames.array("frame_index")) if frames is not None and "frame_index" in frames.arrays else None
    choice_columns, choice_rows, choice_pictures = _choice(results, out_dir)
    data = ReportData(
        title=f"{record.pipeline} — {Path(record.input).name if record.input else 'no input'}"
              + (f" — {record.variant}" if record.variant else ""),
        input_name=str(record.input),
        summary=_summary(record, sizes, frame_count),
        pipeline=_pipeline_used(record, store),
        nodes=[NodeRow(n.id, n.type, n.status, n.seconds, "; ".join(n.reasons)) for n in record.nodes.values()],
        results=entries,
        crop_note=crop_note,
        diagnostics=_quality_pictures(results, out_dir),
        ap_pictures=ap_pictures, ap_columns=ap_columns, ap_rows=ap_rows, ap_note=_ap_choice(results),
        facts=_facts(frames.meta if frames is not None else {}, frame_count),
        notes=record.warnings(),
        comparison_columns=choice_columns,
        comparison_rows=choice_rows,
        comparison_pictures=choice_pictures,
    )
    return write_report(out_dir, data)
