"""Judge a whole pipeline run on a simulated recording against the truth and the simple baselines.

The baselines (:mod:`luckystack.simulate.baselines`) use perfect knowledge: true global shifts and the
true seeing of every frame. A stacker is worth running only if its merged stack beats all three on PSNR
(after gain/offset fit) and on sharpness (mid-band power relative to the truth).

``python -m luckystack.simulate.evaluate`` prints the margins for every scene (the benchmark report).
"""

from __future__ import annotations

import argparse
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from luckystack.simulate.baselines import baselines
from luckystack.simulate.metrics import Score, compare
from luckystack.simulate.recording import write_recording
from luckystack.simulate.simulation import simulate
from luckystack.simulate.truth import Truth, load_truth

REPO = Path(__file__).resolve().parents[2]


@dataclass
class Evaluation:
    scene: str
    stack: dict[str, Score]  # stack label → score of the merged stack
    baseline: dict[str, Score]  # best_frame, mean_all, mean_best → score

    def margins(self, label: str) -> dict[str, tuple[float, float]]:
        """Per baseline: (PSNR gain in dB, sharpness ratio) of stack ``label`` over it."""
        s = self.stack[label]
        return {name: (s.psnr - b.psnr, s.sharpness / b.sharpness) for name, b in self.baseline.items()}


def _frames(ser: Path, truth: Truth):
    """The recorded frames of a simulated SER (little-endian, as the simulator writes them)."""
    p = truth.params
    depth = int(p.get("bit_depth", 8))
    dtype = np.uint8 if depth <= 8 else np.dtype("<u2")
    h, w = int(p["height"]), int(p["width"])
    shape = (truth.frame_count, h, w, 3) if p.get("layout") == "RGB" else (truth.frame_count, h, w)
    frames = np.memmap(ser, dtype=dtype, mode="r", offset=178, shape=shape)
    for i in range(truth.frame_count):
        yield np.asarray(frames[i])


def evaluate(ser: Path, images: dict[str, np.ndarray], fraction: float = 0.1) -> Evaluation:
    """Score merged stacks ``images`` (label → (H, W, C) 0..1) of recording ``ser`` and its baselines."""
    truth = load_truth(ser)
    base = baselines(_frames(ser, truth), truth, fraction)
    return Evaluation(str(truth.params.get("scene", ser.stem)),
                      {label: compare(img, truth.image) for label, img in images.items()},
                      {name: compare(img, truth.image) for name, img in base.items()})


def run_and_evaluate(scene: str, frames: int, width: int, height: int, pipeline: Path, workdir: Path,
                     seed: int = 0, sets: dict | None = None, jobs: int | None = None) -> Evaluation:
    """Simulate ``scene``, run ``pipeline`` on it (no sharpening) and evaluate the merged stacks."""
    import luckystack.nodes  # noqa: F401  (registers the node types)
    from luckystack.graph import api

    ser = write_recording(workdir / f"{scene}.ser", simulate(scene, frames, width, height, seed=seed))
    p = api.load_pipeline(pipeline, sets or {})
    api.run(p, [ser], cache=workdir / "cache", out=workdir / "out", jobs=jobs)
    merged = api.read_result(p, "merge", ser, workdir / "cache")["images"]
    images = {label: merged.array(f"image_{label}") for label in merged.meta["labels"]}
    return evaluate(ser, images)


def render(ev: Evaluation) -> str:
    """A table: every stack and baseline with PSNR, SSIM and sharpness, and the stacks' margins."""
    lines = [f"{ev.scene}:", f"  {'result':<12}{'PSNR dB':>9}{'SSIM':>8}{'sharpness':>11}{'transfer':>10}"]
    for name, s in {**ev.stack, **ev.baseline}.items():
        lines.append(f"  {name:<12}{s.psnr:>9.2f}{s.ssim:>8.3f}{s.sharpness:>11.3f}{s.transfer:>10.3f}")
    for label in ev.stack:
        worst = min(m[0] for m in ev.margins(label).values())
        sharp = min(m[1] for m in ev.margins(label).values())
        lines.append(f"  {label}: beats every baseline by ≥ {worst:+.2f} dB PSNR and ×{sharp:.2f} sharpness")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--size", default="640x480")
    parser.add_argument("--scenes", default="jupiter,moon,sun")
    args = parser.parse_args(argv)
    w, h = (int(v) for v in args.size.split("x"))
    for scene in args.scenes.split(","):
        pipeline = REPO / "pipelines" / ("planet.json" if scene == "jupiter" else "surface.json")
        with tempfile.TemporaryDirectory() as tmp:
            print(render(run_and_evaluate(scene, args.frames, w, h, pipeline, Path(tmp))), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
