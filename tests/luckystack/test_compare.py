"""``luckystack compare``: real TIFF/PNG/FITS files in, ranking table, CSV, contact sheet and GIF out."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np

from luckystack.compare import COMMAND
from luckystack.export import write_image
from luckystack.graph.cli import main
from luckystack.simulate import simulate_command
from luckystack.simulate.truth import load_truth

REPO = Path(__file__).resolve().parents[2]


def _results(tmp_path: Path) -> tuple[Path, dict[str, Path]]:
    """A simulated truth and three results of it: sharp (PNG), soft (TIFF), sharp but noisy (FITS)."""
    ser = simulate_command("jupiter", 2, tmp_path / "sim.ser", 200, 150, seed=4)["ser"]
    truth = load_truth(ser).image[..., 0]
    rng = np.random.default_rng(0)
    files = {}
    for name, sigma, noise, fmt in (("sharp", 0.7, 0.004, "png"), ("soft", 2.2, 0.004, "tiff"),
                                    ("noisy", 0.7, 0.04, "fits")):
        img = cv2.GaussianBlur(truth, (0, 0), sigma)[6:-6, 4:-4] + rng.normal(0, noise, (138, 192))
        files[name] = write_image(tmp_path / f"{name}.{ {'tiff': 'tif'}.get(fmt, fmt)}",
                                  img.astype(np.float32)[..., None], fmt)
    return ser, files


def test_compare_ranks_files_and_writes_outputs(tmp_path, capsys):
    ser, files = _results(tmp_path)
    out = tmp_path / "cmp"
    args = [str(files[k]) for k in ("soft", "noisy", "sharp")]
    assert main(["compare", *args, "--truth", str(ser.with_name("sim.truth.npz")), "--out", str(out)],
                commands=[COMMAND]) == 0
    printed = capsys.readouterr().out
    table = [line.split() for line in printed.splitlines()[2:5]]
    assert [row[0] for row in table] == ["sharp", "noisy", "soft"]  # best first by score
    assert "Spearman correlation" in printed
    with open(out / "comparison.csv", newline="") as fh:
        rows = {r["setting"]: r for r in csv.DictReader(fh)}
    assert rows["sharp"]["rank"] == "1" and rows["sharp"]["psnr_rank"] == "1"
    assert float(rows["sharp"]["psnr"]) > float(rows["soft"]["psnr"]) > 20
    assert float(rows["noisy"]["noise"]) > 5 * float(rows["sharp"]["noise"])
    # The FITS result is read the right way up: its PSNR is that of its noise, 20·log10(1/0.04).
    assert abs(float(rows["noisy"]["psnr"]) - 27.96) < 0.5
    assert rows["soft"]["file"] == str(files["soft"])
    sheet = cv2.imread(str(out / "contact.png"))
    assert sheet.shape == (2 * (138 + 22), 2 * 192, 3)  # 3 tiles in a 2×2 grid, 1:1 (smaller than 320)
    ok, blink = cv2.imreadanimation(str(out / "blink.gif"))
    assert ok and len(blink.frames) == 3
    assert "sharp" in (out / "report.html").read_text()


def test_compare_without_truth_via_the_command_line(tmp_path):
    _, files = _results(tmp_path)
    out = tmp_path / "cmp"
    code = ("import sys; from luckystack.compare import COMMAND; from luckystack.graph.cli import main; "
            "sys.exit(main(sys.argv[1:], commands=[COMMAND]))")
    proc = subprocess.run([sys.executable, "-c", code, "compare", str(files["soft"]), str(files["sharp"]),
                           "--out", str(out)], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[0].split() == ["result", "rank", "sharpness", "noise", "snr", "score"]
    assert proc.stdout.splitlines()[2].split()[:2] == ["sharp", "1"]
    assert (out / "comparison.csv").read_text().splitlines()[0] == \
        "setting,stack,rank,sharpness,noise,snr,score,file"


def test_compare_errors_are_one_line(tmp_path, capsys):
    _, files = _results(tmp_path)
    assert main(["compare", str(files["sharp"]), str(tmp_path / "missing.tif")], commands=[COMMAND]) == 2
    assert capsys.readouterr().err.strip() == f"error: {tmp_path / 'missing.tif'}: no such file"
    assert main(["compare", str(files["sharp"])], commands=[COMMAND]) == 2
    assert "at least two images" in capsys.readouterr().err
    bad = tmp_path / "bad.tif"
    bad.write_bytes(b"not a tiff")
    assert main(["compare", str(files["sharp"]), str(bad), "--out", str(tmp_path / "o")], commands=[COMMAND]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: {bad}: cannot read the image")
