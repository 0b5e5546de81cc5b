"""BiMamba-2: a forward and a reverse Mamba-2 with tied projections (spec 1.4).

The two directions share ONE ``in_proj`` and ONE ``out_proj`` (the same modules, so
the parameters are counted once while ``state_dict`` lists them under ``fwd.`` and
``bwd.`` like the release) and keep their own conv1d, dt_bias, A_log, D and norm.
Outputs are fused by their mean. Because both projections are per-token linear maps
without bias, ``in_proj`` is applied once and reversed, and ``out_proj`` is applied
once to the mean of the two directions: the same maths at half the projection cost.

Padding: the release flips whole right-padded rows, so the reverse scan starts on
padding whose conv bias injects state into the valid tokens of shorter rows (spec 1.4
[RISK]). Here the default ``reverse_padding="exact"`` reverses each row within its own
length, so every row's outputs depend on its valid tokens only; ``"release"`` restores
the release's behaviour for reproducing its numbers.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ldarnet.model.config import SSMConfig
from ldarnet.model.network.mamba2 import Mamba2


def row_reversal_index(mask: Tensor) -> Tensor:
    """Index that reverses each right-padded row within its length; padding stays put.

    Applying it twice is the identity, so the same index maps back.
    """
    length = mask.shape[1]
    lengths = mask.sum(dim=1, keepdim=True)
    t = torch.arange(length, device=mask.device).unsqueeze(0)
    return torch.where(t < lengths, lengths - 1 - t, t)


def _gather_rows(x: Tensor, index: Tensor) -> Tensor:
    return x.gather(1, index.unsqueeze(-1).expand(-1, -1, x.shape[-1]))


class BiMamba2(nn.Module):
    """Bidirectional Mamba-2 mixer with shared projections and mean fusion."""

    def __init__(
        self, d_model: int, ssm: SSMConfig, norm_eps: float = 1e-5, reverse_padding: str = "exact"
    ) -> None:
        super().__init__()
        if reverse_padding not in ("exact", "release"):
            raise ValueError(
                f"reverse_padding must be 'exact' or 'release', got {reverse_padding!r}"
            )
        self.reverse_padding = reverse_padding
        self.fwd = Mamba2(d_model, ssm, norm_eps)
        self.bwd = Mamba2(d_model, ssm, norm_eps, in_proj=self.fwd.in_proj,
                          out_proj=self.fwd.out_proj)

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        """x (b, l, d), mask (b, l) bool with right padding (True = valid) or None."""
        if mask is not None:
            x = x * mask.unsqueeze(-1).to(x.dtype)
        zxbcdt = self.fwd.in_proj(x)
        y_fwd = self.fwd.mix(zxbcdt)
        if mask is None or self.reverse_padding == "release":
            y_bwd = self.bwd.mix(zxbcdt.flip(1)).flip(1)
        else:
            index = row_reversal_index(mask)
            y_bwd = _gather_rows(self.bwd.mix(_gather_rows(zxbcdt, index)), index)
        y = 0.5 * (y_fwd + y_bwd)
        if mask is not None:
            y = y * mask.unsqueeze(-1).to(y.dtype)
        return self.fwd.out_proj(y)
