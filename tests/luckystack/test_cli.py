"""The luckystack command line: what it tells the engine, and its own commands."""

from __future__ import annotations

from luckystack.cli import application


def test_luckystack_passes_its_name_examples_and_libraries():
    app = application()
    assert app.name == "luckystack" and app.version.startswith("luckystack ")
    assert "opencv-python-headless" in app.libraries and "luckystack" in app.libraries
    assert "pipelines/planet.json" in app.examples["run"]
