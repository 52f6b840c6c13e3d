"""Does the no-truth score rank stacks as PSNR against the truth does?

For one simulated recording (scene, seed, seeing preset), runs the scene's shipped pipeline over the
candidates ``auto`` compares (AP sizes × Fourier powers × stack sizes; the cache shares every step the
candidates share) and pairs each merged stack's no-truth :func:`~luckystack.imaging.image_metrics.score`
with its PSNR against the truth. The Spearman rank correlation of the two over the candidates says how
far the score can be trusted to pick among them.

``python -m luckystack.simulate.score_trust`` prints the table for every scene, seed and seeing.
"""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

from luckystack.imaging.autoselect import half_scores, nested_scores
from luckystack.imaging.image_metrics import score as default_score
from luckystack.simulate.conditions import SEEING
from luckystack.simulate.metrics import compare
from luckystack.simulate.recording import write_recording
from luckystack.simulate.scenes import PLANETS, SCENES
from luckystack.simulate.simulation import simulate
from luckystack.simulate.truth import load_truth

REPO = Path(__file__).resolve().parents[2]
PERCENTS = (5, 10, 25, 50)
POWERS = (0.0, 2.0, 4.0)
AP_SIZES = {"planet": (24, 40), "surface": (32, 64)}


@dataclass(frozen=True)
class Candidate:
    ap_size: int  # the AP size stacked (what auto chose, for "auto")
    power: float
    label: str  # stack size label (P10, …)
    image: np.ndarray  # the merged stack, (H, W, C) 0..1
    psnr: float  # against the truth
    frames: int = 0  # frames stacked
    noise: np.ndarray | None = None  # half the difference of its two half stacks, merged (stack.halves)


def pipeline_for(scene: str) -> Path:
    return REPO / "pipelines" / ("planet.json" if scene in PLANETS else "surface.json")


def candidates(scene: str, seed: int, seeing: str, workdir: Path, frames: int = 150,
               size: tuple[int, int] = (320, 240), percents: Sequence[float] = PERCENTS,
               powers: Sequence[float] = POWERS, ap_sizes: Sequence[int | str] | None = None,
               jobs: int | None = 2) -> list[Candidate]:
    """Every candidate's merged stack of one simulated recording, with its PSNR against the truth
    (``ap_sizes`` may hold "auto": align's measured size)."""
    import luckystack.nodes  # noqa: F401  (registers the node types)
    from luckystack.graph import api

    if seeing not in SEEING:
        raise ValueError(f"unknown seeing {seeing!r}; choose one of {', '.join(SEEING)}")
    ser = write_recording(workdir / f"{scene}-{seed}-{seeing}.ser",
                          simulate(scene, frames, size[0], size[1], seed=seed, **SEEING[seeing]))
    truth = load_truth(ser).image
    ap_sizes = ap_sizes or AP_SIZES["planet" if scene in PLANETS else "surface"]
    out: list[Candidate] = []
    for ap in ap_sizes:
        for power in powers:
            sets = {"align.ap_size": ap if ap == "auto" else [int(ap)], "stack.percent": list(percents),
                    "stack.spectral_weight": power}
            p = api.load_pipeline(pipeline_for(scene), sets)
            api.run(p, [ser], cache=workdir / "cache", out=workdir / "out", jobs=jobs)
            merged = api.read_result(p, "merge", ser, workdir / "cache")["images"]
            frames = {s["label"]: int(s["frames"]) for s in merged.meta["sizes"]}
            for label in merged.meta["labels"]:
                image = merged.array(f"image_{label}")
                out.append(Candidate(int(merged.meta["ap_size"]), float(power), label, image,
                                     compare(image, truth).psnr, frames[label]))
    return out


def auto_candidates(scene: str, seed: int, seeing: str, workdir: Path, frames: int = 120,
                    size: tuple[int, int] = (320, 240), percents: Sequence[float] = (5, 10, 25),
                    powers: Sequence[float] | str = "auto", jobs: int | None = 2) -> list[Candidate]:
    """The candidates the auto pipeline compares on one simulated recording — its stack sizes at every
    Fourier power, at the AP size it measures — each with its noise image (half the difference of its half stacks) and PSNR against the truth:
    one run of the scene's ``*-auto.json`` with ``choose.pick`` all."""
    import luckystack.nodes  # noqa: F401  (registers the node types)
    from luckystack.graph import api

    if seeing not in SEEING:
        raise ValueError(f"unknown seeing {seeing!r}; choose one of {', '.join(SEEING)}")
    ser = write_recording(workdir / f"{scene}-{seed}-{seeing}.ser",
                          simulate(scene, frames, size[0], size[1], seed=seed, **SEEING[seeing]))
    truth = load_truth(ser).image
    pipeline = REPO / "pipelines" / ("planet-auto.json" if scene in PLANETS else "surface-auto.json")
    p = api.load_pipeline(pipeline, {"stack.percent": list(percents), "stack.spectral_weight": powers,
                                     "stack.halves": True, "choose.pick": "all"})
    api.run(p, [ser], cache=workdir / "cache", out=workdir / "out", jobs=jobs)
    merged = api.read_result(p, "merge", ser, workdir / "cache")["images"]
    halves = merged.meta.get("halves") or {}
    out = []
    for s in merged.meta["sizes"]:
        image = merged.array(f"image_{s['label']}")
        noise = merged.array(f"image_{halves[s['label']]}") if s["label"] in halves else None
        out.append(Candidate(int(merged.meta["ap_size"]), float(s.get("power", 2.0)), s.get("size", s["label"]),
                             image, compare(image, truth).psnr, int(s["frames"]), noise))
    return out


def save(cands: Sequence[Candidate], path: Path) -> None:
    """Keep candidates (images, noise images where made, PSNR, AP size, power, size label, frames)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    extra = {"noise": np.stack([c.noise for c in cands])} if all(c.noise is not None for c in cands) else {}
    np.savez_compressed(path, images=np.stack([c.image for c in cands]), psnr=np.array([c.psnr for c in cands]),
                        ap_size=np.array([c.ap_size for c in cands]), power=np.array([c.power for c in cands]),
                        label=np.array([c.label for c in cands]), frames=np.array([c.frames for c in cands]),
                        **extra)


def load(path: Path) -> list[Candidate]:
    """Candidates kept by :func:`save`."""
    d = np.load(path)
    noise = d["noise"] if "noise" in d else [None] * len(d["psnr"])
    frames = d["frames"] if "frames" in d else np.zeros(len(d["psnr"]), int)
    return [Candidate(int(a), float(q), str(lab), img, float(ps), int(n), h)
            for a, q, lab, img, ps, n, h in zip(d["ap_size"], d["power"], d["label"], d["images"], d["psnr"],
                                               frames, noise)]


def rank_correlation(cands: Sequence[Candidate], score: Callable[[np.ndarray], float] = default_score) -> float:
    """Spearman rank correlation between ``score`` and PSNR over the candidates."""
    scores = [score(c.image) for c in cands]
    return float(spearmanr(scores, [c.psnr for c in cands]).statistic)


def nested(cands: Sequence[Candidate]) -> list[float]:
    """The choose node's default score of each candidate: the stack sizes of one AP size and Fourier
    power scored together (:func:`luckystack.imaging.autoselect.nested_scores`)."""
    out = [0.0] * len(cands)
    for group in {(c.ap_size, c.power) for c in cands}:
        members = [i for i, c in enumerate(cands) if (c.ap_size, c.power) == group]
        scores = nested_scores({cands[i].label: cands[i].image for i in members},
                               {cands[i].label: cands[i].frames for i in members})
        for i in members:
            out[i] = scores[cands[i].label]
    return out


def half(cands: Sequence[Candidate]) -> list[float]:
    """The half score of each candidate (its own noise image; all candidates of one recording together,
    :func:`luckystack.imaging.autoselect.half_scores`)."""
    keys = [f"{c.ap_size}/{c.power:g}/{c.label}" for c in cands]
    scores = half_scores(dict(zip(keys, (c.image for c in cands))), dict(zip(keys, (c.noise for c in cands))))
    return [scores[k] for k in keys]


AUTO_HEADER = ("| recording | n | ρ half | ρ nested (per power) | ρ image | best (size, power) | half pick vs best | "
               "nested pick vs best | power 2, nested size pick (today) vs best | half pick vs today |")


def auto_summary_rows(saved: Path, powers: Sequence[float] = (0.0, 2.0, 4.0)) -> list[str]:
    """Markdown rows from :func:`auto_candidates` kept by :func:`save` (one .npz a recording), over the
    candidates at ``powers``: the rank correlation with PSNR of the half, nested (each power's sizes
    scored together) and image-alone scores, and what each score's pick loses against the best candidate
    and against today's auto (power 2, the stack size by the nested score)."""
    rows = []
    for path in sorted(Path(saved).glob("*.npz")):
        cands = [c for c in load(path) if c.power in powers]
        psnr = np.array([c.psnr for c in cands])
        power = np.array([c.power for c in cands])
        by_half, by_nested = np.array(half(cands)), np.array(nested(cands))
        by_image = np.array([default_score(c.image) for c in cands])
        two = np.flatnonzero(power == 2.0)
        today = psnr[two[np.argmax(by_nested[two])]] if two.size else np.nan
        best = int(np.argmax(psnr))
        rho = [spearmanr(v, psnr).statistic for v in (by_half, by_nested, by_image)]
        rows.append(f"| {path.stem} | {len(cands)} | {rho[0]:.2f} | {rho[1]:.2f} | {rho[2]:.2f} | "
                    f"{psnr[best]:.2f} ({cands[best].label}, {cands[best].power:g}) | "
                    f"{psnr[np.argmax(by_half)] - psnr[best]:+.2f} | {psnr[np.argmax(by_nested)] - psnr[best]:+.2f} | "
                    f"{today - psnr[best]:+.2f} | {psnr[np.argmax(by_half)] - today:+.2f} |")
    return rows


def summary_rows(saved: Path) -> list[str]:
    """Markdown table rows from a ``--save`` folder: per recording, the correlation over all candidates,
    the lowest within one AP size, the lowest over the stack sizes of one AP size and power, what the
    score's overall pick loses against the best candidate, and what picking only the stack size (at
    Fourier power 2, the default) gives against the best size and against P10 and P25 (worst AP size)."""
    rows = []
    for path in sorted(Path(saved).glob("*.npz")):
        d = np.load(path)
        psnr, ap, power, label = d["psnr"], d["ap_size"], d["power"], d["label"]
        s = np.array([default_score(image) for image in d["images"]])
        rho = spearmanr(s, psnr).statistic
        within_ap = min(spearmanr(s[ap == a], psnr[ap == a]).statistic for a in np.unique(ap))
        sizes = min(spearmanr(s[(ap == a) & (power == q)], psnr[(ap == a) & (power == q)]).statistic
                    for a in np.unique(ap) for q in np.unique(power))
        loss = psnr[np.argmax(s)] - psnr.max()
        size_loss = vs10 = vs25 = np.inf
        for a in np.unique(ap):
            m = np.flatnonzero((ap == a) & (power == 2.0))
            if not m.size:
                continue
            pick = m[np.argmax(s[m])]
            size_loss = min(size_loss, psnr[pick] - psnr[m].max())
            vs10 = min(vs10, psnr[pick] - psnr[m][label[m] == "P10"][0])
            vs25 = min(vs25, psnr[pick] - psnr[m][label[m] == "P25"][0])
        rows.append(f"| {path.stem} | {len(psnr)} | {rho:.2f} | {within_ap:.2f} | {sizes:.2f} | {loss:+.2f} | "
                    f"{size_loss:+.2f} | {vs10:+.2f} | {vs25:+.2f} |")
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m luckystack.simulate.score_trust", description=__doc__.split("\n")[0])
    ap.add_argument("--scenes", default=",".join(SCENES))
    ap.add_argument("--seeds", default="0,1")
    ap.add_argument("--seeing", default=",".join(SEEING))
    ap.add_argument("--frames", type=int, default=150)
    ap.add_argument("--size", default="320x240")
    ap.add_argument("--save", help="keep every candidate's image and PSNR in this folder (one .npz a recording)")
    ap.add_argument("--summary", help="print the markdown table of a --save folder instead of running")
    ap.add_argument("--auto", action="store_true", help="compare what the auto pipeline compares (its stack "
                    "sizes at Fourier powers 0 to 4 in one run, with their noise images) and save them (--save)")
    ap.add_argument("--auto-summary", help="print the markdown table of an --auto --save folder (powers 0, 2, 4)")
    args = ap.parse_args(argv)
    if args.auto_summary:
        print(AUTO_HEADER)
        print("|" + "---|" * AUTO_HEADER.count(" | ") + "---|")
        print("\n".join(auto_summary_rows(Path(args.auto_summary))))
        return 0
    if args.auto:
        if not args.save:
            ap.error("--auto needs --save DIR")
        w, h = (int(v) for v in args.size.split("x"))
        for scene in args.scenes.split(","):
            for seeing in args.seeing.split(","):
                for seed in (int(s) for s in args.seeds.split(",")):
                    with tempfile.TemporaryDirectory() as tmp:
                        cands = auto_candidates(scene, seed, seeing, Path(tmp), args.frames, (w, h),
                                                powers=[0, 1, 2, 3, 4])
                    save(cands, Path(args.save) / f"{scene}-{seeing}-{seed}.npz")
                    print(f"{scene}-{seeing}-{seed}: {len(cands)} candidates", flush=True)
        return 0
    if args.summary:
        print("| recording | n | ρ all | ρ one AP size (min) | ρ stack sizes (min) | score's pick vs best dB | "
              "size pick vs best size | vs P10 | vs P25 |")
        print("|---|---|---|---|---|---|---|---|---|")
        print("\n".join(summary_rows(Path(args.summary))))
        return 0
    w, h = (int(v) for v in args.size.split("x"))
    print(f"{'scene':<8}{'seeing':<9}{'seed':>5}{'n':>4}{'rho':>7}{'best PSNR':>11}{'score pick':>12}")
    for scene in args.scenes.split(","):
        for seeing in args.seeing.split(","):
            for seed in (int(s) for s in args.seeds.split(",")):
                with tempfile.TemporaryDirectory() as tmp:
                    cands = candidates(scene, seed, seeing, Path(tmp), args.frames, (w, h))
                if args.save:
                    Path(args.save).mkdir(parents=True, exist_ok=True)
                    np.savez_compressed(Path(args.save) / f"{scene}-{seeing}-{seed}.npz",
                                        images=np.stack([c.image for c in cands]),
                                        psnr=np.array([c.psnr for c in cands]),
                                        ap_size=np.array([c.ap_size for c in cands]),
                                        power=np.array([c.power for c in cands]),
                                        label=np.array([c.label for c in cands]))
                rho = rank_correlation(cands)
                best = max(c.psnr for c in cands)
                pick = max(cands, key=lambda c: default_score(c.image)).psnr
                print(f"{scene:<8}{seeing:<9}{seed:>5}{len(cands):>4}{rho:>7.3f}{best:>11.2f}{pick - best:>+12.2f}",
                      flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
