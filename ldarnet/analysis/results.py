"""What a boundary analysis returns: its tables, its figure's data and its summary.

The analyses compute; they neither draw nor write. Every anchored-profile analysis
(splice junctions, promoter motifs, start codons, splice-task midpoints) ends the same
way - profile rows, statistics rows, panels of curves, an offset-0 summary - so it
returns one :class:`AnchoredAnalysis`, and
:func:`ldarnet.report.boundary_figures.write_anchored_analysis` writes the files of all
four in one place (``<name>_profiles.tsv``, ``<name>_stats.tsv``,
``<name>_profiles.png``, ``<name>_summary.json``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Curve:
    """One profile to draw: mean and SEM per offset, with its label and sample size."""

    label: str
    offsets: np.ndarray
    mean: np.ndarray
    sem: np.ndarray
    n: int


@dataclass(frozen=True)
class ProfileFigure:
    """The panels of an anchored-profile figure (one per anchor kind), title and x label."""

    panels: dict[str, list[Curve]]
    title: str
    xlabel: str | None = None  # None: the figure's default ("offset from anchor ...")


@dataclass(frozen=True)
class BoundaryLogo:
    """Sequence and hard boundaries (same length) whose neighbourhoods make a logo."""

    sequence: str
    boundary: np.ndarray


@dataclass(frozen=True)
class AnchoredAnalysis:
    """Result of one anchored-profile analysis, ready to be written by the report layer."""

    name: str  # file prefix: splice, motif, midpoint, start_codon
    profiles: list[dict]
    stats: list[dict]
    figure: ProfileFigure | None
    summary: dict
    logo: BoundaryLogo | None = field(default=None)
