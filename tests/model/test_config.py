"""Model configs: exact published parameter counts and clear errors for bad input."""

from __future__ import annotations

import pytest

from conftest import MODELS
from ldarnet.model.config import ConfigError, config_from_dict, load_model_config
from ldarnet.model.layout import LayoutError, parse_layout_string
from ldarnet.model.summary import model_summary


def test_110m_parameter_count_is_exact() -> None:
    s = model_summary(load_model_config(MODELS / "ldarnet-110m.yaml"))
    assert s["parameters"] == 110_687_296
    assert s["parameters_outer"] == 13_937_312
    assert s["parameters_backbone"] == 96_749_984
    comp = s["parameters_per_component"]
    assert comp["encoder"] == 5_182_752 + 1_049_088 + 512
    assert comp["decoder"] == 6_910_848
    assert comp["routing_module"] == 524_288
    assert comp["residual_proj"] == 262_656
    assert comp["stage1.pad_dimension"] == 256
    assert s["lr_multipliers"] == [3.0, 1.0]
    assert s["residual_heights"] == [8, 28]


def test_2m_parameter_count_is_exact() -> None:
    s = model_summary(load_model_config(MODELS / "ldarnet-2m.yaml"))
    assert s["parameters"] == 2_011_288
    assert s["lr_multipliers"] == [4.0, 1.0]


def test_layout_grammar() -> None:
    layers = parse_layout_string("m3t1")
    assert [(x.mixer, x.mlp) for x in layers] == [("mamba", False)] * 3 + [("attention", False)]
    assert sum(x.height for x in parse_layout_string("M10")) == 20
    assert [x.mlp for x in parse_layout_string("T2m1")] == [True, True, False]
    for bad in ("m3x1", "3m", "m", "", "m0"):
        with pytest.raises(LayoutError):
            parse_layout_string(bad)


def _base() -> dict:
    return load_model_config(MODELS / "ldarnet-tiny.yaml").to_dict()


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"arch_layout": ["m3q1", ["M2"], "m2"]}, "'q1'"),
        ({"arch_layout": ["m2", "M2"]}, "arch_layout"),
        ({"d_model": [30, 64]}, "headdim"),
        ({"d_model": [-32, 64]}, "d_model[0]"),
        ({"d_model": [64, 32]}, "d_model[1]"),
        ({"d_intermediate": [0, 0]}, "d_intermediate[1]"),
        ({"attn": {"num_heads": [3, 2], "rotary_emb_dim": [8, 8], "window_size": [7, -1]}},
         "attn.num_heads[0]"),
        ({"attn": {"num_heads": [2, 2], "rotary_emb_dim": [7, 8], "window_size": [7, -1]}},
         "rotary_emb_dim[0]"),
        ({"ssm": {"d_state": -4}}, "ssm.d_state"),
        ({"routing": {"boundaries": "learnt"}}, "routing.boundaries"),
        ({"routing": {"target_ratio": [1]}}, "target_ratio"),
        ({"reverse_padding": "leaky"}, "reverse_padding"),
        ({"d_modle": [32, 64]}, "'d_modle'"),
        ({"ssm": {"dstate": 4}}, "'dstate'"),
        ({"d_model": "wide"}, "d_model"),
    ],
)
def test_invalid_config_names_the_field(change: dict, fragment: str) -> None:
    data = _base()
    data.update(change)
    with pytest.raises(ConfigError) as err:
        config_from_dict(data, source="bad.yaml")
    assert fragment in str(err.value)
    assert str(err.value).startswith("bad.yaml")


def test_missing_and_malformed_files(tmp_path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_model_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("arch_layout: [m1, [M1\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_model_config(bad)


def test_round_trip_through_dict() -> None:
    cfg = load_model_config(MODELS / "ldarnet-110m.yaml")
    assert config_from_dict(cfg.to_dict()) == cfg
