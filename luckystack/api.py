"""luckystack's Python API: the engine's (:mod:`luckystack.graph.api`) with the node types registered,
and ``run`` writing the same ``report.html`` (and, for sweeps and batches, the same comparison) as the
command line::

    from luckystack import api
    p = api.load_pipeline("pipelines/planet.json", {"stack.percent": [25]})
    print(api.render(api.explain(p, "jupiter.ser")))
    runs = api.run(p, ["jupiter.ser"], out="out")          # out/jupiter/report.html as well
    image = api.read_result(p, "post", "jupiter.ser")["images"].array("image_P25")
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import luckystack.nodes  # noqa: F401  (registers the node types)
from luckystack.graph.api import (CacheStore, NodeStatus, PathLike, Pipeline, PipelineError,  # noqa: F401
                                  RunRecord, SweepPlan, VariantRun, default_cache, explain, explain_sweep,
                                  load_pipeline, pipeline_from_dict, read_result, render, sweep_executions)
from luckystack.graph import api as _engine
from luckystack.graph.progress import Reporter
from luckystack.setup import configure_process


def write_report(record: RunRecord, out_dir: Path) -> Path:
    """The run report, ``out_dir/report.html``, of one run record; returns its path."""
    from luckystack.report.build import write_run_report

    return write_run_report(record, out_dir)


def write_comparison(runs: list[VariantRun], out_root: Path) -> Path | None:
    """The comparison of a sweep's or batch's results (see :mod:`luckystack.report.comparison`)."""
    from luckystack.report.comparison import write_comparison as compare

    return compare(runs, out_root)


def run(pipeline: Pipeline, inputs: PathLike | Iterable[PathLike] | None = None, *,
        cache: PathLike | CacheStore | None = None, out: PathLike = "out", jobs: int | None = None,
        sweep: Mapping[str, list[Any]] | None = None, mode: str | None = None,
        reporter: Reporter | None = None, report: bool = True,
        after_run: Callable[[RunRecord, Path], None] | None = None) -> list[VariantRun]:
    """Run the pipeline on every input, once per sweep variant (:func:`luckystack.graph.api.run`), and
    write each run's report and, after two runs or more, the comparison, as ``luckystack run`` does.
    ``report=False`` writes neither; ``after_run(record, out_dir)`` follows each run's report."""
    configure_process()

    def each(record: RunRecord, out_dir: Path) -> None:
        if report:
            write_report(record, out_dir)
        if after_run is not None:
            after_run(record, out_dir)

    return _engine.run(pipeline, inputs, cache=cache, out=out, jobs=jobs, sweep=sweep, mode=mode,
                       reporter=reporter, after_run=each,
                       after_sweep=(lambda runs, root: write_comparison(runs, root)) if report else None)
