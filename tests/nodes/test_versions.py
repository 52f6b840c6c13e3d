"""A node type's code cannot change without a version bump (or a deliberate lock update).

Cache keys hold explicit versions; this test is what keeps them honest. When it fails: if the change can
alter the node's output, bump ``version=`` in the node module; then run
``python -m luckystack.graph.codehash nodes/versions.lock.json luckystack.nodes --update``.
"""

import json
from pathlib import Path

import luckystack.nodes  # noqa: F401  (registers the node types)
from luckystack.graph.codehash import current, stale

LOCK = Path(__file__).resolve().parents[2] / "nodes" / "versions.lock.json"


def test_no_node_code_changed_without_a_version_bump():
    assert stale(json.loads(LOCK.read_text()), current("luckystack.nodes")) == []


def test_a_changed_fingerprint_at_the_same_version_is_reported():
    now = current("luckystack.nodes")
    lock = {name: dict(entry) for name, entry in now.items()}
    lock["stack"]["code"] = "sha256:0"
    assert [p.split("'")[1] for p in stale(lock, now)] == ["stack"]
    lock["stack"]["version"] = "0"  # bumped since the lock: fine until the next --update
    assert stale(lock, now) == []
