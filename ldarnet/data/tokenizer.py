"""Character-level DNA tokenizer (spec 3.3): A=0 C=1 G=2 T=3 N=4 [MASK]=5 [PAD]=6.

Lowercase (soft-masked repeats in hg38) is upper-cased; every other character
(IUPAC ambiguity codes, gaps, anything) becomes N. Encoding goes through a 256-entry
lookup table, so a 4 kb window or a whole chromosome encodes at memory speed.
"""

from __future__ import annotations

import numpy as np

A, C, G, T, N, MASK, PAD = range(7)
VOCAB = ("A", "C", "G", "T", "N", "[MASK]", "[PAD]")
VOCAB_SIZE = len(VOCAB)
NUCLEOTIDES = (A, C, G, T)
# The label of a position the masked-LM loss does not score (torch's cross-entropy
# default): masking writes it, the objective and the training metrics skip it.
IGNORE_INDEX = -100

_LOOKUP = np.full(256, N, dtype=np.uint8)
for _i, _base in enumerate("ACGT"):
    _LOOKUP[ord(_base)] = _i
    _LOOKUP[ord(_base.lower())] = _i
_COMPLEMENT = np.array([T, G, C, A, N, MASK, PAD], dtype=np.uint8)


def encode(sequence: str | bytes) -> np.ndarray:
    """Token ids (uint8) of a DNA string; non-ACGT characters map to N."""
    raw = sequence.encode("latin-1", "replace") if isinstance(sequence, str) else sequence
    return _LOOKUP[np.frombuffer(raw, dtype=np.uint8)]


def decode(ids: np.ndarray) -> str:
    """String of a token-id array ([MASK]/[PAD] spelled out)."""
    return "".join(VOCAB[int(i)] for i in np.asarray(ids).ravel())


def reverse_complement(ids: np.ndarray) -> np.ndarray:
    """Reverse complement in token space (A<->T, C<->G, N, [MASK], [PAD] unchanged)."""
    return _COMPLEMENT[np.asarray(ids)[..., ::-1]]
