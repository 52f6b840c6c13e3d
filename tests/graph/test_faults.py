"""Faults that must leave nothing broken: SIGKILL/SIGTERM of real runs, an input file rewritten while
it is read, full disks (a real small tmpfs), a read-only cache, folder options naming files."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from luckystack.graph import api, files
from luckystack.graph.cli import main
from luckystack.graph.inputwatch import InputChanged
from luckystack.graph.progress import Reporter
from luckystack.graph.store import CacheStore
from tests.graph.conftest import CLI, REPO, cli_env, make_recording

PIPE = {"name": "faults", "nodes": {
    "read": {"type": "t-source"},
    "slow": {"type": "t-slow", "params": {"delay": 0.04}, "inputs": {"frames": "read"}},
    "score": {"type": "t-score", "inputs": {"frames": "slow"}},
    "aps": {"type": "t-blocks", "inputs": {"frames": "read"}},
    "stack": {"type": "t-stack", "inputs": {"frames": "slow", "quality": "score.quality", "aps": "aps"}}}}


def _descendants(pid: int) -> set[int]:
    out, todo = set(), [pid]
    while todo:
        p = todo.pop()
        try:
            tasks = os.listdir(f"/proc/{p}/task")
        except FileNotFoundError:
            continue
        for t in tasks:
            try:
                kids = Path(f"/proc/{p}/task/{t}/children").read_text().split()
            except OSError:
                continue
            for k in map(int, kids):
                if k not in out:
                    out.add(k)
                    todo.append(k)
    return out


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state not in ("Z", "X")  # a zombie has ended (a container's init may not reap it)


def _wait_gone(pids: set[int], seconds: float) -> set[int]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        left = {p for p in pids if _alive(p)}
        if not left:
            return set()
        time.sleep(0.05)
    return {p for p in pids if _alive(p)}


def _contents(cache: Path, record) -> dict[str, bytes]:
    store = CacheStore(cache)
    out = {f"{nid}/{port}/{name}": result.array(name).tobytes()
           for nid, node in record.nodes.items() for port, result in store.load(node.key).items()
           for name in result.arrays}
    store.release()
    return out


needs_proc_children = pytest.mark.skipif(not Path(f"/proc/{os.getpid()}/task/{os.getpid()}/children").exists(),
                                         reason="needs /proc/PID/task/TID/children (Linux) to find workers")


# Imports once, then forks one real `luckystack run` process per line of arguments it reads: a killed
# run is then a process that had got past its imports (which take seconds on a loaded machine).
FORKER = """
import json, os, sys
import tests.graph.testnodes
from luckystack.graph.cli import main
for line in sys.stdin:
    pid = os.fork()
    if pid == 0:
        sys.stdin.close()
        os.dup2(os.open(os.devnull, os.O_WRONLY), 1)  # a run that ends before its kill prints its summary
        os._exit(main(json.loads(line)))
    print(pid, flush=True)
    os.waitpid(pid, 0)
    print("done", flush=True)
"""


@needs_proc_children
def test_sigkill_at_random_points_each_rerun_bit_identical_and_no_worker_left(tmp_path):
    rec = make_recording(tmp_path / "r.npy", n=48)
    pipe = tmp_path / "pipe.json"
    pipe.write_text(json.dumps(PIPE))
    [clean] = api.run(api.pipeline_from_dict(PIPE), [rec], cache=tmp_path / "clean", out=tmp_path / "oc",
                      jobs=1, reporter=Reporter())
    expected = _contents(tmp_path / "clean", clean.record)
    forker = subprocess.Popen([CLI[0], "-c", FORKER], env=cli_env(), cwd=REPO, stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    rng = random.Random(25)
    try:
        for i in range(6):
            cache, out = tmp_path / f"c{i}", tmp_path / f"o{i}"
            forker.stdin.write(json.dumps(["run", str(pipe), "-i", str(rec), "--cache", str(cache),
                                           "--out", str(out), "--jobs", "2"]) + "\n")
            forker.stdin.flush()
            pid = int(forker.stdout.readline())
            deadline = time.monotonic() + rng.uniform(0.0, 1.5)  # from planning to the last export
            seen: set[int] = set()
            while time.monotonic() < deadline and _alive(pid):
                seen |= _descendants(pid)
                time.sleep(0.02)
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass  # the run finished before its moment came: the rerun must still match
            assert forker.stdout.readline().strip() == "done"
            assert _wait_gone(seen, 5.0) == set(), f"iteration {i}: processes outlived the run"
            [again] = api.run(api.pipeline_from_dict(PIPE), [rec], cache=cache, out=out, jobs=1,
                              reporter=Reporter())
            assert _contents(cache, again.record) == expected, f"iteration {i}"
            assert np.load(again.record.exports()[0]).tobytes() == np.load(clean.record.exports()[0]).tobytes()
            left = [p for p in cache.iterdir() if ".partial-" in p.name]
            assert not left, [(p.name, sorted(x.name for x in p.iterdir()), (p / "owner.json").read_text()
                               if (p / "owner.json").exists() else None, os.getpid()) for p in left]
    finally:
        forker.stdin.close()
        forker.wait(10)


@needs_proc_children
def test_sigterm_is_handled_like_ctrl_c(tmp_path):
    rec = make_recording(tmp_path / "r.npy", n=80)
    raw = json.loads(json.dumps(PIPE))
    raw["nodes"]["slow"]["params"]["delay"] = 0.1
    pipe = tmp_path / "pipe.json"
    pipe.write_text(json.dumps(raw))
    marker, cache, out = tmp_path / "halfway", tmp_path / "cache", tmp_path / "out"
    proc = subprocess.Popen(CLI + ["run", str(pipe), "-i", str(rec), "--cache", str(cache), "--out", str(out),
                                   "--jobs", "2"], env={**cli_env(), "LSK_TEST_MARKER": str(marker)}, cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline, seen = time.monotonic() + 60, set()
    while not marker.exists() and time.monotonic() < deadline:
        seen |= _descendants(proc.pid)
        time.sleep(0.02)
    assert marker.exists() and seen, "the slow node never got halfway with a worker"
    t0 = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    _out, err = proc.communicate(timeout=30)
    assert time.monotonic() - t0 < 5, "the running node was not stopped"
    assert proc.returncode == 130 and "Traceback" not in err
    assert err.strip().splitlines()[-1] == "interrupted by SIGTERM; results computed so far are cached"
    assert _wait_gone(seen, 5.0) == set()
    record = json.loads((out / "r" / "run.json").read_text())
    assert record["error"] == "interrupted"
    assert {n["id"]: n["status"] for n in record["nodes"]}["read"] == "ran"
    assert not [p for p in cache.iterdir() if ".partial-" in p.name]


class _Rewriter(Reporter):
    """Rewrites the recording once ``node`` has read ``after`` items: a capture still being written."""

    def __init__(self, path: Path, node: str, after: int, shape: tuple[int, int] = (16, 20)) -> None:
        self.path, self.node, self.after, self.count, self.shape = path, node, after, 0, shape

    def advance(self, node_id: str, n: int = 1) -> None:
        if node_id == self.node:
            self.count += n
            if self.count == self.after:
                make_recording(self.path, n=48, seed=99, shape=self.shape)
                os.utime(self.path)  # as a writer leaves it: modified now


@pytest.mark.parametrize("node,shape", [("read", (16, 20)), ("score", (16, 20)), ("read", (8, 8))],
                         ids=["reader", "later-node", "reader-fails-on-it"])
def test_recording_changed_while_read_fails_and_stores_nothing(tmp_path, node, shape):
    rec = make_recording(tmp_path / "r.npy", n=48)
    original = rec.read_bytes()
    p = api.with_overrides(api.pipeline_from_dict(PIPE), {"slow.delay": 0})
    cache = tmp_path / "cache"
    with pytest.raises(InputChanged, match=f"the input file changed while it was read: {rec}"):
        api.run(p, [rec], cache=cache, out=tmp_path / "o", jobs=1, reporter=_Rewriter(rec, node, 2, shape))
    store = CacheStore(cache)
    assert list(store.keys()) == [] and not [p for p in cache.iterdir() if ".partial-" in p.name]
    assert not (cache / "index").exists() or not any((cache / "index").iterdir())
    assert not (tmp_path / "o" / "r" / "run.json").exists()
    rec.write_bytes(original)  # the file restored: a run gives what a fresh run gives
    [r] = api.run(p, [rec], cache=cache, out=tmp_path / "o", jobs=1, reporter=Reporter())
    shutil.copy(rec, tmp_path / "copy.npy")
    [u] = api.run(p, [tmp_path / "copy.npy"], cache=tmp_path / "fresh", out=tmp_path / "o2", jobs=1,
                  reporter=Reporter())
    assert np.load(r.record.exports()[0]).tobytes() == np.load(u.record.exports()[0]).tobytes()


def test_recording_changed_is_one_line_exit_1(tmp_path, monkeypatch, capsys):
    rec = make_recording(tmp_path / "r.npy", n=48)
    pipe = tmp_path / "pipe.json"
    pipe.write_text(json.dumps(PIPE))
    monkeypatch.setattr("luckystack.graph.progress.auto_reporter", lambda stream: _Rewriter(rec, "read", 3))
    assert main(["run", str(pipe), "-i", str(rec), "--cache", str(tmp_path / "c"), "--out", str(tmp_path / "o"),
                 "--jobs", "1", "--set", "slow.delay=0"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"error: read: the input file changed while it was read: {rec}")


# -- full disks -----------------------------------------------------------------------------------

@pytest.fixture
def small_disk(tmp_path):
    """A real 1 MiB tmpfs (we may be root in a container); skipped where mounting is not allowed."""
    mnt = tmp_path / "small"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip() or 'mount failed'}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def _fill(folder: Path, leave: int) -> None:
    free = files.free_space(folder)
    (folder / "filler").write_bytes(b"\0" * max(0, free - leave))


def _debris(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*") if p.name.endswith(".tmp") or ".partial-" in p.name)


@pytest.mark.parametrize("preflight", [True, False], ids=["space-known", "space-unknown"])
def test_full_output_disk_is_one_line_and_leaves_no_partial_file(small_disk, tmp_path, monkeypatch, capsys,
                                                                  preflight):
    rec = make_recording(tmp_path / "r.npy", n=48, shape=(64, 64))  # its stack: 16 kB
    pipe = tmp_path / "pipe.json"
    pipe.write_text(json.dumps(PIPE))
    out = small_disk / "out"
    (out / "r").mkdir(parents=True)
    _fill(small_disk, 8192)
    if not preflight:  # the write itself meets the full disk
        monkeypatch.setattr(files, "free_space", lambda folder: None)
    assert main(["run", str(pipe), "-i", str(rec), "--cache", str(tmp_path / "c"), "--out", str(out),
                 "--jobs", "1", "--set", "slow.delay=0"]) == 1
    err = capsys.readouterr().err
    target = out / "r" / "r_stack.npy"
    [line] = [x for x in err.splitlines() if "error" in x]  # after the progress lines
    assert line == err.splitlines()[-1] and line.startswith(f"error: cannot write {target}: the disk is full ("), err
    assert "16.5 kB needed" in line
    assert list((out / "r").iterdir()) == [] and _debris(small_disk) == []


def test_full_cache_disk_is_one_line_and_leaves_no_partial_entry(small_disk, tmp_path, capsys):
    rec = make_recording(tmp_path / "r.npy", n=48, shape=(64, 64))
    pipe = tmp_path / "pipe.json"
    pipe.write_text(json.dumps(PIPE))
    cache = small_disk / "cache"
    cache.mkdir()
    _fill(small_disk, 64 << 10)
    assert main(["run", str(pipe), "-i", str(rec), "--cache", str(cache), "--out", str(tmp_path / "o"),
                 "--jobs", "1", "--set", "slow.delay=0"]) == 1
    err = capsys.readouterr().err
    [line] = [x for x in err.splitlines() if "error" in x]
    assert line == err.splitlines()[-1] and "into the cache" in line and "the disk is full" in line, err
    assert _debris(small_disk) == []


def test_write_file_replaces_whole_files_only(small_disk):
    target = small_disk / "image.tif"
    files.write_file(target, b"old" * 100)
    _fill(small_disk, 4096)
    with pytest.raises(files.WriteFailed, match=f"cannot write {target}: the disk is full"):
        files.write_file(target, b"new" * 10000)
    assert target.read_bytes() == b"old" * 100 and _debris(small_disk) == []


# -- read-only caches, folder options -----------------------------------------------------------

def test_fully_cached_run_from_a_read_only_cache(tmp_path, capsys):
    rec = make_recording(tmp_path / "r.npy", n=24)
    pipe = tmp_path / "pipe.json"
    pipe.write_text(json.dumps(PIPE))
    cache, ro = tmp_path / "cache", tmp_path / "ro"
    args = ["run", str(pipe), "-i", str(rec), "--jobs", "1", "--set", "slow.delay=0"]
    assert main(args + ["--cache", str(cache), "--out", str(tmp_path / "o1")]) == 0
    ro.mkdir()
    r = subprocess.run(["mount", "--bind", str(cache), str(ro)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot bind-mount here: {r.stderr.strip()}")
    try:
        r = subprocess.run(["mount", "-o", "remount,bind,ro", str(ro)], capture_output=True, text=True)
        if r.returncode != 0:
            pytest.skip(f"cannot remount read-only here: {r.stderr.strip()}")
        with pytest.raises(OSError):
            (ro / "probe").write_text("x")
        (cache / "index").rename(cache / "index-gone")  # nothing to explain from: the run writes none
        for memo in (cache / "fingerprints").iterdir():
            memo.unlink()  # the fingerprint must be taken again, and cannot be remembered
        capsys.readouterr()
        assert main(args + ["--cache", str(ro), "--out", str(tmp_path / "o2")]) == 0
        captured = capsys.readouterr()
        assert "error" not in captured.err and "cached" in captured.out
        a, b = (np.load(tmp_path / o / "r" / "r_stack.npy").tobytes() for o in ("o1", "o2"))
        assert a == b
        assert main(args + ["--cache", str(ro), "--out", str(tmp_path / "o3"), "--set", "stack.percent=10"]) == 1
        err = capsys.readouterr().err
        [line] = [x for x in err.splitlines() if "error" in x]
        assert line == err.splitlines()[-1] and "into the cache" in line and "Read-only file system" in line, err
    finally:
        subprocess.run(["umount", "-l", str(ro)], capture_output=True)


def test_cache_or_out_naming_a_file_is_one_line_exit_2(tmp_path, capsys):
    rec = make_recording(tmp_path / "r.npy", n=8)
    pipe = tmp_path / "pipe.json"
    pipe.write_text(json.dumps(PIPE))
    a_file = tmp_path / "file.txt"
    a_file.write_text("not a folder")
    base = ["run", str(pipe), "-i", str(rec), "--jobs", "1"]
    cases = [(["--cache", str(a_file), "--out", str(tmp_path / "o")], f"--cache {a_file}: is a file, not a folder"),
             (["--cache", str(a_file / "sub")], f"--cache {a_file / 'sub'}: {a_file} is a file, not a folder"),
             (["--cache", str(tmp_path / "c"), "--out", str(a_file)], f"--out {a_file}: is a file, not a folder")]
    for extra, expected in cases:
        assert main(base + extra) == 2
        assert capsys.readouterr().err == f"error: {expected}\n"
    (tmp_path / "o").mkdir()
    (tmp_path / "o" / "r").write_text("in the way")
    assert main(base + ["--cache", str(tmp_path / "c"), "--out", str(tmp_path / "o")]) == 2
    assert capsys.readouterr().err == f"error: --out {tmp_path / 'o' / 'r'}: is a file, not a folder\n"
    assert main(["cache", "ls", "--cache", str(a_file)]) == 2
    assert main(["explain", str(pipe), "-i", str(rec), "--cache", str(a_file)]) == 2


# -- a batch of many recordings -----------------------------------------------------------------

def _tree_rss_mb(pid: int) -> float:
    total = 0
    for p in {pid} | _descendants(pid):
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total / 1024


@needs_proc_children
def test_soak_twenty_recordings_in_one_batch_with_flat_peak_memory(tmp_path):
    recs = [make_recording(tmp_path / f"r{i:02d}.npy", n=32, seed=i, shape=(64, 96)) for i in range(20)]
    pipe = tmp_path / "pipe.json"
    raw = json.loads(json.dumps(PIPE))
    raw["nodes"]["slow"]["params"]["delay"] = 0.0
    pipe.write_text(json.dumps(raw))
    args = ["run", str(pipe), "--cache", str(tmp_path / "c"), "--out", str(tmp_path / "o"), "--jobs", "2"]
    for r in recs:
        args += ["-i", str(r)]
    proc = subprocess.Popen(CLI + args, env=cli_env(), cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    current = [-1]  # the recording being processed: counted from the reader's progress lines

    def follow() -> None:
        for line in proc.stderr:
            if line.startswith("[read] running"):
                current[0] += 1

    import threading

    reader = threading.Thread(target=follow, daemon=True)
    reader.start()
    peaks: dict[int, float] = {}
    while proc.poll() is None:
        i, mb = current[0], _tree_rss_mb(proc.pid)
        peaks[i] = max(peaks.get(i, 0.0), mb)
        time.sleep(0.02)
    out = proc.stdout.read()
    reader.join(5)
    assert proc.returncode == 0 and current[0] == 19, out
    assert len(list((tmp_path / "o").glob("r*/r*_stack.npy"))) == 20
    early = max(peaks.get(i, 0.0) for i in range(2, 6))  # after the worker started and imports settled
    late = max(peaks.get(i, 0.0) for i in range(15, 20))
    print(f"process-tree peak RSS: recordings 3-6 {early:.0f} MB, 16-20 {late:.0f} MB")
    assert early > 0 and late <= early * 1.10 + 15, (early, late, peaks)


def test_a_temporary_left_by_a_killed_writer_goes_with_the_next_write(tmp_path):
    target = tmp_path / "run.json"
    dead, alive = tmp_path / ".run.json.4194311-0badcafe.tmp", tmp_path / f".run.json.{os.getpid()}-0badcafe.tmp"
    dead.write_bytes(b"half")
    alive.write_bytes(b"being written")
    files.write_file(target, "{}")
    assert target.read_text() == "{}" and not dead.exists() and alive.exists()
