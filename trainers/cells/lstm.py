"""`lstm`: an LSTM whose weights live in a ``torch.nn.LSTM`` (fused kernel for training) and whose stepwise
form writes the equations out in plain PyTorch (double-backward safe). The state is one tensor, [h, c]
concatenated on the last axis. A bias-free linear readout maps h to d_out.

i, f, g, o = sigmoid, sigmoid, tanh, sigmoid of (W_i x + b_i + W_h h + b_h) split in torch's gate order;
c' = f * c + i * g, h' = o * tanh(c').
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from .base import FusedCoreCell, chrono_draw
from .spec import CellSpec


class LSTMCell(FusedCoreCell):
    STATE_WIDTH = 2
    # vmapped, the stepwise LSTM runs at 0.5x the speed of S solo runs of torch's fused LSTM on CPU (bench/bundle.py)
    BATCHABLE = False

    def __init__(self, d_in: int, hidden: int, d_out: int):
        super().__init__(nn.LSTM(d_in, hidden, batch_first=True), d_out)

    def step(self, state: Tensor, x: Tensor) -> tuple[Tensor, Tensor]:
        c_ = self.core
        h, c = state.chunk(2, dim=-1)
        gates = x @ c_.weight_ih_l0.T + c_.bias_ih_l0 + h @ c_.weight_hh_l0.T + c_.bias_hh_l0
        i, f, g, o = gates.chunk(4, dim=-1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        return torch.cat([h, c], dim=-1), self.readout(h)

    def chrono_bias(self, bias: Tensor, t_max: int) -> None:
        """b_f = log U(1, t_max - 1), b_i = -b_f (Tallec & Ollivier 2018)."""
        bias[1] = chrono_draw(self.hidden, t_max, bias)
        bias[0] = -bias[1]


def build(spec: CellSpec) -> LSTMCell:
    """LSTM, on torch.nn.LSTM's fused kernel.

    PyTorch-default LSTM init; ignores r_min."""
    return LSTMCell(spec.d_in, spec.hidden, spec.d_out)
