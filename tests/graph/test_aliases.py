"""Cache aliases written by several node threads of one process at once."""

from __future__ import annotations

import json
import threading

from luckystack.graph import aliases
from luckystack.graph.hashing import key_of, preimage

aliases.declare_resolved("t-alias-writer", "size", lambda results: results["size"])


def test_threads_writing_the_same_alias_at_once_all_succeed_and_leave_one_whole_file(tmp_path):
    pre = preimage("t-alias-writer", "1", {"size": None}, {}, {})
    key = key_of(pre)
    threads, rounds = 8, 10
    start = threading.Barrier(threads)
    errors: list[BaseException] = []

    def write() -> None:
        start.wait()
        try:
            for _ in range(rounds):
                aliases.record(tmp_path, "t-alias-writer", pre, key, {"size": 88})
        except BaseException as e:  # noqa: BLE001  (collected, asserted below)
            errors.append(e)

    workers = [threading.Thread(target=write) for _ in range(threads)]
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    assert errors == []
    alias = key_of({**pre, "params": {"size": 88}})
    folder = tmp_path / "aliases"
    assert [p.name for p in folder.iterdir()] == [f"{alias}.json"]  # no temporary left behind
    assert json.loads((folder / f"{alias}.json").read_text()) == {"key": key, "resolved": {"size": 88}}
    assert aliases.lookup(tmp_path, alias) == (key, {"size": 88})
