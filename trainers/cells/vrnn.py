"""`vrnn`: the vanilla tanh RNN, h' = tanh(W_ih x + b_ih + W_hh h + b_hh), weights in a ``torch.nn.RNN`` (fused
kernel for training) with the stepwise form written out in plain PyTorch; a bias-free readout maps h to d_out."""
from __future__ import annotations

import torch
from torch import Tensor, nn

from .base import Cell
from .spec import CellSpec


class VanillaRNNCell(Cell):
    GROUPS = {"core.weight_hh": "recurrent", "core.bias_hh": "recurrent", "core.weight_ih": "input",
              "core.bias_ih": "input", "readout": "output"}

    def __init__(self, d_in: int, hidden: int, d_out: int):
        super().__init__(d_in, hidden, d_out)
        self.core = nn.RNN(d_in, hidden, nonlinearity="tanh", batch_first=True)
        self.readout = nn.Linear(hidden, d_out, bias=False)

    def init_state(self, batch: int) -> Tensor:
        w = self.core.weight_hh_l0
        return torch.zeros(batch, self.hidden, dtype=w.dtype, device=w.device)

    def step(self, state: Tensor, x: Tensor) -> tuple[Tensor, Tensor]:
        c = self.core
        h = torch.tanh(x @ c.weight_ih_l0.T + c.bias_ih_l0 + state @ c.weight_hh_l0.T + c.bias_hh_l0)
        return h, self.readout(h)

    def forward(self, x: Tensor) -> Tensor:
        return self.readout(self.core(x)[0])

    def forward_pure(self, x: Tensor) -> Tensor:
        return self.forward_stepwise(x)  # cuDNN's fused RNN has no double backward


def build(spec: CellSpec) -> VanillaRNNCell:
    """PyTorch-default init U(-1/sqrt(hidden), 1/sqrt(hidden)); ignores r_min."""
    return VanillaRNNCell(spec.d_in, spec.hidden, spec.d_out)
