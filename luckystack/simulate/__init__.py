"""Realistic simulated lucky-imaging recordings with a known truth, and metrics to judge stacks by.

``simulate(scene, frames, ...)`` draws a recording (Jupiter, Moon or Sun) whose frames are rendered on
demand; ``write_recording`` streams it to a SER file with ``<name>.truth.npz`` beside it; ``load_truth``
reads that back. The truth's geometry and scale are defined in :mod:`luckystack.simulate.truth`.
"""

from luckystack.simulate.conditions import LAYOUTS, SimOptions
from luckystack.simulate.recording import simulate_command, write_recording
from luckystack.simulate.scenes import SCENES
from luckystack.simulate.simulation import Simulation, simulate
from luckystack.simulate.truth import Truth, load_truth, truth_path

__all__ = ["LAYOUTS", "SCENES", "SimOptions", "Simulation", "Truth", "load_truth", "simulate",
           "simulate_command", "truth_path", "write_recording"]
