"""Checkpoints in the authors' release layout (spec 3.8), built at tiny size for tests.

Shared by the import tests (tests/interop/test_interop_release.py) and the release path
of the workflow (tests/pipeline/test_release_path.py); a module of its own so that either
runs alone.
"""

from __future__ import annotations

import torch

from ldarnet.data.tokenizer import encode
from ldarnet.interop.release_checkpoint import model_config_from_release
from ldarnet.model.network.ldarnet import LDARNet

# The release's config object at tiny size. Its SSMConfig has only these four fields, so
# Mamba-2 runs with mamba-ssm's default headdim 64 (spec 1.1).
TINY_RELEASE_CONFIG = {
    "arch_layout": ["m2t1", ["M2"], "m2"],
    "d_model": [32, 64],
    "d_intermediate": [0, 128],
    "vocab_size": 7,
    "ssm_cfg": {"d_conv": 4, "expand": 2, "d_state": 16, "chunk_size": 32},
    "attn_cfg": {"num_heads": [2, 2], "rotary_emb_dim": [16, 16], "window_size": [127, -1]},
    "tie_embeddings": False,
    "mode": "mlm",
    "pad_token_id": 6,
    "mask_token_id": 5,
}
# The released 110M config (spec 1.1).
RELEASE_110M_CONFIG = {
    "arch_layout": ["m3t1", ["M10"], "m4"],
    "d_model": [512, 768],
    "d_intermediate": [0, 2560],
    "vocab_size": 7,
    "ssm_cfg": {"d_conv": 4, "expand": 2, "d_state": 128, "chunk_size": 256},
    "attn_cfg": {"num_heads": [16, 16], "rotary_emb_dim": [32, 48], "window_size": [1023, -1]},
    "tie_embeddings": False,
    "mode": "mlm",
    "pad_token_id": 6,
    "mask_token_id": 5,
}


def release_state_dict(model: LDARNet) -> dict[str, torch.Tensor]:
    """The inverse mapping: this package's state dict under the release's names.

    Every entry is a separate copy (as a loaded pickle of the release may hold them), so
    the tied fwd/bwd projections are two equal tensors that the importer must compare.
    """
    out = {}
    for key, tensor in model.state_dict().items():
        name = "backbone." + key[len("hierarchy."):] if key.startswith("hierarchy.") else key
        out[name] = tensor.detach().clone()
    return out


def release_payload(model: LDARNet, config: dict | None = None) -> dict:
    """A checkpoint dict shaped like the release's end-of-epoch ``epNN.pt``."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=5e-4, betas=(0.9, 0.95))
    model(torch.randint(0, 4, (1, 16))).logits.sum().backward()
    optimizer.step()
    optimizer.zero_grad()
    return {
        "model": release_state_dict(model),
        "opt": optimizer.state_dict(),
        "config": dict(config or TINY_RELEASE_CONFIG),
        "step": 7,
        # vars() of the release's argparse namespace: plain values only
        "args": {"num_bytes_per_token": "4", "interval_len": 17, "max_steps": None,
                 "waiting_hours": 0, "accum_steps": 16, "max_grad_norm": 1.0, "epochs": 15,
                 "batch_size": 32, "seq_len": 4096, "lr": 5e-4, "alpha_ratio": 0.03,
                 "amp": True, "model_size": "110m"},
    }


def tiny_release_model() -> LDARNet:
    cfg = model_config_from_release(TINY_RELEASE_CONFIG, name="original")
    model = LDARNet(cfg)
    with torch.no_grad():  # non-trivial values everywhere (zero-init parts included)
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return model


def dna_batch() -> tuple[torch.Tensor, torch.Tensor]:
    """Two promoter-like sequences of different lengths (TATA box, CAAT, GC box, a repeat)."""
    g = torch.Generator().manual_seed(3)
    bases = "ACGT"
    flank = "".join(bases[int(i)] for i in torch.randint(0, 4, (60,), generator=g))
    first = flank + "GGGCGGGGCCAATCTATAAAAGGCACACACACACAGTCAGNTCGATCG" + flank[::-1]
    second = flank[:40] + "TATAAATAGCGCGC"
    ids = torch.full((2, len(first)), 6, dtype=torch.long)
    for row, seq in enumerate((first, second)):
        ids[row, : len(seq)] = torch.from_numpy(encode(seq).astype("int64"))
    return ids, ids != 6
