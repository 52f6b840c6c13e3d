"""Writing a simulation to disk: ``<name>.ser`` (frames streamed, timestamp trailer) + ``<name>.truth.npz``."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from luckystack.io.ser_format import SerHeader, ticks_from_unix, write_ser
from luckystack.simulate.simulation import Simulation, simulate
from luckystack.simulate.truth import truth_path


def ser_path(path: Path | str) -> Path:
    """``path`` with a .ser suffix (added if missing)."""
    path = Path(path)
    return path if path.suffix.lower() == ".ser" else path.with_name(path.name + ".ser")


def _counted(frames: Iterator, reporter: Any, total: int) -> Iterator:
    reporter.total("simulate", total, "")
    for frame in frames:
        yield frame
        reporter.advance("simulate", 1)


def write_recording(path: Path | str, sim: Simulation, reporter: Any = None) -> Path:
    """Write ``sim``'s frames as a SER file and its truth beside it; return the SER path.

    The SER header declares the simulation's bit depth (or ``declared_depth`` if set, to reproduce the
    capture programs that declare 16 for 12-bit data); samples are little-endian, LSB-aligned.
    ``reporter`` (a :class:`luckystack.graph.progress.Reporter`) is told of every frame written.
    """
    target = ser_path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    opts = sim.options
    start = float(sim.truth.timestamps[0]) if sim.frame_count else opts.start_unix
    local_offset = 0.0  # the simulated observatory keeps UTC
    header = SerHeader(
        width=sim.width, height=sim.height, layout=sim.layout,
        pixel_depth=opts.declared_depth or sim.bit_depth, observer="luckystack simulator",
        instrument=f"simulated {sim.layout} {sim.bit_depth}-bit", telescope=f"simulated {sim.scene}",
        date_time=int(ticks_from_unix(start + local_offset)), date_time_utc=int(ticks_from_unix(start)),
    )
    frames = sim.iter_frames() if reporter is None else _counted(sim.iter_frames(), reporter, sim.frame_count)
    write_ser(target, frames, header, timestamps=sim.truth.timestamps)
    sim.truth.save(truth_path(target))
    return target


def simulate_command(scene: str = "jupiter", frames: int = 300, out_path: Path | str = "jupiter.ser",
                     width: int = 640, height: int = 480, bit_depth: int = 8, layout: str = "mono",
                     seed: int = 0, reporter: Any = None, **options) -> dict:
    """What ``luckystack simulate`` does: simulate and write a recording; return a summary for printing
    (``ser``, ``truth`` paths, ``frames``, ``seconds``, ``line``: one human-readable sentence);
    ``reporter`` shows the frames' progress."""
    started = time.perf_counter()
    if reporter is not None:
        reporter.start("simulate", f"{frames} frames of {scene}, {width}x{height}")
    sim = simulate(scene, frames, width, height, bit_depth, layout, seed, **options)
    ser = write_recording(out_path, sim, reporter)
    seconds = time.perf_counter() - started
    if reporter is not None:
        reporter.finish("simulate", "written", seconds)
    when = dt.datetime.fromtimestamp(float(sim.truth.timestamps[0]), dt.timezone.utc).isoformat()
    line = (f"wrote {ser} ({frames} frames {width}x{height} {layout} {bit_depth}-bit, {scene}, seed {seed}, "
            f"start {when}) and its truth {truth_path(ser).name} in {seconds:.1f} s")
    return {"ser": ser, "truth": truth_path(ser), "frames": frames, "seconds": seconds, "line": line}
