"""`sine`: sine-wave generation from a constant frequency input (Sussillo & Barak 2013), as Ribeiro, Tiels,
Aguirre & Schön (AISTATS 2020, Sec. 5.1) ran it (repo antonior92/attractors-and-smoothness-RNN,
sine-generator/sine_generator.py).

The training set is fixed: 100 sequences whose constant input is omega_i = linspace(pi/16, pi/8, 100)[i] at
every step, with target y_t = sin(omega_i (t + 1)) for t = 0 .. T-1 (the authors' sin(cumsum(u))), so periods
run from 16 to 32 steps. The model starts from the zero state; the loss is the mean squared error over every
step and sequence (the paper's Fig. 5 MSE: LSTM 4.8e-3, sLSTM 0.49, oRNN 4.1e-3 at T = 400).
``sample`` draws ``batch`` of the 100 sequences without replacement (with replacement when batch > 100);
``eval_sample`` is the whole training set (the paper reports the training MSE; there is no held-out split).
``constant_inputs`` are the attractor probe's inputs for ``inputs=task``: the authors' 10 frequencies
linspace(pi/16, pi/8, 10) on the single input channel.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor

from .base import Task

N_SEQUENCES = 100
OMEGA_LOW, OMEGA_HIGH = math.pi / 16, math.pi / 8
N_PROBE_INPUTS = 10


class Sine(Task):
    """Sine-wave generation from a constant frequency input (Sussillo & Barak 2013)."""
    d_in = 1
    d_out = 1
    has_metric = False
    # the authors' orbit diagram for this task (sine-generator/train.py: seq_len_orbit 1600, burnout_orbit 1200,
    # n_sequences_orbit 4): the attractor probe's settings under ``orbit=task``
    ORBIT = {"burn_in": 1200, "keep": 400, "n_inits": 4}

    def __init__(self, seq_len: int = 400, n_sequences: int = N_SEQUENCES):
        if seq_len < 1 or n_sequences < 1:
            raise ValueError(f"sine needs seq_len >= 1 and n_sequences >= 1, got {seq_len}, {n_sequences}")
        self.seq_len = seq_len
        self.omega = torch.linspace(OMEGA_LOW, OMEGA_HIGH, n_sequences, dtype=torch.float64)
        t = torch.arange(1, seq_len + 1, dtype=torch.float64)
        self.x = self.omega[:, None, None].expand(-1, seq_len, 1).float().contiguous()  # (N, T, 1)
        self.y = torch.sin(self.omega[:, None] * t[None, :])[..., None].float()  # (N, T, 1), float64 phase

    @classmethod
    def from_config(cls, cfg) -> "Sine":
        return cls(cfg.seq_len)

    def to(self, device: torch.device) -> "Sine":
        self.x, self.y = self.x.to(device), self.y.to(device)
        return self

    def sample(self, batch: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        n = self.x.shape[0]
        dev = generator.device
        idx = (torch.randperm(n, generator=generator, device=dev)[:batch] if batch <= n
               else torch.randint(0, n, (batch,), generator=generator, device=dev))
        idx = idx.to(self.x.device)
        return self.x[idx], self.y[idx]

    def eval_sample(self, batch: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        return self.x[:batch], self.y[:batch]

    def loss(self, y_hat: Tensor, y: Tensor) -> Tensor:
        return ((y_hat - y) ** 2).mean()

    @staticmethod
    def constant_inputs() -> Tensor:
        """(10, 1) float64: the authors' probe frequencies linspace(pi/16, pi/8, 10)."""
        return torch.linspace(OMEGA_LOW, OMEGA_HIGH, N_PROBE_INPUTS, dtype=torch.float64)[:, None]
