"""A node task travels: pickled, run in another process, it commits the entry a local run commits."""

from __future__ import annotations

import multiprocessing
import pickle
import threading
import time

import numpy as np
import pytest

from luckystack.graph import api
from luckystack.graph.scheduler import _Run
from luckystack.graph.explain import explain
from luckystack.graph.progress import Reporter
from luckystack.graph.storage import PendingWrite, Store, location_of, open_store
from luckystack.graph.store import CacheStore
from luckystack.graph.task import load_committed, run_task
from tests.graph.conftest import PIPELINE


def test_a_task_run_in_another_process_commits_the_same_entry(tmp_path, recording):
    pipeline = api.pipeline_from_dict(PIPELINE)
    api.run(pipeline, [recording], cache=tmp_path / "local", out=tmp_path / "o1", jobs=1)
    store = CacheStore(tmp_path / "travel")
    run = _Run(pipeline, recording, store, 1, Reporter(), None)
    run.statuses = explain(pipeline, recording, store, None)
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(1) as pool:
        for nid in run.statuses:  # in topological order: each task finds its upstream entries committed
            task = pickle.loads(pickle.dumps(run.task_of(nid)))
            outcome = pool.apply(run_task, (task,))
            assert outcome.key == task.key and outcome.pid != multiprocessing.current_process().pid
    key = run.statuses["stack"].key
    here, there = CacheStore(tmp_path / "local").load(key), store.load(key)
    assert np.array_equal(here["image"].array("image"), there["image"].array("image"))
    assert location_of(store) == str((tmp_path / "travel").resolve())


def test_an_entry_committed_elsewhere_is_waited_for_and_a_missing_one_still_fails(tmp_path):
    store = open_store(str(tmp_path / "c"))
    key = "ab" * 32
    pending = store.begin(key)

    def commit_later() -> None:
        time.sleep(0.3)
        pending.write({}, {"k": 1}, {})

    threading.Thread(target=commit_later).start()
    assert load_committed(store.load, key, patience_s=10) == {}
    with pytest.raises(FileNotFoundError):
        load_committed(store.load, "cd" * 32, patience_s=0.2)


def test_the_local_store_implements_the_store_protocols(tmp_path):
    store = open_store(str(tmp_path / "c"))
    pending = store.begin("ef" * 32)
    assert isinstance(store, Store) and isinstance(pending, PendingWrite)
    pending.abort()


def test_an_unknown_store_scheme_is_a_clear_error():
    with pytest.raises(ValueError, match="no cache backend for 's3'"):
        open_store("s3://bucket/cache")
