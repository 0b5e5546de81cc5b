"""The Mamba-2 mixer (spec 1.4), parameter names as mamba-ssm's ``Mamba2``.

``in_proj`` produces, in this order, the gate ``z``, the convolved block ``xBC`` and
the step sizes ``dt``; a causal depthwise conv1d + SiLU mixes ``xBC`` locally; the SSD
scan runs with ``A = -exp(A_log)`` and ``dt = softplus(dt + dt_bias)``; the output is
``out_proj(GatedRMSNorm(y, z))``. :meth:`Mamba2.mix` stops before ``out_proj`` so that
BiMamba-2 can share one projection between directions and apply it once.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ldarnet.model import kernels
from ldarnet.model.config import SSMConfig
from ldarnet.model.network.norm import GatedRMSNorm
from ldarnet.model.precision import upcast


class Mamba2(nn.Module):
    """One direction of Mamba-2. ``in_proj``/``out_proj`` may be passed in to share them."""

    def __init__(
        self,
        d_model: int,
        ssm: SSMConfig,
        norm_eps: float = 1e-5,
        in_proj: nn.Linear | None = None,
        out_proj: nn.Linear | None = None,
    ) -> None:
        super().__init__()
        self.d_model = d_model
        self.d_inner = ssm.expand * d_model
        self.headdim = ssm.headdim
        self.nheads = self.d_inner // ssm.headdim
        self.ngroups = ssm.ngroups
        self.d_state = ssm.d_state
        self.chunk_size = ssm.chunk_size
        self.conv_dim = self.d_inner + 2 * ssm.ngroups * ssm.d_state
        d_in_proj = self.d_inner + self.conv_dim + self.nheads  # z, xBC, dt
        self.in_proj = in_proj if in_proj is not None else nn.Linear(d_model, d_in_proj, bias=False)
        if self.in_proj.out_features != d_in_proj:
            raise ValueError(f"shared in_proj has {self.in_proj.out_features} outputs, "
                             f"expected {d_in_proj}")
        self.conv1d = nn.Conv1d(
            self.conv_dim, self.conv_dim, kernel_size=ssm.d_conv, groups=self.conv_dim,
            padding=ssm.d_conv - 1, bias=True,
        )
        # dt initialised log-uniformly in [dt_min, dt_max], stored through inverse softplus.
        dt = torch.exp(
            torch.rand(self.nheads) * (math.log(ssm.dt_max) - math.log(ssm.dt_min))
            + math.log(ssm.dt_min)
        ).clamp(min=ssm.dt_init_floor)
        self.dt_bias = nn.Parameter(dt + torch.log(-torch.expm1(-dt)))
        A = torch.empty(self.nheads).uniform_(*ssm.A_init_range)
        self.A_log = nn.Parameter(torch.log(A))
        self.D = nn.Parameter(torch.ones(self.nheads))
        for p in (self.dt_bias, self.A_log, self.D):
            p._no_weight_decay = True  # type: ignore[attr-defined]
        self.norm = GatedRMSNorm(self.d_inner, eps=norm_eps,
                                 group_size=self.d_inner // ssm.ngroups)
        self.out_proj = (
            out_proj if out_proj is not None else nn.Linear(self.d_inner, d_model, bias=False)
        )

    def mix(self, zxbcdt: Tensor) -> Tensor:
        """Everything between the two projections: (b, l, d_in_proj) -> (b, l, d_inner)."""
        b, length, _ = zxbcdt.shape
        z, xbc, dt = torch.split(zxbcdt, [self.d_inner, self.conv_dim, self.nheads], dim=-1)
        xbc = F.silu(kernels.causal_conv1d(xbc, self.conv1d.weight, self.conv1d.bias))
        gn = self.ngroups * self.d_state
        x, B, C = torch.split(xbc, [self.d_inner, gn, gn], dim=-1)
        dt = F.softplus(upcast(dt) + upcast(self.dt_bias))
        A = -torch.exp(upcast(self.A_log))
        y = kernels.ssd_scan(
            x.reshape(b, length, self.nheads, self.headdim),
            dt,
            A,
            B.reshape(b, length, self.ngroups, self.d_state),
            C.reshape(b, length, self.ngroups, self.d_state),
            self.chunk_size,
            self.D,
        )
        return self.norm(y.reshape(b, length, self.d_inner).to(zxbcdt.dtype), z)

    def forward(self, x: Tensor) -> Tensor:
        """Causal Mamba-2 over right-padded rows (padding comes last, so it never leaks)."""
        return self.out_proj(self.mix(self.in_proj(x)))
