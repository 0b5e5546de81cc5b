"""The paper-vs-this table (claims C1-C4) and the figures drawn beside the result tables."""

from __future__ import annotations

import pytest

from conftest import ROOT
from ldarnet.cli import main
from ldarnet.report import claims
from ldarnet.report.eval_figure import plot_eval_rows, plot_win_counts
from ldarnet.report.eval_tables import TableError, load_nt_baselines

NT_ROW = {"task": "H3", "data": "proxy", "model": "ldarnet", "runs": "3",
          "mcc_x100": "47.4071", "mcc_ci95_x100": "5.85259"}
SUMMARY = [{"results": "this run", "tasks": "4", "official_tasks": "1", "best_small": "1",
            "best_overall": "0"},
           {"results": "release (README numbers)", "tasks": "18", "official_tasks": "18",
            "best_small": "15", "best_overall": "9"}]
ABLATION = [
    {"task": "H3", "arm": "ldarnet", "boundaries": "learned", "data": "official", "n_pairs": "",
     "diff_pp": "nan", "diff_ci95_pp": "nan", "p_value": "nan", "flops_vs_reference": "1"},
    {"task": "H3", "arm": "ldarnet_fixed", "boundaries": "fixed_grid", "data": "official",
     "n_pairs": "30", "diff_pp": "12.34", "diff_ci95_pp": "1.5", "p_value": "0.0004",
     "flops_vs_reference": "0.99771"},
]
BOUNDARIES = [
    {"model": "ldarnet", "seed": "1", "analysis": "splice junctions", "sites": "donors",
     "versus": "decoy GT/AG", "signal": "p", "site_mean": "0.6", "versus_mean": "0.2",
     "q_value": "0.001", "n_sites": "238"},
    {"model": "ldarnet", "seed": "1", "analysis": "splice junctions", "sites": "donors",
     "versus": "decoy GT/AG", "signal": "boundary", "site_mean": "0.7", "versus_mean": "0.1",
     "q_value": "0.001", "n_sites": "238"},
]


def test_rows_carry_paper_release_and_ours() -> None:
    baselines = load_nt_baselines(ROOT / "config" / "baselines" / "nt.tsv")
    rows = claims.claims_rows([NT_ROW], [], SUMMARY, ABLATION, BOUNDARIES, baselines)
    by_claim = {}
    for row in rows:
        by_claim.setdefault(row["claim"], []).append(row)
    h3 = by_claim["C1"][0]
    # paper = camera-ready 78.2, release = 81.7 ± 0.8 (spec §7), ours from the table
    assert (h3["paper"], h3["release"], h3["this_run"]) == ("78.2", "81.7 ± 0.8", "47.4 ± 5.9")
    assert h3["basis"] == "proxy data, 3 runs (ldarnet)"
    wins = by_claim["C2"]
    assert [w["release"] for w in wins] == ["15/18", "9/18"]
    assert [w["this_run"] for w in wins] == ["1/1", "0/1"]
    # the reference arm has no difference row; the fixed arm has a difference and a FLOPs row
    c3 = by_claim["C3"]
    assert len(c3) == 2
    assert c3[0]["this_run"] == "12.3 ± 1.5 (paired p = 0.0004)"
    assert c3[1]["this_run"] == "0.9977"
    # hard-boundary rows are not repeated: one C4 row, the probability test
    assert len(by_claim["C4"]) == 1
    assert by_claim["C4"][0]["this_run"] == "0.600 vs 0.200 (q = 0.001)"


def test_summary_without_release_row_is_refused() -> None:
    with pytest.raises(TableError, match="'this run' and a 'release' row"):
        claims.win_rows(SUMMARY[:1])


def test_cli_writes_both_files_and_refuses_a_bad_table(tmp_path, capsys) -> None:
    table = tmp_path / "histone.tsv"
    table.write_text("\t".join(NT_ROW) + "\n" + "\t".join(NT_ROW.values()) + "\n")
    out = tmp_path / "claims.tsv"
    assert main(["paper-claims", "--nt-tables", str(table), "--scale", "demo",
                 "--nt-baselines", str(ROOT / "config" / "baselines" / "nt.tsv"),
                 "--out", str(out)]) == 0
    md = out.with_suffix(".md").read_text()
    assert "| C1 | H3 MCC×100 | 78.2 | 81.7 ± 0.8 | 47.4 ± 5.9 |" in md
    assert "scale 'demo'" in md
    bad = tmp_path / "bad.tsv"
    bad.write_text("task\tdata\nH3\tproxy\n")
    assert main(["paper-claims", "--nt-tables", str(bad), "--scale", "demo",
                 "--out", str(tmp_path / "x.tsv")]) == 2
    assert "missing column(s)" in capsys.readouterr().err
    assert not (tmp_path / "x.tsv").exists()


def test_figures_are_written(tmp_path) -> None:
    row = {"task": "H3", "data": "proxy", "model": "ldarnet", "mcc_x100": 47.4,
           "mcc_ci95_x100": 5.9, "release_mcc_x100": 81.7, "release_ci95_x100": 0.8,
           "best_small_mcc_x100": 79.4, "best_overall_mcc_x100": 80.6}
    plot_eval_rows(tmp_path / "histone.png", [row, {**row, "model": "ldarnet_fixed"}],
                   "Histone marks")
    plot_win_counts(tmp_path / "wins.png",
                    [{k: (int(v) if v.isdigit() else v) for k, v in r.items()} for r in SUMMARY],
                    "NT wins")
    for name in ("histone.png", "wins.png"):
        data = (tmp_path / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000


def test_results_doc_pastes_the_rendered_table(tmp_path) -> None:
    from ldarnet.report.results_doc import END, START, ResultsDocError, main

    doc = tmp_path / "results.md"
    doc.write_text(f"# Results\n\nprose\n\n{START}\nold table\n{END}\n\nmore prose\n")
    table = tmp_path / "claims.md"
    table.write_text("# Paper vs release\n\n| claim | x |\n|---|---|\n| C1 | 1 |\n\n- note\n")
    assert main([str(table), str(doc)]) == 0
    text = doc.read_text()
    assert "old table" not in text and "| C1 | 1 |" in text and "- note" in text
    assert text.startswith("# Results\n\nprose") and text.endswith("more prose\n")
    assert main([str(table), str(doc)]) == 0 and doc.read_text() == text  # idempotent
    doc.write_text("no markers\n")
    assert main([str(table), str(doc)]) == 2 and doc.read_text() == "no markers\n"
    with pytest.raises(ResultsDocError):
        from ldarnet.report.results_doc import insert_table
        insert_table(f"{END}{START}", "t", "p")
