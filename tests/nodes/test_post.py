import numpy as np
import pytest
import tifffile
from astropy.io import fits

import luckystack.nodes.post  # noqa: F401
from luckystack.graph.context import run_node
from luckystack.graph.node import NodeError, Result, registry
from luckystack.imaging.rgb_align import shift_image


def _images(colour=False):
    rng = np.random.default_rng(0)
    import cv2
    g = cv2.GaussianBlur(rng.random((90, 90)).astype(np.float32), (0, 0), 2.0) * 0.8
    if colour:
        img = np.stack([shift_image(g, 0.5, 0.0), g, shift_image(g, -0.5, 0.25)], -1)[5:-5, 5:-5]
    else:
        img = g[5:-5, 5:-5, None]
    return Result(arrays={"image_P25": img, "image_F100": img * 0.5},
                  meta={"labels": ["P25", "F100"], "sizes": [{"label": "P25", "frames": 50},
                        {"label": "F100", "frames": 100}], "ap_size": 48, "drizzle": 2.0})


def test_post_aligns_colour_and_sharpening_is_an_extra_output():
    frames = Result(meta={"observer": "Bob", "width": 640, "capture": {"telescope": "C11"}})
    out = run_node("post", {"sharpen": "wavelet"}, {"images": _images(True), "frames": frames})["images"]
    assert set(out.arrays) == {"image_P25", "image_F100", "sharp_P25", "sharp_F100"}
    dy, dx = out.meta["rgb_offsets"]["P25"][0]
    assert abs(dy + 0.5) < 0.05 and abs(dx) < 0.05
    assert out.meta["recording"]["telescope"] == "C11"


def test_export_writes_one_folder_per_size_with_named_files(tmp_path):
    node = registry()["post"]
    params = node.params(formats=["tiff", "fits"], sharpen="unsharp", preview=True)
    frames = Result(meta={"observer": "Bob"})
    res = run_node("post", params.model_dump(), {"images": _images(), "frames": frames})
    paths = node.export(res, params, tmp_path, "jupiter")
    names = sorted(p.relative_to(tmp_path).as_posix() for p in paths)
    assert "P25/jupiter_P25_ap48_d2.tif" in names and "F100/jupiter_F100_ap48_d2_sharp.fits" in names
    assert "P25/jupiter_P25_ap48_d2_preview.png" in names
    tif = tifffile.imread(tmp_path / "P25/jupiter_P25_ap48_d2.tif")
    assert tif.dtype == np.uint16 and tif.shape == (80, 80)
    np.testing.assert_array_equal(tif, np.round(np.clip(res["images"].array("image_P25")[..., 0].astype(np.float64), 0, 1) * 65535))
    with fits.open(tmp_path / "F100/jupiter_F100_ap48_d2_sharp.fits") as h:
        assert h[0].header["OBSERVER"] == "Bob" and h[0].header["NCOMBINE"] == 100
        assert "Sharpened: unsharp" in h[0].header["HISTORY"] and "Drizzle 2x" in h[0].header["HISTORY"]
        assert h[0].data.dtype.kind == "f"


def test_rgb_align_on_mono_is_a_node_error():
    with pytest.raises(NodeError):
        run_node("post", {"rgb_align": "on"}, {"images": _images(False)})
