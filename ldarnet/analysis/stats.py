"""Permutation tests and multiple-testing corrections for boundary-profile comparisons.

The release compared boundary profiles by eye (spec 5.3: "no statistical test, no
multiple-testing control"). The questions it asks are two-sample ones: is the mean
boundary probability at offset k around real sites higher than around background
sites? A permutation test answers that without assuming normality or independence of
the offsets, which router probabilities (bounded, bimodal, autocorrelated) violate.

* The statistic is ``mean(a) - mean(b)``. Group labels are permuted, the statistic is
  recomputed, and the p-value is ``(1 + #{permuted >= observed}) / (1 + n_permutations)``
  (Phipson & Smyth 2010): the observed labelling is one of the permutations, so p is
  never 0 and the test stays valid (exact size) with a finite number of permutations.
* When many offsets (or motifs) are tested, the p-values are adjusted with
  Benjamini–Hochberg (false discovery rate) or Holm (family-wise error); both are
  monotone in p and clipped to 1.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from ldarnet.foundation.errors import InputError

Alternative = Literal["greater", "less", "two-sided"]
_ALTERNATIVES = ("greater", "less", "two-sided")
_BATCH_ELEMENTS = 1 << 22  # permutations are drawn in batches of ~4M label entries


class StatsError(InputError):
    """Inputs a statistical routine cannot use (empty, NaN, wrong shape, bad option)."""


def _sample(values: np.ndarray | Sequence[float], what: str, ndim: int) -> np.ndarray:
    array = np.asarray(values, dtype=float)
    if array.ndim != ndim:
        raise StatsError(f"{what} must be {ndim}-D, got shape {array.shape}")
    if array.shape[0] == 0:
        raise StatsError(f"{what} is empty; a comparison needs at least one value per group")
    if not np.all(np.isfinite(array)):
        raise StatsError(f"{what} has NaN or infinite values; drop them before testing")
    return array


def _check_options(n_permutations: int, alternative: str, rng: np.random.Generator) -> None:
    if isinstance(n_permutations, bool) or not isinstance(n_permutations, int | np.integer) \
            or n_permutations < 1:
        raise StatsError(f"n_permutations must be an int >= 1 (10000 is usual), got "
                         f"{n_permutations!r}")
    if alternative not in _ALTERNATIVES:
        raise StatsError(f"alternative must be one of {_ALTERNATIVES}, got {alternative!r}")
    if not isinstance(rng, np.random.Generator):
        raise StatsError("rng must be a numpy.random.Generator "
                         "(numpy.random.default_rng(seed))")


def _permutation_pvalues(
    a: np.ndarray, b: np.ndarray, n_permutations: int, rng: np.random.Generator,
    alternative: str,
) -> tuple[np.ndarray, np.ndarray]:
    """Column-wise mean differences of (n_a, k) vs (n_b, k) and their permutation p-values.

    All columns share the same permutations of the row labels (offsets of one window
    stay together), which keeps the dependence between offsets intact.
    """
    pooled = np.concatenate([a, b])  # (n, k)
    n_a, n = a.shape[0], pooled.shape[0]
    total = pooled.sum(axis=0)

    def difference(sum_a: np.ndarray) -> np.ndarray:
        # the same formula for the observed and the permuted labellings, so that a
        # permutation equivalent to the observed one gives a bitwise-comparable value
        return sum_a / n_a - (total - sum_a) / (n - n_a)

    labels = np.zeros((1, n))
    labels[0, :n_a] = 1.0
    observed = difference(labels @ pooled)[0]
    # ties: permuted values equal to the observed one up to rounding count as extreme
    scale = np.maximum(np.abs(observed), np.abs(pooled).mean(axis=0))
    tolerance = 1e-9 * np.maximum(scale, np.finfo(float).tiny)
    extreme = np.zeros(observed.shape, dtype=np.int64)
    batch = max(1, min(n_permutations, _BATCH_ELEMENTS // n))
    done = 0
    while done < n_permutations:
        size = min(batch, n_permutations - done)
        order = rng.permuted(np.broadcast_to(np.arange(n), (size, n)), axis=1)
        in_a = np.zeros((size, n))
        np.put_along_axis(in_a, order[:, :n_a], 1.0, axis=1)
        permuted = difference(in_a @ pooled)  # (size, k)
        if alternative == "greater":
            hits = permuted >= observed - tolerance
        elif alternative == "less":
            hits = permuted <= observed + tolerance
        else:
            hits = np.abs(permuted) >= np.abs(observed) - tolerance
        extreme += hits.sum(axis=0)
        done += size
    return observed, (extreme + 1) / (n_permutations + 1)


def permutation_test(
    a: np.ndarray | Sequence[float],
    b: np.ndarray | Sequence[float],
    n_permutations: int = 10000,
    *,
    rng: np.random.Generator,
    alternative: Alternative = "greater",
) -> tuple[float, float]:
    """(``mean(a) - mean(b)``, permutation p-value with the +1 correction).

    ``alternative="greater"`` tests whether ``a`` is larger (e.g. boundary probability
    at real sites vs background); ``"less"`` the opposite; ``"two-sided"`` compares
    absolute differences. The smallest attainable p is ``1 / (n_permutations + 1)``.
    """
    _check_options(n_permutations, alternative, rng)
    a = _sample(a, "a", 1)[:, None]
    b = _sample(b, "b", 1)[:, None]
    observed, pvalues = _permutation_pvalues(a, b, int(n_permutations), rng, alternative)
    return float(observed[0]), float(pvalues[0])


@dataclass(frozen=True, eq=False)
class OffsetEnrichment:
    """Per-offset difference of means (sites − background), p-value and adjusted q-value."""

    offsets: np.ndarray
    difference: np.ndarray
    pvalue: np.ndarray
    qvalue: np.ndarray
    correction: str


def enrichment_at_offsets(
    windows: np.ndarray,
    background: np.ndarray,
    offsets: np.ndarray | Sequence[int],
    *,
    rng: np.random.Generator,
    n_permutations: int = 10000,
    alternative: Alternative = "greater",
    correction: Literal["bh", "holm"] = "bh",
) -> OffsetEnrichment:
    """Permutation test at every offset of (sites, offsets) vs (background, offsets) windows.

    Typically ``anchored_profile(...).windows`` for real sites and for background sites
    (same flanks). One set of label permutations serves all offsets; the p-values are
    then adjusted across offsets (``"bh"``: Benjamini–Hochberg, ``"holm"``: Holm).
    """
    _check_options(n_permutations, alternative, rng)
    if correction not in ("bh", "holm"):
        raise StatsError(f"correction must be 'bh' or 'holm', got {correction!r}")
    windows = _sample(windows, "windows", 2)
    background = _sample(background, "background", 2)
    offsets = np.asarray(offsets)
    if windows.shape[1] != background.shape[1] or offsets.shape != (windows.shape[1],):
        raise StatsError(
            f"windows {windows.shape}, background {background.shape} and offsets "
            f"{offsets.shape} must share the number of offsets; build both profiles with "
            "the same flanks"
        )
    difference, pvalues = _permutation_pvalues(
        windows, background, int(n_permutations), rng, alternative
    )
    adjust = benjamini_hochberg if correction == "bh" else holm
    return OffsetEnrichment(offsets, difference, pvalues, adjust(pvalues), correction)


def _pvalues(pvalues: np.ndarray | Sequence[float]) -> np.ndarray:
    p = np.asarray(pvalues, dtype=float)
    if p.ndim != 1:
        raise StatsError(f"p-values must be a flat list, got shape {p.shape}")
    if p.size and (not np.all(np.isfinite(p)) or p.min() < 0 or p.max() > 1):
        raise StatsError("p-values must be finite numbers in [0, 1]; drop NaNs (untested "
                         "hypotheses) before adjusting")
    return p


def benjamini_hochberg(pvalues: np.ndarray | Sequence[float]) -> np.ndarray:
    """Benjamini–Hochberg q-values, in the input order.

    ``q_(i) = min_{j >= i} p_(j) * m / j`` over the ascending p-values, clipped to 1:
    rejecting every q <= alpha controls the false discovery rate at alpha for
    independent or positively dependent tests (neighbouring offsets are the latter).
    """
    p = _pvalues(pvalues)
    m = p.size
    if m == 0:
        return p.copy()
    order = np.argsort(p, kind="stable")
    scaled = p[order] * m / np.arange(1, m + 1)
    q_sorted = np.minimum.accumulate(scaled[::-1])[::-1]
    q = np.empty(m)
    q[order] = np.minimum(q_sorted, 1.0)
    return q


def holm(pvalues: np.ndarray | Sequence[float]) -> np.ndarray:
    """Holm step-down adjusted p-values (family-wise error), in the input order.

    ``adj_(i) = max_{j <= i} (m - j + 1) * p_(j)``, clipped to 1; uniformly more powerful
    than Bonferroni and valid under any dependence.
    """
    p = _pvalues(pvalues)
    m = p.size
    if m == 0:
        return p.copy()
    order = np.argsort(p, kind="stable")
    scaled = p[order] * (m - np.arange(m))
    adjusted_sorted = np.minimum(np.maximum.accumulate(scaled), 1.0)
    adjusted = np.empty(m)
    adjusted[order] = adjusted_sorted
    return adjusted
