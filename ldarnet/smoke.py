"""A minutes-long CPU training run of an LDARNet config on real DNA: the model check.

Draws N-free windows from a FASTA (training from the first 90 % of each record,
validation from the last 10 %), trains with the real objective (MLM + α · ratio loss),
the real optimizer set-up (AdamW β=(0.9, 0.95), per-stage LR multipliers, weight-decay
exemptions, clipping at 1.0) and reverse-complement augmentation, and reports the
validation MLM loss before and after, the boundary density and the throughput.
It proves the whole model trains end to end on real sequence; it is not pretraining
(``ldarnet pretrain`` is), and its numbers are not paper numbers.
"""

from __future__ import annotations

import csv
import json
import math
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from ldarnet.data.fasta import read_fasta
from ldarnet.data.masking import mask_tokens
from ldarnet.data.tokenizer import N, encode, reverse_complement
from ldarnet.model.config import load_model_config
from ldarnet.model.ldarnet import LDARNet
from ldarnet.model.objective import pretraining_loss
from ldarnet.model.param_groups import parameter_groups
from ldarnet.model.ratio_loss import boundary_density

VALIDATION_FRACTION = 0.1


class WindowSampler:
    """Uniformly random N-free windows of one split of every record."""

    def __init__(self, records: dict[str, str], length: int, split: str, seed: int) -> None:
        self.length = length
        self.rng = np.random.default_rng(seed)
        self.tracks: list[np.ndarray] = []
        self.starts: list[np.ndarray] = []
        for seq in records.values():
            ids = encode(seq)
            cut = int(len(ids) * (1 - VALIDATION_FRACTION))
            part = ids[:cut] if split == "train" else ids[cut:]
            if len(part) < length:
                continue
            n_before = np.concatenate([[0], np.cumsum(part == N)])
            starts = np.arange(len(part) - length + 1)
            ok = starts[n_before[starts + length] - n_before[starts] == 0]
            if len(ok):
                self.tracks.append(part)
                self.starts.append(ok)
        if not self.tracks:
            raise ValueError(f"no N-free {split} window of {length} bp in the FASTA records")

    def batch(self, size: int, reverse_complement_p: float = 0.5) -> torch.Tensor:
        """(size, length) token ids; each window reverse-complemented with prob. 0.5."""
        rows = []
        for _ in range(size):
            k = self.rng.integers(len(self.tracks))
            start = self.rng.choice(self.starts[k])
            window = self.tracks[k][start : start + self.length]
            if self.rng.random() < reverse_complement_p:
                window = reverse_complement(window)
            rows.append(window)
        return torch.from_numpy(np.stack(rows).astype(np.int64))


def _evaluate(model: LDARNet, batches: list[tuple[torch.Tensor, torch.Tensor]]) -> dict:
    model.eval()
    mlm, density = [], []
    with torch.no_grad():
        for inputs, labels in batches:
            out = model(inputs)
            terms = pretraining_loss(out, labels, model.config)
            mlm.append(float(terms.mlm))
            r = out.router_outputs[0]
            density.append(float(boundary_density(r.boundary_mask, r.mask)))
    model.train()
    return {"mlm": float(np.mean(mlm)), "boundary_density": float(np.mean(density))}


def _write_json_atomic(path: Path, data: dict) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as fh:
        json.dump(data, fh, indent=2)
        fh.write("\n")
    os.replace(tmp, path)


def run_smoke(
    config: str | Path,
    fasta: str | Path,
    out: str | Path,
    steps: int = 40,
    batch_size: int = 8,
    length: int = 1024,
    seed: int = 1337,
    lr: float = 2e-3,
    alpha: float = 0.03,
) -> dict:
    """Train ``steps`` steps on CPU and write ``report.json`` and ``train_log.csv`` to ``out``."""
    if steps <= 0 or batch_size <= 0 or length <= 1:
        raise ValueError("steps and batch-size must be positive and length > 1")
    cfg = load_model_config(config)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    records = read_fasta(fasta)
    train = WindowSampler(records, length, "train", seed)
    valid = WindowSampler(records, length, "valid", seed + 1)
    generator = torch.Generator().manual_seed(seed)
    val_batches = [mask_tokens(valid.batch(batch_size), generator) for _ in range(2)]

    model = LDARNet(cfg)
    optimizer = torch.optim.AdamW(
        parameter_groups(model, lr, weight_decay=0.01), betas=(0.9, 0.95), eps=1e-8
    )
    # linear warm-up over the first 10 % of steps, then constant (pretraining uses WSD)
    warmup = max(1, steps // 10)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min(1.0, (s + 1) / warmup)
    )
    before = _evaluate(model, val_batches)
    log_path = out / "train_log.csv"
    start = time.perf_counter()
    with open(log_path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["step", "loss", "mlm", "ratio", "boundary_density", "tokens_per_s"])
        bar = tqdm(range(1, steps + 1), desc=f"smoke {cfg.name}", unit="step")
        for step in bar:
            t0 = time.perf_counter()
            inputs, labels = mask_tokens(train.batch(batch_size), generator)
            output = model(inputs)
            terms = pretraining_loss(output, labels, cfg, alpha)
            optimizer.zero_grad(set_to_none=True)
            terms.loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            r = output.router_outputs[0]
            density = float(boundary_density(r.boundary_mask, r.mask))
            speed = inputs.numel() / (time.perf_counter() - t0)
            loss, mlm, ratio = (t.item() for t in (terms.loss, terms.mlm, terms.ratio))
            writer.writerow([step, f"{loss:.5f}", f"{mlm:.5f}", f"{ratio:.5f}", f"{density:.4f}",
                             f"{speed:.0f}"])
            bar.set_postfix(mlm=f"{mlm:.3f}", density=f"{density:.3f}")
    elapsed = time.perf_counter() - start
    after = _evaluate(model, val_batches)
    report = {
        "config": cfg.name,
        "fasta": Path(fasta).name,
        "steps": steps,
        "batch_size": batch_size,
        "window_bp": length,
        "seed": seed,
        "parameters": sum(p.numel() for p in model.parameters()),
        "uniform_mlm_loss": math.log(4),  # cross-entropy of guessing A/C/G/T uniformly
        "validation_before": before,
        "validation_after": after,
        "train_seconds": round(elapsed, 2),
        "train_tokens_per_second": round(steps * batch_size * length / elapsed),
    }
    _write_json_atomic(out / "report.json", report)
    return report
