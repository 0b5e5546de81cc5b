"""The report layer writes what the boundary analyses return: files, figures, summary."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from ldarnet.analysis.results import AnchoredAnalysis, BoundaryLogo, Curve, ProfileFigure
from ldarnet.report.boundary_figures import (
    plot_boundary_logo,
    plot_density,
    write_anchored_analysis,
)
from ldarnet.report.training_plots import plot_boundaries, plot_curves

PNG = b"\x89PNG\r\n\x1a\n"


def _curve(label: str, n: int = 12) -> Curve:
    offsets = np.arange(-3, 4)
    return Curve(label, offsets, np.linspace(0.1, 0.4, offsets.size), np.full(offsets.size, 0.02),
                 n)


def _analysis(figure: bool = True, logo: bool = False) -> AnchoredAnalysis:
    rows = [{"set": "native", "offset": o, "mean": 0.1 * o, "n": 12} for o in (-1, 0, 1)]
    stats = [{"offset": 0, "difference": 0.05, "p_value": 0.01}]
    panels = {"donors": [_curve("junctions"), _curve("decoys")]}
    return AnchoredAnalysis(
        "splice", rows, stats,
        ProfileFigure(panels, "a title", xlabel="offset") if figure else None,
        {"offset0": stats, "flank": 3},
        logo=BoundaryLogo("ACGTACGTACGTACGTACGTACGT", np.arange(24) % 5 == 0) if logo else None)


def _tsv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle, delimiter="\t"))


def test_anchored_analysis_files(tmp_path: Path) -> None:
    out = tmp_path / "nested" / "dir"
    summary = write_anchored_analysis(_analysis(), out)
    assert summary == {"offset0": [{"offset": 0, "difference": 0.05, "p_value": 0.01}],
                       "flank": 3}
    assert json.loads((out / "splice_summary.json").read_text()) == summary
    assert [r["offset"] for r in _tsv(out / "splice_profiles.tsv")] == ["-1", "0", "1"]
    assert _tsv(out / "splice_stats.tsv")[0]["p_value"] == "0.01"
    assert (out / "splice_profiles.png").read_bytes().startswith(PNG)
    assert not (out / "boundary_logo.png").exists()
    assert sorted(p.name for p in out.iterdir()) == [
        "splice_profiles.png", "splice_profiles.tsv", "splice_stats.tsv", "splice_summary.json"]


def test_anchored_analysis_without_figure_writes_no_png(tmp_path: Path) -> None:
    write_anchored_analysis(_analysis(figure=False, logo=True), tmp_path)
    assert not (tmp_path / "splice_profiles.png").exists()
    assert (tmp_path / "boundary_logo.png").read_bytes().startswith(PNG)


def test_logo_skips_windows_off_the_sequence(tmp_path: Path) -> None:
    # boundaries at 0 and at the very end have no full window: only the middle one counts
    sequence = "ACGT" * 6
    boundary = np.zeros(len(sequence), dtype=bool)
    boundary[[0, 12, 23]] = True
    plot_boundary_logo(BoundaryLogo(sequence, boundary), tmp_path / "logo.svg")
    assert "n=1)" in (tmp_path / "logo.svg").read_text()


def test_density_box_plots(tmp_path: Path) -> None:
    values = {("H3", "0"): [0.2, 0.25, 0.3], ("H3", "1"): [0.1, 0.15], ("prom", "a"): [0.3, 0.3]}
    plot_density(values, ["H3", "prom"], tmp_path / "density.png")
    assert (tmp_path / "density.png").read_bytes().startswith(PNG)


def test_training_plots(tmp_path: Path) -> None:
    (tmp_path / "train.csv").write_text(  # the columns ldarnet pretrain logs
        "step,lr,loss,mlm,ratio,density,tokens_per_s,flops\n"
        "5,6e-04,1.77,1.73,1.28,0.25,1461,3e10\n10,1e-03,1.58,1.54,1.32,0.26,1136,5e10\n")
    (tmp_path / "valid.csv").write_text(
        "step,val_mlm,val_accuracy,val_ratio,val_density,val_compression\n"
        "10,1.38,0.30,1.01,0.33,3.01\n")
    plot_curves(tmp_path / "train.csv", tmp_path / "valid.csv", tmp_path / "curves.png")
    tokens = np.array([0, 1, 2, 3] * 8)
    prob = np.linspace(0, 1, tokens.size)
    plot_boundaries(tokens, prob, prob > 0.5, tmp_path / "boundaries.png")
    for name in ("curves.png", "boundaries.png"):
        assert (tmp_path / name).read_bytes().startswith(PNG)
