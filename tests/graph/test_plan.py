"""Planning a pipeline whose node chose a param itself: the alias is followed with one open store and
every key is asked for once."""

from __future__ import annotations

from collections import Counter

import numpy as np
from pydantic import Field

from luckystack.graph import api
from luckystack.graph.aliases import declare_resolved
from luckystack.graph.node import Params, Port, Result, node_type
from luckystack.graph.progress import Reporter
from luckystack.graph.store import CacheStore


class AutoSizeParams(Params):
    size: int | None = Field(None, ge=1, le=64, description="block size in pixels; None: chosen from the frame")


@node_type("t-auto-size", params=AutoSizeParams, inputs={"frames": Port()}, outputs=("aps",), version="1")
def auto_size(ctx) -> Result:
    """A block size: the given one, or a quarter of the frame's height."""
    h = ctx.inputs["frames"].arrays["frames"].shape[1]
    size = ctx.params.size or h // 4
    return Result(arrays={"size": np.array([size], np.int32)}, meta={"size": size})


declare_resolved("t-auto-size", "size", lambda results: results["aps"].meta["size"])

PIPELINE = {"name": "auto-size", "nodes": {"read": {"type": "t-source"},
                                           "aps": {"type": "t-auto-size", "inputs": {"frames": "read"}}}}


def test_explaining_an_aliased_node_opens_no_store_and_asks_each_key_once(recording, cache, tmp_path,
                                                                         monkeypatch):
    auto = api.pipeline_from_dict(PIPELINE)
    [run] = api.run(auto, [recording], cache=cache, out=tmp_path / "out", jobs=1, reporter=Reporter())
    explicit = api.with_overrides(auto, {"aps.size": 4})  # what auto chose for 16-pixel-high frames
    store = CacheStore(cache)
    asked: Counter[str] = Counter()
    opened: list[object] = []
    has, init = CacheStore.has, CacheStore.__init__
    monkeypatch.setattr(CacheStore, "has", lambda self, key: asked.update([key]) or has(self, key))
    monkeypatch.setattr(CacheStore, "__init__", lambda self, root: opened.append(root) or init(self, root))
    statuses = api.explain(explicit, recording, store)
    assert all(st.cached for st in statuses.values()) and statuses["aps"].same_as == {"size": 4}
    assert statuses["aps"].key == run.record.nodes["aps"].key
    assert opened == [] and asked == Counter(st.key for st in statuses.values())
