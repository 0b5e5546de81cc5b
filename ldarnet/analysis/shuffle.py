"""Dinucleotide-preserving sequence shuffles for "is it the motif or its context?" controls.

A control sequence for a boundary profile must keep what a DNA language model reacts to
most strongly besides the motif itself: base composition *and* nearest-neighbour
structure (CpG depletion, poly-A runs, GC skew). The authors' release shuffled the list
of overlapping 2-mers and glued them together, which keeps the letters of ``seq[1:]``
but not the 16 dinucleotide counts (spec 5.3, Fig. 4), so its control is weaker than
claimed. Here the shuffle is the exact Altschul–Erickson construction, in the graph
form of Kandel et al. (1996):

1. the sequence is a walk through a multigraph whose vertices are the letters and whose
   edges are the ``n - 1`` overlapping dinucleotides; a sequence with the same first
   letter and the same dinucleotide counts is exactly an Euler path of that multigraph
   starting at the first letter (it then necessarily ends at the last letter);
2. an Euler path is fixed by, for every vertex but the final one, the *last* edge used
   to leave it (these last edges form a spanning arborescence directed to the final
   vertex) plus an ordering of the remaining out-edges of every vertex;
3. the arborescence is drawn with Wilson's loop-erased random walk, stepping along an
   out-edge with probability proportional to its multiplicity; this makes every
   distinct shuffled sequence exactly equally likely (a sequence's number of
   orderings is proportional to the product of the chosen edges' multiplicities,
   which the walk's probabilities cancel);
4. the other out-edges of every vertex are permuted at random and the path is read off.

``N`` is simply a fifth letter, so N runs stay attached to their neighbours' counts.
"""

from __future__ import annotations

from itertools import pairwise

import numpy as np

from ldarnet.foundation.errors import InputError

ALPHABET = "ACGTN"
_DELETE_ALPHABET = {ord(c): None for c in ALPHABET}


class SequenceError(InputError):
    """A sequence that the analysis cannot use as given (wrong letters, bad coordinates)."""


def check_sequence(seq: str, what: str = "sequence") -> None:
    """Raise :class:`SequenceError` unless ``seq`` is a str of uppercase A, C, G, T, N.

    The analysis is strict on purpose: lowercase (soft-masked) bases or IUPAC codes
    silently treated as something else would shift motif counts, so the caller decides
    (``seq.upper()``, or map ambiguity codes to N) and says so.
    """
    if not isinstance(seq, str):
        raise SequenceError(f"{what} must be a str, got {type(seq).__name__}")
    bad = seq.translate(_DELETE_ALPHABET)
    if bad:
        at = next(i for i, c in enumerate(seq) if c not in ALPHABET)
        raise SequenceError(
            f"{what} has {seq[at]!r} at position {at}; only uppercase A, C, G, T, N are "
            "accepted: upper-case soft-masked bases (seq.upper()) and map other IUPAC "
            "codes to N first"
        )


def dinucleotide_shuffle(seq: str, rng: np.random.Generator) -> str:
    """A uniformly random sequence with ``seq``'s first/last letter and dinucleotide counts.

    Sequences of length 0, 1 and 2 have exactly one such sequence (themselves) and are
    returned unchanged; so are sequences whose Euler path is unique (e.g. ``AAAA``).
    The result depends only on ``seq`` and the state of ``rng``.
    """
    check_sequence(seq)
    if not isinstance(rng, np.random.Generator):
        raise SequenceError(
            f"rng must be a numpy.random.Generator (numpy.random.default_rng(seed)), "
            f"got {type(rng).__name__}"
        )
    if len(seq) <= 2:
        return seq

    # out-edges of every letter, as the list of successor letters (a multiset)
    successors: dict[str, list[str]] = {}
    for left, right in pairwise(seq):
        successors.setdefault(left, []).append(right)
    final = seq[-1]

    # Wilson's algorithm: a random arborescence of last exits directed to ``final``.
    last_exit: dict[str, str] = {}
    in_tree = {final}
    for start in successors:
        walk_next: dict[str, str] = {}
        vertex = start
        while vertex not in in_tree:
            options = successors[vertex]
            walk_next[vertex] = options[int(rng.integers(len(options)))]  # loops overwrite
            vertex = walk_next[vertex]
        vertex = start
        while vertex not in in_tree:  # retrace the loop-erased path into the tree
            in_tree.add(vertex)
            last_exit[vertex] = walk_next[vertex]
            vertex = walk_next[vertex]

    # every vertex leaves through a random order of its other edges, then its last exit
    exits: dict[str, list[str]] = {}
    for vertex, options in successors.items():
        rest = list(options)
        if vertex in last_exit:
            rest.remove(last_exit[vertex])
        order = [rest[i] for i in rng.permutation(len(rest))]
        if vertex in last_exit:
            order.append(last_exit[vertex])
        order.reverse()  # pop() from the end is O(1)
        exits[vertex] = order

    out = [seq[0]]
    vertex = seq[0]
    for _ in range(len(seq) - 1):
        vertex = exits[vertex].pop()
        out.append(vertex)
    return "".join(out)


def insert_motif(seq: str, motif: str, position: int) -> str:
    """``seq`` with ``motif`` written over ``seq[position:position + len(motif)]``.

    Overwriting (rather than inserting) keeps the length, so a profile re-anchored at
    ``position`` in the control has the same flanks as the native one. This is how the
    "shuffle, then put the motif back" control is built; note that it changes the
    dinucleotides at and inside the motif, exactly as it should.
    """
    check_sequence(seq)
    check_sequence(motif, "motif")
    if isinstance(position, bool) or not isinstance(position, int | np.integer):
        raise SequenceError(f"position must be an int, got {type(position).__name__}")
    if not 0 <= position <= len(seq) - len(motif):
        raise SequenceError(
            f"motif of length {len(motif)} at position {position} does not fit in a "
            f"sequence of length {len(seq)}; position must be in 0..{len(seq) - len(motif)}"
        )
    position = int(position)
    return seq[:position] + motif + seq[position + len(motif):]
