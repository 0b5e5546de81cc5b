"""Ablation arms: training-step time per FLOP of the learned, fixed-grid and random arms.

The three arms are the same model but for boundary selection, so a fair arm must not be
slower *per FLOP* than the learned one (its compressed length, hence its FLOPs, may
differ). Each arm is built from its own config (config/models/ldarnet-tiny*.yaml and the
2M model with its boundary selection switched), runs the same micro-batch of 8 × 1,024
random bases (forward, backward, AdamW step), and its FLOPs are counted by the analytic
counter at the compressed length that batch actually had. The learned arm's router is
re-initialised with random projections so that it cuts at a realistic rate (a freshly
initialised router cuts almost nowhere, which would measure a different model).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch

from benchmarks.common import median_seconds
from ldarnet.model.config import ModelConfig, load_model_config
from ldarnet.model.flops import training_step_flops
from ldarnet.model.network.ldarnet import LDARNet
from ldarnet.model.objective import pretraining_loss

ROOT = Path(__file__).resolve().parents[1]
LENGTH, BATCH = 1024, 8
ARMS = ("learned", "fixed_grid", "random")


def _arm(cfg: ModelConfig, boundaries: str) -> ModelConfig:
    return dataclasses.replace(cfg, routing=dataclasses.replace(cfg.routing,
                                                                boundaries=boundaries))


def _measure(cfg: ModelConfig) -> dict:
    torch.manual_seed(0)
    model = LDARNet(cfg).train()
    if cfg.routing.learned:
        router = model.hierarchy.routing_module
        for layer in (router.q_proj_layer, router.k_proj_layer):
            torch.nn.init.normal_(layer.weight, std=layer.weight.shape[1] ** -0.5)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    ids = torch.randint(0, 4, (BATCH, LENGTH))
    labels = torch.where(torch.rand(BATCH, LENGTH) < 0.15, ids, torch.full_like(ids, -100))
    inner: list[int] = []

    def step() -> None:
        torch.manual_seed(1)  # the random arm draws the same boundaries every repeat
        out = model(ids)
        inner[:] = [r.compressed_mask.shape[1] for r in out.router_outputs]
        pretraining_loss(out, labels, cfg).loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    seconds = median_seconds(step, repeats=5, warmup=1)
    flops = training_step_flops(cfg, LENGTH, BATCH, inner)
    return {"seconds": seconds, "compressed": inner[0], "flops": flops,
            "gflops_per_s": flops / seconds / 1e9}


def run() -> dict:
    results = {}
    for name in ("ldarnet-tiny", "ldarnet-2m"):
        base = load_model_config(ROOT / "config" / "models" / f"{name}.yaml")
        results[name] = {arm: _measure(_arm(base, arm)) for arm in ARMS}
    return results


def markdown(r: dict) -> str:
    rows = []
    for name, arms in r.items():
        ref = arms["learned"]["gflops_per_s"]
        for arm, m in arms.items():
            rows.append(f"| {name} | {arm} | {m['compressed']} | {m['seconds'] * 1e3:.0f} | "
                        f"{m['flops'] / 1e9:.1f} | {m['gflops_per_s']:.2f} | "
                        f"{m['gflops_per_s'] / ref:.2f} |")
    return (
        "## Ablation arms: training speed per FLOP\n\n"
        f"One training step (forward, backward, AdamW) on {BATCH} × {LENGTH:,} bases, median "
        "of 5, each arm at the compressed length M its batch actually had (the learned "
        "router with random projections, so that it cuts at a realistic rate). Goal: no "
        "arm slower per FLOP than the learned one (last column ≥ ~1).\n\n"
        "| model | arm | M | ms / step | GFLOP / step | GFLOP/s | per-FLOP speed vs learned |\n"
        "|---|---|---:|---:|---:|---:|---:|\n" + "\n".join(rows) + "\n"
    )


if __name__ == "__main__":
    print(markdown(run()))
