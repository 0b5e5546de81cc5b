"""Analyses of what a trained LDARNet's learned tokenizer does to real DNA.

Two paths, both ending in data that :mod:`ldarnet.report` writes and draws:

* **track-based**: :mod:`segment` runs the model once over a genome and writes its
  boundary tracks (bedGraph of p, BED of boundaries); :mod:`splice_alignment` and
  :mod:`start_codon_alignment` read those tracks (:mod:`tracks`) with the annotation.
* **model-based**: :mod:`motif_alignment` (promoters and their shuffled controls),
  :mod:`splice_midpoint` and :mod:`density` (task sequences) segment what they need with
  the model themselves, through the same stage-0 routing (:func:`segment.segment_tokens`).

The anchored analyses return an :class:`~results.AnchoredAnalysis`; the primitives they
share are :mod:`profiles`, :mod:`stats`, :mod:`shuffle`, :mod:`junctions`, :mod:`motifs`
and :mod:`start_codons`. None of them trains a model or draws.
"""
