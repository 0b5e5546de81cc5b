"""The three boundary-selection arms of the ablation (docs/ablation.md).

``learned`` (router p > 0.5), ``fixed_grid`` (t mod S = 0) and ``random`` (Bernoulli(1/S))
must share every parameter and differ only in boundary selection; the non-learned arms
use p = b and no ratio loss; random boundaries are fresh per training batch but a fixed
function of the sequence at evaluation; arm configs inherit from the learned config.
"""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from conftest import MODELS
from ldarnet.model.config import ConfigError, ModelConfig, load_model_config
from ldarnet.model.network.dynamic_chunking import (
    FixedGridBoundaries,
    RandomBoundaries,
    RoutingModule,
    chunk,
    make_selector,
    sequence_keys,
)
from ldarnet.model.network.ldarnet import LDARNet
from ldarnet.model.objective import pretraining_loss
from ldarnet.model.summary import model_summary

PAD = 6
ARMS = {"learned": "", "fixed_grid": "-fixed", "random": "-random"}


def _mask(lengths: list[int], width: int | None = None) -> torch.Tensor:
    width = width or max(lengths)
    return torch.arange(width)[None, :] < torch.tensor(lengths)[:, None]


def _ids(lengths: list[int], width: int | None = None) -> torch.Tensor:
    ids = torch.randint(0, 4, (len(lengths), width or max(lengths)))
    ids[~_mask(lengths, width)] = PAD
    return ids


def _arm(size: str, kind: str) -> ModelConfig:
    return load_model_config(MODELS / f"ldarnet-{size}{ARMS[kind]}.yaml")


@pytest.fixture(scope="module")
def tiny_models() -> dict[str, LDARNet]:
    torch.manual_seed(0)
    learned = LDARNet(_arm("tiny", "learned"))
    models = {"learned": learned}
    for kind in ("fixed_grid", "random"):  # same weights: the arms differ in selection only
        models[kind] = LDARNet(_arm("tiny", kind))
        models[kind].load_state_dict(learned.state_dict())
    return models


# ------------------------------------------------------------------------ fixed grid
def test_fixed_grid_boundaries_and_compressed_lengths() -> None:
    lengths = [1, 3, 4, 5, 17]
    mask = _mask(lengths, 20)
    b = FixedGridBoundaries(4).select(torch.rand(5, 20), mask)
    for i, n in enumerate(lengths):
        assert b[i].nonzero().flatten().tolist() == list(range(0, n, 4))
    _, cmask, _ = chunk(torch.randn(5, 20, 3), b)
    assert cmask.sum(1).tolist() == [math.ceil(n / 4) for n in lengths]
    assert cmask.shape[1] == math.ceil(17 / 4)


def test_fixed_arm_model_compresses_each_row_to_ceil_len_over_s(tiny_models) -> None:
    lengths = [1, 3, 4, 5, 17]
    router = tiny_models["fixed_grid"](_ids(lengths, 24)).router_outputs[0]
    assert router.compressed_mask.sum(1).tolist() == [math.ceil(n / 4) for n in lengths]


def test_both_non_learned_arms_use_grid_stride() -> None:
    cfg = _arm("tiny", "random")
    routing = dataclasses.replace(cfg.routing, grid_stride=8, target_ratio=(3.0,))
    assert make_selector(routing).rate == 1 / 8
    assert make_selector(dataclasses.replace(routing, boundaries="fixed_grid")).stride == 8
    assert not routing.learned and cfg.routing.boundaries == "random"
    assert _arm("tiny", "learned").routing.learned


# ---------------------------------------------------------------------- p = b, c = 1
@pytest.mark.parametrize("kind", ["fixed_grid", "random"])
@pytest.mark.parametrize("train", [True, False])
def test_probabilities_are_the_hard_boundaries(tiny_models, kind: str, train: bool) -> None:
    model = tiny_models[kind].train(train)
    ids = _ids([40, 64, 9])
    r = model(ids).router_outputs[0]
    assert torch.equal(r.boundary_prob, r.boundary_mask.to(r.boundary_prob.dtype))
    assert torch.equal(r.confidence, torch.ones_like(r.confidence))
    learned = tiny_models["learned"].train(train)(ids).router_outputs[0]
    assert not torch.equal(learned.boundary_prob, learned.boundary_mask.float())


# ------------------------------------------------------------------ identical models
@pytest.mark.parametrize("size", ["tiny", "110m"])
def test_arms_have_identical_parameters(size: str) -> None:
    summaries = {kind: model_summary(_arm(size, kind)) for kind in ARMS}
    for kind in ("fixed_grid", "random"):
        for key in ("parameters", "parameters_per_stage", "parameters_per_component",
                    "lr_multipliers", "residual_heights"):
            assert summaries[kind][key] == summaries["learned"][key], (kind, key)
    assert len({s["name"] for s in summaries.values()}) == 3
    if size == "110m":
        assert summaries["fixed_grid"]["parameters"] == 110_687_296


def test_arms_start_from_identical_weights() -> None:
    states = {}
    for kind in ARMS:
        torch.manual_seed(11)
        states[kind] = LDARNet(_arm("tiny", kind)).state_dict()
    for kind in ("fixed_grid", "random"):
        assert states[kind].keys() == states["learned"].keys()
        assert all(torch.equal(v, states["learned"][k]) for k, v in states[kind].items())


def test_arm_configs_differ_from_base_only_in_name_and_boundaries() -> None:
    for size in ("tiny", "110m"):
        base = _arm(size, "learned").to_dict()
        for kind in ("fixed_grid", "random"):
            arm = _arm(size, kind).to_dict()
            assert arm["name"] == f"ldarnet-{size}{ARMS[kind]}" != base["name"]
            assert arm["routing"]["boundaries"] == kind
            arm["name"], arm["routing"]["boundaries"] = base["name"], "learned"
            assert arm == base


# ----------------------------------------------------------- gradients and the loss
def _loss_and_grads(model: LDARNet, cfg: ModelConfig):
    model.train().zero_grad(set_to_none=True)
    ids = _ids([96, 70])
    labels = torch.where(torch.rand(ids.shape) < 0.15, ids, torch.full_like(ids, -100))
    labels[ids == PAD] = -100
    labels[0, 0] = ids[0, 0]  # at least one target
    terms = pretraining_loss(model(ids), labels, cfg)
    terms.loss.backward()
    return terms


@pytest.mark.parametrize("kind", ["fixed_grid", "random"])
def test_router_gets_zero_gradient_and_ratio_loss_is_off(tiny_models, kind: str) -> None:
    model = tiny_models[kind]
    terms = _loss_and_grads(model, model.config)
    assert terms.ratio.item() == 0.0
    assert torch.equal(terms.loss, terms.mlm)
    router = model.hierarchy.routing_module
    for layer in (router.q_proj_layer, router.k_proj_layer):
        # zero, not None: DDP without find_unused_parameters needs every parameter used
        assert layer.weight.grad is not None
        assert torch.count_nonzero(layer.weight.grad) == 0
    missing = [n for n, p in model.named_parameters() if p.grad is None]
    assert not missing, missing
    assert model.hierarchy.encoder.layers[0].mixer.fwd.in_proj.weight.grad.abs().sum() > 0


def test_learned_router_gets_gradient_and_ratio_loss(tiny_models) -> None:
    model = tiny_models["learned"]
    terms = _loss_and_grads(model, model.config)
    assert terms.ratio.item() > 0
    assert math.isclose(terms.loss.item(), (terms.mlm + 0.03 * terms.ratio).item(), rel_tol=1e-6)
    assert model.hierarchy.routing_module.q_proj_layer.weight.grad.abs().sum() > 0


def test_learned_forward_is_unchanged_by_row_keys(tiny_models) -> None:
    model = tiny_models["learned"]
    ids = _ids([50, 31])
    keys = torch.tensor([123, -5])
    for train in (True, False):
        model.train(train)
        with torch.no_grad():
            plain, keyed = model(ids), model(ids, row_keys=keys)
        assert torch.equal(plain.logits, keyed.logits)
        assert torch.equal(plain.router_outputs[0].boundary_prob,
                           keyed.router_outputs[0].boundary_prob)
        r = plain.router_outputs[0]  # the learned rule itself
        assert torch.equal(r.boundary_mask[:, 1:], (r.boundary_prob[:, 1:] > 0.5) & r.mask[:, 1:])


# --------------------------------------------------------------------------- random
def test_random_rate_and_reproducibility_in_training() -> None:
    selector = RandomBoundaries(1 / 4)
    p, mask = torch.zeros(64, 1024), torch.ones(64, 1024, dtype=torch.bool)
    torch.manual_seed(7)
    first = selector.select(p, mask, training=True)
    rate = first[:, 1:].float().mean().item()
    assert abs(rate - 0.25) < 0.01
    assert first[:, 0].all()
    torch.manual_seed(7)
    assert torch.equal(selector.select(p, mask, training=True), first)
    assert not torch.equal(selector.select(p, mask, training=True), first)  # fresh draws


def test_random_rate_in_eval_mode() -> None:
    selector = RandomBoundaries(1 / 4, seed=0)
    p, mask = torch.zeros(64, 1024), torch.ones(64, 1024, dtype=torch.bool)
    b = selector.select(p, mask, row_keys=torch.arange(64), training=False)
    assert abs(b[:, 1:].float().mean().item() - 0.25) < 0.01
    assert b[:, 0].all()


def test_random_eval_boundaries_depend_on_the_sequence_only(tiny_models) -> None:
    model = tiny_models["random"].eval()
    lengths = [50, 120, 33]
    ids = _ids(lengths)
    with torch.no_grad():
        batched = model(ids).router_outputs[0].boundary_mask
        repeat = model(ids).router_outputs[0].boundary_mask
        assert torch.equal(batched, repeat)
        for i, n in enumerate(lengths):
            alone = model(ids[i : i + 1, :n]).router_outputs[0].boundary_mask
            assert torch.equal(alone[0], batched[i, :n])
            padded = torch.full((1, 200), PAD)
            padded[0, :n] = ids[i, :n]
            wide = model(padded).router_outputs[0].boundary_mask
            assert torch.equal(wide[0, :n], batched[i, :n]) and not wide[0, n:].any()
        twins = torch.stack([ids[1], ids[1]])
        other = ids[1].clone()
        other[60] = (other[60] + 1) % 4  # one base changed
        pair = model(torch.stack([ids[1], other])).router_outputs[0].boundary_mask
    assert torch.equal(model(twins).router_outputs[0].boundary_mask[0], batched[1])
    assert not torch.equal(pair[0], pair[1])


def test_random_eval_draw_follows_the_routing_seed() -> None:
    mask = _mask([300])
    keys = sequence_keys(_ids([300]), mask)
    a = RandomBoundaries(0.25, seed=0).select(torch.zeros(1, 300), mask, row_keys=keys,
                                              training=False)
    b = RandomBoundaries(0.25, seed=1).select(torch.zeros(1, 300), mask, row_keys=keys,
                                              training=False)
    c = RandomBoundaries(0.25, seed=0, stage=1).select(torch.zeros(1, 300), mask,
                                                       row_keys=keys, training=False)
    assert not torch.equal(a, b) and not torch.equal(a, c)


def test_random_train_mode_redraws_every_batch(tiny_models) -> None:
    model = tiny_models["random"].train()
    ids = _ids([200])
    torch.manual_seed(3)
    first = model(ids).router_outputs[0].boundary_mask
    second = model(ids).router_outputs[0].boundary_mask
    torch.manual_seed(3)
    assert torch.equal(model(ids).router_outputs[0].boundary_mask, first)
    assert not torch.equal(first, second)


def test_sequence_keys_ignore_padding_dtype_and_neighbours() -> None:
    ids = _ids([10, 25])
    keys = sequence_keys(ids, ids != PAD)
    wider = torch.cat([ids, torch.full((2, 7), PAD)], dim=1).int()
    assert torch.equal(sequence_keys(wider, wider != PAD), keys)
    assert sequence_keys(ids[:1, :10], ids[:1, :10] != PAD).item() == keys[0].item()
    assert keys[0] != keys[1] and keys.dtype == torch.int64 and (keys >= 0).all()


def test_random_eval_without_keys_is_a_clear_error() -> None:
    router = RoutingModule(8, RandomBoundaries(0.25)).eval()
    with pytest.raises(ValueError, match="row_keys"):
        router(torch.randn(2, 10, 8), _mask([10, 4]))
    router.train()
    assert router(torch.randn(2, 10, 8), _mask([10, 4])).boundary_mask[:, 0].all()


# ------------------------------------------------------------- config inheritance
def _write(path, text: str):
    path.write_text(text)
    return path


def test_base_merges_mappings_and_replaces_lists(tmp_path) -> None:
    (tmp_path / "models").mkdir()
    _write(tmp_path / "models" / "base.yaml", (MODELS / "ldarnet-tiny.yaml").read_text())
    child = _write(tmp_path / "child.yaml",
                   "base: models/base.yaml\nname: child\nrouting: {boundaries: random, "
                   "grid_stride: 8}\nattn: {window_size: [15, -1]}\nd_intermediate: [0, 64]\n")
    grandchild = _write(tmp_path / "grand.yaml", "base: child.yaml\nname: grand\n")
    base = load_model_config(tmp_path / "models" / "base.yaml")
    cfg = load_model_config(child)
    assert cfg.name == "child" and base.name == "ldarnet-tiny"
    assert cfg.routing.boundaries == "random" and cfg.routing.grid_stride == 8
    assert cfg.routing.target_ratio == base.routing.target_ratio  # merged, not replaced
    assert cfg.attn.window_size == (15, -1) and cfg.attn.num_heads == base.attn.num_heads
    assert cfg.d_intermediate == (0, 64) and cfg.arch_layout == base.arch_layout
    assert load_model_config(grandchild) == dataclasses.replace(cfg, name="grand")
    assert "base" not in cfg.to_dict()  # checkpoints embed the resolved config


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("base: ldarnet-tiny.yaml\nname: x\nroutng: {boundaries: random}\n", "'routng'"),
        ("base: ldarnet-tiny.yaml\nname: x\nrouting: {boundary: random}\n", "'boundary'"),
        ("base: ldarnet-tiny.yaml\nrouting: {boundaries: randm}\n", "routing.boundaries"),
        ("base: nope.yaml\nname: x\n", "does not exist"),
        ("base: [ldarnet-tiny.yaml]\n", "base must be"),
    ],
)
def test_bad_child_config_is_refused_naming_the_file(tmp_path, text: str, fragment: str) -> None:
    _write(tmp_path / "ldarnet-tiny.yaml", (MODELS / "ldarnet-tiny.yaml").read_text())
    child = _write(tmp_path / "child.yaml", text)
    with pytest.raises(ConfigError) as err:
        load_model_config(child)
    assert fragment in str(err.value)
    assert str(err.value).startswith(str(child))


def test_base_cycle_is_refused(tmp_path) -> None:
    a = _write(tmp_path / "a.yaml", "base: b.yaml\nname: a\n")
    _write(tmp_path / "b.yaml", "base: a.yaml\nname: b\n")
    with pytest.raises(ConfigError, match="cycle") as err:
        load_model_config(a)
    assert "a.yaml" in str(err.value) and "b.yaml" in str(err.value)
    own = _write(tmp_path / "self.yaml", "base: self.yaml\n")
    with pytest.raises(ConfigError, match="cycle"):
        load_model_config(own)
