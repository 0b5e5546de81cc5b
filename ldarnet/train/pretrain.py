"""``ldarnet pretrain``: masked-LM pretraining of LDARNet, resumable and distributed.

One optimizer step consumes ``effective_batch`` windows, split into micro-batches of
``micro_batch``; global micro-batch j of step s holds stream samples
``s·E + j·m … s·E + (j+1)·m − 1`` and runs on rank ``j mod world_size``. Its
reverse-complement flips, MLM masks and any random boundaries come from a generator
seeded by (seed, s, j). Every draw is thus a function of the step, not of the process
history: a run resumed from a checkpoint, or run on a different number of GPUs, computes
the same micro-batches as an uninterrupted single-process run.

SIGTERM / SIGUSR1 (SLURM's cancellation or pre-emption, a site's early warning) and,
inside a SLURM job, the deadline ``--stop-before-limit`` seconds before the job's time
limit (:mod:`ldarnet.train.time_limit`) make the loop finish the current step, write a
resumable state and exit with status 75, so that Snakemake's ``retries`` or a requeue
reruns the same command, which resumes.

What a rerun reuses is keyed by the run's identity (model config, training config, seed,
data manifest): a saved state resumes only an *unfinished* run of the identical inputs;
a state of other inputs is set aside (``state.superseded/``) and training starts over;
a finished run keeps no state (it is deleted once the weights are written), so a forced
rerun trains again. Finished weights of the identical inputs already in ``--out`` are
kept as they are (what a second job finds after waiting for the first, see
``ldarnet.foundation.runlock``).
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import json
import os
import shutil
import signal
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from ldarnet import __version__
from ldarnet.data.masking import mask_tokens
from ldarnet.data.shards import SampleStream, open_shard, reverse_complement_rows
from ldarnet.data.tokenizer import IGNORE_INDEX
from ldarnet.foundation.atomic import write_json
from ldarnet.model.config import load_model_config
from ldarnet.model.flops import training_step_flops
from ldarnet.model.network.dynamic_chunking import boundary_density
from ldarnet.model.network.ldarnet import LDARNet
from ldarnet.model.objective import pretraining_loss
from ldarnet.model.param_groups import parameter_groups
from ldarnet.model.weights import save_model_file
from ldarnet.train.checkpoint import (
    latest_state,
    load_state,
    read_state_meta,
    save_state,
)
from ldarnet.train.distributed import DistContext, init_distributed, shutdown_distributed
from ldarnet.train.schedule import WSDSchedule
from ldarnet.train.time_limit import stop_deadline
from ldarnet.train.train_config import PretrainConfig, TrainConfigError, load_train_config

EXIT_PREEMPTED = 75
# draw(out_dir, window tokens, boundary probabilities, boundaries): the run's figures.
DrawRun = Callable[[Path, np.ndarray, np.ndarray, np.ndarray], None]
TRAIN_COLUMNS = ["step", "lr", "loss", "mlm", "ratio", "density", "tokens_per_s", "flops"]
VAL_COLUMNS = ["step", "val_mlm", "val_accuracy", "val_ratio", "val_density",
               "val_compression"]


class Preempted(SystemExit):
    """Raised after the state was saved on SIGTERM/SIGUSR1."""


def micro_seed(seed: int, step: int, micro: int) -> int:
    """Seed of one micro-batch's random draws; independent of rank and history."""
    return (seed * 1_000_003 + step) * 65_537 + micro


@dataclass
class StepMetrics:
    loss: float
    mlm: float
    ratio: float
    density: float


def _autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    use_bf16 = precision == "bf16" or (precision == "auto" and device.type == "cuda")
    if use_bf16:
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def corrupt_batch(ids: torch.Tensor, seed: int, cfg: PretrainConfig) -> tuple[torch.Tensor,
                                                                                torch.Tensor]:
    """Reverse-complement augmentation then MLM masking, drawn from ``seed``."""
    gen = torch.Generator().manual_seed(seed)
    flips = torch.rand(ids.shape[0], generator=gen) < cfg.reverse_complement_p
    ids = reverse_complement_rows(ids, flips)
    return mask_tokens(ids, gen, cfg.mlm_probability)


def _micro_batches(step: int, ctx: DistContext, cfg: PretrainConfig) -> Iterator[tuple[int, int]]:
    """(global micro index, first stream sample) of this rank's share of ``step``."""
    n_micro = cfg.effective_batch // cfg.micro_batch
    for j in range(ctx.rank, n_micro, ctx.world_size):
        yield j, step * cfg.effective_batch + j * cfg.micro_batch


def _rewrite_csv(path: Path, columns: list[str], keep_until: int) -> None:
    """Keep a log's rows up to the resumed step (a killed run may have logged more)."""
    rows = []
    if path.exists():
        with open(path, newline="") as fh:
            rows = [r for r in csv.DictReader(fh) if int(r["step"]) <= keep_until]
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    tmp.replace(path)


def _append_csv(path: Path, columns: list[str], row: dict[str, Any]) -> None:
    with open(path, "a", newline="") as fh:
        csv.DictWriter(fh, fieldnames=columns).writerow(row)


@torch.no_grad()
def evaluate(model: LDARNet, batches: list[tuple[torch.Tensor, torch.Tensor]],
             cfg: PretrainConfig, device: torch.device) -> dict[str, float]:
    """Validation MLM loss, accuracy, ratio loss, boundary density and compression."""
    was_training = model.training
    model.eval()
    mlm_sum, correct, targets, ratio, selected, valid = 0.0, 0, 0, 0.0, 0, 0
    for inputs, labels in batches:
        inputs, labels = inputs.to(device), labels.to(device)
        with _autocast(device, cfg.precision):
            out = model(inputs)
        terms = pretraining_loss(out, labels, model.config, cfg.alpha_ratio)
        n = int((labels != IGNORE_INDEX).sum())
        mlm_sum += float(terms.mlm) * n
        targets += n
        hit = (out.logits.argmax(-1) == labels) & (labels != IGNORE_INDEX)
        correct += int(hit.sum())
        ratio += float(terms.ratio)
        r = out.router_outputs[0]
        selected += int((r.boundary_mask & r.mask).sum())
        valid += int(r.mask.sum())
    model.train(was_training)
    density = selected / max(valid, 1)
    return {
        "val_mlm": mlm_sum / max(targets, 1),
        "val_accuracy": correct / max(targets, 1),
        "val_ratio": ratio / max(len(batches), 1),
        "val_density": density,
        "val_compression": 1.0 / density if density else float("inf"),
    }


def _validation_batches(valid: np.ndarray, cfg: PretrainConfig, seed: int
                        ) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Fixed validation set: the first windows, fixed flips and masks (comparable over time)."""
    count = min(cfg.val_windows, len(valid))
    batches = []
    for b, start in enumerate(range(0, count, cfg.micro_batch)):
        ids = torch.from_numpy(np.asarray(valid[start : min(start + cfg.micro_batch, count)])
                               .astype(np.int64))
        batches.append(corrupt_batch(ids, micro_seed(seed, -1, b), cfg))
    return batches


def _data_identity(shards_dir: Path) -> dict[str, Any]:
    manifest = shards_dir / "manifest.json"
    if manifest.exists():
        data = json.loads(manifest.read_text())
        return {k: data[k] for k in sorted(data) if k in ("source_fasta_md5", "window", "splits")}
    files = sorted(shards_dir.glob("*.npy"))
    return {f.name: f.stat().st_size for f in files}


class _StopFlag:
    """Set by SIGTERM/SIGUSR1 or a passed deadline; checked between optimizer steps."""

    def __init__(self, deadline: float | None = None) -> None:
        self.raised = False
        self.signal_name = ""
        self.deadline = deadline  # epoch seconds (time.time()), None = none

    def check_deadline(self) -> None:
        """Raise the flag once the deadline has passed (each worker checks its own clock;
        the all-reduce of the flag makes them stop at the same step)."""
        if self.deadline is not None and not self.raised and time.time() >= self.deadline:
            self.raised = True
            self.signal_name = ""  # not a signal

    def __call__(self, signum: int, frame: object) -> None:
        self.raised = True
        self.signal_name = signal.Signals(signum).name

    def install(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGUSR1):
            signal.signal(sig, self)


def run_pretraining(
    model_config: str | Path,
    train_config: str | Path,
    shards: str | Path,
    out: str | Path,
    seed: int = 1337,
    device: str | None = None,
    steps: int | None = None,
    stop_before_limit: float = 0,
    draw: DrawRun | None = None,
) -> dict[str, Any]:
    """Train (or resume) a model; writes model.safetensors, config.json and the logs.

    ``draw`` renders the run's figures (the ``ldarnet pretrain`` command passes the report
    layer's plots): training computes what they show, and does not draw (it imports no
    plotting), but they are written before the weights, which stay the last output.

    ``steps`` replaces the config's budget (an ablation arm trains the number of steps
    that matches the learned arm's FLOPs; the schedule is laid out for exactly that many).
    ``stop_before_limit``: inside a SLURM job, save and stop that many seconds before the
    job's time limit (0: only on a signal).
    """
    stop = _StopFlag()
    stop.install()  # before the slow set-up: an early signal must not be lost
    stop.deadline, message = stop_deadline(stop_before_limit)
    if message:
        print(message, file=sys.stderr, flush=True)
    ctx = init_distributed(device)
    try:
        return _train(Path(model_config), Path(train_config), Path(shards), Path(out), seed, ctx,
                      steps, stop, draw)
    finally:
        shutdown_distributed()


def _finished_run(out: Path, identity: dict[str, Any]) -> dict[str, Any] | None:
    """The summary of finished weights of exactly this run in ``out``, if there are any."""
    config, weights = out / "config.json", out / "model.safetensors"
    if not (weights.is_file() and config.is_file()):
        return None
    try:
        written = json.loads(config.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    if any(written.get(key) != value for key, value in identity.items()):
        return None
    return written.get("summary")


def _state_to_resume(out: Path, identity: dict[str, Any], log: Any) -> Path | None:
    """The saved state of this run, or None; a state of other inputs is set aside."""
    state = latest_state(out)
    if state is None:
        return None
    meta = read_state_meta(state)
    different = sorted(k for k, v in identity.items() if meta.get(k) != v)
    if not different:
        return state
    aside = out / "state.superseded"
    shutil.rmtree(aside, ignore_errors=True)
    os.replace(out / "state", aside)
    log(f"pretrain: the saved state in {out / 'state'} was trained with other inputs "
        f"({', '.join(different)} differ); moved to {aside}, training from the start")
    return None


def _train(model_config: Path, train_config: Path, shards_dir: Path, out: Path, seed: int,
           ctx: DistContext, steps: int | None = None,
           stop: _StopFlag | None = None, draw: DrawRun | None = None) -> dict[str, Any]:
    mcfg = load_model_config(model_config)
    cfg = load_train_config(train_config)
    if steps is not None:
        if steps < 1:
            raise TrainConfigError(f"steps={steps}: a run needs at least one optimizer step")
        cfg = dataclasses.replace(cfg, steps=int(steps), tokens=None)
    accumulation = cfg.accumulation(ctx.world_size)  # refuses an impossible split first
    train_shards = [open_shard(shards_dir / "train.npy", cfg.seq_len)]
    multispecies = shards_dir / "train_multispecies.npy"
    if multispecies.exists():
        train_shards.append(open_shard(multispecies, cfg.seq_len))
    valid = open_shard(shards_dir / "valid.npy", cfg.seq_len)
    stream = SampleStream(train_shards, seed)
    out.mkdir(parents=True, exist_ok=True)
    identity = {"model_config": mcfg.to_dict(), "train_config": cfg.to_dict(), "seed": seed,
                "data": _data_identity(shards_dir)}
    finished = _finished_run(out, identity)
    if finished is not None:
        if ctx.is_main:
            print(f"pretrain: {out} already holds the finished weights of this run "
                  "(same configs, seed and data); kept", file=sys.stderr)
        return finished

    torch.manual_seed(seed)
    model = LDARNet(mcfg).to(ctx.device)
    optimizer = torch.optim.AdamW(
        parameter_groups(model, cfg.lr, cfg.weight_decay), betas=cfg.betas, eps=cfg.eps,
        fused=ctx.device.type == "cuda",
    )
    start_step, cumulative_flops = 0, 0.0
    if ctx.is_main:
        _state_to_resume(out, identity, lambda m: print(m, file=sys.stderr))
    ctx.barrier()  # every rank sees the state the main rank kept
    state = latest_state(out)
    if state is not None:
        meta = load_state(state, model, optimizer, identity)
        start_step, cumulative_flops = int(meta["step"]), float(meta.get("cumulative_flops", 0))
    schedule = WSDSchedule(cfg.total_steps, cfg.warmup_fraction, cfg.decay_fraction,
                           cfg.final_lr_fraction)
    ddp = (DistributedDataParallel(model, device_ids=[ctx.local_rank] if ctx.device.type == "cuda"
                                   else None)
           if ctx.distributed else None)
    net = ddp or model
    val_batches = _validation_batches(valid, cfg, seed)
    train_log, val_log = out / "train_log.csv", out / "val_log.csv"
    if ctx.is_main:
        _rewrite_csv(train_log, TRAIN_COLUMNS, start_step)
        _rewrite_csv(val_log, VAL_COLUMNS, start_step)
    if stop is None:
        stop = _StopFlag()
        stop.install()
    bar = tqdm(total=schedule.total_steps, initial=start_step, disable=not ctx.is_main,
               desc=f"pretrain {mcfg.name}", unit="step", file=sys.stderr)
    model.train()
    last_val: dict[str, float] = {}
    for step in range(start_step, schedule.total_steps):
        t0 = time.perf_counter()
        factor = schedule.factor(step)
        for group in optimizer.param_groups:
            group["lr"] = cfg.lr * group["lr_multiplier"] * factor
        sums = torch.zeros(5, dtype=torch.float64)
        micro = list(_micro_batches(step, ctx, cfg))
        for i, (j, first) in enumerate(micro):
            ids = stream.rows(stream.indices(first, cfg.micro_batch))
            inputs, labels = corrupt_batch(ids, micro_seed(seed, step, j), cfg)
            torch.manual_seed(micro_seed(seed, step, j))  # random boundary selectors
            sync = ddp is None or i == len(micro) - 1
            with contextlib.nullcontext() if sync else ddp.no_sync():
                with _autocast(ctx.device, cfg.precision):
                    output = net(inputs.to(ctx.device))
                terms = pretraining_loss(output, labels.to(ctx.device), mcfg, cfg.alpha_ratio)
                (terms.loss / accumulation).backward()
            r = output.router_outputs[0]
            # compute actually spent: each inner stage runs on its padded compressed length
            inner = [ro.compressed_mask.shape[1] for ro in output.router_outputs]
            flops = training_step_flops(mcfg, inputs.shape[1], inputs.shape[0], inner)
            sums += torch.tensor([terms.loss.item(), terms.mlm.item(), terms.ratio.item(),
                                  float(boundary_density(r.boundary_mask, r.mask)), flops],
                                 dtype=torch.float64)
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        means = ctx.all_reduce_mean((sums / len(micro)).to(ctx.device)).cpu()
        metrics = StepMetrics(*map(float, means[:4]))
        cumulative_flops += float(means[4]) * len(micro) * ctx.world_size
        done = step + 1
        speed = cfg.effective_batch * cfg.seq_len / (time.perf_counter() - t0)
        if ctx.is_main:
            if done % cfg.log_interval == 0 or done == schedule.total_steps:
                _append_csv(train_log, TRAIN_COLUMNS, {
                    "step": done, "lr": f"{cfg.lr * factor:.6e}", "loss": f"{metrics.loss:.5f}",
                    "mlm": f"{metrics.mlm:.5f}", "ratio": f"{metrics.ratio:.5f}",
                    "density": f"{metrics.density:.4f}", "tokens_per_s": f"{speed:.0f}",
                    "flops": f"{cumulative_flops:.6e}"})
            if done % cfg.val_interval == 0 or done == schedule.total_steps:
                last_val = evaluate(model, val_batches, cfg, ctx.device)
                _append_csv(val_log, VAL_COLUMNS, {"step": done, **{
                    k: f"{v:.5f}" for k, v in last_val.items()}})
            bar.update(1)
            bar.set_postfix(mlm=f"{metrics.mlm:.3f}", density=f"{metrics.density:.3f}")
        stop.check_deadline()
        preempt = ctx.all_reduce_mean(torch.tensor([float(stop.raised)], device=ctx.device))
        # no periodic state at the last step: the finished run writes its weights instead
        periodic = done % cfg.checkpoint_interval == 0 and done < schedule.total_steps
        if periodic or preempt.item() > 0:
            if ctx.is_main:
                save_state(out, done, model, optimizer,
                           {**identity, "cumulative_flops": cumulative_flops})
            ctx.barrier()
        if preempt.item() > 0:
            bar.close()
            why = (f"{stop.signal_name} received" if stop.signal_name
                   else "stopping before the SLURM time limit")
            print(f"pretrain: {why}; state saved at step {done}; rerun the same command to "
                  "resume", file=sys.stderr)
            raise Preempted(EXIT_PREEMPTED)
    bar.close()
    summary = {
        "model": mcfg.name, "seed": seed, "steps": schedule.total_steps,
        "tokens": schedule.total_steps * cfg.effective_batch * cfg.seq_len,
        "world_size": ctx.world_size, "validation": last_val, "training_flops": cumulative_flops,
        "ldarnet_version": __version__,
    }
    if ctx.is_main:
        if not last_val:
            last_val = evaluate(model, val_batches, cfg, ctx.device)
            summary["validation"] = last_val
        if draw is not None:
            first_window = torch.from_numpy(np.asarray(valid[:1]).astype(np.int64))
            draw(out, *first_window_boundaries(model, first_window, ctx.device))
        write_json(out / "config.json", {**identity, "summary": summary})
        save_model_file(model, out / "model.safetensors")  # last: the workflow's output
        # a finished run is not resumed: a rerun of it trains again (its state is gone)
        shutil.rmtree(out / "state", ignore_errors=True)
    ctx.barrier()
    return summary


def first_window_boundaries(model: LDARNet, window: torch.Tensor, device: torch.device
                            ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Tokens, stage-0 boundary probabilities and boundaries of one validation window.

    What the run's boundary figure shows; the model in eval mode and stage 0 alone
    (:meth:`LDARNet.route`), as in segmentation.
    """
    with torch.no_grad():
        was = model.training
        model.eval()
        router = model.route(window.to(device))
        model.train(was)
    return (window[0].cpu().numpy(), router.boundary_prob[0].float().cpu().numpy(),
            router.boundary_mask[0].cpu().numpy())
