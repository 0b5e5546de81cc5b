"""Interoperability: the authors' released checkpoint in, embeddings and Hub-style exports out.

One module per concept: :mod:`release_checkpoint` (import of the release's ``torch.save``
file), :mod:`embed` (per-sequence embeddings of a FASTA), :mod:`hf_export` (a
HuggingFace-style directory with a model card), :mod:`outdir` (all-or-nothing output
directories) and :mod:`errors`. Kept apart from the model package so that the model
never depends on file formats of other code bases.
"""
