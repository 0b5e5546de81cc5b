"""The network: LDARNet assembled from its components, as the paper draws it.

:mod:`ldarnet` (embedding → stage 0 → LM head), :mod:`stage` (one level of the hierarchy:
encoder → routing → chunk → inner stage → dechunk → decoder), :mod:`dynamic_chunking`
(all of the learned tokenizer, in paper order), and the components of the stacks:
:mod:`stack`, :mod:`bimamba`, :mod:`mamba2`, :mod:`ssd`, :mod:`conv`, :mod:`attention`,
:mod:`rotary`, :mod:`mlp`, :mod:`norm`, :mod:`init`. Parameter names are the release's, so
its checkpoint maps key to key.
"""
