"""Pre-norm residual stacks: the encoder, backbone and decoder of every stage (spec 1.3).

Each stack owns its residual stream, which starts empty at its entrance and is kept in
float32 (bf16 accumulation over tens of residual additions drifts); every layer reads
``RMSNorm(residual)`` and the stack ends with a final RMSNorm of ``residual + h``.
The padding mask goes to every mixer; the stream itself is not masked.
"""

from __future__ import annotations

from torch import Tensor, nn

from ldarnet.model.config import ModelConfig
from ldarnet.model.layout import LayerSpec, parse_layout_string
from ldarnet.model.network.attention import SlidingWindowAttention
from ldarnet.model.network.bimamba import BiMamba2
from ldarnet.model.network.mlp import SwiGLU
from ldarnet.model.network.norm import RMSNorm
from ldarnet.model.precision import upcast


class Block(nn.Module):
    """One layer: mixer sub-block, plus a SwiGLU sub-block for ``M``/``T`` layers."""

    def __init__(self, spec: LayerSpec, cfg: ModelConfig, stage: int) -> None:
        super().__init__()
        d = cfg.d_model[stage]
        self.norm1 = RMSNorm(d, cfg.norm_eps)
        if spec.mixer == "mamba":
            self.mixer: nn.Module = BiMamba2(d, cfg.ssm, cfg.norm_eps, cfg.reverse_padding)
        else:
            heads, rotary, window = cfg.attn_for_stage(stage)
            self.mixer = SlidingWindowAttention(
                d, heads, rotary, window, block_size=cfg.attn.block_size
            )
        self.norm2 = RMSNorm(d, cfg.norm_eps) if spec.mlp else None
        self.mlp = SwiGLU(d, cfg.d_intermediate[stage]) if spec.mlp else None
        self.residual_in_fp32 = cfg.residual_in_fp32

    def forward(
        self, h: Tensor, residual: Tensor | None, mask: Tensor | None
    ) -> tuple[Tensor, Tensor]:
        residual = h if residual is None else residual + h
        if self.residual_in_fp32:
            residual = upcast(residual)
        h = self.mixer(self.norm1(residual).to(h.dtype), mask)
        if self.mlp is not None:
            residual = residual + h
            h = self.mlp(self.norm2(residual).to(h.dtype))
        return h, residual


class Stack(nn.Module):
    """A layout string's layers followed by the final RMSNorm (``layers``, ``rmsnorm``)."""

    def __init__(self, layout: str, cfg: ModelConfig, stage: int) -> None:
        super().__init__()
        self.specs = parse_layout_string(layout)
        self.layers = nn.ModuleList(Block(spec, cfg, stage) for spec in self.specs)
        self.rmsnorm = RMSNorm(cfg.d_model[stage], cfg.norm_eps)

    @property
    def height(self) -> int:
        """Residual additions in this stack (spec 1.2)."""
        return sum(spec.height for spec in self.specs)

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        h, residual = x, None
        for layer in self.layers:
            h, residual = layer(h, residual, mask)
        out = h if residual is None else residual + h
        return self.rmsnorm(out).to(x.dtype)
