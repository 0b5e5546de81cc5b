"""GPU throughput: the 110M model with the CUDA fast paths vs the reference path, an
isotropic BiMamba-2 of equal size, segmentation speed, and the projected GPU-hours of the
paper's pretraining from *measured* throughput.

Needs a CUDA GPU (``python benchmarks/gpu_speed.py``; docs/cuda.md). On a machine without
one it prints a "needs CUDA" line and exits with status 0; ``run_all.py`` keeps the section
as last measured there instead of running it.

What is measured, side by side in one process on one GPU:

- **training step** (forward + backward + AdamW step, bf16 autocast as the real loop on
  CUDA), micro-batch ``--batch`` × L = 4,096, for
  - ``ldarnet-110m`` on the ``cuda`` backend and on the ``torch`` reference path, its
    boundaries on a fixed grid of stride N = 4 (the trained compression: the backbone sees
    L/4 tokens; at initialisation the router's density differs and so would the cost);
  - an isotropic BiMamba-2 (no chunking: every layer sees all L tokens) on both backends.
    It is sized like benchmarks/model_speed.py: the backbone's width and layer type
    (d 768, BiMamba-2 + SwiGLU 2,560) stacked until the parameter count matches, i.e.
    ``M11m1`` (11 BiMamba-2 + SwiGLU layers, one without SwiGLU): 110,211,264
    parameters vs 110,687,296 (-0.4 %); the next sizes up overshoot (``M11m2`` 114.0 M,
    ``M12`` 116.1 M);
  model-FLOP utilisation = the analytic training FLOPs of ``ldarnet.model.flops``
  (3 x forward) per second over the GPU's dense bf16 peak (datasheet value when the GPU
  is known; the bf16 matmul peak measured in the same run is reported too);
- **segmentation** (``ldarnet.analysis.segment.segment_tokens``, float32 as ``ldarnet
  segment`` runs it, tile 4,096, margin 512) of real DNA from the shipped hg38 slice by a
  randomly initialised ``ldarnet-110m`` (speed does not depend on the weights), both
  backends;
- **projection**: the paper's token budget (config/pretrain/paper.yaml: steps ×
  512 × 4,096) divided by the measured LDARNet tokens/s on the fast path, against the
  1,008 GPU-hours the paper reports (spec/PAPER.md). One GPU, no data loading, no
  communication: a lower bound for a real multi-GPU run.

An arm that runs out of GPU memory is reported as such (the reference SSD materialises
per-chunk decay matrices that the fused kernels never store).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import gc
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.model_speed import isotropic_config  # noqa: E402
from ldarnet.model import kernels  # noqa: E402
from ldarnet.model.config import ModelConfig, load_model_config  # noqa: E402
from ldarnet.model.flops import training_step_flops  # noqa: E402
from ldarnet.model.network.ldarnet import LDARNet  # noqa: E402
from ldarnet.model.objective import masked_lm_loss  # noqa: E402
from ldarnet.model.param_groups import parameter_groups  # noqa: E402
from ldarnet.train.train_config import load_train_config  # noqa: E402

LENGTH = 4096
BATCH = 8
PAPER_GPU_HOURS = 1008
SLICE = ROOT / "resources/demo/hg38/chr2_1-2333275.fa.gz"
SEGMENT_START, SEGMENT_BASES, SEGMENT_BATCH = 100_000, 2_000_000, 32
HG38_BASES = 3_099_922_541
# Dense bf16 tensor-core peaks (datasheets), matched against torch.cuda.get_device_name().
# Checked in this order: the first substring found wins (H100 PCIe before H100 SXM).
BF16_PEAKS = (("H200", 989e12), ("H100 PCIe", 756e12), ("H100", 989e12),
              ("A100", 312e12), ("L40S", 362e12), ("A10G", 70e12), ("L4", 121e12))
NEEDS_CUDA = "gpu_speed: needs CUDA (torch.cuda.is_available() is False); nothing measured"


def ldarnet_config() -> ModelConfig:
    """The 110M model with its boundaries at the trained compression (fixed grid, N = 4)."""
    cfg = load_model_config(ROOT / "config/models/ldarnet-110m.yaml")
    return dataclasses.replace(
        cfg, routing=dataclasses.replace(cfg.routing, boundaries="fixed_grid", grid_stride=4))


def _cuda_seconds(fn: Callable[[], object], repeats: int, warmup: int) -> float:
    """Median wall time of ``fn()`` with the GPU drained before and after each run.

    The warm-up runs also absorb Triton's autotuning, which happens on a kernel's first
    call for each shape.
    """
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _free() -> None:
    gc.collect()
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()


def bf16_matmul_peak(n: int = 8192) -> float:
    """Achieved FLOP/s of a large bf16 matmul: the practical peak of this GPU."""
    a = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
    b = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
    seconds = _cuda_seconds(lambda: a @ b, repeats=10, warmup=3)
    return 2 * n**3 / seconds


def datasheet_peak(name: str) -> float | None:
    """Dense bf16 peak of a known GPU, else None."""
    return next((peak for key, peak in BF16_PEAKS if key in name), None)


def _timed_training(cfg: ModelConfig, batch: int, repeats: int) -> tuple[float, int]:
    """Median seconds of one training step and the parameter count; frees all on return."""
    torch.manual_seed(0)
    model = LDARNet(cfg).cuda()
    opt = torch.optim.AdamW(parameter_groups(model, 1e-3, 0.01), betas=(0.9, 0.95))
    ids = torch.randint(0, 4, (batch, LENGTH), device="cuda")

    def step() -> None:
        with torch.autocast("cuda", dtype=torch.bfloat16):
            out = model(ids)
        masked_lm_loss(out.logits, ids).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)

    return _cuda_seconds(step, repeats=repeats, warmup=2), sum(
        p.numel() for p in model.parameters())


def train_step(cfg: ModelConfig, backend: str, batch: int, repeats: int) -> dict:
    """Tokens/s, MFU inputs and peak memory of training steps of ``cfg`` on ``backend``."""
    kernels.set_backend(backend)
    _free()
    row: dict = {"model": cfg.name, "backend": backend}
    try:
        seconds, parameters = _timed_training(cfg, batch, repeats)
    except torch.cuda.OutOfMemoryError:
        _free()
        row.update(seconds=None, error="out of GPU memory")
        return row
    flops = training_step_flops(cfg, LENGTH, batch=batch)
    row.update(parameters=parameters, seconds=seconds, tokens_per_s=batch * LENGTH / seconds,
               flops=flops, flops_per_s=flops / seconds,
               peak_mem_gib=torch.cuda.max_memory_allocated() / 2**30)
    return row


def segment_speed(backend: str) -> dict:
    """Bases/s of ``segment_tokens`` with a random-init 110M model on ``backend``."""
    from ldarnet.analysis.segment import segment_tokens
    from ldarnet.data.fasta import read_fasta
    from ldarnet.data.tokenizer import encode

    kernels.set_backend(backend)
    _free()
    torch.manual_seed(0)
    cfg = load_model_config(ROOT / "config/models/ldarnet-110m.yaml")
    model = LDARNet(cfg).cuda().eval()
    seq = read_fasta(SLICE)["chr2"]
    ids = np.asarray(encode(seq[SEGMENT_START : SEGMENT_START + SEGMENT_BASES]))
    warm = 4096 + (SEGMENT_BATCH - 1) * 3072  # one full batch of tiles
    segment_tokens(model, ids[:warm], 4096, 512, SEGMENT_BATCH, offset=SEGMENT_START)
    torch.cuda.synchronize()
    began = time.perf_counter()
    segment_tokens(model, ids, 4096, 512, SEGMENT_BATCH, offset=SEGMENT_START)
    torch.cuda.synchronize()
    seconds = time.perf_counter() - began
    return {"backend": backend, "bases": len(ids), "seconds": seconds,
            "bases_per_s": len(ids) / seconds}


def projection(tokens_per_s: float) -> dict:
    """GPU-hours of the paper's token budget at the measured single-GPU throughput."""
    train = load_train_config(ROOT / "config/pretrain/paper.yaml")
    tokens = train.total_steps * train.effective_batch * train.seq_len
    return {"tokens": tokens, "steps": train.total_steps,
            "gpu_hours": tokens / tokens_per_s / 3600}


def _versions() -> str:
    parts = [f"torch {torch.__version__}", f"CUDA {torch.version.cuda}"]
    for pkg in ("mamba_ssm", "causal_conv1d", "flash_attn", "triton"):
        try:
            module = __import__(pkg)
            parts.append(f"{pkg} {getattr(module, '__version__', '?')}")
        except Exception:
            parts.append(f"{pkg} absent")
    return ", ".join(parts)


def run(batch: int = BATCH, repeats: int = 3) -> dict:
    """All measurements; ``{"skipped": reason}`` on a machine without CUDA."""
    if not torch.cuda.is_available():
        return {"skipped": NEEDS_CUDA}
    backends = [b for b in ("cuda", "torch") if b in kernels.available_backends()]
    note = None
    if "cuda" not in backends:
        from ldarnet.model import kernels_cuda

        note = f"cuda backend unavailable: {kernels_cuda.UNAVAILABLE_REASON}"
    name = torch.cuda.get_device_name()
    result = {
        "date": datetime.date.today().isoformat(), "device": name, "versions": _versions(),
        "batch": batch, "note": note, "matmul_peak": bf16_matmul_peak(),
        "datasheet_peak": datasheet_peak(name),
        "train": [train_step(cfg, b, batch, repeats)
                  for cfg in (ldarnet_config(), isotropic_config(ldarnet_config()))
                  for b in backends],
        "segment": [segment_speed(b) for b in backends],
    }
    kernels.configure(None)  # back to the environment's choice
    fast = next((r for r in result["train"] if r["model"] == "ldarnet-110m"
                 and r.get("seconds")), None)
    result["projection"] = projection(fast["tokens_per_s"]) if fast else None
    return result


def markdown(r: dict) -> str:
    heading = "## GPU training and segmentation throughput (CUDA fast paths)\n\n"
    if "skipped" in r:
        return heading + f"Not measured: {r['skipped']}.\n"
    peak = r["datasheet_peak"] or r["matmul_peak"]
    peak_text = (f"datasheet dense bf16 peak {peak / 1e12:,.0f} TFLOP/s" if r["datasheet_peak"]
                 else f"no datasheet peak known for this GPU: measured bf16 matmul peak "
                      f"{peak / 1e12:,.0f} TFLOP/s")

    def train_row(m: dict) -> str:
        if not m.get("seconds"):
            return f"| {m['model']} | `{m['backend']}` | - | {m.get('error', '-')} | | | | |"
        return (f"| {m['model']} | `{m['backend']}` | {m['parameters']:,} | "
                f"{m['seconds'] * 1e3:,.0f} | {m['tokens_per_s']:,.0f} | "
                f"{m['flops_per_s'] / 1e12:,.1f} | {100 * m['flops_per_s'] / peak:.1f} % | "
                f"{m['peak_mem_gib']:.1f} |")

    rows = "\n".join(train_row(m) for m in r["train"])
    seg = "\n".join(
        f"| `{s['backend']}` | {s['bases']:,} | {s['seconds']:.1f} | {s['bases_per_s']:,.0f} | "
        f"{HG38_BASES / s['bases_per_s'] / 3600:,.2f} |" for s in r["segment"])
    text = (
        heading
        + f"Measured {r['date']} on {r['device']} ({r['versions']}). "
        "Training step = forward + backward + AdamW, bf16 autocast, micro-batch "
        f"{r['batch']} × {LENGTH:,} bases; LDARNet's boundaries on a fixed grid of stride 4 "
        "(the trained compression). MFU = analytic training FLOPs (`ldarnet.model.flops`, "
        f"3 x forward) per second over the {peak_text} (bf16 matmul measured in the same "
        f"run: {r['matmul_peak'] / 1e12:,.0f} TFLOP/s). The isotropic BiMamba-2 is `M11m1` "
        "at d 768 (sized to the same parameter count, see benchmarks/gpu_speed.py).\n\n"
        + (f"{r['note']}.\n\n" if r["note"] else "")
        + "| model | kernels | parameters | step (ms) | tokens/s | TFLOP/s | MFU | "
        "peak memory (GiB) |\n|---|---|---:|---:|---:|---:|---:|---:|\n"
        + rows + "\n\n"
        "Segmentation (`segment_tokens`, float32 as `ldarnet segment` runs, tile 4,096, "
        f"margin 512, batch {SEGMENT_BATCH}, random-init `ldarnet-110m`, real hg38 DNA):\n\n"
        "| kernels | bases | time (s) | bases/s | hg38 on this GPU (h) |\n"
        "|---|---:|---:|---:|---:|\n" + seg + "\n"
    )
    p = r["projection"]
    if p:
        text += (
            f"\nProjected pretraining at the measured fast-path LDARNet throughput: "
            f"{p['tokens']:.3g} tokens ({p['steps']:,} steps × 512 × 4,096, "
            f"config/pretrain/paper.yaml) = **{p['gpu_hours']:,.0f} GPU-hours** on one "
            f"{r['device']} (no data loading or communication), against the paper's "
            f"reported {PAPER_GPU_HOURS:,}.\n"
        )
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=BATCH, help="sequences per step")
    parser.add_argument("--repeats", type=int, default=3, help="timed steps per arm")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print(NEEDS_CUDA)
        return
    print(markdown(run(args.batch, args.repeats)))


if __name__ == "__main__":
    main()
