"""Fine-tune one fold: AdamW, plateau LR schedule, early stopping on validation MCC (spec 4.4).

This is the release's HF ``Trainer`` recipe written out as one plain loop, so that
every choice is visible and testable:

* a fresh backbone per fold (``load_backbone()``) plus a linear head seeded by
  ``cfg.seed``; the whole model is trained with one learning rate, no warm-up;
* the training order of epoch e is a permutation drawn from a generator seeded by
  (seed, e), so a fold is reproducible and independent of what ran before it;
* after every epoch: evaluate on the validation split, step ``ReduceLROnPlateau`` with
  the validation MCC, keep a CPU copy of the best weights (strictly greater MCC), stop
  after ``patience`` epochs without improvement;
* the best weights are restored and only then is the test split (if any) predicted,
  once: it can never influence training, the schedule or model selection.

Two release quirks are configurable rather than silently fixed (spec 4.4 [RISK]):
``plateau_mode`` ("max" is correct for MCC; "min" is what the release ran) and
``decay_exemptions`` ("standard" exempts Mamba's dt_bias/A_log/D like pretraining;
"release" decays them).
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.optim.lr_scheduler import ReduceLROnPlateau
from tqdm import tqdm

from ldarnet.data.batch import collate
from ldarnet.evaluation.classifier import SequenceClassifier
from ldarnet.evaluation.errors import EvaluationError
from ldarnet.evaluation.metrics import classification_metrics
from ldarnet.model.network.ldarnet import LDARNet
from ldarnet.model.param_groups import uses_weight_decay
from ldarnet.tasks.task_split import TaskSplit

PLATEAU_MODES = ("max", "min")
DECAY_EXEMPTIONS = ("standard", "release")
PRECISIONS = ("auto", "fp32")


def _is_int(value: Any) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float | np.integer | np.floating) and not isinstance(
        value, bool) and math.isfinite(float(value))


@dataclass(frozen=True)
class FinetuneConfig:
    """Hyper-parameters of one fine-tuning run; defaults are the release's (spec 4.4).

    ``plateau_mode="max"`` is the fix (the LR is halved when validation MCC stops
    rising); ``"min"`` reproduces the release, whose scheduler halves the LR while MCC
    keeps rising. ``precision="auto"`` uses bf16 autocast on CUDA devices of compute
    capability >= 8 and fp32 otherwise; ``"fp32"`` forces fp32.
    """

    lr: float
    batch_size: int
    max_epochs: int = 100
    patience: int = 5
    plateau_mode: str = "max"
    plateau_factor: float = 0.5
    plateau_patience: int = 2
    weight_decay: float = 0.1
    decay_exemptions: str = "standard"
    betas: tuple[float, float] = (0.9, 0.95)
    eps: float = 1e-8
    grad_clip: float = 1.0
    seed: int = 42
    eval_batch_size: int = 128
    device: str = "cpu"
    precision: str = "auto"

    def __post_init__(self) -> None:
        def fail(name: str, rule: str) -> None:
            raise EvaluationError(f"FinetuneConfig.{name} must be {rule}, got "
                             f"{getattr(self, name)!r}")

        if not _is_number(self.lr) or self.lr <= 0:
            fail("lr", "a positive number (e.g. 1e-4)")
        for name in ("batch_size", "max_epochs", "patience", "eval_batch_size"):
            if not _is_int(getattr(self, name)) or getattr(self, name) < 1:
                fail(name, "a positive integer")
        if not _is_int(self.plateau_patience) or self.plateau_patience < 0:
            fail("plateau_patience", "a non-negative integer")
        if self.plateau_mode not in PLATEAU_MODES:
            fail("plateau_mode", f"one of {PLATEAU_MODES} ('max' = fix, 'min' = release)")
        if not _is_number(self.plateau_factor) or not 0 < self.plateau_factor < 1:
            fail("plateau_factor", "a number strictly between 0 and 1")
        if not _is_number(self.weight_decay) or self.weight_decay < 0:
            fail("weight_decay", "a non-negative number")
        if self.decay_exemptions not in DECAY_EXEMPTIONS:
            fail("decay_exemptions", f"one of {DECAY_EXEMPTIONS}")
        betas = tuple(self.betas) if isinstance(self.betas, list | tuple) else ()
        if len(betas) != 2 or not all(_is_number(b) and 0 <= b < 1 for b in betas):
            fail("betas", "two numbers in [0, 1), e.g. (0.9, 0.95)")
        object.__setattr__(self, "betas", (float(betas[0]), float(betas[1])))
        if not _is_number(self.eps) or self.eps <= 0:
            fail("eps", "a positive number")
        if not _is_number(self.grad_clip) or self.grad_clip <= 0:
            fail("grad_clip", "a positive number (global gradient-norm limit)")
        if not _is_int(self.seed):
            fail("seed", "an integer")
        try:
            torch.device(self.device)
        except (RuntimeError, TypeError):
            fail("device", "a torch device string such as 'cpu', 'cuda' or 'cuda:1'")
        if self.precision not in PRECISIONS:
            fail("precision", f"one of {PRECISIONS}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class FoldResult:
    """Everything one fold produced; ``to_dict()`` is what gets written as JSON.

    ``history`` has one entry per epoch: ``epoch`` (1-based), ``lr`` (the learning rate
    used during that epoch), ``train_loss`` (mean cross-entropy over its examples) and
    ``val`` (metrics dict). ``val`` is the best epoch's validation metrics; ``test`` the
    restored best model's test metrics (None without a test split). Metric values may
    be NaN (AUROC of a single-class split); Python's ``json`` writes and reads those.
    """

    history: list[dict[str, Any]]
    best_epoch: int
    stop_epoch: int
    val: dict[str, float]
    test: dict[str, float] | None
    train_examples: int
    val_examples: int
    test_examples: int | None
    seconds: float
    examples_per_second: float

    def to_dict(self) -> dict[str, Any]:
        return copy.deepcopy(dataclasses.asdict(self))


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """bf16 on CUDA with compute capability >= 8 under "auto"; None (= fp32) otherwise."""
    if precision not in PRECISIONS:
        raise EvaluationError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if precision == "auto" and device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        if torch.cuda.get_device_capability(index)[0] >= 8:
            return torch.bfloat16
    return None


def _autocast(device: torch.device, dtype: torch.dtype | None) -> contextlib.AbstractContextManager:
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def epoch_seed(seed: int, epoch: int) -> int:
    """Seed of epoch ``epoch``'s data order: a function of (seed, epoch) only."""
    return (int(seed) * 1_000_003 + int(epoch)) % (2**63)


def epoch_order(n: int, seed: int, epoch: int) -> torch.Tensor:
    """The permutation of ``range(n)`` that epoch ``epoch`` trains in."""
    generator = torch.Generator().manual_seed(epoch_seed(seed, epoch))
    return torch.randperm(n, generator=generator)


def _release_uses_weight_decay(name: str) -> bool:
    """The release's rule: no decay for names ending ".bias" or containing "norm"/"ln".

    On our parameter names this exempts every ``*.bias`` (conv1d, residual_proj, head)
    and every norm weight (``norm1``, ``norm2``, ``rmsnorm``, the Mamba gate ``norm``).
    No name of ours contains "ln" (checked on the tiny/2M/110M layouts), so that clause
    matches nothing. It DOES decay Mamba's ``dt_bias`` (no dot before "bias"),
    ``A_log`` and ``D``, and ``pad_dimension`` (spec 4.4 [RISK]).
    """
    return not (name.endswith(".bias") or "norm" in name or "ln" in name)


def optimizer_groups(model: SequenceClassifier, weight_decay: float,
                     exemptions: str) -> list[dict[str, Any]]:
    """Two AdamW groups (decayed, not decayed) over backbone + head, one learning rate.

    "standard" exempts what pretraining exempts (biases, norms, dt_bias/A_log/D and
    params flagged no-WD; the head's bias is a ``.bias``); "release" applies the
    release's name rule (see ``_release_uses_weight_decay``).
    """
    if exemptions not in DECAY_EXEMPTIONS:
        raise EvaluationError(f"exemptions must be one of {DECAY_EXEMPTIONS}, got {exemptions!r}")
    decay, no_decay = [], []
    for name, param in model.named_parameters():  # tied parameters appear once
        if not param.requires_grad:
            continue
        if exemptions == "standard":
            decayed = uses_weight_decay(name, param)
        else:
            decayed = _release_uses_weight_decay(name)
        (decay if decayed else no_decay).append((name, param))
    groups = []
    for members, wd in ((decay, weight_decay), (no_decay, 0.0)):
        if members:
            groups.append({"params": [p for _, p in members], "names": [n for n, _ in members],
                           "weight_decay": wd})
    return groups


def plateau_scheduler(optimizer: torch.optim.Optimizer,
                      cfg: FinetuneConfig) -> ReduceLROnPlateau:
    """The LR schedule, stepped once per epoch with the validation MCC.

    Only mode, factor and patience are set; threshold etc. keep PyTorch's defaults, as
    the release's ``get_reduce_on_plateau_schedule`` did.
    """
    return ReduceLROnPlateau(optimizer, mode=cfg.plateau_mode, factor=cfg.plateau_factor,
                             patience=cfg.plateau_patience)


def _batches(order: torch.Tensor | np.ndarray, batch_size: int) -> list[np.ndarray]:
    """Consecutive slices of ``order``; the last may be short (it is kept, as HF does)."""
    order = np.asarray(order, dtype=np.int64)
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


@torch.no_grad()
def predict_proba(model: SequenceClassifier, split: TaskSplit, batch_size: int,
                  device: str | torch.device, precision: str = "auto") -> np.ndarray:
    """Softmax class probabilities (n, num_classes), float64, in the split's row order.

    Runs in eval mode without gradients and restores the model's previous mode.
    Each batch is padded to its own longest sequence (the model is padding-exact).
    """
    if not _is_int(batch_size) or batch_size < 1:
        raise EvaluationError(f"batch_size must be a positive integer, got {batch_size!r}")
    device = torch.device(device)
    dtype = autocast_dtype(precision, device)
    was_training = model.training
    model.eval()
    out = []
    try:
        for rows in _batches(np.arange(len(split)), batch_size):
            input_ids, mask = collate([split.sequences[i] for i in rows])
            with _autocast(device, dtype):
                logits = model(input_ids.to(device), mask.to(device))
            out.append(torch.softmax(logits.float(), dim=-1).cpu().double().numpy())
    finally:
        model.train(was_training)
    if not out:
        return np.zeros((0, model.num_classes))
    return np.concatenate(out)


def _check_split(split: TaskSplit, name: str, num_classes: int) -> None:
    if len(split) == 0:
        raise EvaluationError(f"the {name} split is empty; fine-tuning needs examples in it")
    labels = np.asarray(split.labels)
    if labels.min() < 0 or labels.max() >= num_classes:
        raise EvaluationError(
            f"{name} labels must lie in 0..{num_classes - 1} (num_classes={num_classes}), "
            f"got {labels.min()}..{labels.max()}; pass num_classes = max(train label) + 1"
        )


def _cpu_state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}


def finetune_fold(
    load_backbone: Callable[[], LDARNet],
    train: TaskSplit,
    val: TaskSplit,
    num_classes: int,
    cfg: FinetuneConfig,
    test: TaskSplit | None = None,
    progress: bool = True,
    log: Callable[[str], None] | None = None,
) -> FoldResult:
    """Fine-tune a fresh backbone + head on ``train``, select on ``val``, then test once.

    The global torch RNG is seeded with ``cfg.seed`` before the backbone is loaded and
    again before the head is built (so it also drives any random draw inside the model
    during training), and restored for the caller afterwards. ``log`` receives one line
    per epoch and one at the end.
    """
    _check_split(train, "train", num_classes)
    _check_split(val, "validation", num_classes)
    if test is not None:
        _check_split(test, "test", num_classes)
    device = torch.device(cfg.device)
    fork_devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=fork_devices):
        return _run(load_backbone, train, val, num_classes, cfg, test, progress, log, device)


def _run(load_backbone: Callable[[], LDARNet], train: TaskSplit, val: TaskSplit,
         num_classes: int, cfg: FinetuneConfig, test: TaskSplit | None, progress: bool,
         log: Callable[[str], None] | None, device: torch.device) -> FoldResult:
    start = time.perf_counter()
    # Seeded before the backbone too, so that a randomly initialised backbone (a
    # from-scratch baseline) is reproducible; re-seeded before the head, so that the
    # head's init does not depend on how many draws load_backbone() made.
    torch.manual_seed(cfg.seed)
    backbone = load_backbone()
    if not isinstance(backbone, LDARNet):
        raise TypeError(f"load_backbone() must return an LDARNet, got {type(backbone).__name__}")
    torch.manual_seed(cfg.seed)
    model = SequenceClassifier(backbone, num_classes).to(device)
    model.train()
    dtype = autocast_dtype(cfg.precision, device)
    optimizer = torch.optim.AdamW(
        optimizer_groups(model, cfg.weight_decay, cfg.decay_exemptions), lr=cfg.lr,
        betas=cfg.betas, eps=cfg.eps, fused=device.type == "cuda",
    )
    scheduler = plateau_scheduler(optimizer, cfg)
    train_labels = torch.tensor(np.asarray(train.labels), dtype=torch.int64)
    history: list[dict[str, Any]] = []
    best_mcc, best_epoch, best_state, stale = -math.inf, 0, None, 0
    train_seconds, trained = 0.0, 0
    bar = tqdm(range(1, cfg.max_epochs + 1), desc="finetune", unit="epoch",
               disable=not progress, file=sys.stderr)
    epoch = 0
    for epoch in bar:
        lr = float(optimizer.param_groups[0]["lr"])
        t0 = time.perf_counter()
        loss_sum = 0.0
        model.train()
        for rows in _batches(epoch_order(len(train), cfg.seed, epoch), cfg.batch_size):
            input_ids, mask = collate([train.sequences[i] for i in rows])
            labels = train_labels[rows].to(device)
            with _autocast(device, dtype):
                logits = model(input_ids.to(device), mask.to(device))
            loss = F.cross_entropy(logits.float(), labels)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            optimizer.step()
            loss_sum += loss.item() * len(rows)
        train_seconds += time.perf_counter() - t0
        trained += len(train)
        metrics = classification_metrics(
            val.labels, predict_proba(model, val, cfg.eval_batch_size, device, cfg.precision))
        history.append({"epoch": epoch, "lr": lr, "train_loss": loss_sum / len(train),
                        "val": metrics})
        scheduler.step(metrics["mcc"])
        if metrics["mcc"] > best_mcc:  # strictly greater; NaN never improves
            best_mcc, best_epoch, best_state, stale = metrics["mcc"], epoch, _cpu_state(model), 0
        else:
            stale += 1
        bar.set_postfix(loss=f"{loss_sum / len(train):.4f}", val_mcc=f"{metrics['mcc']:.4f}",
                        lr=f"{lr:.2e}")
        if log is not None:
            log(f"epoch {epoch}: lr {lr:.3e} train_loss {loss_sum / len(train):.4f} "
                f"val_mcc {metrics['mcc']:.4f} (best {best_mcc:.4f} at epoch {best_epoch})")
        if stale >= cfg.patience:
            break
    bar.close()
    if best_state is None:
        raise RuntimeError(
            "validation MCC was NaN in every epoch, so no model could be selected; the "
            "training diverged: lower cfg.lr or check the data"
        )
    model.load_state_dict(best_state)
    test_metrics = None
    if test is not None:  # read once, after selection: it cannot influence training
        test_metrics = classification_metrics(
            test.labels, predict_proba(model, test, cfg.eval_batch_size, device, cfg.precision))
    result = FoldResult(
        history=history, best_epoch=best_epoch, stop_epoch=epoch,
        val=dict(history[best_epoch - 1]["val"]), test=test_metrics,
        train_examples=len(train), val_examples=len(val),
        test_examples=None if test is None else len(test),
        seconds=time.perf_counter() - start,
        examples_per_second=trained / train_seconds if train_seconds > 0 else math.nan,
    )
    if log is not None:
        test_text = "" if test_metrics is None else f", test MCC {test_metrics['mcc']:.4f}"
        log(f"best epoch {best_epoch} (val MCC {best_mcc:.4f}), stopped at epoch {epoch}"
            f"{test_text}")
    return result
