"""The studio's pictures: drawn with the report's stretch, coverage map and PNG encoder."""

from __future__ import annotations

import cv2
import numpy as np

from luckystack.studio import previews


def test_an_ap_box_at_the_border_is_clipped_where_the_ap_is_not_shifted_into_the_frame():
    reference = np.tile(np.linspace(0, 1, 32, dtype=np.float32), (32, 1))
    centres, sizes = np.array([[2, 2], [20, 20]]), np.array([8, 8])
    quality = np.array([[1.0, 2.0], [1.0, 2.0]], np.float32)  # AP 0 the poorest, AP 1 the best
    shown = previews.quality_map(reference, centres, sizes, quality, np.ones(2, bool))
    dimmed = (previews.display(reference).astype(np.float32) * 0.35).astype(np.uint8)
    assert not np.array_equal(shown[5, 5], dimmed[5, 5])  # inside AP 0's box: coloured
    np.testing.assert_array_equal(shown[6:9, 6:9], dimmed[6:9, 6:9])  # beyond it: the box ends at 6
    assert np.all(np.any(shown[16:24, 16:24] != dimmed[16:24, 16:24], axis=-1))  # AP 1's box: coloured


def test_previews_are_lossless_pngs_stretched_between_the_images_percentiles():
    rng = np.random.default_rng(3)
    image = rng.normal(0.4, 0.1, (48, 64, 3)).astype(np.float32)
    image[0, 0] = np.nan  # a hole in the image shows as black, not as an error
    shown = previews.display(image)
    assert shown.dtype == np.uint8 and shown.shape == (48, 64, 3)
    assert 0 < np.mean(shown == 0) < 0.01 and 0 < np.mean(shown == 255) < 0.01
    decoded = cv2.cvtColor(cv2.imdecode(np.frombuffer(previews.png(shown), np.uint8), cv2.IMREAD_COLOR),
                           cv2.COLOR_BGR2RGB)
    np.testing.assert_array_equal(decoded, shown)
