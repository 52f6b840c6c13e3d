"""Incremental node types: ``ctx.earlier()`` offers the results that differ only in incremental params."""

from __future__ import annotations

import ast
import os
import json
import shutil
import subprocess

import pytest

from luckystack.graph import api
from luckystack.graph.node import Params, node_type
from luckystack.graph.progress import Reporter
from luckystack.graph.store import CacheStore
from tests.graph.conftest import CLI, REPO, cli_env

PIPE = {"name": "prefix-pipe", "nodes": {"read": {"type": "t-source"},
                                         "sum": {"type": "t-prefix", "inputs": {"frames": "read"}}}}


@pytest.fixture
def run(tmp_path, recording, cache, monkeypatch):
    log = tmp_path / "earlier.log"
    monkeypatch.setenv("LSK_TEST_EARLIER", str(log))

    def run_with(**sets):
        p = api.with_overrides(api.pipeline_from_dict(PIPE), {f"sum.{k}": v for k, v in sets.items()})
        log.unlink(missing_ok=True)
        [r] = api.run(p, [recording], cache=cache, out=tmp_path / "out", jobs=1, reporter=Reporter())
        seen = ast.literal_eval(log.read_text()) if log.exists() else None
        value = api.read_result(p, "sum", recording, cache=cache)["sum"].array("value")[0]
        return r.record.ran(), seen, value

    return run_with


def test_earlier_offers_the_same_family_most_recent_first(run):
    assert run(upto=4)[:2] == (["read", "sum"], [])
    assert run(upto=8)[:2] == (["sum"], [4])
    assert run(upto=6)[:2] == (["sum"], [8, 4])
    assert run(upto=8)[:2] == ([], None)  # cached: the node does not run
    assert run(upto=8, scale=2.0)[:2] == (["sum"], [])  # another non-incremental param: another family


def test_building_on_an_earlier_result_gives_the_same_value(run, tmp_path, recording):
    run(upto=5)
    built = run(upto=20)[2]
    fresh_cache = tmp_path / "fresh"
    p = api.with_overrides(api.pipeline_from_dict(PIPE), {"sum.upto": 20})
    api.run(p, [recording], cache=fresh_cache, out=tmp_path / "o2", jobs=1, reporter=Reporter())
    assert built == api.read_result(p, "sum", recording, cache=fresh_cache)["sum"].array("value")[0]


def test_evicted_results_are_no_longer_offered(run, cache):
    run(upto=4)
    run(upto=8)
    store = CacheStore(cache)
    for entry in store.entries():
        if entry.type == "t-prefix" and store.load(entry.key)["sum"].meta["upto"] == 4:
            store.release([entry.key])
            store.remove(entry.key)
    assert run(upto=6)[1] == [8]


def test_incremental_must_name_params():
    class P(Params):
        a: int = 1

    with pytest.raises(ValueError, match="unknown params"):
        node_type("t-bad-incremental", params=P, version="1", incremental=("b",))(lambda ctx: None)


def test_explain_tells_what_an_incremental_node_can_build_on(run, recording, cache):
    run(upto=4)
    run(upto=8)
    p = api.with_overrides(api.pipeline_from_dict(PIPE), {"sum.upto": 6})
    st = api.explain(p, recording, cache)
    assert st["sum"].earlier == 2 and not st["read"].earlier
    assert "(incremental: 2 earlier results to build on)" in api.render(st)
    p = api.with_overrides(api.pipeline_from_dict(PIPE), {"sum.scale": 3.0})
    assert api.explain(p, recording, cache)["sum"].earlier == 0


def test_processes_building_on_one_family_at_once_agree_with_fresh_runs(tmp_path, recording, cache):
    pipe = tmp_path / "prefix.json"
    pipe.write_text(json.dumps(PIPE))
    for upto in (4, 12):  # two earlier results to build on
        subprocess.run(CLI + ["run", str(pipe), "-i", str(recording), "--cache", str(cache), "--jobs", "1",
                              "--set", f"sum.upto={upto}", "--out", str(tmp_path / "o")],
                       env=cli_env(), cwd=REPO, check=True, capture_output=True)
    procs = [subprocess.Popen(CLI + ["run", str(pipe), "-i", str(recording), "--cache", str(cache), "--jobs", "1",
                                     "--set", f"sum.upto={upto}", "--out", str(tmp_path / f"o{upto}")],
                              env=cli_env(), cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for upto in (6, 8, 16, 20)]
    for proc in procs:
        err = proc.communicate(timeout=60)[1]
        assert proc.returncode == 0, err
    p = api.pipeline_from_dict(PIPE)
    for upto in (6, 8, 16, 20):
        q = api.with_overrides(p, {"sum.upto": upto})
        shared = api.read_result(q, "sum", recording, cache=cache)["sum"].array("value")[0]
        fresh = tmp_path / f"fresh{upto}"
        api.run(q, [recording], cache=fresh, out=tmp_path / "f", jobs=1, reporter=Reporter())
        assert shared == api.read_result(q, "sum", recording, cache=fresh)["sum"].array("value")[0]
    assert len(CacheStore(cache).family(next(iter((cache / "families").iterdir())).name)) == 6


def test_a_result_evicted_while_it_is_read_is_not_trusted(run, tmp_path, recording, cache, monkeypatch):
    run(upto=4)
    real_load = CacheStore.load

    def load_then_delete(store, key, touch=True):  # deleted behind the store's back (no lease stops `rm -rf`)
        out = real_load(store, key, touch)
        if "upto" in json.dumps(out["sum"].meta if "sum" in out else {}):
            shutil.rmtree(store.path(key))
        return out

    monkeypatch.setattr(CacheStore, "load", load_then_delete)
    log = tmp_path / "earlier.log"
    log.unlink()
    p = api.with_overrides(api.pipeline_from_dict(PIPE), {"sum.upto": 8})
    api.run(p, [recording], cache=cache, out=tmp_path / "out", jobs=1, reporter=Reporter())
    assert [ast.literal_eval(line) for line in log.read_text().splitlines()] == [[4], []]  # read, then redone
    monkeypatch.setattr(CacheStore, "load", real_load)
    built = api.read_result(p, "sum", recording, cache=cache)["sum"].array("value")[0]
    api.run(p, [recording], cache=tmp_path / "fresh", out=tmp_path / "o2", jobs=1, reporter=Reporter())
    assert built == api.read_result(p, "sum", recording, cache=tmp_path / "fresh")["sum"].array("value")[0]


def test_looking_through_a_family_neither_prunes_nor_refreshes_it(run, recording, cache):
    run(upto=4)
    run(upto=8)
    store = CacheStore(cache)
    members = {store.load(e.key, touch=False)["sum"].meta["upto"]: e.key for e in store.entries()
               if e.type == "t-prefix"}
    store.release()
    for key in members.values():  # long unused
        os.utime(store.path(key) / "last-use", (1e9, 1e9))
    [marker4] = [m for m in (cache / "families").rglob(members[4])]
    store.remove(members[4])
    p = api.with_overrides(api.pipeline_from_dict(PIPE), {"sum.upto": 6})
    assert api.explain(p, recording, cache)["sum"].earlier == 1
    assert marker4.exists()  # explain only looks
    assert run(upto=6)[1] == [8]
    assert not marker4.exists()  # the run forgets the evicted member
    assert (store.path(members[8]) / "last-use").stat().st_mtime == 1e9  # offered, not marked as used
