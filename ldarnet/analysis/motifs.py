"""Promoter-motif sites on both strands: JASPAR position weight matrices and IUPAC patterns.

The authors' release located motifs by exact strings (``TATAAA``, ``CCAAT``, ``GCCGCC``)
on the forward strand only, with an Inr pattern ``YYCNTYY`` that is not the Inr
consensus (spec 5.3). A boundary analysis that wants to say "the router cuts at TATA
boxes" needs the accepted definitions of the sites instead:

* **PWMs** from JASPAR (the CORE matrices shipped with pyjaspar, read offline), scored
  as log-odds in bits against a genomic background, on both strands;
* **IUPAC consensus patterns** (``TATAWAWR``, ``CCAAT``, ``GGGCGG``, the canonical Inr
  ``YYANWYY``), also on both strands, for the sites that have no good matrix and for
  comparing with the release.

Coordinates are 0-based half-open on the forward strand for both strands; a
minus-strand hit ``[start, end)`` is the reverse complement of the motif there, and its
first base in transcript orientation is ``end - 1`` (:attr:`Hit.anchor`). A window that
contains an ``N`` never matches (a PWM scores it ``-inf``; a pattern position never
accepts ``N``), because an unknown base is no evidence for a site.
"""

from __future__ import annotations

import difflib
import re
import warnings
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from ldarnet.analysis.shuffle import check_sequence
from ldarnet.data.tokenizer import encode
from ldarnet.foundation.errors import InputError

#: genome-wide base frequencies of hg38 (A, C, G, T), rounded; the default background
HG38_BACKGROUND = (0.3, 0.2, 0.2, 0.3)


class MotifError(InputError):
    """A motif that cannot be loaded or used (unknown id, bad pattern, bad parameters)."""


@dataclass(frozen=True)
class MotifSpec:
    """One promoter element to scan: its JASPAR matrix (pinned version) and consensus."""

    element: str  # the promoter element, e.g. "TATA box"
    matrix_id: str  # versioned JASPAR id, e.g. "MA0108.3"
    tf: str  # the JASPAR matrix name (transcription factor)
    consensus: str  # IUPAC consensus used by scan_pattern for the same element


#: The JASPAR release every matrix is read from. Passed explicitly to pyjaspar, whose
#: default is the newest release it ships and so moves with the pyjaspar version; pyjaspar
#: itself is pinned in pyproject.toml, so the recorded release is the one the analysis read.
JASPAR_RELEASE = "JASPAR2026"

#: Promoter elements with a JASPAR CORE matrix. Versions are pinned (the latest in the
#: JASPAR2026 release pyjaspar ships) so that results never change with a pyjaspar update;
#: JASPAR never edits a versioned matrix, it adds a new version.
PROMOTER_MOTIFS: dict[str, MotifSpec] = {
    "TATA": MotifSpec("TATA box", "MA0108.3", "TBP", "TATAWAWR"),
    "CCAAT": MotifSpec("CCAAT box", "MA0060.4", "NFYA", "CCAAT"),
    "GC": MotifSpec("GC box", "MA0079.5", "SP1", "GGGCGG"),
}

#: IUPAC consensus patterns. ``Inr`` is the canonical initiator YYANWYY (A at the TSS,
#: +1), not the release's ``YYCNTYY``.
CONSENSUS_PATTERNS: dict[str, str] = {
    "TATA": "TATAWAWR",
    "CCAAT": "CCAAT",
    "GC": "GGGCGG",
    "Inr": "YYANWYY",
}

IUPAC: dict[str, str] = {
    "A": "A", "C": "C", "G": "G", "T": "T",
    "R": "AG", "Y": "CT", "S": "CG", "W": "AT", "K": "GT", "M": "AC",
    "B": "CGT", "D": "AGT", "H": "ACT", "V": "ACG", "N": "ACGT",
}
_IUPAC_COMPLEMENT = str.maketrans("ACGTRYSWKMBDHVN", "TGCAYRSWMKVHDBN")


@dataclass(frozen=True)
class Hit:
    """A motif occurrence: forward-strand ``[start, end)``, strand, score (None: pattern)."""

    start: int
    end: int
    strand: str
    score: float | None = None

    @property
    def anchor(self) -> int:
        """The motif's first base in its own orientation (``end - 1`` on the minus strand)."""
        return self.start if self.strand == "+" else self.end - 1


@dataclass(frozen=True, eq=False)
class PWM:
    """A log-odds position weight matrix: ``log_odds[j, b]`` in bits, bases ordered A C G T.

    ``counts`` are the raw site counts it was made from; ``probabilities`` add the
    pseudocount to every cell and normalise each column; ``log_odds = log2(p / bg)``.
    """

    matrix_id: str
    name: str
    counts: np.ndarray
    probabilities: np.ndarray
    log_odds: np.ndarray
    background: tuple[float, float, float, float]
    pseudocount: float
    release: str | None = None

    @property
    def length(self) -> int:
        return int(self.log_odds.shape[0])

    def consensus(self) -> str:
        """The highest-scoring base of each column (a quick sanity check of a matrix)."""
        return "".join("ACGT"[i] for i in self.log_odds.argmax(axis=1))


def _check_background(background: tuple[float, ...]) -> tuple[float, float, float, float]:
    bg = np.asarray(background, dtype=float)
    if bg.shape != (4,) or not np.all(np.isfinite(bg)) or np.any(bg <= 0):
        raise MotifError(
            f"background must be 4 positive frequencies for A, C, G, T, got {background!r}"
        )
    if abs(bg.sum() - 1.0) > 1e-6:
        raise MotifError(f"background frequencies must sum to 1, got {bg.sum():.6g} "
                         f"for {background!r}")
    return (float(bg[0]), float(bg[1]), float(bg[2]), float(bg[3]))


def pwm_from_counts(
    counts: np.ndarray,
    matrix_id: str = "custom",
    name: str = "custom",
    pseudocount: float = 0.5,
    background: tuple[float, ...] = HG38_BACKGROUND,
    release: str | None = None,
) -> PWM:
    """A :class:`PWM` from a (length, 4) count matrix (columns A, C, G, T).

    The pseudocount is added to every cell before normalising, so a base never seen at a
    position costs a large but finite penalty instead of making every window containing
    it impossible (JASPAR counts come from a few hundred sites at most).
    """
    counts = np.array(counts, dtype=float)
    if counts.ndim != 2 or counts.shape[1] != 4 or counts.shape[0] == 0:
        raise MotifError(f"counts must have shape (length, 4) for A, C, G, T, got "
                         f"{counts.shape}")
    if not np.all(np.isfinite(counts)) or np.any(counts < 0):
        raise MotifError(f"counts of {matrix_id} must be finite and non-negative")
    if not np.isfinite(pseudocount) or pseudocount <= 0:
        raise MotifError(f"pseudocount must be > 0 (0.5 is usual), got {pseudocount!r}")
    bg = _check_background(background)
    padded = counts + pseudocount
    probabilities = padded / padded.sum(axis=1, keepdims=True)
    log_odds = np.log2(probabilities / np.asarray(bg))
    for array in (counts, probabilities, log_odds):
        array.setflags(write=False)
    return PWM(matrix_id, name, counts, probabilities, log_odds, bg, float(pseudocount),
               release)


@lru_cache(maxsize=4)
def _jaspar(release: str | None) -> Any:
    """The pyjaspar database (imported lazily: only motif loading needs it)."""
    from pyjaspar import jaspardb

    return jaspardb() if release is None else jaspardb(release=release)


_MATRIX_ID = re.compile(r"^(?P<base>[A-Z]{2}\d{4})\.(?P<version>\d+)$")


def _similar_ids(db: Any, matrix_id: str) -> list[str]:
    """Versioned ids in the database whose base id or TF name resembles ``matrix_id``."""
    rows = db.conn.execute("SELECT BASE_ID, VERSION, NAME FROM MATRIX").fetchall()
    labels = {f"{base}.{version}": name for base, version, name in rows}
    query = matrix_id.upper()
    base = query.split(".")[0]
    same_base = sorted(i for i in labels if i.split(".")[0] == base)
    by_id = difflib.get_close_matches(query, list(labels), n=5, cutoff=0.6)
    by_name = [i for i, n in labels.items() if n.upper() == query]
    by_name += [
        i for n in difflib.get_close_matches(query, {n.upper() for n in labels.values()},
                                             n=3, cutoff=0.7)
        for i, m in labels.items() if m.upper() == n
    ]
    seen: dict[str, None] = {}
    for i in [*same_base, *by_name, *by_id]:
        seen.setdefault(f"{i} ({labels[i]})", None)
    return list(seen)[:10]


def jaspar_pwm(
    matrix_id: str,
    pseudocount: float = 0.5,
    background: tuple[float, ...] = HG38_BACKGROUND,
    release: str | None = JASPAR_RELEASE,
) -> PWM:
    """The log-odds PWM of a versioned JASPAR matrix id (e.g. ``"MA0108.3"``), offline.

    Reads the SQLite database shipped inside pyjaspar, release :data:`JASPAR_RELEASE`
    unless another is given (``None``: pyjaspar's own default, which differs between
    pyjaspar versions). The version is required so that an
    analysis never silently changes matrix when a newer version appears. An id that is
    absent raises :class:`MotifError` listing similar ids and TF names.
    """
    if not isinstance(matrix_id, str) or not _MATRIX_ID.match(matrix_id):
        db = _jaspar(release)
        hint = _similar_ids(db, str(matrix_id))
        raise MotifError(
            f"JASPAR id {matrix_id!r} is not a versioned matrix id like 'MA0108.3'; "
            f"give the version explicitly. Similar entries in {db.release}: "
            f"{', '.join(hint) or 'none'}"
        )
    db = _jaspar(release)
    with warnings.catch_warnings():  # pyjaspar warns and returns None for unknown ids
        warnings.simplefilter("ignore")
        motif = db.fetch_motif_by_id(matrix_id)
    if motif is None:
        hint = _similar_ids(db, matrix_id)
        raise MotifError(
            f"JASPAR id {matrix_id!r} is not in {db.release}; similar entries: "
            f"{', '.join(hint) or 'none'}"
        )
    counts = np.array([[motif.counts[b][j] for b in "ACGT"] for j in range(motif.length)])
    return pwm_from_counts(counts, motif.matrix_id, motif.name, pseudocount, background,
                           release=db.release)


def relative_threshold(pwm: PWM, fraction: float) -> float:
    """``min + fraction * (max - min)`` of the PWM's possible scores (the usual "80 %").

    A relative threshold transfers between matrices of different lengths and
    information content, which an absolute bit score does not.
    """
    if not isinstance(pwm, PWM):
        raise MotifError(f"relative_threshold needs a PWM, got {type(pwm).__name__}")
    if not 0.0 <= fraction <= 1.0:
        raise MotifError(f"fraction must be in [0, 1] (e.g. 0.8), got {fraction!r}")
    low = float(pwm.log_odds.min(axis=1).sum())
    high = float(pwm.log_odds.max(axis=1).sum())
    return low + fraction * (high - low)


def _window_scores(ids: np.ndarray, table: np.ndarray) -> np.ndarray:
    """Score of every window: ``sum_j table[j, ids[start + j]]``, vectorised over windows.

    ``table`` has a fifth column for N (``-inf``). The loop runs over the motif's
    columns (tens), each step a gather over all windows at once, so memory stays
    O(windows) even for a whole chromosome.
    """
    length = table.shape[0]
    n_windows = ids.size - length + 1
    scores = np.zeros(n_windows)
    for j in range(length):
        scores += table[j, ids[j:j + n_windows]]
    return scores


def scan_pwm(seq: str, pwm: PWM, threshold: float) -> list[Hit]:
    """All windows of ``seq`` scoring ``>= threshold`` bits, on both strands, sorted.

    Minus-strand scores are those of the reverse complement of the window, i.e. the
    forward scan with the reverse-complemented matrix. Windows with an N are skipped.
    """
    check_sequence(seq)
    if not isinstance(pwm, PWM):
        raise MotifError(f"scan_pwm needs a PWM (jaspar_pwm or pwm_from_counts), got "
                         f"{type(pwm).__name__}")
    if not np.isfinite(threshold):
        raise MotifError(f"threshold must be a finite score in bits, got {threshold!r}; "
                         "relative_threshold(pwm, 0.8) gives a usual one")
    if len(seq) < pwm.length:
        return []
    ids = encode(seq)
    n_column = np.full((pwm.length, 1), -np.inf)
    forward = np.hstack([pwm.log_odds, n_column])
    # reverse complement: reverse the columns' order and swap A<->T, C<->G (reverse ACGT)
    reverse = np.hstack([pwm.log_odds[::-1, ::-1], n_column])
    hits: list[Hit] = []
    for strand, table in (("+", forward), ("-", reverse)):
        scores = _window_scores(ids, table)
        for start in np.flatnonzero(scores >= threshold):
            hits.append(Hit(int(start), int(start) + pwm.length, strand, float(scores[start])))
    hits.sort(key=_hit_order)
    return hits


def _hit_order(hit: Hit) -> tuple[int, str]:
    return hit.start, hit.strand


def _pattern_mask(pattern: str) -> np.ndarray:
    """(length, 5) boolean table: may pattern position j hold token id b (N never)."""
    mask = np.zeros((len(pattern), 5), dtype=bool)
    for j, letter in enumerate(pattern):
        for base in IUPAC[letter]:
            mask[j, "ACGT".index(base)] = True
    return mask


def scan_pattern(seq: str, iupac: str) -> list[Hit]:
    """All (overlapping) occurrences of an IUPAC pattern on both strands, sorted.

    A minus-strand hit at ``[start, end)`` means the reverse complement of
    ``seq[start:end]`` matches the pattern. A reverse-complement-palindromic pattern
    (e.g. ``CACGTG``) therefore reports every site twice, once per strand.
    """
    check_sequence(seq)
    if not isinstance(iupac, str) or not iupac:
        raise MotifError(f"pattern must be a non-empty IUPAC string, got {iupac!r}")
    pattern = iupac.upper()
    bad = sorted({c for c in pattern if c not in IUPAC})
    if bad:
        raise MotifError(f"pattern {iupac!r} has non-IUPAC letter(s) {bad}; use "
                         f"{''.join(IUPAC)}")
    if len(seq) < len(pattern):
        return []
    ids = encode(seq)
    n_windows = ids.size - len(pattern) + 1
    hits: list[Hit] = []
    reverse = pattern.translate(_IUPAC_COMPLEMENT)[::-1]
    for strand, motif in (("+", pattern), ("-", reverse)):
        mask = _pattern_mask(motif)
        ok = np.ones(n_windows, dtype=bool)
        for j in range(len(motif)):
            ok &= mask[j, ids[j:j + n_windows]]
        hits.extend(Hit(int(s), int(s) + len(motif), strand) for s in np.flatnonzero(ok))
    hits.sort(key=_hit_order)
    return hits
