"""Every table and figure of the paper, drawn from finished results.

Evaluation tables and figures, the ablation table, the boundary analyses' files and
figures (the analyses return data; :mod:`boundary_figures` writes and draws it), the
locus figure, training curves and the claims table (paper vs release vs this run).
"""
