"""Rerun selectivity, determinism and explain reasons, asserted from run records."""

from __future__ import annotations

import shutil

import numpy as np

from luckystack.graph import api
from luckystack.graph.progress import Reporter
from tests.graph.conftest import PIPELINE, make_recording


def _run(p, rec, cache, out, jobs=1):
    [r] = api.run(p, [rec], cache=cache, out=out, jobs=jobs, reporter=Reporter())
    return r.record


def test_rerun_selectivity(tmp_path, recording, cache):
    p = api.pipeline_from_dict(PIPELINE)
    out = tmp_path / "out"
    assert _run(p, recording, cache, out).ran() == ["read", "aps", "score", "stack"]
    assert _run(p, recording, cache, out).ran() == []  # nothing changed
    assert _run(api.with_overrides(p, {"stack.percent": 25}), recording, cache, out).ran() == ["stack"]
    assert _run(api.with_overrides(p, {"aps.size": 8}), recording, cache, out).ran() == ["aps", "stack"]
    renamed = tmp_path / "saturn.npy"
    shutil.copy(recording, renamed)
    recording.unlink()
    assert _run(p, renamed, cache, out).ran() == []  # renamed input: content fingerprint hits
    data = np.load(renamed)
    data[5, 3, 3] += 1  # change content
    np.save(renamed, data)
    assert _run(p, renamed, cache, out).ran() == ["read", "aps", "score", "stack"]


def test_explain_reasons(tmp_path, recording, cache):
    p = api.pipeline_from_dict(PIPELINE)
    st = api.explain(p, recording, cache)
    assert all(s.reasons == ["first run"] and not s.cached for s in st.values())
    _run(p, recording, cache, tmp_path / "out")
    st = api.explain(api.with_overrides(p, {"aps.size": 8}), recording, cache)
    assert st["read"].cached and st["score"].cached
    assert st["aps"].reasons == ["param size changed 4→8"]
    assert st["stack"].reasons == ["upstream 'aps' changed"]
    assert st["stack"].root_causes == ["aps: param size changed 4→8"]
    assert "← aps: param size changed 4→8" in api.render(st)
    make_recording(recording, seed=3)
    st = api.explain(p, recording, cache)
    assert st["read"].reasons == ["input file changed"]
    assert st["stack"].root_causes == ["read: input file changed"]


def test_code_version_change_is_explained(tmp_path, recording, cache, monkeypatch):
    from luckystack.graph import node as node_mod
    p = api.pipeline_from_dict(PIPELINE)
    _run(p, recording, cache, tmp_path / "out")
    reg = node_mod._REGISTRY
    bumped = reg["t-blocks"].__class__(**{**reg["t-blocks"].__dict__, "version": "2"})
    monkeypatch.setitem(reg, "t-blocks", bumped)
    p2 = api.pipeline_from_dict(PIPELINE)
    st = api.explain(p2, recording, cache)
    assert st["aps"].reasons == ["code version changed 1→2"]
    assert _run(p2, recording, cache, tmp_path / "out").ran() == ["aps", "stack"]


def test_results_identical_for_any_jobs_and_cached_equals_fresh(tmp_path):
    rec = make_recording(tmp_path / "r.npy", n=40)
    p = api.with_overrides(api.pipeline_from_dict(PIPELINE), {"stack.percent": 70})
    images = []
    for jobs in (1, 2):
        cache = tmp_path / f"c{jobs}"
        _run(p, rec, cache, tmp_path / f"o{jobs}", jobs=jobs)
        images.append(api.read_result(p, "stack", rec, cache)["image"].array("image"))
    assert images[0].tobytes() == images[1].tobytes()
    exported = np.load(tmp_path / "o1" / "r" / "r_stack.npy")
    assert exported.tobytes() == images[0].tobytes()
    expected = np.load(rec)[np.sort(np.argsort(-(np.load(rec).astype(np.float64) ** 2).mean(axis=(1, 2)),
                                                kind="stable")[:28])]
    assert np.allclose(images[0], expected.astype(np.float64).mean(0), atol=1e-6)


def test_file_param_fingerprint_by_content(tmp_path, recording, cache):
    raw = {"name": "dark-pipe", "nodes": {
        "read": {"type": "t-source"},
        "dark": {"type": "t-dark", "params": {"dark": str(tmp_path / "dark.npy")}, "inputs": {"frames": "read"}}}}
    np.save(tmp_path / "dark.npy", np.full((16, 20), 0.5, np.float32))
    p = api.pipeline_from_dict(raw)
    assert _run(p, recording, cache, tmp_path / "o").ran() == ["read", "dark"]
    shutil.copy(tmp_path / "dark.npy", tmp_path / "dark2.npy")
    assert _run(api.with_overrides(p, {"dark.dark": str(tmp_path / "dark2.npy")}), recording, cache,
                tmp_path / "o").ran() == []
    np.save(tmp_path / "dark2.npy", np.full((16, 20), 0.25, np.float32))
    p3 = api.with_overrides(p, {"dark.dark": str(tmp_path / "dark2.npy")})
    assert api.explain(p3, recording, cache)["dark"].reasons == ["file params.dark changed"]


def test_run_record_saved_with_exports_and_warnings(tmp_path, recording, cache):
    p = api.with_overrides(api.pipeline_from_dict(PIPELINE), {"stack.percent": 0.5})
    rec = _run(p, recording, cache, tmp_path / "out")
    saved = api.RunRecord.load(tmp_path / "out" / "jupiter" / "run.json")
    assert saved.ran() == rec.ran() and saved.exports() == [str(tmp_path / "out/jupiter/jupiter_stack.npy")]
    assert saved.warnings() == ["stack: fewer than 1% of frames stacked"]
    prov = __import__("json").loads((cache / rec.nodes["stack"].key / "provenance.json").read_text())
    assert prov["pipeline"] == "test-pipe" and prov["node_type"] == "t-stack" and prov["params"]["percent"] == 0.5
    assert set(prov["upstream"]) == {"frames", "quality", "aps"} and "numpy" in prov["versions"]
    assert prov["wall_s"] > 0 and prov["peak_rss_mb"]["self"] > 0


def test_provenance_names_the_libraries_the_application_records():
    from luckystack.graph.versions import record_versions_of, versions

    assert {"python", "numpy", "zarr"} <= set(versions())
    record_versions_of("xxhash", "no-such-distribution")
    assert "xxhash" in versions() and "no-such-distribution" not in versions()
