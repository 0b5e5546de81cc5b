"""The release's splice view: boundary profiles around the midpoint of splice-task sequences.

The release (spec 5.3, ``fig2_splice_profiles.png``) centred its splice profiles on the
midpoint ``len(seq) // 2`` of the NT splice test sequences, assuming the junction sits
there, and compared label-1 with label-0 sequences by eye. This module keeps that anchor,
so the view is comparable, and adds what the release lacked: every test sequence (not the
first 80), SEM with the sample standard deviation, and a two-sided permutation test of
every site class against the non-site class at the offsets near 0 (Benjamini–Hochberg
across those offsets; :mod:`ldarnet.analysis.stats`).

Anchor: offset 0 is the cut before index ``len(seq) // 2`` (the sequences are already in
transcript orientation, so no strand flip). In the demo's GENCODE-derived tasks
(:mod:`ldarnet.tasks.derived`) that index is exactly the first intron base of a donor
(exon|GT) or the first exon base of an acceptor (AG|exon): the cut at offset 0 *is* the
junction. For NT's data it is the release's assumption.

Classes: label ``0`` is taken as the non-site class and every other class is compared
with it. The derived demo tasks use 0 = decoy, 1 = site (two classes) and 0 = neither,
1 = donor, 2 = acceptor (splice_sites_all); :mod:`ldarnet.tasks.derived` states that
NT's splice_sites_all uses the same labels, which is not verified here, so the class label
is kept next to its name in every output.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ldarnet.analysis.profiles import Profile, anchored_profile
from ldarnet.analysis.results import AnchoredAnalysis, Curve, ProfileFigure
from ldarnet.analysis.stats import enrichment_at_offsets
from ldarnet.foundation.errors import InputError

# class names per splice task (label -> what it is), see the module docstring
SITE_CLASSES = {
    "splice_sites_donors": {"0": "non-site", "1": "donor"},
    "splice_sites_acceptors": {"0": "non-site", "1": "acceptor"},
    "splice_sites_all": {"0": "non-site", "1": "donor", "2": "acceptor"},
}
SPLICE_TASKS = tuple(SITE_CLASSES)


class MidpointError(InputError):
    """Splice-task sequences that cannot be profiled (the message says what and where)."""


@dataclass
class MidpointResult:
    """Profiles per (task, class), statistics rows, and the anchor index per task."""

    profiles: dict[tuple[str, str], Profile]
    stats: list[dict]
    anchors: dict[str, list[int]]


def class_name(task: str, label: str) -> str:
    """'donor (1)' style names for the known splice tasks, the label itself otherwise."""
    name = SITE_CLASSES.get(task, {}).get(label)
    return f"{name} ({label})" if name else label


def splice_midpoint(
    rows: list[tuple[str, str, str]], segment: Callable[[str], np.ndarray],
    flank_left: int = 120, flank_right: int = 119, test_flank: int = 10,
    n_permutations: int = 10000, seed: int = 0,
) -> MidpointResult:
    """Midpoint-anchored profiles per task and class, and site-vs-non-site tests.

    ``rows`` are (task, class label, sequence) as read by
    :func:`ldarnet.analysis.density.read_labelled_sequences`; ``segment(seq)`` returns
    the boundary probability of every base. Sequences shorter than the window are
    skipped (counted as ``n_skipped`` in the profile). Tests run at offsets
    ``-test_flank … +test_flank``.
    """
    if test_flank > min(flank_left, flank_right):
        raise MidpointError(f"test_flank {test_flank} must lie inside the profile window "
                            f"(-{flank_left} … +{flank_right})")
    rng = np.random.default_rng(seed)
    by_class: dict[tuple[str, str], list[np.ndarray]] = {}
    anchors: dict[str, list[int]] = {}
    for task, label, seq in rows:
        p = np.asarray(segment(seq), dtype=np.float64)
        if p.shape != (len(seq),):
            raise MidpointError(f"segmenting a {len(seq)} bp {task} sequence gave shape "
                                f"{p.shape}; expected one value per base")
        by_class.setdefault((task, label), []).append(p)
        anchors.setdefault(task, []).append(len(seq) // 2)
    profiles: dict[tuple[str, str], Profile] = {}
    for (task, label), values in by_class.items():
        # sequences whose window fits around the midpoint, laid end to end: each window
        # then lies inside its own sequence
        fits = [v for v in values
                if v.size // 2 - flank_left >= 0 and v.size // 2 + flank_right < v.size]
        signal = np.concatenate(fits) if fits else np.zeros(1)
        starts = np.cumsum([0] + [v.size for v in fits[:-1]])
        mids = [int(s) + v.size // 2 for s, v in zip(starts, fits, strict=True)]
        prof = anchored_profile(signal, mids, ["+"] * len(mids), flank_left, flank_right,
                                cuts=True)
        profiles[(task, label)] = Profile(prof.offsets, prof.mean, prof.sem, prof.n,
                                          len(values) - len(fits), prof.windows, prof.used)
    stats: list[dict] = []
    near = slice(flank_left - test_flank, flank_left + test_flank + 1)
    for task in sorted({t for t, _ in profiles}):
        labels = sorted(label for t, label in profiles if t == task)
        if len(labels) < 2:
            continue
        reference = "0" if "0" in labels else labels[0]
        base = profiles[(task, reference)]
        for label in labels:
            site = profiles[(task, label)]
            if label == reference or site.n < 2 or base.n < 2:
                continue
            offsets = site.offsets[near]
            test = enrichment_at_offsets(site.windows[:, near], base.windows[:, near], offsets,
                                         rng=rng, n_permutations=n_permutations,
                                         alternative="two-sided")
            stats += [{"task": task, "sites": class_name(task, label),
                       "versus": class_name(task, reference), "signal": "p",
                       "offset": int(o), "site_mean": float(site.mean[near][i]),
                       "versus_mean": float(base.mean[near][i]),
                       "difference": float(test.difference[i]),
                       "p_value": float(test.pvalue[i]), "q_value": float(test.qvalue[i]),
                       "n_sites": site.n, "n_versus": base.n}
                      for i, o in enumerate(offsets)]
    return MidpointResult(profiles=profiles, stats=stats, anchors=anchors)


def run_splice_midpoint(model_path: str | Path, tables: list[str | Path],
                        flank_left: int = 120, flank_right: int = 119, test_flank: int = 10,
                        n_permutations: int = 10000, seed: int = 0,
                        device: str = "cpu") -> AnchoredAnalysis:
    """Segment the splice tasks' test sequences with the model; profiles, statistics, figure
    data."""
    import torch

    from ldarnet.analysis.density import read_labelled_sequences
    from ldarnet.analysis.segment import segment_tokens
    from ldarnet.data.tokenizer import encode
    from ldarnet.model.pretrained import load_pretrained

    if not tables:
        raise MidpointError("no splice task test split given; configure a splice task "
                            f"({', '.join(SPLICE_TASKS)}) among `tasks`")
    rows = [r for table in tables for r in read_labelled_sequences(table)]
    model = load_pretrained(model_path, device)

    def segment(seq: str) -> np.ndarray:
        # one forward pass per sequence, as the density analysis does (the release's view)
        p, _ = segment_tokens(model, encode(seq), tile=max(len(seq), 64), margin=0)
        return p

    with torch.no_grad():
        result = splice_midpoint(rows, segment, flank_left, flank_right, test_flank,
                                 n_permutations, seed)
    profile_rows = []
    for (task, label), prof in sorted(result.profiles.items()):
        profile_rows += [{"task": task, "class": class_name(task, label), "offset": int(o),
                          "mean": float(m), "sem": float(s), "n": prof.n}
                         for o, m, s in zip(prof.offsets, prof.mean, prof.sem, strict=True)]
    panels = {}
    for task in sorted(result.anchors):
        mids = sorted(set(result.anchors[task]))
        where = f"index {mids[0]}" if len(mids) == 1 else "index len//2"
        panels[f"{task} (0 = cut before {where})"] = [
            Curve(class_name(task, label), prof.offsets, prof.mean, prof.sem, prof.n)
            for (t, label), prof in sorted(result.profiles.items()) if t == task]
    figure = ProfileFigure(
        panels, "Boundary probability around the midpoint of splice-task test sequences",
        xlabel="offset from the sequence midpoint (nt; 0 = cut before len//2)")
    summary = {"tasks": {task: {"sequences": len(a), "anchor_index": sorted(set(a))}
                         for task, a in result.anchors.items()},
        "flank": [flank_left, flank_right], "test_offsets": [-test_flank, test_flank],
        "permutations": n_permutations,
        "offset0": [r for r in result.stats if r["offset"] == 0]}
    return AnchoredAnalysis("midpoint", profile_rows, result.stats, figure, summary)
