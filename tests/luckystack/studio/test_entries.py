"""The studio's reads of cache entries: by key, refused unless of the node type a view shows, a type's
former name included."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import Field

from luckystack.graph.node import Params, Result, node_type
from luckystack.graph.store import CacheStore
from luckystack.studio.server import Refused, _entry


class ViewParams(Params):
    gain: float = Field(1.0, description="unused")


@node_type("t-studio-view", params=ViewParams, outputs=("image",), version="1", aliases=("t-studio-view-before",),
           key_name="t-studio-view-before")
def _view(ctx) -> Result:
    """Renamed from t-studio-view-before; its earlier results carry the former name in their key."""
    raise AssertionError("not run here")


def test_an_entry_is_found_under_its_types_former_name_and_refused_for_another_type(tmp_path):
    store = CacheStore(tmp_path)
    key = "ab" * 32
    image = np.arange(12, dtype=np.float32).reshape(3, 4)
    store.begin(key).write({"image": Result(arrays={"image": image})}, {"type": "t-studio-view-before"}, {})
    with _entry(tmp_path, key, "t-studio-view") as port:
        np.testing.assert_array_equal(port.array("image"), image)
    with _entry(tmp_path, key, "reference", "t-studio-view") as port:
        assert port.array("image").shape == (3, 4)
    with _entry(tmp_path, key) as port:  # no type asked: any
        assert "image" in port.arrays
    for key_asked, types, message in ((key, ("reference",), "not a result of node type reference"),
                                      ("cd" * 32, (), "not in the cache"), ("../x", (), "no such result")):
        with pytest.raises(Refused, match=message) as refused:
            with _entry(tmp_path, key_asked, *types):
                pass
        assert refused.value.status == 404
    store.remove(key)  # EntryInUse if a block had left its lease behind
    assert not store.has(key)
