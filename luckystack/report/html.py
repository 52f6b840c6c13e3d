"""The run report: one self-contained ``report.html`` beside the PNGs it shows.

The page is plain HTML with inline CSS. Every picture is a relative link to a PNG in the same folder, so
the folder can be moved or zipped as a whole. A few lines of inline script mark an image that failed to
load, so a broken report is visible to the user and detectable by a headless browser.
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
    """A PNG in the report folder (``file`` is relative to it) with a caption."""

    file: str
    caption: str
    wide: bool = False


@dataclass
class ReportData:
    title: str
    input_name: str
    pipeline: dict[str, Any]
    nodes: list[NodeRow] = field(default_factory=list)
    outputs: list[Picture] = field(default_factory=list)  # thumbnails of every output image
    diagnostics: list[Picture] = field(default_factory=list)  # quality graph, AP overlay, ...
    facts: list[tuple[str, str]] = field(default_factory=list)  # recording facts: size, frames, ...
    comparison_columns: list[str] = field(default_factory=list)  # sweep table header
    comparison_rows: list[list[str]] = field(default_factory=list)
    comparison_pictures: list[Picture] = field(default_factory=list)  # contact sheet etc.
    notes: list[str] = field(default_factory=list)  # warnings from the run


def _img(pic: Picture) -> str:
    cls = ' class="wide"' if pic.wide else ""
    src = html.escape(pic.file, quote=True)
    cap = html.escape(pic.caption)
    return (f'<figure><img src="{src}" alt="{cap}"{cls} onload="lsLoaded(this)" '
            f'onerror="lsBroken(this)"><figcaption>{cap}</figcaption></figure>')


_NUM_TD = '<td class="num">'


def _table(columns: list[str], rows: list[list[str]], numeric: set[int] | None = None) -> str:
    numeric = numeric or set()
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = []
    for row in rows:
        cells = "".join(
            (_NUM_TD if i in numeric else "<td>") + f"{html.escape(str(v))}</td>"
            for i, v in enumerate(row)
        )
        body.append(f"<tr>{cells}</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def render(data: ReportData) -> str:
    """The report page as an HTML string."""
    parts = [
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">",
        f"<title>{html.escape(data.title)}</title><style>{_CSS}</style>",
        f"<script>{_SCRIPT}</script></head><body>",
        f"<h1>{html.escape(data.title)}</h1>",
        f'<p class="muted">Input: {html.escape(data.input_name)}</p>',
        '<p id="broken-warning">Some pictures of this report are missing.</p>',
    ]
    if data.notes:
        parts.append("<h2>Warnings</h2><ul>")
        parts += [f"<li>{html.escape(n)}</li>" for n in data.notes]
        parts.append("</ul>")
    if data.outputs:
        parts.append('<h2>Results</h2><div class="gallery">')
        parts += [_img(p) for p in data.outputs]
        parts.append("</div>")
    if data.comparison_rows or data.comparison_pictures:
        parts.append("<h2>Comparison</h2>")
        parts += [_img(p) for p in data.comparison_pictures]
        if data.comparison_rows:
            numeric = set(range(1, len(data.comparison_columns)))
            parts.append(_table(data.comparison_columns, data.comparison_rows, numeric))
    if data.facts:
        parts.append("<h2>Recording</h2>")
        parts.append(_table(["", ""], [[k, v] for k, v in data.facts]))
    if data.diagnostics:
        parts.append('<h2>Diagnostics</h2><div class="gallery">')
        parts += [_img(p) for p in data.diagnostics]
        parts.append("</div>")
    if data.nodes:
        parts.append("<h2>Nodes</h2>")
        rows = []
        for n in data.nodes:
            rows.append([n.node_id, n.node_type, n.status, f"{n.seconds:.2f} s", n.reason])
        table = _table(["node", "type", "status", "time", "why"], rows, {3})
        for status in ("ran", "cached"):
            table = table.replace(f"<td>{status}</td>", f'<td class="{status}">{status}</td>')
        parts.append(table)
        total = sum(n.seconds for n in data.nodes)
        parts.append(f'<p class="muted">Total node time {total:.2f} s.</p>')
    parts.append("<h2>Pipeline</h2>")
    parts.append(f"<pre>{html.escape(json.dumps(data.pipeline, indent=2, default=str))}</pre>")
    parts.append("</body></html>")
    return "\n".join(parts)


def write_report(folder: Path, data: ReportData) -> Path:
    """Write ``report.html`` into ``folder`` (where the pictures already are); return its path."""
    folder.mkdir(parents=True, exist_ok=True)
    missing = [p.file for p in data.outputs + data.diagnostics + data.comparison_pictures
               if not (folder / p.file).is_file()]
    if missing:
        raise FileNotFoundError(f"report pictures missing in {folder}: {', '.join(missing)}")
    from luckystack.graph.files import write_file

    return write_file(folder / "report.html", render(data))
