"""The stack node's chain of sums: which bands a run sums and which states it keeps (the bits and the
reuse end to end are tested through the node, in test_stack.py)."""

import numpy as np

from luckystack.nodes.stack_sums import Work, chain_counts, kept_states

CHAIN = np.array([3, 6, 12, 15, 18, 24, 30])  # the grid's 5, 10, 20, 25, 30, 40, 50 % of 60 frames


def test_the_chain_is_the_grid_up_to_the_largest_size_whatever_the_sizes():
    assert chain_counts(np.array([6, 15, 30]), 60, incremental=True).tolist() == CHAIN.tolist()
    assert chain_counts(np.array([9, 16]), 60, incremental=True).tolist() == [3, 6, 12, 15]
    assert chain_counts(np.array([9, 16]), 60, incremental=False).tolist() == [9, 16]  # sigma clipping


def test_a_run_sums_only_the_bands_from_the_states_it_has():
    everything = Work(CHAIN, set(range(7)), [25])  # 25 frames: a side state on the one at 24
    assert everything.new == [] and everything.bands == [(24, 25)]
    gaps = Work(CHAIN, {3, 6}, [24, 9])  # offered: the states at 15 and 30 frames
    assert gaps.new == [0, 1, 4, 5]  # 24 via 18 on 15; 9 on 6, which is not offered, so from the start
    assert gaps.bands == [(0, 3), (3, 6), (15, 18), (18, 24), (6, 9)]
    fresh = Work(CHAIN, set(), [6, 15, 30])
    assert fresh.new == list(range(7)) and fresh.sides == []


def test_the_highest_states_that_fit_the_budget_are_kept():
    # states cost 10 bytes, plus 5 for the background unless a size's output is it
    assert kept_states(np.array([3, 6, 12]), {6: "background_P10"}, 10, 5, 25) == [1, 2]
    assert kept_states(np.array([3, 6, 12]), {}, 10, 5, 14) == []
    assert kept_states(np.array([3, 6, 12]), {}, 10, 5, 1e9) == [0, 1, 2]
