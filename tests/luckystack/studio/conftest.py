"""Shared fixtures: small simulated recordings in a folder (simulated once per test session)."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")

from luckystack.simulate.recording import simulate_command  # noqa: E402

FRAMES, WIDTH, HEIGHT = 60, 160, 128


@pytest.fixture(scope="session")
def recordings(tmp_path_factory) -> Path:
    """A folder with two small simulated Jupiter recordings (a.ser, b.ser)."""
    folder = tmp_path_factory.mktemp("recordings")
    for name, seed in (("a", 1), ("b", 2)):
        simulate_command("jupiter", FRAMES, folder / f"{name}.ser", WIDTH, HEIGHT, seed=seed)
    return folder
