"""``luckystack info`` text for the real fixture."""

import gzip
import shutil
from pathlib import Path

from luckystack.info import describe

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"


def test_describe_real_fixture(tmp_path):
    path = tmp_path / "jupiter.ser"
    with gzip.open(FIXTURES / "jupiter-sample.ser.gz") as src, open(path, "wb") as dst:
        shutil.copyfileobj(src, dst)
    text = describe(path)
    for expected in ("SER", "640 x 480", "RGGB", "8-bit", "frames:      2", "Uranus-C (IMX585)",
                     "0.003 s", "287.77 fps", "2025-01-02T12:43:56"):
        assert expected in text, expected
