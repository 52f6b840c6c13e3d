"""Exported files an earlier run left in the output folder: which ones a run reads to tell whether it
replaced them."""

from __future__ import annotations

import numpy as np

from luckystack.graph import api, exports
from luckystack.graph.progress import Reporter
from tests.graph.conftest import PIPELINE


def _run(p, rec, cache, out):
    [r] = api.run(p, [rec], cache=cache, out=out, jobs=1, reporter=Reporter())
    return r.record


def test_a_cached_rerun_reads_no_exported_file_and_other_settings_still_warn(tmp_path, recording, cache,
                                                                             monkeypatch):
    read: list[str] = []
    digest = exports.digest_file
    monkeypatch.setattr(exports, "digest_file", lambda path: read.append(str(path)) or digest(path))
    p, out = api.pipeline_from_dict(PIPELINE), tmp_path / "out"
    first = _run(p, recording, cache, out)
    [exported] = first.nodes["stack"].exports
    assert read == []  # nothing exported here before

    written = np.load(exported)
    np.save(exported, written + 1)  # the user edits the exported file: the same result still writes it
    again = _run(p, recording, cache, out)
    assert again.ran() == [] and read == []
    assert not [w for w in again.warnings() if "replaced" in w]
    np.testing.assert_array_equal(np.load(exported), written)

    other = _run(api.with_overrides(p, {"stack.percent": 25}), recording, cache, out)
    assert other.ran() == ["stack"] and read == [exported, exported]  # before and after the export
    assert any("replaced 1 file(s) written earlier with other settings" in w for w in other.warnings())
