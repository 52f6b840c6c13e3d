"""The run report: one self-contained ``report.html`` beside the PNGs it shows.

The page is plain HTML with inline CSS. Every picture and file is a relative link into the same folder,
so the folder can be moved or zipped as a whole. A few lines of inline script mark an image that failed
to load (so a broken report is visible to the user and detectable by a headless browser) and blink the
1:1 crops of the stack sizes; there is no build step and nothing is fetched from the network.

Sections, each left out when it has nothing to show: warnings, results (every stack size with its frame
count, a link to the full-resolution file, 1:1 crops side by side and a blink viewer), frame quality,
alignment points (numbered overlay, local quality map, per-AP table), the recording, the nodes and the
pipeline used (collapsed).
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_CSS = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
h1 { margin-bottom: 0.2em; } h2 { border-bottom: 1px solid #ccc; padding-bottom: 0.2em; margin-top: 1.6em; }
table { border-collapse: collapse; margin: 0.6em 0; } td, th { padding: 0.25em 0.7em; border: 1px solid #ddd; }
th { background: #f4f4f4; text-align: left; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
.cached { color: #777; } .ran { color: #0a6; font-weight: 600; }
.gallery { display: flex; flex-wrap: wrap; gap: 1em; }
figure { margin: 0; } figure img { max-width: 320px; background: #000; display: block; }
figcaption { font-size: 0.9em; color: #444; margin-top: 0.3em; }
img.wide { max-width: 100%; }
img.full { max-width: none; }
.scroll { overflow-x: auto; max-width: 100%; }
img.pixels { image-rendering: pixelated; max-width: none; }
.card { border: 1px solid #ddd; padding: 0.5em; border-radius: 4px; }
.card h3 { margin: 0 0 0.3em 0; font-size: 1.05em; }
.links a { margin-right: 0.8em; }
#blink-view { position: relative; display: inline-block; }
#blink-label { position: absolute; left: 6px; top: 4px; color: #fff; background: rgba(0,0,0,0.6);
  padding: 1px 6px; font-weight: 600; }
.blink-buttons button { margin: 0 0.3em 0.3em 0; } .blink-buttons button.on { font-weight: 700; }
details summary { cursor: pointer; color: #036; }
pre { background: #f7f7f7; padding: 0.8em; overflow-x: auto; font-size: 0.85em; }
.broken { outline: 3px solid #d00; }
#broken-warning { display: none; color: #d00; font-weight: 600; }
.muted { color: #777; }
"""

# Marks every image that loaded (data-loaded="1") or failed (class "broken" and a warning line).
_SCRIPT = """
function lsLoaded(img) { img.setAttribute('data-loaded', '1'); }
function lsBroken(img) {
  img.classList.add('broken'); img.setAttribute('data-loaded', '0');
  document.getElementById('broken-warning').style.display = 'block';
}
// The blink viewer: one image, its source switched between the stack sizes' crops.
var lsBlinkTimer = null, lsBlinkAt = 0;
function lsShow(k) {
  var bs = document.querySelectorAll('.blink-buttons button[data-src]');
  if (!bs.length) return;
  lsBlinkAt = (k + bs.length) % bs.length;
  var b = bs[lsBlinkAt], img = document.getElementById('blink-img');
  img.src = b.getAttribute('data-src');
  document.getElementById('blink-label').textContent = b.textContent;
  bs.forEach(function (x) { x.classList.toggle('on', x === b); });
}
function lsBlink(btn) {
  if (lsBlinkTimer) { clearInterval(lsBlinkTimer); lsBlinkTimer = null; btn.textContent = 'blink'; return; }
  lsBlinkTimer = setInterval(function () { lsShow(lsBlinkAt + 1); }, 700);
  btn.textContent = 'stop';
}
"""


@dataclass
class NodeRow:
    node_id: str
    node_type: str
    status: str  # "ran" or "cached"
    seconds: float
    reason: str = ""


@dataclass
class Picture:
    """A picture (PNG or SVG) in the report folder (``file`` is relative to it) with a caption; ``wide`` fits it to the
    page, ``full`` shows it at its own size (scrolling if wider than the page), ``link`` makes it a link."""

    file: str
    caption: str
    wide: bool = False
    full: bool = False
    link: str | None = None


@dataclass
class ResultEntry:
    """One stack size's result: its label, frames per AP, the files written (relative links) and the
    report's pictures of it: a thumbnail, the whole image as a display PNG, and its 1:1 crop."""

    label: str
    frames: int | None
    files: list[str]
    thumbnail: str
    view: str
    crop: str


@dataclass
class ReportData:
    title: str
    input_name: str
    pipeline: dict[str, Any]
    nodes: list[NodeRow] = field(default_factory=list)
    summary: str = ""  # one line under the title
    results: list[ResultEntry] = field(default_factory=list)  # a run's stack sizes
    crop_note: str = ""  # where the 1:1 crops lie
    diagnostics: list[Picture] = field(default_factory=list)  # the quality figure
    ap_pictures: list[Picture] = field(default_factory=list)  # AP overlay, local quality map
    ap_columns: list[str] = field(default_factory=list)  # per-AP table
    ap_rows: list[list[str]] = field(default_factory=list)
    ap_note: str = ""  # how an automatic AP size was chosen
    facts: list[tuple[str, str]] = field(default_factory=list)  # recording facts: size, frames, ...
    comparison_columns: list[str] = field(default_factory=list)  # sweep table header
    comparison_rows: list[list[str]] = field(default_factory=list)
    comparison_pictures: list[Picture] = field(default_factory=list)  # contact sheet etc.
    notes: list[str] = field(default_factory=list)  # warnings from the run


def _tag(file: str, alt: str, cls: str = "", extra: str = "") -> str:
    cls_attr = f' class="{cls}"' if cls else ""
    return (f'<img src="{html.escape(file, quote=True)}" alt="{html.escape(alt, quote=True)}"{cls_attr}{extra} '
            f'onload="lsLoaded(this)" onerror="lsBroken(this)">')


def _href(target: str, text: str) -> str:
    return f'<a href="{html.escape(target, quote=True)}">{text}</a>'


def _img(pic: Picture) -> str:
    cls = "wide" if pic.wide else "full" if pic.full else ""
    tag = _tag(pic.file, pic.caption, cls)
    if pic.link:
        tag = _href(pic.link, tag)
    body = f'<div class="scroll">{tag}</div>' if pic.full else tag
    return f"<figure>{body}<figcaption>{html.escape(pic.caption)}</figcaption></figure>"


def _frames_text(frames: int | None) -> str:
    return "" if frames is None else f"{frames} frame{'s' if frames != 1 else ''} per AP"


def _results(data: ReportData) -> list[str]:
    parts = ['<h2 id="results">Results</h2><div class="gallery">']
    for r in data.results:
        links = " ".join(_href(f, html.escape(Path(f).suffix.lstrip(".").upper() or f)) for f in r.files)
        parts.append(
            f'<div class="card"><h3>{html.escape(r.label)} <span class="muted">{_frames_text(r.frames)}</span></h3>'
            + _href(r.view, _tag(r.thumbnail, f"{r.label} result"))
            + f'<div class="links">full resolution: {links} · {_href(r.view, "view")}</div></div>')
    parts.append("</div>")
    if len(data.results) >= 1:
        parts.append("<h3>1:1 detail</h3>")
        if data.crop_note:
            parts.append(f'<p class="muted">{html.escape(data.crop_note)}</p>')
        parts.append('<div class="gallery">')
        parts += [f"<figure>{_tag(r.crop, f'{r.label} 1:1', 'pixels')}<figcaption>{html.escape(r.label)} "
                  f"{_frames_text(r.frames)}</figcaption></figure>" for r in data.results]
        parts.append("</div>")
    if len(data.results) >= 2:
        first = data.results[0]
        on = ' class="on"'
        buttons = "".join(
            f'<button type="button" data-src="{html.escape(r.crop, quote=True)}" onclick="lsShow({k})"'
            f'{on if k == 0 else ""}>{html.escape(r.label)}</button>'
            for k, r in enumerate(data.results))
        blink_img = _tag(first.crop, "blink", "pixels", ' id="blink-img"')
        parts.append('<h3>Blink between stack sizes</h3><div class="blink-buttons">' + buttons
                     + '<button type="button" onclick="lsBlink(this)">blink</button></div>'
                     + f'<div id="blink-view">{blink_img}'
                     + f'<span id="blink-label">{html.escape(first.label)}</span></div>')
    return parts


_NUM_TD = '<td class="num">'


def _table(columns: list[str], rows: list[list[str]], numeric: set[int] | None = None,
           header: bool = True) -> str:
    numeric = numeric or set()
    head = "<tr>" + "".join(f"<th>{html.escape(c)}</th>" for c in columns) + "</tr>" if header else ""
    body = []
    for row in rows:
        cells = "".join(
            (_NUM_TD if i in numeric else "<td>") + f"{html.escape(str(v))}</td>"
            for i, v in enumerate(row)
        )
        body.append(f"<tr>{cells}</tr>")
    return f"<table>{head}{''.join(body)}</table>"


def render(data: ReportData) -> str:
    """The report page as an HTML string."""
    parts = [
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">",
        f"<title>{html.escape(data.title)}</title><style>{_CSS}</style>",
        f"<script>{_SCRIPT}</script></head><body>",
        f"<h1>{html.escape(data.title)}</h1>",
        f'<p class="muted">Input: {html.escape(data.input_name)}</p>',
        f"<p>{html.escape(data.summary)}</p>" if data.summary else "",
        '<p id="broken-warning">Some pictures of this report are missing.</p>',
    ]
    if data.notes:
        parts.append("<h2>Warnings</h2><ul>")
        parts += [f"<li>{html.escape(n)}</li>" for n in data.notes]
        parts.append("</ul>")
    if data.results:
        parts += _results(data)
    if data.comparison_rows or data.comparison_pictures:
        parts.append("<h2>Comparison</h2>")
        parts += [_img(p) for p in data.comparison_pictures]
        if data.comparison_rows:
            numeric = set(range(1, len(data.comparison_columns)))
            parts.append(_table(data.comparison_columns, data.comparison_rows, numeric))
    if data.diagnostics:
        parts.append('<h2 id="quality">Frame quality</h2>')
        parts += [_img(p) for p in data.diagnostics]
    if data.ap_pictures:
        parts.append('<h2 id="aps">Alignment points</h2>')
        if data.ap_note:
            parts.append(f'<p id="ap-choice">{html.escape(data.ap_note)}</p>')
        parts += [_img(p) for p in data.ap_pictures]
        if data.ap_rows:
            parts.append(f"<details><summary>every AP ({len(data.ap_rows)})</summary>")
            parts.append(_table(data.ap_columns, data.ap_rows, set(range(len(data.ap_columns)))))
            parts.append("</details>")
    facts = [(k, v) for k, v in data.facts if str(v).strip()]
    if facts:
        parts.append("<h2>Recording</h2>")
        parts.append(_table(["", ""], [[k, v] for k, v in facts], header=False))
    if data.nodes:
        parts.append("<h2>Nodes</h2>")
        rows = []
        why = any(n.reason for n in data.nodes)
        for n in data.nodes:
            rows.append([n.node_id, n.node_type, n.status, f"{n.seconds:.2f} s"] + ([n.reason or "—"] if why else []))
        table = _table(["node", "type", "status", "time"] + (["why"] if why else []), rows, {3})
        for status in ("ran", "cached"):
            table = table.replace(f"<td>{status}</td>", f'<td class="{status}">{status}</td>')
        parts.append(table)
        total = sum(n.seconds for n in data.nodes)
        parts.append(f'<p class="muted">Total node time {total:.2f} s.</p>')
    parts.append("<h2>Pipeline</h2><details><summary>the pipeline used, every param included</summary>")
    parts.append(f"<pre>{html.escape(json.dumps(data.pipeline, indent=2, default=str))}</pre></details>")
    parts.append("</body></html>")
    return "\n".join(parts)


def write_report(folder: Path, data: ReportData) -> Path:
    """Write ``report.html`` into ``folder`` (where the pictures already are); return its path."""
    folder.mkdir(parents=True, exist_ok=True)
    files = [p.file for p in data.diagnostics + data.ap_pictures + data.comparison_pictures]
    files += [f for r in data.results for f in (r.thumbnail, r.view, r.crop)]
    missing = [f for f in files if not (folder / f).is_file()]
    if missing:
        raise FileNotFoundError(f"report pictures missing in {folder}: {', '.join(missing)}")
    from luckystack.graph.files import write_file

    return write_file(folder / "report.html", render(data))
