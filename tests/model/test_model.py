"""The assembled LDARNet: forward/backward, padding exactness, init, optimizer groups."""

from __future__ import annotations

import math

import pytest
import torch

from conftest import small_cfg
from ldarnet.data.masking import mask_tokens
from ldarnet.data.tokenizer import IGNORE_INDEX
from ldarnet.model.config import config_from_dict
from ldarnet.model.network.init import residual_heights
from ldarnet.model.network.ldarnet import LDARNet
from ldarnet.model.objective import pretraining_loss
from ldarnet.model.param_groups import parameter_groups, stage_lr_multipliers

PAD = 6


def _ids(lengths: list[int]) -> torch.Tensor:
    ids = torch.randint(0, 4, (len(lengths), max(lengths)))
    for i, n in enumerate(lengths):
        ids[i, n:] = PAD
    return ids


def test_tiny_forward_backward_on_cpu(tiny_cfg) -> None:
    model = LDARNet(tiny_cfg)
    inputs, labels = mask_tokens(_ids([300, 256]), torch.Generator().manual_seed(1))
    out = model(inputs)
    assert out.logits.shape == (2, 300, 7)
    assert len(out.router_outputs) == 1
    terms = pretraining_loss(out, labels, tiny_cfg)
    assert torch.isfinite(terms.loss)
    assert math.isclose(terms.loss.item(), (terms.mlm + 0.03 * terms.ratio).item(), rel_tol=1e-6)
    terms.loss.backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None]
    assert not missing, missing
    router = model.hierarchy.routing_module
    assert router.q_proj_layer.weight.grad.abs().sum() > 0
    assert model.hierarchy.residual_proj.weight.grad.abs().sum() > 0


def test_whole_model_is_padding_exact() -> None:
    cfg = small_cfg()
    model = LDARNet(cfg).double().eval()
    with torch.no_grad():  # wake the zero-initialised skip so every path carries signal
        model.hierarchy.residual_proj.weight.normal_(0, 0.1)
    ids = _ids([40, 64, 17])
    batched = model(ids).logits
    for i, n in enumerate([40, 64, 17]):
        alone = model(ids[i : i + 1, :n]).logits
        torch.testing.assert_close(batched[i : i + 1, :n], alone, atol=1e-10, rtol=0)


def test_release_padding_mode_is_batch_dependent() -> None:
    cfg = small_cfg(reverse_padding="release")
    model = LDARNet(cfg).double().eval()
    ids = _ids([40, 64])
    batched = model(ids).logits[0, :40]
    alone = model(ids[:1, :40]).logits[0]
    assert (batched - alone).abs().max() > 1e-8


def test_left_padding_is_refused() -> None:
    model = LDARNet(small_cfg())
    ids = torch.randint(0, 4, (1, 10))
    ids[0, :3] = PAD
    with pytest.raises(ValueError, match="right-padded"):
        model(ids)


def test_boundary_strategies_share_parameters_and_compute() -> None:
    counts = {}
    for kind in ("learned", "fixed_grid", "random"):
        model = LDARNet(small_cfg(routing={"boundaries": kind}))
        counts[kind] = sum(p.numel() for p in model.parameters())
        out = model(_ids([64]))
        b = out.router_outputs[0].boundary_mask
        if kind == "fixed_grid":
            assert b[0].nonzero().flatten().tolist() == list(range(0, 64, 4))
    assert len(set(counts.values())) == 1


def test_initialisation_follows_spec(tiny_cfg) -> None:
    cfg = config_from_dict({**tiny_cfg.to_dict(), "d_model": [128, 256],
                            "d_intermediate": [0, 512], "ssm": {"d_state": 16, "headdim": 32}})
    model = LDARNet(cfg)
    heights = residual_heights(model)
    assert heights == [2 + 1 + 2, 2 + 1 + 2 + 4]
    stage = model.hierarchy
    enc = stage.encoder.layers[0].mixer
    assert enc.fwd.in_proj.weight.std().item() == pytest.approx(0.02, rel=0.05)
    assert enc.fwd.out_proj.weight.std().item() == pytest.approx(0.02 / math.sqrt(5), rel=0.05)
    bb = stage.main_network.main_network.layers[0]
    assert bb.mlp.fc2.weight.std().item() == pytest.approx(0.02 / math.sqrt(9), rel=0.05)
    assert bb.mlp.fc1.weight.std().item() == pytest.approx(0.02, rel=0.05)
    assert torch.equal(stage.residual_proj.weight, torch.zeros_like(stage.residual_proj.weight))
    assert stage.residual_proj.bias.abs().sum() > 0  # PyTorch default, not zeroed
    assert torch.equal(stage.routing_module.k_proj_layer.weight, torch.eye(128))
    assert torch.equal(stage.main_network.pad_dimension, torch.zeros(128))
    assert torch.equal(enc.fwd.D, torch.ones_like(enc.fwd.D))
    dt = torch.nn.functional.softplus(enc.fwd.dt_bias)
    assert dt.min() >= 1e-3 - 1e-9 and dt.max() <= 0.1 + 1e-9
    A = torch.exp(enc.fwd.A_log)
    assert A.min() >= 1 and A.max() <= 16


def test_parameter_groups_multipliers_and_weight_decay(tiny_cfg) -> None:
    model = LDARNet(tiny_cfg)
    groups = parameter_groups(model, base_lr=5e-4, weight_decay=0.01)
    assert len(groups) == 4
    by_name = {n: g for g in groups for n in g["names"]}
    assert by_name["embeddings.weight"]["lr"] == pytest.approx(5e-4 * 4.0)
    assert by_name["hierarchy.main_network.pad_dimension"]["lr_multiplier"] == 1.0
    assert by_name["hierarchy.main_network.main_network.rmsnorm.weight"]["weight_decay"] == 0
    assert by_name["hierarchy.residual_proj.bias"]["weight_decay"] == 0
    assert by_name["hierarchy.residual_proj.weight"]["weight_decay"] == 0.01
    assert by_name["hierarchy.encoder.layers.0.mixer.fwd.A_log"]["weight_decay"] == 0
    assert by_name["hierarchy.encoder.layers.0.mixer.bwd.dt_bias"]["weight_decay"] == 0
    assert by_name["hierarchy.encoder.layers.0.mixer.fwd.in_proj.weight"]["lr_multiplier"] == 4.0
    total = sum(p.numel() for g in groups for p in g["params"])
    assert total == sum(p.numel() for p in model.parameters())  # each parameter once
    assert stage_lr_multipliers(tiny_cfg) == [4.0, 1.0]


def test_mlm_masking_statistics() -> None:
    ids = torch.randint(0, 5, (64, 512))  # includes N (id 4)
    ids[:, 500:] = PAD
    corrupted, labels = mask_tokens(ids, torch.Generator().manual_seed(0))
    selected = labels != IGNORE_INDEX
    eligible = ids <= 3
    assert not (selected & ~eligible).any()  # never N or padding
    rate = selected.sum() / eligible.sum()
    assert 0.14 < rate < 0.16
    masked = (corrupted == 5) & selected
    assert 0.77 < masked.sum() / selected.sum() < 0.83
    unchanged = (corrupted == ids) & selected
    assert 0.11 < unchanged.sum() / selected.sum() < 0.15  # 10 % kept + 2.5 % random hits
    assert torch.equal(corrupted[~selected], ids[~selected])
    assert torch.equal(labels[selected], ids[selected])
