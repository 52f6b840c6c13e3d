"""The folders of a cache that `cache verify`, `cache rm`, `cache gc` and listing treat as entries."""

from __future__ import annotations

import pytest

from luckystack.graph import api
from luckystack.graph.cli import main
from luckystack.graph.quarantine import key_folders
from luckystack.graph.store import CacheStore
from tests.graph.conftest import PIPELINE


def test_only_folders_named_as_a_key_count_as_entries(tmp_path, recording, cache, capsys):
    api.run(api.pipeline_from_dict(PIPELINE), [recording], cache=cache, out=tmp_path / "o", jobs=1)
    store = CacheStore(cache)
    committed = sorted(store.keys())
    no_manifest = "ab" * 32
    (cache / no_manifest).mkdir()  # a writer killed before it committed, say
    (cache / ("z" * 64)).mkdir()  # 64 characters, not a key
    (cache / ("cd" * 32)).write_text("")  # a file named as a key
    store.begin("ef" * 32).create_array("out", "a", (4,), "f4", (4,))  # being written
    assert len(committed) == 4 and key_folders(cache) == sorted(committed + [no_manifest])
    assert store.broken() == [no_manifest]
    with pytest.raises(KeyError, match="no entry"):
        store.resolve("zz")
    assert main(["cache", "verify", "--cache", str(cache)]) == 1
    assert f"checked 5 entries in {cache}: 1 damaged" in capsys.readouterr().out
