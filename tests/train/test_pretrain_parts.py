"""Pretraining building blocks: WSD schedule, configs, shards, augmentation, checkpoints."""

from __future__ import annotations

import itertools
import math
import os
import stat
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import MODELS, ROOT
from ldarnet.data.shards import SampleStream, ShardError, open_shard, reverse_complement_rows
from ldarnet.data.tokenizer import decode, encode
from ldarnet.model.config import load_model_config
from ldarnet.model.network.ldarnet import LDARNet
from ldarnet.model.param_groups import parameter_groups
from ldarnet.model.weights import save_model_file
from ldarnet.train.checkpoint import (
    CheckpointError,
    latest_state,
    load_state,
    save_state,
)
from ldarnet.train.schedule import WSDSchedule
from ldarnet.train.train_config import (
    TrainConfigError,
    load_train_config,
    train_config_from_dict,
)


# -------------------------------------------------------------------------- schedule
def test_wsd_values_at_known_steps() -> None:
    s = WSDSchedule(100)
    assert (s.warmup_steps, s.stable_steps, s.decay_steps) == (10, 70, 20)
    assert s.factor(0) == pytest.approx(0.1)
    assert s.factor(9) == 1.0 and s.factor(10) == 1.0 and s.factor(79) == 1.0
    assert s.factor(80) == 1.0  # tau = 1
    expected_tau4 = 1 - 0.95 * (1 - 4**-0.5) / (1 - 20**-0.5)
    assert s.factor(83) == pytest.approx(expected_tau4)
    assert s.factor(99) == pytest.approx(0.05)  # the last step ends at 5 %
    factors = [s.factor(i) for i in range(100)]
    assert all(a >= b for a, b in itertools.pairwise(factors[80:]))


def test_group_learning_rates_follow_multipliers() -> None:
    model = LDARNet(load_model_config(MODELS / "ldarnet-tiny.yaml"))
    groups = parameter_groups(model, 5e-4, 0.01)
    s = WSDSchedule(100)
    for g in groups:
        g["lr"] = 5e-4 * g["lr_multiplier"] * s.factor(50)
    lrs = sorted({round(g["lr"], 12) for g in groups})
    assert lrs == [5e-4, 2e-3]  # backbone x1, outer stage x4 (sqrt(4) * 64/32)


# --------------------------------------------------------------------------- configs
def test_paper_budget_is_300_billion_bases() -> None:
    cfg = load_train_config(ROOT / "config/pretrain/paper.yaml")
    assert cfg.effective_batch * cfg.seq_len == 2_097_152
    assert cfg.total_steps == math.ceil(300e9 / 2_097_152) == 143_052
    assert cfg.accumulation(world_size=1) == 16
    assert cfg.accumulation(world_size=4) == 4
    demo = load_train_config(ROOT / "config/pretrain/demo.yaml")
    assert demo.total_steps == demo.steps


def test_train_config_errors() -> None:
    cfg = load_train_config(ROOT / "config/pretrain/paper.yaml")
    with pytest.raises(TrainConfigError, match=r"not divisible by micro_batch .* x world size"):
        cfg.accumulation(world_size=3)
    with pytest.raises(TrainConfigError, match="unknown key"):
        train_config_from_dict({"stepz": 10})
    with pytest.raises(TrainConfigError, match="exponent without a dot as text"):
        train_config_from_dict({"steps": 10, "lr": "1e-5"})
    with pytest.raises(TrainConfigError, match="exactly one of 'steps' and 'tokens'"):
        train_config_from_dict({"steps": 10, "tokens": 1.0e6})
    with pytest.raises(TrainConfigError, match="effective_batch=10 is not divisible"):
        train_config_from_dict({"steps": 10, "effective_batch": 10, "micro_batch": 4})


# ---------------------------------------------------------------------------- shards
def _shard(tmp_path: Path, rows: int = 10, window: int = 8) -> Path:
    path = tmp_path / "train.npy"
    np.save(path, (np.arange(rows * window) % 4).astype(np.uint8).reshape(rows, window))
    return path


def test_shard_errors(tmp_path: Path) -> None:
    with pytest.raises(ShardError, match="does not exist"):
        open_shard(tmp_path / "missing.npy")
    path = _shard(tmp_path)
    with pytest.raises(ShardError, match="seq_len=16"):
        open_shard(path, window=16)
    truncated = tmp_path / "truncated.npy"
    truncated.write_bytes(path.read_bytes()[:60])
    with pytest.raises(ShardError, match="truncated or corrupt"):
        open_shard(truncated)
    other = tmp_path / "other.npy"  # not .npy at all: refused without numpy's unpickling advice
    other.write_bytes(b"not a token shard")
    with pytest.raises(ShardError, match=r"no \.npy header") as refused:
        open_shard(other)
    assert "allow_pickle" not in str(refused.value)
    wrong = tmp_path / "wrong.npy"
    np.save(wrong, np.zeros((3, 8), dtype=np.int64))
    with pytest.raises(ShardError, match="uint8"):
        open_shard(wrong)


def test_sample_stream_is_deterministic_and_covers_each_epoch(tmp_path: Path) -> None:
    shard = open_shard(_shard(tmp_path, rows=10))
    a, b = SampleStream([shard], seed=3), SampleStream([shard], seed=3)
    first = a.indices(0, 10)
    assert sorted(first.tolist()) == list(range(10))  # one epoch = a permutation
    assert np.array_equal(first, b.indices(0, 10))
    assert np.array_equal(a.indices(7, 6), np.concatenate([first[7:], a.indices(10, 3)]))
    assert not np.array_equal(first, SampleStream([shard], seed=4).indices(0, 10))
    rows = a.rows(first[:2])
    assert rows.dtype == torch.int64 and rows.shape == (2, 8)


def test_reverse_complement_keeps_right_padding() -> None:
    ids = torch.from_numpy(np.stack([encode("AACGT"), np.array([0, 1, 2, 6, 6])]).astype(
        np.int64))
    out = reverse_complement_rows(ids, torch.tensor([True, True]))
    assert decode(out[0].numpy()) == "ACGTT"
    assert decode(out[1].numpy()) == "CGT[PAD][PAD]"
    same = reverse_complement_rows(ids, torch.tensor([False, False]))
    assert torch.equal(same, ids)


# ----------------------------------------------------------------------- checkpoints
def _model_and_optimizer(seed: int = 0, name: str = "ldarnet-tiny.yaml"):
    torch.manual_seed(seed)
    model = LDARNet(load_model_config(MODELS / name))
    opt = torch.optim.AdamW(parameter_groups(model, 1e-3, 0.01), betas=(0.9, 0.95))
    ids = torch.randint(0, 4, (2, 64))
    model(ids).logits.sum().backward()
    opt.step()
    return model, opt


def test_checkpoint_round_trip_is_bitwise(tmp_path: Path) -> None:
    model, opt = _model_and_optimizer()
    save_state(tmp_path, 7, model, opt, {"seed": 1})
    model2, opt2 = _model_and_optimizer(seed=5)
    meta = load_state(latest_state(tmp_path), model2, opt2, {"seed": 1})
    assert meta["step"] == 7
    for (n, p), (_, q) in zip(model.named_parameters(), model2.named_parameters(), strict=True):
        assert torch.equal(p, q), n
    for p, q in zip(model.parameters(), model2.parameters(), strict=True):
        for key in ("exp_avg", "exp_avg_sq", "step"):
            assert torch.equal(opt.state[p][key], opt2.state[q][key])


def test_checkpoint_of_another_run_or_truncated_is_refused(tmp_path: Path) -> None:
    model, opt = _model_and_optimizer()
    state = save_state(tmp_path, 3, model, opt, {"seed": 1, "model_config": "tiny"})
    with pytest.raises(CheckpointError, match="seed differ"):
        load_state(state, model, opt, {"seed": 2, "model_config": "tiny"})
    other, other_opt = _model_and_optimizer(name="ldarnet-2m.yaml")
    with pytest.raises(CheckpointError, match=r"do(es)? not fit|another architecture"):
        load_state(state, other, other_opt, {"seed": 1, "model_config": "tiny"})
    weights = state / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    with pytest.raises(CheckpointError, match="truncated"):
        load_state(state, model, opt, {"seed": 1, "model_config": "tiny"})


def test_only_the_newest_state_is_kept(tmp_path: Path) -> None:
    model, opt = _model_and_optimizer()
    for step in (2, 4, 6):
        save_state(tmp_path, step, model, opt, {})
    assert sorted(p.name for p in (tmp_path / "state").iterdir()) == ["latest.json",
                                                                       "step_00000006"]


def test_weights_are_readable_by_the_project_group(tmp_path: Path) -> None:
    """safetensors writes 0600; outputs get the umask's mode like every other file."""
    model, opt = _model_and_optimizer()
    old = os.umask(0o002)
    try:
        save_model_file(model, tmp_path / "model.safetensors")
        state = save_state(tmp_path, 2, model, opt, {})
    finally:
        os.umask(old)
    for path in (tmp_path / "model.safetensors", state / "model.safetensors",
                 state / "optimizer.safetensors"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o664, path


def test_pretraining_state_is_resumed_only_for_the_same_unfinished_run(tmp_path: Path) -> None:
    from ldarnet.train.pretrain import _state_to_resume

    model, opt = _model_and_optimizer()
    identity = {"seed": 1, "model_config": "tiny", "train_config": {"steps": 10}, "data": {}}
    save_state(tmp_path, 4, model, opt, identity)
    messages: list[str] = []
    assert _state_to_resume(tmp_path, identity, messages.append) is not None
    assert not messages
    changed = {**identity, "train_config": {"steps": 12}}
    assert _state_to_resume(tmp_path, changed, messages.append) is None
    assert "train_config differ" in messages[0]
    assert not (tmp_path / "state").exists() and (tmp_path / "state.superseded").is_dir()
