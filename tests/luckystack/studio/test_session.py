"""The studio's runs, through its HTTP API on a real server: edits are pipeline edits run by the engine
on the command line's cache (only what changed runs), progress events, previews from the cache, saving
and opening pipelines, and a batch over a folder."""

from __future__ import annotations

import json

import httpx
import pytest

from luckystack.cli import main as cli_main
from luckystack.cli import shipped_pipeline
from luckystack.graph import api
from luckystack.studio.command import Server


@pytest.fixture(scope="module")
def studio(recordings, tmp_path_factory):
    work = tmp_path_factory.mktemp("session")
    srv = Server(recordings, shipped_pipeline("planet"), work / "cache", work / "out", jobs=1).start()
    assert srv.session.wait(120), "the first run did not finish"
    srv.work = work
    with httpx.Client(base_url=srv.base, timeout=30, headers={"Authorization": f"token {srv.token}"}) as c:
        srv.client = c
        yield srv
    srv.stop()


def last_job(srv: Server) -> dict:
    return srv.client.get("/api/state").json()["jobs"][-1]


def edit(srv: Server, sets: dict) -> dict:
    r = srv.client.post("/api/edit", json={"sets": sets})
    assert r.status_code == 200, r.text
    assert srv.session.wait(60)
    job = last_job(srv)
    assert job["state"] == "done", job["error"]
    return job


def test_first_run_and_previews(studio):
    st = studio.client.get("/api/state").json()
    assert st["folder_mode"] and [r["name"] for r in st["recordings"]] == ["a.ser", "b.ser"]
    assert st["current"] == "a.ser" and all(n["status"] == "cached" for n in st["nodes"])
    assert [s["label"] for s in st["results"]["sizes"]] == ["P10", "P25", "P50"]
    k = st["keys"]
    for path, params in [("/api/result.png", {"key": k["post"], "label": "P25"}),
                         ("/api/reference.png", {"key": k["reference"]}),
                         ("/api/quality-map.png", {"reference": k["reference"], "aps": k["align"],
                                                   "analyse": k["analyse"]}),
                         ("/api/frame.png", {"i": 3})]:
        r = studio.client.get(path, params=params)
        assert r.status_code == 200 and r.content[:8] == b"\x89PNG\r\n\x1a\n", path
    aps = studio.client.get("/api/aps", params={"aps": k["align"], "analyse": k["analyse"]}).json()
    assert len(aps["center"]) == len(aps["size"]) == len(aps["quality"]) > 0
    quality = studio.client.get("/api/quality", params={"key": k["analyse"]}).json()
    assert len(quality["score"]) == 60 and quality["n_valid"] == len(quality["sorted"])
    assert "SER" in studio.client.get("/api/info").text
    progress = [e for _, e in studio.session.events.since(0) if e["kind"] == "progress"]
    assert {"stabilize", "stack"} <= {e["node"] for e in progress}
    assert all(0 < e["done"] <= e["total"] for e in progress)


def test_stack_size_edit_reruns_only_what_depends_on_it(studio):
    before = studio.session.events.last
    job = edit(studio, {"stack.percent": [10, 30, 50]})
    assert job["records"][0]["ran"] == ["stack", "merge", "post"]
    st = studio.client.get("/api/state").json()
    assert [s["label"] for s in st["results"]["sizes"]] == ["P10", "P30", "P50"]
    # the same result the command line finds for this pipeline, in the same cache
    p = api.load_pipeline(shipped_pipeline("planet"), {"stack.percent": [10, 30, 50]})
    assert api.explain(p, studio.session.current, studio.session.cache)["post"].key == st["keys"]["post"]
    events = [e for _, e in studio.session.events.since(before)]
    states = {(e["node"], e["state"]) for e in events if e["kind"] == "node"}
    assert {("stack", "running"), ("stack", "ran"), ("align", "cached"), ("post", "ran")} <= states
    assert (studio.work / "out" / "a" / "P30" / "a_P30_ap24.tif").is_file() or \
        list((studio.work / "out" / "a" / "P30").glob("*.tif"))


def test_explain_reasons_before_a_run(studio):
    p = api.with_overrides(studio.session.pipeline, {"stack.percent": [10, 30, 60]})
    st = studio.session.statuses(pipeline=p)
    assert not st["stack"].cached and any("percent" in r for r in st["stack"].reasons)
    assert st["align"].cached and not st["post"].cached


def test_sharpening_reruns_only_post(studio):
    job = edit(studio, {"post.sharpen": "unsharp", "post.unsharp_amount": 1.5})
    assert job["records"][0]["ran"] == ["post"]
    st = studio.client.get("/api/state").json()
    assert st["results"]["sharpened"] and "sharp_P30" in st["results"]["names"]
    r = studio.client.get("/api/result.png", params={"key": st["keys"]["post"], "label": "P30", "kind": "sharp"})
    assert r.status_code == 200


def test_bad_edit_is_one_line_and_changes_nothing(studio):
    before = studio.session.pipeline.raw
    r = studio.client.post("/api/edit", json={"sets": {"stack.percent": "lots"}})
    assert r.status_code == 422 and "percent" in r.json()["error"]
    r = studio.client.post("/api/edit", json={"sets": {"nosuch.x": 1}})
    assert r.status_code == 422 and "nosuch" in r.json()["error"]
    assert studio.session.pipeline.raw == before


def test_save_then_command_line_runs_it(studio, capsys):
    r = studio.client.post("/api/save", json={"name": "mine.json"})
    assert r.status_code == 200
    saved = studio.session.folder / "mine.json"
    raw = json.loads(saved.read_text())
    assert raw["nodes"]["stack"]["params"]["percent"] == [10, 30, 50]
    assert raw["nodes"]["post"]["params"]["sharpen"] == "unsharp"
    # the saved file is a pipeline the command line runs, all from the studio's cache
    code = cli_main(["--cache", str(studio.session.cache), "--jobs", "1", "explain", str(saved),
                     "--input", str(studio.session.current), "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and all(n["status"] == "cached" for n in out["nodes"])
    saved.unlink()


def test_open_pipeline(studio):
    raw = json.loads(shipped_pipeline("planet").read_text())
    raw["nodes"]["stack"]["params"]["percent"] = [20]
    r = studio.client.post("/api/open", json={"pipeline": raw, "name": "other.json"})
    assert r.status_code == 200
    assert studio.session.wait(60)
    st = studio.client.get("/api/state").json()
    assert st["pipeline_source"] == "other.json"
    assert [s["label"] for s in st["results"]["sizes"]] == ["P20"]
    bad = studio.client.post("/api/open", json={"pipeline": {"name": "x", "nodes": {"a": {"type": "nope"}}}})
    assert bad.status_code == 422 and "nope" in bad.json()["error"]
    assert studio.client.get("/api/state").json()["pipeline_source"] == "other.json"
    # a pipeline with a sweep: the studio runs its one base setting and says so
    sweep = json.loads(shipped_pipeline("planet-sweep").read_text())
    assert studio.client.post("/api/open", json={"pipeline": sweep, "name": "sweep.json"}).status_code == 200
    assert studio.session.wait(60) and last_job(studio)["state"] == "done"
    assert "sweep" not in studio.client.get("/api/state").json()["pipeline"]
    assert any(e["kind"] == "log" and "sweep" in e["message"] for _, e in studio.session.events.since(0))


def test_batch_over_the_folder(studio):
    before = studio.session.events.last
    r = studio.client.post("/api/batch", json={})
    assert r.status_code == 200
    assert studio.session.wait(120)
    job = last_job(studio)
    assert job["kind"] == "batch" and job["state"] == "done", job["error"]
    assert [r["recording"] for r in job["records"]] == ["a.ser", "b.ser"]
    batch = [e for _, e in studio.session.events.since(before) if e["kind"] == "batch"]
    assert [(e["done"], e["total"]) for e in batch] == [(1, 2), (2, 2)]
    states = {r["name"]: r["state"] for r in studio.client.get("/api/state").json()["recordings"]}
    assert states == {"a.ser": "done", "b.ser": "done"}
    r = studio.client.post("/api/select", json={"recording": "b.ser"})
    assert r.status_code == 200 and studio.session.wait(30)
    assert studio.client.get("/api/state").json()["current"] == "b.ser"
    assert last_job(studio)["records"][0]["ran"] == []


def first_event(studio, **request) -> dict:
    with studio.client.stream("GET", "/api/events", **request) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        for line in r.iter_lines():
            if line.startswith("data:"):
                return json.loads(line[5:])
    raise AssertionError("no event")


def test_events_stream(studio):
    seq = studio.session.events.publish("log", message="hello")
    studio.session.events.publish("log", message="again")
    assert first_event(studio, params={"after": seq - 1})["message"] == "hello"
    assert first_event(studio, headers={"Last-Event-ID": str(seq)})["message"] == "again"  # a reconnecting page
    assert studio.client.get("/api/events", params={"after": "x"}).status_code == 400
