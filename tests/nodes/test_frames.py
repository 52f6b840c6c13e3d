import numpy as np

from luckystack.nodes.frames import chunked


def test_chunked_cuts_fixed_consecutive_slices():
    assert chunked(range(70), 32) == [range(0, 32), range(32, 64), range(64, 70)]
    parts = chunked(np.arange(5), 2)
    assert [p.tolist() for p in parts] == [[0, 1], [2, 3], [4]]
    assert chunked(range(0), 32) == []
