"""`ar1`: sequences with a chosen autocorrelation, the offline stand-in for the BERT embeddings that Zucchet &
Orvieto (2024, Fig. 5) fed to deep recurrent stacks to study signal propagation at initialisation.

Inputs are AR(1): x_1 ~ N(0, 1), x_t = rho x_{t-1} + sqrt(1 - rho^2) eps_t (every x_t is N(0, 1) and
corr(x_t, x_{t+k}) = rho^k; rho = 0.9 by default), ``d_in`` = 1 channel. The target is N(0, 1) noise per step
and the loss 0.5 mean((y_hat - y)^2): a regression whose output gradient does not vanish at init, the
definition the ``signal`` probe uses. The task is meant for measurements at init (steps = 0); trained, it can
only learn the mean.
"""
from __future__ import annotations

import torch
from torch import Tensor

from ..probes.signal import ar1_inputs
from .base import Task


class AR1(Task):
    """AR(1) input sequences of a chosen autocorrelation (signal propagation at init)."""
    d_in = 1
    d_out = 1
    has_metric = False

    def __init__(self, seq_len: int, rho: float = 0.9):
        if not -1.0 < rho < 1.0:
            raise ValueError(f"rho={rho} must lie in (-1, 1)")
        self.seq_len, self.rho = seq_len, rho

    @classmethod
    def from_config(cls, cfg) -> "AR1":
        return cls(cfg.seq_len)

    def sample(self, batch: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        x = ar1_inputs(batch, self.seq_len, self.d_in, self.rho, generator)
        y = torch.randn(batch, self.seq_len, self.d_out, generator=generator, device=generator.device)
        return x, y

    def loss(self, y_hat: Tensor, y: Tensor) -> Tensor:
        return 0.5 * ((y_hat - y) ** 2).mean()
