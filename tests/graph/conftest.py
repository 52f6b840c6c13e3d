"""Fixtures: a small .npy recording, the test pipeline file, a cache dir; test node types registered."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest

import tests.graph.testnodes  # noqa: F401  (registers t-* node types)

REPO = Path(__file__).resolve().parents[2]

PIPELINE = {
    "name": "test-pipe",
    "nodes": {
        "read": {"type": "t-source"},
        "score": {"type": "t-score", "inputs": {"frames": "read"}},
        "aps": {"type": "t-blocks", "params": {"size": 4}, "inputs": {"frames": "read"}},
        "stack": {"type": "t-stack", "params": {"percent": 50},
                  "inputs": {"frames": "read", "quality": "score.quality", "aps": "aps"}},
    },
}


def make_recording(path: Path, n: int = 24, seed: int = 0, shape=(16, 20)) -> Path:
    rng = np.random.default_rng(seed)
    np.save(path, rng.random((n, *shape), dtype=np.float32))
    os.utime(path, (1.6e9, 1.6e9))  # old mtime: the fingerprint memo applies
    return path


@pytest.fixture
def recording(tmp_path: Path) -> Path:
    return make_recording(tmp_path / "jupiter.npy")


@pytest.fixture
def pipeline_file(tmp_path: Path) -> Path:
    path = tmp_path / "pipe.json"
    path.write_text(json.dumps(PIPELINE, indent=1))
    return path


@pytest.fixture
def cache(tmp_path: Path) -> Path:
    return tmp_path / "cache"


def cli_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    return env


CLI = [sys.executable, "-c",
       "import sys, tests.graph.testnodes; from luckystack.graph.cli import main; sys.exit(main())"]
