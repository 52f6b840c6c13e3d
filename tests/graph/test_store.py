"""Cache store: atomic commits under SIGKILL, two processes on one cache, ls/gc/rm."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from luckystack.graph import api
from luckystack.graph.cli import main, parse_size
from luckystack.graph.node import Result
from luckystack.graph.progress import Reporter
from luckystack.graph.store import CacheStore, EntryDamaged
from tests.graph.conftest import CLI, REPO, cli_env, make_recording

SLOW = {"name": "slow-pipe", "nodes": {
    "read": {"type": "t-source"},
    "slow": {"type": "t-slow", "params": {"delay": 0.1}, "inputs": {"frames": "read"}},
    "score": {"type": "t-score", "inputs": {"frames": "slow"}}}}


def _partials(cache):
    return [p for p in cache.iterdir() if ".partial-" in p.name]


def test_sigkill_mid_node_then_rerun_equals_uninterrupted(tmp_path):
    rec = make_recording(tmp_path / "r.npy", n=40)
    pipe = tmp_path / "slow.json"
    pipe.write_text(json.dumps(SLOW))
    cache, marker = tmp_path / "cache", tmp_path / "halfway"
    env = {**cli_env(), "LSK_TEST_MARKER": str(marker)}
    proc = subprocess.Popen(CLI + ["run", str(pipe), "-i", str(rec), "--cache", str(cache), "--jobs", "1",
                                   "--out", str(tmp_path / "o")], env=env, cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert marker.exists(), "the slow node never reached halfway"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    store = CacheStore(cache)
    assert len(_partials(cache)) == 1  # the slow node's half-written entry...
    p = api.with_overrides(api.pipeline_from_dict(SLOW), {"slow.delay": 0.1})
    st = api.explain(p, rec, store)
    assert st["read"].cached and not st["slow"].cached  # ...is never taken for a result
    [r] = api.run(p, [rec], cache=cache, out=tmp_path / "o", jobs=1, reporter=Reporter())
    assert r.record.ran() == ["slow", "score"] and _partials(cache) == []
    [u] = api.run(p, [rec], cache=tmp_path / "clean", out=tmp_path / "o2", jobs=1, reporter=Reporter())
    for node in ("slow", "score"):
        a = store.load(r.record.nodes[node].key)
        b = CacheStore(tmp_path / "clean").load(u.record.nodes[node].key)
        for port in a:
            for name in a[port].arrays:
                assert a[port].array(name).tobytes() == b[port].array(name).tobytes()


def test_two_processes_share_one_cache(tmp_path):
    rec = make_recording(tmp_path / "r.npy", n=24)
    pipe = tmp_path / "slow.json"
    raw = json.loads(json.dumps(SLOW))
    raw["nodes"]["slow"]["params"]["delay"] = 0.02
    pipe.write_text(json.dumps(raw))
    cache = tmp_path / "cache"
    procs = [subprocess.Popen(CLI + ["run", str(pipe), "-i", str(rec), "--cache", str(cache), "--jobs", "1",
                                     "--out", str(tmp_path / f"o{i}")] + (["--set", "score.power=3"] if i else []),
                              env=cli_env(), cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i in range(2)]
    for p in procs:
        out, err = p.communicate(timeout=60)
        assert p.returncode == 0, err
    recs = [api.RunRecord.load(tmp_path / f"o{i}" / "r" / "run.json") for i in range(2)]
    assert all(r.error is None for r in recs)
    assert _partials(cache) == []
    store = CacheStore(cache)
    keys = {n.key for r in recs for n in r.nodes.values()}
    assert len(keys) == 4 and all(store.has(k) for k in keys)  # read, slow shared; two scores


def test_losing_writer_keeps_the_winner(tmp_path):
    store = CacheStore(tmp_path)
    key = "ab" * 32
    first, second = store.begin(key), store.begin(key)
    first.write({"out": Result(arrays={"a": np.arange(3)}, meta={"who": 1})}, {}, {})
    second.write({"out": Result(arrays={"a": np.arange(5)}, meta={"who": 2})}, {}, {})
    assert store.load(key)["out"].meta == {"who": 1} and store.load(key)["out"].array("a").tolist() == [0, 1, 2]
    assert _partials(tmp_path) == []


def test_asking_whether_an_entry_has_an_array_opens_nothing(tmp_path):
    store = CacheStore(tmp_path)
    key = "ef" * 32
    store.begin(key).write({"out": Result(arrays={"a": np.arange(3), "b": np.ones(2)}, meta={})}, {}, {})
    for meta in (store.path(key) / "out").rglob("zarr.json"):  # every array's metadata spoilt (same size)
        meta.write_bytes(meta.read_bytes().replace(b"{", b"[", 1))
    arrays = store.load(key)["out"].arrays
    assert "a" in arrays and "b" in arrays and "c" not in arrays and sorted(arrays) == ["a", "b"]
    with pytest.raises(EntryDamaged, match="out/a/zarr.json: checksum mismatch"):
        arrays["a"]  # opening it now reads the metadata, and checks it


def test_entry_without_manifest_is_absent_and_swept(tmp_path):
    store = CacheStore(tmp_path)
    key = "cd" * 32
    pending = store.begin(key)
    pending.create_array("out", "a", (4,), "f4", (4,))
    assert not store.has(key) and list(store.keys()) == []
    (pending.path / "owner.json").write_text(json.dumps({"pid": 2**22 + 7, "host": os.uname().nodename,
                                                         "started": time.time()}))
    assert store.sweep_orphans() == [pending.path] and not pending.path.exists()


def test_cache_ls_rm_gc(tmp_path, recording, capsys):
    from tests.graph.conftest import PIPELINE
    cache = tmp_path / "cache"
    api.run(api.pipeline_from_dict(PIPELINE), [recording], cache=cache, out=tmp_path / "o", jobs=1)
    store = CacheStore(cache)
    entries = {e.node: e for e in store.entries()}
    assert set(entries) == {"read", "score", "aps", "stack"} and all(e.size > 0 for e in entries.values())
    assert main(["cache", "ls", "--cache", str(cache)]) == 0
    out = capsys.readouterr().out
    assert "4 entries" in out and entries["stack"].key[:12] in out and "t-stack" in out
    assert main(["cache", "rm", entries["aps"].key[:10], "--cache", str(cache)]) == 0
    assert not store.has(entries["aps"].key)
    assert main(["cache", "rm", "ffff", "--cache", str(cache)]) == 2
    assert "no entry" in capsys.readouterr().err
    # LRU: make "read" the most recently used, then shrink to the size of one entry
    for i, node in enumerate(["stack", "score", "read"]):
        os.utime(store.path(entries[node].key) / "last-use", (1e9 + i, 1e9 + i))
    assert main(["cache", "gc", "--max-size", f"{entries['read'].size}B", "--cache", str(cache)]) == 0
    assert [e.node for e in store.entries()] == ["read"]
    assert parse_size("20GB") == 20 * 10**9 and parse_size("1.5MiB") == 1572864


def test_passed_through_array_is_linked_not_copied(tmp_path):
    store = CacheStore(tmp_path / "cache")
    big = np.random.default_rng(0).integers(0, 65535, (200, 1000), dtype=np.uint16)  # incompressible
    up = store.begin("a" * 64)
    up.write({"out": Result(arrays={"raw": big}, meta={})}, {"k": 1}, {})
    upstream = store.load("a" * 64)["out"]
    down = store.begin("b" * 64)
    down.write({"out": Result(arrays={"raw": upstream.arrays["raw"], "small": np.ones(3)}, meta={})},
               {"k": 2}, {})
    assert store.info("b" * 64).size < store.info("a" * 64).size / 10  # no second copy
    np.testing.assert_array_equal(store.load("b" * 64)["out"].array("raw"), big)
    store.release()
    store.remove("a" * 64)
    assert not store.has("b" * 64)  # a link to an evicted entry makes the entry absent


def test_entries_a_process_reads_are_kept_from_gc_and_rm(tmp_path, recording, capsys):
    from tests.graph.conftest import PIPELINE
    cache = tmp_path / "cache"
    pipeline = api.pipeline_from_dict(PIPELINE)
    api.run(pipeline, [recording], cache=cache, out=tmp_path / "o", jobs=1)
    store = CacheStore(cache)
    stack = next(e for e in store.entries() if e.node == "stack")
    reader = subprocess.Popen(  # another process holding the stack result, as a run does while it reads
        [sys.executable, "-c", "import sys; from luckystack.graph.store import CacheStore; "
         f"r = CacheStore({str(cache)!r}).load({stack.key!r}); print('loaded', flush=True); sys.stdin.read(); "
         "print(sum(float(r[p].array(n).sum()) for p in r for n in r[p].arrays))"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=REPO, env=cli_env())
    try:
        assert reader.stdout.readline().strip() == "loaded"
        assert main(["cache", "rm", stack.key, "--cache", str(cache)]) == 2
        assert "in use" in capsys.readouterr().err
        assert main(["cache", "gc", "--max-size", "0B", "--cache", str(cache)]) == 0
        assert "kept 1 in use by a running process" in capsys.readouterr().out
        assert [e.node for e in store.entries()] == ["stack"] and store.has(stack.key)
        total = float(reader.communicate("go", timeout=30)[0].split()[-1])
    finally:
        reader.kill()
    assert total > 0  # it read the whole entry after the gc, not zeros
    assert main(["cache", "gc", "--max-size", "0B", "--cache", str(cache)]) == 0
    assert not list(store.keys())  # nobody reads it now


def test_a_lease_lasts_as_long_as_the_results_loaded(tmp_path, recording):
    from tests.graph.conftest import PIPELINE
    cache = tmp_path / "cache"
    pipeline = api.pipeline_from_dict(PIPELINE)
    api.run(pipeline, [recording], cache=cache, out=tmp_path / "o", jobs=1)  # a finished run holds none
    result = api.read_result(pipeline, "stack", recording, cache=cache)
    CacheStore(cache).gc(0)
    assert [e.node for e in CacheStore(cache).entries()] == ["stack"]
    del result
    CacheStore(cache).gc(0)
    assert not list(CacheStore(cache).keys())
