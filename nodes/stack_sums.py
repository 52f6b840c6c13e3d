"""The stack node's cumulative sums: the chain of float32 states, what earlier results offer, what a
run computes and what it keeps.

A *state* holds the sums of an AP's best frames up to some frame count (per AP: weighted spectra and
weights, or weighted patches and weights) and the background's running mean. States form a *chain* at
each :data:`GRID` point (a share of the valid frames) up to the largest stack size, each the one below
plus the band of ranks between them, every step the same addition rounded to float32. A size
on the grid is its chain state; any other size is a *side* state, the chain state below it plus its own
band. The grid does not depend on the sizes asked for, so a state at a given frame count is the same in
every run: a rerun with other sizes takes the states and outputs earlier results hold
(:func:`earlier_pool`) and sums only the bands it lacks (:class:`Work`).
"""

from __future__ import annotations

from dataclasses import dataclass
from collections.abc import Iterator
from typing import Any

import numpy as np

from luckystack.graph.node import Context
from luckystack.imaging.stacking import ChunkSums

GRID = (5, 10, 20, 25, 30, 40, 50, 60, 70, 80, 90, 100)  # % of the valid frames: the chain runs through
#   each of these, whatever the sizes (every 10 %, and the much-used 5 and 25 %), so a rerun with other sizes
#   starts at most 10 % of the frames below each of them


@dataclass
class State:
    """The cumulative sums up to one frame count, rounded to float32: ``num``/``den`` per AP (as in
    ChunkSums, without the band axis) and ``bg``, the mean of the background frames (float32 as well).
    An earlier result's arrays stay zarr arrays until read."""

    num: np.ndarray
    den: np.ndarray
    bg: np.ndarray

    def sliced(self, aps: slice) -> State:
        """The state of APs ``aps`` (the background is shared), in memory."""
        return State(np.asarray(self.num[aps]), np.asarray(self.den[aps]), self.bg)


def in_memory(array) -> np.ndarray:
    """``array`` read into memory if it is not already (a zarr array of an earlier result)."""
    return array if isinstance(array, np.ndarray) else np.asarray(array[...])


@dataclass
class Pool:
    """What earlier results offer: chain states (by index into this run's chain; arrays read only where
    needed, and stored again as links), stack sizes' outputs by frame count (→ the result and its
    label) and the local shifts measured (the array that holds the most, see :func:`keep_shifts`)."""

    states: dict[int, State]
    outputs: dict[int, tuple[Any, str]]
    shifts: Any = None  # (N, A, 2) float64 by frame and AP, NaN where not measured; None: none kept
    shifts_known: int = 0  # how many (frame, AP) shifts it holds


def chain_counts(asc: np.ndarray, n_valid: int, incremental: bool) -> np.ndarray:
    """Frame counts of the chain of cumulative sums: the :data:`GRID` up to the largest size
    (``incremental``), or the sizes themselves; ascending and distinct."""
    if not incremental:
        return np.unique(asc)
    grid = {int(min(n_valid, max(1, round(g / 100.0 * n_valid)))) for g in GRID}
    return np.array(sorted(c for c in grid if c <= asc.max()), dtype=np.int64)


class Work:
    """What a run sums, given the chain, the chain states earlier results offer (``have``, by index) and
    the sizes it makes.

    A size on the grid is its chain state; any other is a *side* state on the chain state below it. The
    new chain states are those needed (by a size or a side) and not offered, with every state between
    them and the nearest one offered below (or the empty start). Bands: the new chain states' in order,
    then the sides'.
    """

    def __init__(self, chain: np.ndarray, have: set[int], made: list[int]) -> None:
        self.chain = chain
        self.index = {c: i for i, c in enumerate(chain.tolist())}
        self.sides = [c for c in made if c not in self.index]
        self.base = {c: int(np.searchsorted(chain, c)) - 1 for c in self.sides}  # -1: on the empty start
        wanted = {self.index[c] for c in made if c in self.index} | set(self.base.values())
        new: set[int] = set()
        for k in sorted(wanted, reverse=True):
            while k >= 0 and k not in have and k not in new:
                new.add(k)
                k -= 1
        self.new = sorted(new)
        self.bands = [(self.count(k - 1), self.count(k)) for k in self.new]
        self.bands += [(self.count(self.base[c]), c) for c in self.sides]

    def count(self, k: int) -> int:
        """Frame count of chain state ``k`` (-1: the empty start)."""
        return int(self.chain[k]) if k >= 0 else 0

    def walk(self, offered: dict[int, State], sums: ChunkSums | None, aps: slice,
             means: dict[int, np.ndarray], bg_shape: tuple[int, ...]) -> Iterator[tuple[int, int | None, State]]:
        """The new chain states and the side states of the APs ``aps``, from the pass's ``sums`` (their
        bands as in :attr:`bands`; see :func:`advance`), one at a time in ascending frame count as
        ``(count, chain index or None for a side, state)``: a caller that keeps only what it needs
        holds two states at a time, not the whole chain."""
        sides_on: dict[int, list[int]] = {}
        for c in self.sides:
            sides_on.setdefault(self.base[c], []).append(c)
        new_band = {k: b for b, k in enumerate(self.new)}
        side_band = {c: b for b, c in enumerate(self.sides, start=len(self.new))}
        previous: tuple[int, State | None] | None = None
        for k in sorted(set(self.new) | set(sides_on)):
            if k in new_band:
                below = previous[1] if previous is not None and previous[0] == k - 1 else \
                    self.chain_state(k - 1, offered, aps)
                state = advance(below, self.count(k - 1), sums, new_band[k], self.count(k), means, bg_shape)
                yield self.count(k), k, state
            else:  # an offered state (or the empty start) that sides build on
                state = self.chain_state(k, offered, aps)
            for c in sides_on.get(k, []):
                yield c, None, advance(state, self.count(k), sums, side_band[c], c, means, bg_shape)
            previous = (k, state)

    @staticmethod
    def chain_state(k: int, offered: dict[int, State], aps: slice) -> State | None:
        """Offered chain state ``k`` of the APs ``aps``, in memory but for its background (-1: None, the
        empty start)."""
        return None if k < 0 else offered[k].sliced(aps)


def advance(prior: State | None, prior_count: int, sums: ChunkSums, band: int, count: int,
            means: dict[int, np.ndarray], bg_shape: tuple[int, ...]) -> State:
    """The state at ``count`` frames: the sum of ``prior`` (at ``prior_count`` frames, in memory
    but for its background; None: zeros) and band ``band`` of ``sums``, rounded to float32. Its
    background is the mean from the prior's mean × its count plus the band's frames, computed once (the
    first AP group) and kept in ``means``.

    Always the same operations, whether ``prior`` was computed in this run or read from an earlier
    result, so both give the same bits.
    """
    num_dtype = np.complex64 if np.iscomplexobj(sums.num) else np.float32
    if prior is None:
        prior = State(np.zeros(sums.num.shape[:1] + sums.num.shape[2:], num_dtype),
                      np.zeros(sums.den.shape[:1] + sums.den.shape[2:], np.float32), np.zeros(bg_shape, np.float32))
    if count not in means:
        bg = in_memory(prior.bg).astype(np.float64) * prior_count
        band_bg = sums.bg.get(band)
        if band_bg is not None:
            bg = bg + band_bg
        means[count] = (bg / max(count, 1)).astype(np.float32)
    num, den = sums.num[:, band] + prior.num, sums.den[:, band] + prior.den
    return State(num.astype(num_dtype), den.astype(np.float32), means[count])


def earlier_pool(ctx: Context, chain: np.ndarray) -> Pool:
    """The chain states and outputs every earlier result offers (the most recently used first).

    Earlier results differ only in their stack sizes (``ctx.earlier``) and the chain's grid does not
    depend on them, so a chain state at a frame count is the one this run would compute, and so is a
    size's output at a frame count, whichever result holds it.
    """
    index = {c: k for k, c in enumerate(chain.tolist())}
    pool = Pool({}, {})
    states, outputs = pool.states, pool.outputs
    for earlier in ctx.earlier():
        try:
            res = earlier["stacks"]
            known = int(res.meta.get("local_shifts", 0))
            if known > pool.shifts_known and "local_shift" in res.arrays:
                pool.shifts, pool.shifts_known = res.arrays["local_shift"], known
            for kept in res.meta["sums"]:
                count = kept["frames"]
                k = index.get(count)
                names = (f"sum_num_{count}", f"sum_den_{count}", kept["background"])
                if k is not None and k not in states and all(name in res.arrays for name in names):
                    states[k] = State(*(res.arrays[name] for name in names))
            for size in res.meta["sizes"]:
                if all(f"{kind}_{size['label']}" in res.arrays for kind in ("patch", "coverage", "background")):
                    outputs.setdefault(int(size["frames"]), (res, size["label"]))
        except (OSError, KeyError, ValueError, TypeError):
            continue  # not readable: compute instead
    return pool


def offered_shifts(pool: Pool, needed: np.ndarray) -> np.ndarray | None:
    """The local shifts (N, A, 2) of the (frame, AP) pairs ``needed`` (N, A) from those earlier results
    measured (0 elsewhere), or None unless they hold every one of them: a pass given them measures none,
    and stacks the very same bits (an AP's shift in a frame depends on that frame and AP alone)."""
    if pool.shifts is None or not needed.any():
        return None
    try:
        shifts = in_memory(pool.shifts)
    except (OSError, KeyError, ValueError, TypeError):
        return None
    if shifts.shape[:2] != needed.shape or not np.isfinite(shifts[needed]).all():
        return None
    return np.where(needed[..., None], shifts, 0.0)


def keep_shifts(arrays: dict[str, Any], meta: dict, pool: Pool, measured: np.ndarray | None) -> None:
    """Store the local shifts known after this run (see ``luckystack.nodes``): those ``measured`` here
    (NaN where not) with the ones the pool offered; the pool's array itself (a link) when this run
    measured nothing new."""
    if measured is None or not np.isfinite(measured).any():
        if pool.shifts is not None:
            arrays["local_shift"], meta["local_shifts"] = pool.shifts, pool.shifts_known
        return
    if pool.shifts is not None:
        try:
            earlier = in_memory(pool.shifts)
            if earlier.shape == measured.shape:
                measured = np.where(np.isfinite(measured), measured, earlier)
        except (OSError, KeyError, ValueError, TypeError):
            pass
    arrays["local_shift"] = measured
    meta["local_shifts"] = int(np.isfinite(measured[..., 0]).sum())


def kept_states(chain: np.ndarray, own_background: dict[int, str], state_bytes: int, bg_bytes: int,
                budget: float) -> list[int]:
    """The chain states (indices) whose sums the result may store: the highest first, as each saves a
    rerun the most frames, while they fit in ``budget`` bytes (a state at a size's frame count shares
    that size's background). A run from scratch has them all; a rerun stores those it has."""
    keep = []
    for k in range(len(chain) - 1, -1, -1):
        cost = state_bytes + (0 if int(chain[k]) in own_background else bg_bytes)
        if cost <= budget:
            keep.append(k)
            budget -= cost
    return sorted(keep)


def keep_sums(arrays: dict[str, np.ndarray], chain: np.ndarray, states: dict[int, State],
              own_background: dict[int, str]) -> list[dict]:
    """Add the sums of the chain ``states`` kept (by index, see :func:`kept_states`) to ``arrays`` (see
    ``luckystack.nodes``); returns meta ``sums``. A state whose background output is its size's
    (``own_background``) does not store it twice."""
    meta = []
    for k in sorted(states):
        count, state = int(chain[k]), states[k]
        arrays[f"sum_num_{count}"] = state.num
        arrays[f"sum_den_{count}"] = state.den
        bg_name = own_background.get(count)
        if bg_name is None:  # not a size, or a normalized output
            bg_name = f"sum_bg_{count}"
            arrays[bg_name] = state.bg
        meta.append({"frames": count, "background": bg_name})
    return meta
