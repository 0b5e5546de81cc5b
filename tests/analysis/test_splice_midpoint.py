"""The release's midpoint view of the splice tasks, on a stub segmenter with known boundaries."""

from __future__ import annotations

import numpy as np
import pytest

from ldarnet.analysis.splice_midpoint import MidpointError, splice_midpoint


def _rows(rng: np.random.Generator, n: int, length: int = 600) -> list[tuple[str, str, str]]:
    rows = []
    for label in ("0", "1"):
        for _ in range(n):
            rows.append(("splice_sites_donors", label, "".join(rng.choice(list("ACGT"), length))))
    return rows


def _stub(planted: set[str], rng: np.random.Generator):
    """p ~ U(0, 0.4); sequences in ``planted`` get a boundary (0.95) at index len//2."""
    def segment(seq: str) -> np.ndarray:
        p = rng.uniform(0, 0.4, len(seq))
        if seq in planted:
            p[len(seq) // 2] = 0.95
        return p
    return segment


def test_boundaries_at_the_centre_of_sites_are_found() -> None:
    rng = np.random.default_rng(0)
    rows = _rows(rng, 30)
    sites = {seq for _, label, seq in rows if label == "1"}
    rows.append(("splice_sites_donors", "1", "ACGT" * 20))  # too short for the window
    result = splice_midpoint(rows, _stub(sites, rng), flank_left=120, flank_right=119,
                             test_flank=10, n_permutations=2000, seed=0)
    assert result.anchors["splice_sites_donors"][0] == 300
    stats = {r["offset"]: r for r in result.stats}
    assert sorted(stats) == list(range(-10, 11))
    assert stats[0]["sites"] == "donor (1)" and stats[0]["versus"] == "non-site (0)"
    assert stats[0]["difference"] > 0.5 and stats[0]["q_value"] < 0.05
    # elsewhere only chance: at most a stray one among the 20 other offsets (FDR 5 %)
    assert sum(stats[o]["q_value"] < 0.05 for o in stats if o != 0) <= 1
    assert max(stats, key=lambda o: stats[o]["difference"]) == 0
    site = result.profiles[("splice_sites_donors", "1")]
    assert (site.n, site.n_skipped) == (30, 1)
    assert site.offsets[np.argmax(site.mean)] == 0
    assert site.offsets[0] == -120 and site.offsets[-1] == 119  # the release's window


def test_no_planted_signal_gives_no_difference() -> None:
    rng = np.random.default_rng(1)
    result = splice_midpoint(_rows(rng, 30), _stub(set(), rng), n_permutations=2000, seed=0)
    assert len([r for r in result.stats if r["q_value"] < 0.05]) <= 1


def test_test_offsets_must_lie_in_the_window() -> None:
    with pytest.raises(MidpointError, match="test_flank 50"):
        splice_midpoint([], lambda s: np.zeros(len(s)), flank_left=20, flank_right=20,
                        test_flank=50)
