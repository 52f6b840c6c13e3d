"""``luckystack compare A B [C ...]``: rank existing result images side by side.

Reads TIFF/PNG/FITS results (any bit depth; 16-bit scaled by 1/65535), brings them to one crop, and
writes into ``--out`` the same comparison a sweep gets (see :mod:`luckystack.report.comparison`):
``contact.png``, ``detail.png``, ``blink.gif``, ``comparison.csv`` and ``report.html``; the table is
printed too. ``--truth`` (a simulation's ``.truth.npz``, its ``.ser``, or a reference image) adds PSNR
and SSIM against it.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from typing import TYPE_CHECKING

from luckystack.graph.cli import Command, UsageError
from luckystack.graph.node import NodeError

if TYPE_CHECKING:  # the report modules are imported when the command runs, not when the CLI starts
    from luckystack.report.comparison import Measured


def _labels(paths: list[Path]) -> list[str]:
    """File stems, or parent/stem where stems repeat (e.g. the same name in two variant folders)."""
    stems = [p.stem for p in paths]
    return [s if stems.count(s) == 1 else f"{p.parent.name}/{s}" for s, p in zip(stems, paths)]


def _read(path: Path) -> np.ndarray:
    from luckystack.report.build import read_image
    from luckystack.report.comparison import IMAGE_SUFFIXES

    if not path.is_file():
        raise UsageError(f"{path}: no such file")
    if path.suffix.lower() not in IMAGE_SUFFIXES:
        raise UsageError(f"{path}: not a TIFF, PNG or FITS image")
    try:
        return read_image(path)
    except Exception as exc:  # a corrupt or unsupported file: one line, not a traceback
        raise NodeError(f"{path}: cannot read the image ({exc})") from None


def compare_files(paths: list[Path], out: Path, truth: Path | None = None) -> list[Measured]:
    """Measure and rank the images, write the comparison into ``out``; return them best first."""
    from luckystack.report.comparison import Measured, load_truth_image, measure, write_folder

    if len(paths) < 2:
        raise UsageError("compare needs at least two images")
    results = [Measured(label, "", p, _read(p)) for label, p in zip(_labels(paths), paths)]
    truth_image = None
    if truth is not None:
        if not truth.is_file():
            raise UsageError(f"--truth {truth}: no such file")
        try:
            truth_image = load_truth_image(truth)
        except (ValueError, OSError) as exc:
            raise NodeError(f"--truth {truth}: {exc}") from None
    try:
        measured = measure(results, truth_image)
    except ValueError as exc:
        raise NodeError(str(exc)) from None
    about = {"files": [str(p) for p in paths], "truth": str(truth) if truth else None,
             "ranking": "by score = log(detail above the noise), image_metrics.score (no truth needed)"}
    write_folder(out, measured, f"Comparison of {len(paths)} images", ", ".join(r.setting for r in results),
                 about)
    return measured


def _args(p: argparse.ArgumentParser) -> None:
    p.add_argument("images", nargs="+", metavar="IMAGE", help="result images (TIFF, PNG, FITS); two or more")
    p.add_argument("--truth", metavar="FILE", default=None,
                   help="ground truth: a simulation's .truth.npz (or its .ser), or a reference image")
    p.add_argument("--out", "-o", default="compare", metavar="DIR",
                   help="where the contact sheet, blink GIF, CSV and report go (default: ./compare)")


def _run(args: argparse.Namespace) -> int:
    from luckystack.report.comparison import format_table, rank_agreement

    out = Path(args.out)
    measured = compare_files([Path(p) for p in args.images], out, Path(args.truth) if args.truth else None)
    print(format_table(measured))
    rho = rank_agreement(measured)
    if rho is not None:
        print(f"\nscore ranking vs PSNR ranking: Spearman correlation {rho:.2f}")
    print(f"\nwrote {out / 'contact.png'}, {out / 'detail.png'}, {out / 'blink.gif'}, "
          f"{out / 'comparison.csv'} and {out / 'report.html'}")
    return 0


COMMAND = Command(
    "compare", "rank result images side by side: contact sheet, blink GIF and a table of figures",
    _run, _args,
    "Measures every image on the same centre crop: sharpness (gradient energy over the object),\n"
    "noise (Immerkaer's estimate), SNR, and the ranking score: the log of the detail (gradient-\n"
    "weighted spectral power) that stands above the noise; with\n"
    "--truth also PSNR and SSIM after registering each image on the truth.",
    "examples:\n  luckystack compare out/jupiter/percent=10/P10/jupiter_P10_ap48.tif "
    "out/jupiter/percent=25/P25/jupiter_P25_ap48.tif\n"
    "  luckystack compare a.tif b.tif c.fits --truth jupiter.truth.npz --out cmp")
