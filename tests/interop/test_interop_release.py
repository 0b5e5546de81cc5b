"""``ldarnet import-checkpoint``: the authors' release format → a loadable model directory.

The real file (1.53 GB, HuggingFace darlednik/LDARNet-110M) is not available offline, so
these tests build a tiny checkpoint in the release's exact layout (spec 3.8: a
``torch.save`` dict with model/opt/config/step/args; ``backbone.``-rooted names; tied
BiMamba-2 projections listed under both ``mixer.fwd.`` and ``mixer.bwd.``; config as
``dataclasses.asdict`` of the release's config with nested ssm_cfg/attn_cfg dicts).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from conftest import MODELS
from ldarnet.cli import main
from ldarnet.interop.errors import InteropError
from ldarnet.interop.outdir import atomic_directory
from ldarnet.interop.release_checkpoint import (
    import_release_checkpoint,
    load_release_payload,
    model_config_from_release,
)
from ldarnet.model.config import load_model_config
from ldarnet.model.network.ldarnet import LDARNet
from ldarnet.model.pretrained import load_pretrained
from ldarnet.model.summary import build_meta_model, model_summary
from release_checkpoints import (
    RELEASE_110M_CONFIG,
    TINY_RELEASE_CONFIG,
    dna_batch,
    release_payload,
    tiny_release_model,
)


@pytest.fixture
def release_file(tmp_path: Path) -> tuple[Path, LDARNet]:
    model = tiny_release_model()
    path = tmp_path / "model_ckpt_tiny.pt"
    torch.save(release_payload(model), path)
    return path, model.eval()


def test_import_gives_identical_logits(release_file, tmp_path) -> None:
    path, original = release_file
    out = tmp_path / "imported"
    doc = import_release_checkpoint(path, out)
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "model.safetensors"]
    loaded = load_pretrained(out)
    ids, mask = dna_batch()
    with torch.no_grad():
        want, got = original(ids, mask), loaded(ids, mask)
    assert torch.equal(want.logits, got.logits)
    assert torch.equal(want.router_outputs[0].boundary_mask, got.router_outputs[0].boundary_mask)
    written = json.loads((out / "config.json").read_text())
    assert written == json.loads(json.dumps(doc))
    assert written["source"]["file"] == path.name
    assert len(written["source"]["sha256"]) == 64
    assert written["source"]["release_step"] == 7
    # 6 BiMamba-2 blocks (2 encoder, 2 backbone, 2 decoder) x (in_proj, out_proj)
    assert written["conversion"]["tied_groups_verified"] == 12
    assert written["summary"]["parameters"] == sum(p.numel() for p in original.parameters())


def test_shared_storage_checkpoint_also_imports(tmp_path) -> None:
    # In the release the bwd projections ARE the fwd parameters, so torch.save stores
    # them once and the load returns one shared tensor under both names.
    model = tiny_release_model()
    payload = release_payload(model)
    payload["model"] = {("backbone." + k[10:] if k.startswith("hierarchy.") else k): v
                        for k, v in model.state_dict().items()}
    torch.save(payload, tmp_path / "shared.pt")
    import_release_checkpoint(tmp_path / "shared.pt", tmp_path / "out")
    assert load_pretrained(tmp_path / "out").state_dict().keys() == model.state_dict().keys()


def test_cli_import_checkpoint(release_file, tmp_path, capsys) -> None:
    path, _ = release_file
    assert main(["import-checkpoint", str(path), str(tmp_path / "m")]) == 0
    assert "parameters" in capsys.readouterr().out
    assert main(["import-checkpoint", str(path), str(tmp_path / "m")]) == 2  # exists
    assert "--force" in capsys.readouterr().err
    assert main(["import-checkpoint", str(path), str(tmp_path / "m"), "--force"]) == 0
    # an imported model exports with its provenance in the model card
    assert main(["export-hf", str(tmp_path / "m"), str(tmp_path / "hf")]) == 0
    card = (tmp_path / "hf" / "README.md").read_text()
    assert f"`{path.name}`" in card and "`accum_steps=16`" in card


def test_failed_write_leaves_no_directory(tmp_path) -> None:
    target = tmp_path / "out"
    with pytest.raises(RuntimeError), atomic_directory(target) as tmp:
        (tmp / "model.safetensors").write_text("half")
        raise RuntimeError("disk full")
    assert list(tmp_path.iterdir()) == []


def _assert_refused(path: Path, out: Path, *needles: str) -> None:
    with pytest.raises(InteropError) as info:
        import_release_checkpoint(path, out)
    for needle in needles:
        assert needle in str(info.value)
    assert not out.exists()
    assert not [p for p in out.parent.iterdir() if p.name.startswith(f".{out.name}.")]


def test_unequal_tied_copies_refused(tmp_path) -> None:
    payload = release_payload(tiny_release_model())
    key = "backbone.decoder.layers.1.mixer.bwd.in_proj.weight"
    payload["model"][key] = payload["model"][key] + 1e-3
    torch.save(payload, tmp_path / "bad.pt")
    _assert_refused(tmp_path / "bad.pt", tmp_path / "out", "tied", key, "differ")


def test_missing_config_refused(tmp_path) -> None:
    # The release's periodic last_checkpoint_one_stage.pt: model and opt only.
    payload = release_payload(tiny_release_model())
    torch.save({"model": payload["model"], "opt": payload["opt"]}, tmp_path / "last.pt")
    _assert_refused(tmp_path / "last.pt", tmp_path / "out", "no embedded 'config'",
                    "last_checkpoint_one_stage.pt")


class _Exploit:
    """Unpickling this would call ``_touch`` (a stand-in for arbitrary code)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (_touch, (str(self.marker),))


def _touch(path: str) -> None:
    Path(path).write_text("code ran")


def test_arbitrary_pickle_refused_by_weights_only(tmp_path) -> None:
    marker = tmp_path / "pwned"
    payload = release_payload(tiny_release_model())
    payload["args"] = {"hook": _Exploit(marker)}
    torch.save(payload, tmp_path / "evil.pt")
    _assert_refused(tmp_path / "evil.pt", tmp_path / "out", "weights_only=True",
                    "never unpickles", "_touch")
    assert not marker.exists()


def test_missing_and_unexpected_keys_refused(tmp_path) -> None:
    payload = release_payload(tiny_release_model())
    del payload["model"]["backbone.routing_module.k_proj_layer.weight"]
    torch.save(payload, tmp_path / "missing.pt")
    _assert_refused(tmp_path / "missing.pt", tmp_path / "out", "missing 1 key",
                    "backbone.routing_module.k_proj_layer.weight")
    payload = release_payload(tiny_release_model())
    payload["model"]["backbone.encoder.layers.0.mixer.gate"] = torch.zeros(1, 1, 32)
    torch.save(payload, tmp_path / "extra.pt")
    _assert_refused(tmp_path / "extra.pt", tmp_path / "out", "unexpected 1 key",
                    "backbone.encoder.layers.0.mixer.gate")


def test_shape_mismatch_refused(tmp_path) -> None:
    config = dict(TINY_RELEASE_CONFIG, d_intermediate=[0, 256])  # weights were built for 128
    torch.save(release_payload(tiny_release_model(), config), tmp_path / "shape.pt")
    _assert_refused(tmp_path / "shape.pt", tmp_path / "out", "shape", "mlp.fc1.weight")


def test_non_checkpoint_files_refused(tmp_path) -> None:
    text = tmp_path / "notes.pt"
    text.write_text("not a checkpoint\n")
    _assert_refused(text, tmp_path / "out", "not a PyTorch checkpoint")
    torch.save(torch.zeros(3), tmp_path / "tensor.pt")
    _assert_refused(tmp_path / "tensor.pt", tmp_path / "out", "Tensor", "not the release")
    with pytest.raises(FileNotFoundError, match="darlednik/LDARNet-110M"):
        load_release_payload(tmp_path / "absent.pt")


def test_unknown_config_field_refused(tmp_path) -> None:
    config = dict(TINY_RELEASE_CONFIG, combine="gated")
    torch.save(release_payload(tiny_release_model(), config), tmp_path / "cfg.pt")
    _assert_refused(tmp_path / "cfg.pt", tmp_path / "out", "unknown field", "combine")


def test_release_110m_config_maps_to_ours() -> None:
    cfg = model_config_from_release(RELEASE_110M_CONFIG)
    ours = load_model_config(MODELS / "ldarnet-110m.yaml")
    for field in ("arch_layout", "d_model", "d_intermediate", "vocab_size", "pad_token_id",
                  "mask_token_id", "ssm", "attn"):
        assert getattr(cfg, field) == getattr(ours, field), field
    assert model_summary(cfg)["parameters"] == 110_687_296


def test_release_layout_duplicates_match_spec() -> None:
    # Spec 1.9: state_dict lists the tied projections twice, ~49.5M duplicated floats.
    model = build_meta_model(model_config_from_release(RELEASE_110M_CONFIG))
    names = {("backbone." + k[10:] if k.startswith("hierarchy.") else k): v
             for k, v in model.state_dict().items()}
    listed = sum(v.numel() for v in names.values())
    unique = sum(p.numel() for p in model.parameters())
    assert listed - unique == 49_524_736
    assert "backbone.main_network.main_network.layers.9.mixer.bwd.in_proj.weight" in names
    assert "backbone.main_network.pad_dimension" in names
    assert "backbone.encoder.layers.3.mixer.Wqkv.weight" in names
