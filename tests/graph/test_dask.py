"""The Dask executor on a real ``distributed.LocalCluster`` (2 worker processes): the shipped planet
pipeline on simulated SER recordings gives the local executor's bits, a killed worker does not stop a
run, and a failed recording in a batch does not stop the others."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

distributed = pytest.importorskip("distributed")

import luckystack.nodes  # noqa: E402, F401  (registers the node types)
from luckystack.graph import api  # noqa: E402
from luckystack.graph.dask_executor import DaskExecutor  # noqa: E402
from luckystack.cli import main  # noqa: E402
from luckystack.simulate import simulate, write_recording  # noqa: E402
from tests.graph.conftest import REPO, cli_env  # noqa: E402

PLANET = REPO / "pipelines" / "planet.json"
LONG_FRAMES = 200  # 7 chunks of stabilize, analyse and align


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=":0") as c, distributed.Client(c) as client:
        yield c, client


@pytest.fixture(scope="module")
def dask_executor(cluster):
    return DaskExecutor(client=cluster[1])


@pytest.fixture(scope="module")
def recordings(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("recordings")
    out = {f"j{i}": write_recording(folder / f"j{i}.ser", simulate("jupiter", 40, 192, 144, seed=i))
           for i in range(3)}
    out["long"] = write_recording(folder / "long.ser", simulate("jupiter", LONG_FRAMES, 192, 144, seed=7))
    return out


@pytest.fixture(scope="module")
def local_long(recordings, tmp_path_factory) -> Path:
    """The long recording stacked by the local executor: its output folder."""
    root = tmp_path_factory.mktemp("local-long")
    api.run(api.load_pipeline(PLANET), [recordings["long"]], cache=root / "cache", out=root / "out", jobs=2)
    return root / "out" / "long"


def _images(folder: Path) -> dict[str, bytes]:
    """The exported images under ``folder`` (one per sweep variant of the pipeline) by relative path."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*.tif"))}


def _assert_clean(cache: Path) -> None:
    """Every entry committed whole; no partial entry left behind."""
    names = [p.name for p in cache.iterdir()]
    left = [n for n in names if ".partial-" in n or ".deleting-" in n]
    assert not left, [(n, (cache / n / "owner.json").read_text() if (cache / n / "owner.json").is_file() else "")
                      for n in left]
    entries = [cache / n for n in names if len(n) == 64]
    assert entries and all((e / "manifest.json").is_file() for e in entries)


def test_a_batch_on_the_cluster_equals_the_local_outputs_and_a_bad_recording_fails_alone(
        recordings, dask_executor, cluster, tmp_path):
    bad = tmp_path / "bad.ser"
    bad.write_bytes(b"not a SER file" * 10)
    good = [recordings[f"j{i}"] for i in range(3)]
    pipeline = api.load_pipeline(PLANET)
    api.run(pipeline, good, cache=tmp_path / "c-local", out=tmp_path / "local", jobs=2)
    with distributed.get_task_stream(cluster[1]) as stream:
        runs = api.run(pipeline, [good[0], bad, good[1], good[2]], cache=tmp_path / "c-dask",
                       out=tmp_path / "dask", jobs=2, executor=dask_executor)
    assert [r.failed for r in runs] == [False, True, False, False]
    assert "NodeError" in runs[1].record.error and runs[1].record.nodes["reader"].status == "failed"
    for rec in good:
        local, dask = _images(tmp_path / "local" / rec.stem), _images(tmp_path / "dask" / rec.stem)
        assert len(local) == 3 and local == dask
    # The recordings' nodes ran on both workers, each task reading its frames itself.
    node_workers = {t["worker"] for t in stream.data if t["key"].startswith("stack-")}
    assert len(node_workers) == 2
    _assert_clean(tmp_path / "c-dask")


def test_a_long_recording_is_chunked_over_the_workers_and_equals_the_local_stack(
        recordings, local_long, dask_executor, cluster, tmp_path):
    with distributed.get_task_stream(cluster[1]) as stream:
        [run] = api.run(api.load_pipeline(PLANET), [recordings["long"]], cache=tmp_path / "cache",
                        out=tmp_path / "out", jobs=2, executor=dask_executor)
    assert not run.failed
    chunks = [t for t in stream.data if t["key"].startswith("chunk-")]
    per_map = Counter(t["key"].rsplit("-", 1)[0] for t in chunks)  # chunk-<function>-<uuid>
    # stabilize and analyse (align sums the detail maps analyse made, reading no frame)
    assert sum(n >= LONG_FRAMES // 32 for n in per_map.values()) >= 2, per_map
    assert len({t["worker"] for t in chunks}) == 2
    assert _images(tmp_path / "out" / "long") == _images(local_long)


def test_a_worker_killed_mid_run_is_replaced_and_the_run_completes(
        recordings, local_long, dask_executor, cluster, tmp_path):
    client = cluster[1]
    pids = client.run(os.getpid)
    outcome: dict = {}

    def run() -> None:
        try:
            outcome["runs"] = api.run(api.load_pipeline(PLANET), [recordings["long"]], cache=tmp_path / "cache",
                                      out=tmp_path / "out", jobs=2, executor=dask_executor)
        except BaseException as exc:  # noqa: BLE001  (reported by the assertion below)
            outcome["error"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    victim = None
    deadline = time.monotonic() + 30
    while victim is None and time.monotonic() < deadline and thread.is_alive():
        for addr, keys in client.processing().items():
            if any(k.startswith(("align-", "stack-")) for k in keys):
                victim = addr
        time.sleep(0.01)
    assert victim is not None, "no node task was seen running"
    os.kill(pids[victim], signal.SIGKILL)
    thread.join(120)
    assert "error" not in outcome, outcome.get("error")
    assert not outcome["runs"][0].failed
    assert _images(tmp_path / "out" / "long") == _images(local_long)
    _assert_clean(tmp_path / "cache")
    client.wait_for_workers(2, timeout=30)  # the nanny restarted it


def test_the_command_line_runs_a_batch_on_a_scheduler(recordings, cluster, tmp_path, capsys, monkeypatch):
    (tmp_path / "bad.ser").write_bytes(b"x" * 100)
    shutil.copy(recordings["j0"], tmp_path / "j0.ser")
    monkeypatch.chdir(tmp_path)  # relative paths, which the workers (started elsewhere) must find too
    status = main(["run", str(PLANET), "-i", "j0.ser", "-i", "bad.ser", "--scheduler",
                   cluster[0].scheduler_address, "--cache", "c", "--out", "o"])
    out, err = capsys.readouterr()
    assert status == 1
    assert "bad.ser: FAILED" in out and "j0.ser:" in out
    assert err.strip().splitlines()[-1] == "error: 1 of 2 runs failed; the others completed"
    assert "error: bad.ser: reader: cannot read" in err and "Traceback" not in err
    assert len(list((tmp_path / "o" / "j0").rglob("*.tif"))) == 3 and (tmp_path / "o" / "j0" / "report.html").is_file()


def test_bad_executor_choices_are_one_line_usage_errors(tmp_path, capsys):
    for args, message in ((["--workers", "0"], "--workers must be at least 1"),
                          (["--executor", "local", "--workers", "2"], "--workers needs --executor dask"),
                          (["--scheduler", "tcp://127.0.0.1:1", "--workers", "2"], "leave it out")):
        status = main(["run", str(PLANET), *args, "--cache", str(tmp_path / "c"), "--out", str(tmp_path / "o")])
        err = capsys.readouterr().err
        assert status == 2 and message in err.strip().splitlines()[-1], err


def test_local_remains_the_default_and_imports_no_dask():
    code = ("import sys, luckystack.nodes; from luckystack.graph import api, scheduler, task, executor; "
            "assert not [m for m in sys.modules if m.split('.')[0] in ('dask', 'distributed')]; "
            "assert type(api.executor_of(None)[0]).__name__ == 'LocalExecutor'")
    subprocess.run([os.sys.executable, "-c", code], check=True, env=cli_env(), timeout=60)


def test_sweep_variants_of_one_input_run_at_once_and_equal_the_local_ones(dask_executor, tmp_path):
    import tests.graph.testnodes  # noqa: F401  (the t-* node types; the workers import them by name)
    from tests.graph.conftest import PIPELINE, make_recording

    recording = make_recording(tmp_path / "rec.npy", n=40)
    pipeline = api.pipeline_from_dict(PIPELINE)
    sweep = {"stack.percent": [25, 50, 75]}
    local = api.run(pipeline, [recording], cache=tmp_path / "c1", out=tmp_path / "o1", jobs=1, sweep=sweep)
    dask = api.run(pipeline, [recording], cache=tmp_path / "c2", out=tmp_path / "o2", executor=dask_executor,
                   sweep=sweep)
    assert [r.label for r in dask] == [r.label for r in local] and not any(r.failed for r in dask)
    for a, b in zip(local, dask):
        [fa], [fb] = a.record.exports(), b.record.exports()
        assert Path(fa).read_bytes() == Path(fb).read_bytes()
    assert api.explain_sweep(pipeline, [recording], tmp_path / "c2", sweep).needed["stack"] == 0
