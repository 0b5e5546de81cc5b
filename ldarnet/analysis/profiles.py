"""Anchor-centred profiles of a per-base signal, and the background sites to compare them with.

A boundary profile is the average of the router's boundary probability in a window
around many anchors (motif starts, splice junctions). Two details decide whether such
an average means anything:

* **orientation**: a TATA box or a donor on the minus strand is the same biology read
  backwards, so its window is read reversed and offsets are in transcript orientation
  (offset +3 is three bases *downstream* of the anchor on the anchor's own strand);
* **a background**: the average at random positions, or at decoy sites with the same
  core (GT not used as a donor), drawn the same way from the same sequences, so that
  a bump can be tested against chance (:mod:`ldarnet.analysis.stats`) instead of
  being eyeballed against a flat line, as the release did.

Per-offset uncertainty is the standard error of the mean with the *sample* standard
deviation (``ddof=1``); the release used the population one, which is biased low for
small n.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ldarnet.analysis.shuffle import check_sequence
from ldarnet.data.tokenizer import encode
from ldarnet.foundation.errors import InputError


class ProfileError(InputError):
    """Profile or background inputs that do not fit together (shapes, strands, ranges)."""


@dataclass(frozen=True, eq=False)
class Profile:
    """Mean, SEM and n per offset, plus the per-anchor windows for statistics.

    ``windows[i, k]`` is the value at ``offsets[k]`` around the ``i``-th *used* anchor
    (``used`` holds their indices in the input); ``n_skipped`` anchors had a window
    reaching past the ends of ``values``.
    """

    offsets: np.ndarray
    mean: np.ndarray
    sem: np.ndarray
    n: int
    n_skipped: int
    windows: np.ndarray
    used: np.ndarray

    def at(self, offset: int) -> tuple[float, float]:
        """(mean, SEM) at one offset."""
        where = np.flatnonzero(self.offsets == offset)
        if where.size == 0:
            raise ProfileError(f"offset {offset} is outside the profile "
                               f"({self.offsets[0]}..{self.offsets[-1]})")
        return float(self.mean[where[0]]), float(self.sem[where[0]])


def _as_positions(anchors: Sequence[int] | np.ndarray, what: str, size: int) -> np.ndarray:
    positions = np.asarray(anchors)
    if positions.ndim != 1:
        raise ProfileError(f"{what} must be a flat list of positions, got shape "
                           f"{positions.shape}")
    if positions.size and not np.issubdtype(positions.dtype, np.integer):
        raise ProfileError(f"{what} must be integer base positions, got dtype "
                           f"{positions.dtype}")
    positions = positions.astype(np.int64)
    if positions.size and (positions.min() < 0 or positions.max() >= size):
        bad = positions[(positions < 0) | (positions >= size)][0]
        raise ProfileError(f"{what} has position {bad} outside the sequence 0..{size - 1}")
    return positions


def _check_flank(value: int, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 0:
        raise ProfileError(f"{what} must be a non-negative int, got {value!r}")
    return int(value)


def anchored_profile(
    values: np.ndarray,
    anchors: Sequence[int] | np.ndarray,
    strands: Sequence[str],
    flank_left: int,
    flank_right: int,
    *,
    cuts: bool = False,
) -> Profile:
    """Per-offset mean ± SEM of ``values`` in windows ``-flank_left .. +flank_right``.

    ``values`` is one number per base (``values[t]`` for base ``t``). On a ``"+"``
    anchor ``a`` offset ``k`` reads ``values[a + k]``; on a ``"-"`` anchor it reads
    ``values[a - k]`` (transcript orientation; ``a`` is then the anchor's *highest*
    coordinate base, e.g. :attr:`~ldarnet.analysis.motifs.Hit.anchor`).

    ``cuts=True`` is for signals that belong to the gap *before* a base, like the
    router's boundary probability ``p_t`` ("a new token starts at ``t``"). Read
    backwards, the gap before base ``t`` is the gap *after* it, so minus-strand offset
    ``k`` then reads ``values[a - k + 1]``: offset 0 stays "the cut on the 5' side of
    the anchor base" on both strands. Without this, minus-strand junction profiles are
    shifted by one base against plus-strand ones.

    Anchors whose window does not fit inside ``values`` are skipped and counted; with
    no anchor left, mean and SEM are NaN and ``n`` is 0. SEM needs two windows (NaN
    with one).
    """
    values = np.asarray(values, dtype=float)
    if values.ndim != 1:
        raise ProfileError(f"values must be one number per base (1-D), got shape "
                           f"{values.shape}")
    flank_left = _check_flank(flank_left, "flank_left")
    flank_right = _check_flank(flank_right, "flank_right")
    positions = _as_positions(anchors, "anchors", values.size)
    strands = list(strands)
    if len(strands) != positions.size:
        raise ProfileError(f"{positions.size} anchors but {len(strands)} strands; give one "
                           "strand ('+' or '-') per anchor")
    bad = sorted({s for s in strands if s not in ("+", "-")}, key=str)
    if bad:
        raise ProfileError(f"strands must be '+' or '-', got {bad}")

    offsets = np.arange(-flank_left, flank_right + 1)
    minus = np.array([s == "-" for s in strands], dtype=bool)
    shift = 1 if cuts else 0
    # the base index read at every (anchor, offset)
    index = np.where(minus[:, None], positions[:, None] - offsets[None, :] + shift,
                     positions[:, None] + offsets[None, :])
    fits = np.all((index >= 0) & (index < values.size), axis=1)
    used = np.flatnonzero(fits)
    windows = values[index[used]] if used.size else np.empty((0, offsets.size))
    n = int(used.size)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = windows.mean(axis=0) if n else np.full(offsets.size, np.nan)
        sem = (windows.std(axis=0, ddof=1) / np.sqrt(n)) if n > 1 else np.full(
            offsets.size, np.nan)
    return Profile(offsets, mean, sem, n, int(positions.size - n), windows, used)


@dataclass(frozen=True, eq=False)
class BackgroundSites:
    """Background positions and, for each, the index of the anchor it was drawn for.

    The anchor index lets the caller give each background site its anchor's strand (and
    sequence, when anchors come from many sequences).
    """

    positions: np.ndarray
    anchor_index: np.ndarray


def matched_background(
    anchors: Sequence[int] | np.ndarray,
    length: int,
    flank: int,
    rng: np.random.Generator,
    n_per_anchor: int = 1,
    exclude: Sequence[tuple[int, int]] = (),
    *,
    sequence: str | None = None,
    context: tuple[int, int] | None = None,
) -> BackgroundSites:
    """``n_per_anchor`` background positions per anchor in a sequence of ``length`` bases.

    Every candidate lies at least ``flank`` bases from every anchor, from every
    ``exclude`` interval ``[start, end)`` (other annotated sites) and from both ends,
    so that a ``±flank`` window around it fits and never overlaps a real site.

    With ``sequence`` and ``context=(lo, hi)``, a background position ``p`` drawn for
    anchor ``a`` also has the same bases ``sequence[p + lo:p + hi]`` as
    ``sequence[a + lo:a + hi]``: e.g. ``context=(0, 2)`` for donors anchored on the G of
    GT gives decoy GT sites, ``context=(-2, 0)`` for acceptors anchored on the first
    exon base gives decoy AG sites. Contexts are read on the forward strand, so give
    the strand-appropriate context (a minus-strand donor anchored at its G reads
    ``AC`` at ``(-1, 1)``).

    Draws are without replacement within each context group when enough candidates
    exist, otherwise with replacement; a group with no candidate at all raises
    :class:`ProfileError`.
    """
    if isinstance(length, bool) or not isinstance(length, int | np.integer) or length <= 0:
        raise ProfileError(f"length must be a positive int, got {length!r}")
    flank = _check_flank(flank, "flank")
    if isinstance(n_per_anchor, bool) or not isinstance(n_per_anchor, int | np.integer) \
            or n_per_anchor < 1:
        raise ProfileError(f"n_per_anchor must be an int >= 1, got {n_per_anchor!r}")
    if not isinstance(rng, np.random.Generator):
        raise ProfileError("rng must be a numpy.random.Generator "
                           "(numpy.random.default_rng(seed))")
    positions = _as_positions(anchors, "anchors", int(length))

    allowed = np.zeros(length, dtype=bool)
    allowed[flank:max(flank, length - flank)] = True
    reach = max(flank, 1)  # an anchor itself is never background, even with flank=0
    for a in positions:
        allowed[max(0, a - reach + 1):a + reach] = False
    for interval in exclude:
        try:
            start, end = (int(v) for v in interval)
        except (TypeError, ValueError):
            raise ProfileError(f"exclude must hold (start, end) intervals, got "
                               f"{interval!r}") from None
        if start > end:
            raise ProfileError(f"exclude interval {interval!r} has start > end")
        allowed[max(0, start - reach + 1):max(0, end + reach - 1)] = False

    if (sequence is None) != (context is None):
        raise ProfileError("give both sequence= and context=(lo, hi) to match the anchor "
                           "context, or neither")
    keys = np.zeros(positions.size, dtype=np.int64)  # one group unless contexts are matched
    candidate_keys: np.ndarray | None = None
    if sequence is not None and context is not None:
        check_sequence(sequence)
        if len(sequence) != length:
            raise ProfileError(f"sequence has {len(sequence)} bases but length={length}")
        lo, hi = (int(v) for v in context)
        if lo >= hi:
            raise ProfileError(f"context=(lo, hi) needs lo < hi, got {context!r}")
        bad_anchor = [int(a) for a in positions if a + lo < 0 or a + hi > length]
        if bad_anchor:
            raise ProfileError(f"context {context!r} reaches outside the sequence at "
                               f"anchor {bad_anchor[0]}")
        allowed[:max(0, -lo)] = False
        allowed[max(0, length - hi + 1):] = False
        # the context k-mer at every position as one integer (base-5 digits of token ids)
        ids = encode(sequence).astype(np.int64)
        start, stop = max(0, -lo), length - hi + 1
        candidate_keys = np.full(length, -1, dtype=np.int64)
        code = np.zeros(max(0, stop - start), dtype=np.int64)
        for j in range(hi - lo):
            code = code * 5 + ids[start + lo + j:stop + lo + j]
        candidate_keys[start:stop] = code
        keys = candidate_keys[positions]

    out_positions: list[np.ndarray] = []
    out_anchor: list[np.ndarray] = []
    for key in dict.fromkeys(keys.tolist()):
        members = np.flatnonzero(keys == key)
        pool = np.flatnonzero(allowed if candidate_keys is None
                              else allowed & (candidate_keys == key))
        if pool.size == 0:
            what = ""
            if sequence is not None and context is not None:
                a = int(positions[members[0]])
                what = f" with context {sequence[a + context[0]:a + context[1]]!r}"
            raise ProfileError(
                f"no background position{what} at least {flank} bases from every anchor "
                f"and excluded interval in a sequence of {length}; reduce flank or "
                "exclude fewer sites"
            )
        size = members.size * n_per_anchor
        drawn = rng.choice(pool, size=size, replace=pool.size < size)
        out_positions.append(drawn.astype(np.int64))
        out_anchor.append(np.repeat(members, n_per_anchor))
    if not out_positions:
        return BackgroundSites(np.empty(0, np.int64), np.empty(0, np.int64))
    order_positions = np.concatenate(out_positions)
    order_anchor = np.concatenate(out_anchor)
    order = np.argsort(order_anchor, kind="stable")
    return BackgroundSites(order_positions[order], order_anchor[order])
