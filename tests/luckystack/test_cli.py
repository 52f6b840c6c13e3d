"""The luckystack command line: what it tells the engine, and its own commands."""

from __future__ import annotations

import ast
import subprocess
import sys

from luckystack.cli import application


def test_luckystack_passes_its_name_examples_and_libraries():
    app = application()
    assert app.name == "luckystack" and app.version.startswith("luckystack ")
    assert "opencv-python-headless" in app.libraries and "luckystack" in app.libraries
    assert "pipelines/planet.json" in app.examples["run"]


def test_every_app_command_is_a_COMMAND_in_its_module_listed_under_its_name():
    from luckystack.cli import app_commands

    for listed in app_commands():
        full = listed.load()  # raises when the module's COMMAND has another name
        assert listed.module and full.run is not None and full.help == listed.help


def _imported_by(argv: tuple[str, ...], which: str) -> list[str]:
    """The modules ``which`` (a Python expression over ``m`` in ``sys.modules``) that ``luckystack ARGV``
    has imported when it ends, run in a fresh interpreter."""
    probe = ("import sys, contextlib, io\n"
             "from luckystack.cli import main\n"
             "with contextlib.redirect_stdout(io.StringIO()):\n"
             "    try:\n        main(sys.argv[1:])\n    except SystemExit:\n        pass\n"
             f"print(sorted(m for m in sys.modules if {which}))")
    out = subprocess.run([sys.executable, "-c", probe, *argv], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return ast.literal_eval(out.stdout.splitlines()[-1])


def test_a_command_module_is_imported_only_when_that_command_is_chosen():
    def imported(*argv: str) -> list[str]:
        return _imported_by(argv, "m in ('luckystack.bench', 'luckystack.compare') or m.startswith('luckystack.commands.')")

    assert imported("--help") == []
    assert imported("--jobs", "2", "compare", "--help") == ["luckystack.compare"]
    assert imported("info", "--help") == ["luckystack.commands.info"]


def test_help_version_and_info_start_without_node_types_or_the_cache_store():
    def imported(*argv: str) -> list[str]:
        return _imported_by(argv, "m in ('luckystack.nodes', 'zarr', 'luckystack.report.build')")

    assert imported("--help") == [] and imported("--version") == [] and imported() == []
    assert imported("info", "--help") == []
    assert imported("run", "--help") == ["luckystack.nodes"]  # a command that runs nodes registers them


def test_the_command_ends_its_process_with_handlers_run_output_flushed_and_no_teardown():
    probe = ("import atexit, sys\n"
             "from luckystack.cli import main\n"
             "class Teardown:\n    def __del__(self):\n        print('module teardown', flush=True)\n"
             "kept = Teardown()\n"
             "atexit.register(lambda: print('exit handler ran'))\n"
             "sys.exit(main())\n")

    def ended(*argv: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-c", probe, *argv], capture_output=True, text=True, timeout=120)

    done = ended("schema")
    assert done.returncode == 0, done.stderr
    assert done.stdout.rstrip().endswith("exit handler ran") and '"$schema"' in done.stdout
    assert "module teardown" not in done.stdout  # the interpreter's teardown was skipped
    bad = ended("explain", "no-such-pipeline.json")
    assert bad.returncode == 2 and "no-such-pipeline.json" in bad.stderr and "exit handler ran" in bad.stdout
    usage = ended("--help")  # argparse's own exit: the normal one, teardown included
    assert usage.returncode == 0 and "module teardown" in usage.stdout


def test_a_run_on_an_input_new_to_its_cache_starts_the_workers_first(tmp_path):
    import os

    from luckystack.cli import _new_inputs, _run_options
    from luckystack.graph.fingerprint import fingerprint

    def new(*argv: str) -> list[str]:
        return _new_inputs(_run_options(argv))

    rec, cache = tmp_path / "a.ser", tmp_path / "cache"
    rec.write_bytes(bytes(range(256)) * 64)
    os.utime(rec, (1e9, 1e9))  # not just written: its fingerprint is remembered
    run = ["run", "pipeline.json", "-i", str(rec), "--cache", str(cache)]
    assert new(*run, "--jobs", "2") == [str(rec)] == new("--jobs", "2", "--cache", str(cache), *run[:4])
    assert new(*run, "--jobs", "1") == []  # no workers to start
    assert new(*run, "--jobs", "2", "--executor", "dask") == []  # nodes run elsewhere
    assert new(*run, "--jobs", "x") == []  # the command's parser says what is wrong
    assert new("run", "pipeline.json", "-i", str(tmp_path / "missing.ser"), "--jobs", "2") == []
    assert new("run", "pipeline.json", "-i", str(tmp_path), "--jobs", "2") == []  # a folder
    fingerprint(rec, cache)  # as a run does: a rerun finds most results cached and starts no worker
    assert new(*run, "--jobs", "2") == []
    assert new(*run, "--jobs", "2", "--cache", str(tmp_path / "other")) == [str(rec)]

    probe = ("import sys, contextlib, io\n"
             "import luckystack.graph.parallel as parallel\n"
             "calls = []\n"
             "parallel.start_workers = lambda jobs, preload=(): calls.append((jobs, preload, 'luckystack.nodes' in sys.modules))\n"
             "from luckystack.cli import main\n"
             "with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):\n"
             "    main(sys.argv[1:])\n"
             "print(calls)")
    out = subprocess.run([sys.executable, "-c", probe, "run", str(tmp_path / "none.json"), "-i", str(rec),
                          "--cache", str(tmp_path / "new"), "--jobs", "3"], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert ast.literal_eval(out.stdout.splitlines()[-1]) == [(3, ("luckystack.nodes",), False)]


def _running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has ended (reaped or not)
    except FileNotFoundError:
        return False


def test_a_command_whose_maps_started_workers_ends_them_and_skips_the_teardown():
    probe = ("import os, sys\n"
             "from luckystack.graph.parallel import ordered_map\n"
             "from luckystack.cli import main\n"
             "class Teardown:\n    def __del__(self):\n        print('module teardown', flush=True)\n"
             "kept = Teardown()\n"
             "def pid(_):\n    import time; time.sleep(0.02); return os.getpid()\n"
             "print('workers', sorted(set(ordered_map(pid, range(100), jobs=2)) - {os.getpid()}), flush=True)\n"
             "sys.argv[1:] = ['schema']\n"
             "sys.exit(main())\n")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    workers = ast.literal_eval(done.stdout.split("workers ", 1)[1].splitlines()[0])
    assert workers and '"$schema"' in done.stdout
    assert "module teardown" not in done.stdout  # not held up by loky's thread waiting for its workers
    assert not any(_running(pid) for pid in workers)
