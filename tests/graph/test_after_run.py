"""``after_run`` (where the app writes its report) inside the run's own damage handling: a damaged entry
it meets is computed again in the same run, which it then sees whole; any other error fails that run
only."""

from __future__ import annotations

import numpy as np

from luckystack.graph import api
from luckystack.graph.progress import Reporter
from luckystack.graph.runrecord import RunRecord
from tests.graph.conftest import PIPELINE, make_recording


def _chunk(cache, key):
    return sorted(p for p in (cache / key / "quality" / "score" / "c").rglob("*") if p.is_file())[0]


def test_damage_after_run_meets_is_computed_again_and_it_sees_the_record_saved(tmp_path, recording, cache):
    p, out = api.pipeline_from_dict(PIPELINE), tmp_path / "out"
    [first] = api.run(p, [recording], cache=cache, out=out, jobs=1, reporter=Reporter())
    key = first.record.nodes["score"].key
    expected = np.asarray(api.read_result(p, "score", recording, cache)["quality"].array("score"))
    calls: list[RunRecord] = []
    seen: list[tuple[dict, list[str], np.ndarray]] = []

    def after_run(record: RunRecord, out_dir) -> None:
        calls.append(record)
        if len(calls) == 1:  # the entry is damaged after the run checked it, before the report reads it
            chunk = _chunk(cache, key)
            data = bytearray(chunk.read_bytes())
            data[len(data) // 2] ^= 0x10
            chunk.write_bytes(bytes(data))
        saved = RunRecord.load(out_dir / "run.json")
        statuses = {n.id: n.status for n in saved.nodes.values()}
        score = np.asarray(api.read_result(p, "score", recording, cache)["quality"].array("score"))
        seen.append((statuses, record.warnings(), score))

    [again] = api.run(p, [recording], cache=cache, out=out, jobs=1, reporter=Reporter(), after_run=after_run)
    assert not again.failed and len(calls) == 2 and len(seen) == 1
    statuses, warnings, score = seen[0]
    assert statuses == {"read": "cached", "score": "ran", "aps": "cached", "stack": "cached"}
    assert any(f"cache entry {key[:12]}" in w and "damaged" in w for w in warnings)
    np.testing.assert_array_equal(score, expected)
    assert again.record.ran() == ["score"] and len(list((cache / "quarantine").iterdir())) == 1


def test_an_after_run_that_fails_fails_its_run_and_the_batch_goes_on(tmp_path, cache):
    recs = [make_recording(tmp_path / f"{name}.npy", seed=k) for k, name in enumerate(("io", "europa"))]

    def after_run(record: RunRecord, out_dir) -> None:
        if "io" in str(record.input):
            raise ValueError("no report for Io")

    runs = api.run(api.pipeline_from_dict(PIPELINE), recs, cache=cache, out=tmp_path / "out", jobs=1,
                   reporter=Reporter(), after_run=after_run)
    assert [r.failed for r in runs] == [True, False]
    assert runs[0].record.error == "ValueError: no report for Io"
