"""`vrnn`: the vanilla tanh RNN, h' = tanh(W_ih x + b_ih + W_hh h + b_hh), weights in a ``torch.nn.RNN`` (fused
kernel for training) with the stepwise form written out in plain PyTorch; a bias-free readout maps h to d_out."""
from __future__ import annotations

import torch
from torch import Tensor, nn

from .base import FusedCoreCell
from .spec import CellSpec


class VanillaRNNCell(FusedCoreCell):
    INITS = ("default", "orthogonal")
    def __init__(self, d_in: int, hidden: int, d_out: int):
        super().__init__(nn.RNN(d_in, hidden, nonlinearity="tanh", batch_first=True), d_out)

    def step(self, state: Tensor, x: Tensor) -> tuple[Tensor, Tensor]:
        c = self.core
        h = torch.tanh(x @ c.weight_ih_l0.T + c.bias_ih_l0 + state @ c.weight_hh_l0.T + c.bias_hh_l0)
        return h, self.readout(h)


def build(spec: CellSpec) -> VanillaRNNCell:
    """PyTorch-default init U(-1/sqrt(hidden), 1/sqrt(hidden)); ignores r_min."""
    return VanillaRNNCell(spec.d_in, spec.hidden, spec.d_out)
