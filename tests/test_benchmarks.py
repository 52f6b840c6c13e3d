"""The benchmarks in benchmarks/ still start: each answers --help, and the engine's runs end to end."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


@pytest.mark.parametrize("script", sorted(p.name for p in BENCHMARKS.glob("*.py")))
def test_benchmark_answers_help(script):
    out = subprocess.run([sys.executable, str(BENCHMARKS / script), "--help"], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert "usage:" in out.stdout


def test_engine_overhead_runs():
    out = subprocess.run([sys.executable, str(BENCHMARKS / "engine_overhead.py"), "--nodes", "3", "--frames", "40"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "fully cached:" in out.stdout


def test_spectral_patch_benchmark_runs():
    out = subprocess.run([sys.executable, str(BENCHMARKS / "spectral_patch.py"), "--sides", "36", "--rounds", "1",
                          "--frames", "1", "--aps", "4"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "µs per patch" in out.stdout
