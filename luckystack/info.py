"""``luckystack info FILE``: what the reader sees in a recording, as a few lines of text."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from luckystack.io.recording import describe as describe_recording


def describe(path: Path | str) -> str:
    """Format, size, layout, bit depth, frame count, timing and capture metadata of ``path``.

    Raises ValueError (one sentence) when the file cannot be read.
    """
    path = Path(path)
    meta, arrays, notes = describe_recording(path, decode=False)  # a video's frames are counted, not decoded
    ts = np.asarray(arrays["timestamp"], np.float64)
    ok = ts[np.isfinite(ts)]
    depth = f"{meta['bit_depth']}-bit"
    if meta["bit_shift"]:
        depth += f" (high bits of {meta['declared_depth']}-bit samples)"
    elif meta["bit_depth"] != meta["declared_depth"]:
        depth += f" (declared {meta['declared_depth']}-bit)"
    lines = [
        f"file:        {path.name}",
        f"format:      {meta['format'].upper()}" + (f", {meta['byte_order']}-endian"
                                                     if meta["byte_order"] not in ("native",) else ""),
        f"size:        {meta['full_width']} x {meta['full_height']}",
        f"layout:      {meta['source_layout']}" + (f" (grey frames stored as {meta['stored_as']})"
                                                   if meta.get("stored_as") else ""),
        f"bit depth:   {depth}",
        f"frames:      {meta['recording_frames']}" + (" (as the video announces them)"
                                                       if meta["source"]["type"] == "array" else ""),
    ]
    if ok.size >= 2:
        lines.append(f"duration:    {ok[-1] - ok[0]:.3f} s from timestamps")
    if meta["frame_rate"]:
        lines.append(f"frame rate:  {meta['frame_rate']:.2f} fps")
    cap = meta["capture"]
    for key in ("observer", "instrument", "telescope", "start_utc"):
        if cap.get(key):
            lines.append(f"{key.replace('_', ' ') + ':':<13}{cap[key]}")
    lines += [f"note:        {n}" for n in notes]
    return "\n".join(lines)
