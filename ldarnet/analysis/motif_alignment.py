"""Do learned boundaries align with promoter motifs? Motif-centred profiles with controls.

Promoters are the windows −``upstream`` … +``downstream`` around every annotated
transcription start site. Each window is segmented by the model twice: as it is
(native), and after a dinucleotide-preserving shuffle with every motif occurrence put
back at its place (shuffled control: same motif, same composition, no native context).
Around each motif hit — JASPAR PWMs (TBP, NF-Y, SP1) and the consensus patterns
including the canonical Inr YYANWYY — the boundary probability is profiled in the
motif's own orientation and compared, at every offset, with random background positions
of the same promoters and with the shuffled control (permutation tests, BH-adjusted).
A logo of the sequence around hard boundaries shows what the model cuts at.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ldarnet.analysis.motifs import (
    CONSENSUS_PATTERNS,
    PROMOTER_MOTIFS,
    Hit,
    MotifError,
    jaspar_pwm,
    relative_threshold,
    scan_pattern,
    scan_pwm,
)
from ldarnet.analysis.profiles import anchored_profile
from ldarnet.analysis.results import AnchoredAnalysis, BoundaryLogo, Curve, ProfileFigure
from ldarnet.analysis.segment import segment_tokens
from ldarnet.analysis.shuffle import dinucleotide_shuffle, insert_motif
from ldarnet.analysis.stats import enrichment_at_offsets
from ldarnet.data.annotation import Tss, read_annotation
from ldarnet.data.fasta import open_genome
from ldarnet.data.tokenizer import encode
from ldarnet.model.pretrained import load_pretrained


@dataclass(frozen=True)
class Promoter:
    contig: str
    tss: int
    strand: str
    start: int
    end: int


def promoters(starts: list[Tss], lengths: dict[str, int], upstream: int = 300,
              downstream: int = 100) -> list[Promoter]:
    """Unique TSS windows (transcript orientation −upstream … +downstream), inside contigs."""
    out = set()
    for contig, tss, strand in {(t.contig, t.position, t.strand) for t in starts}:
        lo, hi = ((tss - upstream, tss + downstream + 1) if strand == "+"
                  else (tss - downstream, tss + upstream + 1))
        if contig in lengths and lo >= 0 and hi <= lengths[contig]:
            out.add(Promoter(contig, tss, strand, lo, hi))
    return sorted(out, key=lambda p: (p.contig, p.tss))


def _segment(model, seq: str) -> tuple[np.ndarray, np.ndarray]:
    p, b = segment_tokens(model, encode(seq), tile=max(len(seq), 64), margin=0)
    return p.astype(np.float64), b


def _motif_hits(seq: str, pwms: dict) -> dict[str, list[Hit]]:
    hits = {name: scan_pwm(seq, pwm, threshold) for name, (pwm, threshold) in pwms.items()}
    hits["Inr (YYANWYY)"] = scan_pattern(seq, CONSENSUS_PATTERNS["Inr"])
    return hits


def run_motif_alignment(
    model_path: str | Path, fasta_path: str | Path, exons_path: str | Path,
    threshold: float = 0.9, flank_left: int = 15, flank_right: int = 25,
    n_permutations: int = 10000, seed: int = 0, device: str = "cpu",
    contigs: list[str] | None = None,
) -> dict:
    """Profiles, statistics, figure data and boundary logo for the annotation's promoters."""
    rng = np.random.default_rng(seed)
    model = load_pretrained(model_path, device)
    fasta = open_genome(fasta_path)
    annotation = read_annotation(exons_path)
    annotation.require_exons()
    starts = annotation.tss()
    if contigs:
        starts = [t for t in starts if t.contig in contigs]
    windows = promoters(starts, fasta.lengths)
    if not windows:
        raise MotifError(f"no promoter window of {exons_path} lies inside {fasta_path} "
                         f"(contigs {contigs or 'all'}); use an annotation of this genome")
    pwms = {}
    for spec in PROMOTER_MOTIFS.values():
        pwm = jaspar_pwm(spec.matrix_id)
        pwms[f"{spec.element} ({spec.tf} {spec.matrix_id})"] = (
            pwm, relative_threshold(pwm, threshold))
    gap = flank_left + flank_right + 2
    native, shuffled, seqs, hits = [], [], [], {}
    start = 0
    with torch.no_grad():
        for promoter in windows:
            seq = fasta.fetch(promoter.contig, promoter.start, promoter.end).upper()
            found = _motif_hits(seq, pwms)
            control = dinucleotide_shuffle(seq, rng)
            for motif_hits in found.values():
                for h in motif_hits:
                    control = insert_motif(control, seq[h.start : h.end], h.start)
            native.append(_segment(model, seq))
            shuffled.append(_segment(model, control))
            for name, motif_hits in found.items():
                hits.setdefault(name, []).extend((h.anchor + start, h.strand) for h in motif_hits)
            seqs.append(seq + "N" * gap)
            start += len(seq) + gap
    pad = np.full(gap, np.nan)
    p_native = np.concatenate([x for p, _ in native for x in (p, pad)])
    p_shuffled = np.concatenate([x for p, _ in shuffled for x in (p, pad)])
    b_native = np.concatenate([x for _, b in native for x in (b, np.zeros(gap, bool))])
    # background: random positions of the same promoters, random orientation
    valid = np.flatnonzero(~np.isnan(p_native))
    rows, stats, panels, summary = [], [], {}, {}
    for name, anchors in hits.items():
        if len(anchors) < 2:
            summary[name] = {"hits": len(anchors), "note": "too few hits for statistics"}
            continue
        positions = [a for a, _ in anchors]
        strands = [s for _, s in anchors]
        background = rng.choice(valid, size=min(5 * len(anchors), 5000), replace=False)
        back_strands = rng.choice(["+", "-"], size=background.size).tolist()
        prof = {
            "native": anchored_profile(p_native, positions, strands, flank_left, flank_right,
                                       cuts=True),
            "shuffled control": anchored_profile(p_shuffled, positions, strands, flank_left,
                                                 flank_right, cuts=True),
            "background": anchored_profile(p_native, background, back_strands, flank_left,
                                           flank_right, cuts=True),
        }
        prof = {k: _finite(v) for k, v in prof.items()}
        for label, profile in prof.items():
            rows += [{"motif": name, "set": label, "offset": int(o), "mean": float(m),
                      "sem": float(s), "n": profile[1]}
                     for o, m, s in zip(profile[0].offsets, profile[2].mean(0),
                                        _sem(profile[2]), strict=True)]
        for versus in ("background", "shuffled control"):
            test = enrichment_at_offsets(prof["native"][2], prof[versus][2],
                                         prof["native"][0].offsets, rng=rng,
                                         n_permutations=n_permutations,
                                         alternative="two-sided")
            native_mean, versus_mean = prof["native"][2].mean(0), prof[versus][2].mean(0)
            stats += [{"motif": name, "versus": versus, "offset": int(o),
                       "native_mean": float(native_mean[i]), "versus_mean": float(versus_mean[i]),
                       "difference": float(d), "p_value": float(p), "q_value": float(q),
                       "n_hits": prof["native"][1], "n_versus": prof[versus][1]}
                      for i, (o, d, p, q) in enumerate(zip(test.offsets, test.difference,
                                                           test.pvalue, test.qvalue,
                                                           strict=True))]
        panels[name] = [Curve(label, v[0].offsets, v[2].mean(0), _sem(v[2]), v[1])
                        for label, v in prof.items()]
        summary[name] = {"hits": len(anchors), "used": prof["native"][1]}
    figure = ProfileFigure(
        panels, "Boundary probability around promoter motifs (offset 0 = motif start)",
        xlabel="offset from the motif start (nt, motif orientation)") if panels else None
    return AnchoredAnalysis(
        "motif", rows, stats, figure,
        {"promoters": len(windows), "motifs": summary, "threshold": threshold},
        logo=BoundaryLogo("".join(seqs), b_native))


def _finite(profile):
    """(profile, n, windows) keeping only windows without NaN (fully segmented)."""
    windows = profile.windows[~np.isnan(profile.windows).any(axis=1)]
    return profile, int(windows.shape[0]), windows


def _sem(windows: np.ndarray) -> np.ndarray:
    n = windows.shape[0]
    return windows.std(0, ddof=1) / np.sqrt(n) if n > 1 else np.full(windows.shape[1], np.nan)
