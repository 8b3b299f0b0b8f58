"""`gru`: a GRU whose weights live in a ``torch.nn.GRU`` (so training uses torch's fused kernel, cuDNN on
GPU) and whose stepwise form writes the equations out in plain PyTorch (double-backward safe, so Hessian
probes can use it). A bias-free linear readout maps the hidden state to d_out.

r = sigmoid(W_ir x + b_ir + W_hr h + b_hr), z = sigmoid(W_iz x + b_iz + W_hz h + b_hz),
n = tanh(W_in x + b_in + r * (W_hn h + b_hn)), h' = (1 - z) * n + z * h.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from .base import Cell
from .spec import CellSpec


class GRUCell(Cell):
    GROUPS = {"core.weight_hh": "recurrent", "core.bias_hh": "recurrent", "core.weight_ih": "input",
              "core.bias_ih": "input", "readout": "output"}

    def __init__(self, d_in: int, hidden: int, d_out: int):
        super().__init__(d_in, hidden, d_out)
        self.core = nn.GRU(d_in, hidden, batch_first=True)
        self.readout = nn.Linear(hidden, d_out, bias=False)

    def init_state(self, batch: int) -> Tensor:
        w = self.core.weight_hh_l0
        return torch.zeros(batch, self.hidden, dtype=w.dtype, device=w.device)

    def step(self, state: Tensor, x: Tensor) -> tuple[Tensor, Tensor]:
        c = self.core
        gi = x @ c.weight_ih_l0.T + c.bias_ih_l0
        gh = state @ c.weight_hh_l0.T + c.bias_hh_l0
        i_r, i_z, i_n = gi.chunk(3, dim=-1)
        h_r, h_z, h_n = gh.chunk(3, dim=-1)
        r, z = torch.sigmoid(i_r + h_r), torch.sigmoid(i_z + h_z)
        n = torch.tanh(i_n + r * h_n)
        h = (1 - z) * n + z * state
        return h, self.readout(h)

    def forward(self, x: Tensor) -> Tensor:
        return self.readout(self.core(x)[0])

    def forward_pure(self, x: Tensor) -> Tensor:
        return self.forward_stepwise(x)  # cuDNN's fused RNN has no double backward


def build(spec: CellSpec) -> GRUCell:
    """PyTorch-default GRU init U(-1/sqrt(hidden), 1/sqrt(hidden)); ignores r_min."""
    return GRUCell(spec.d_in, spec.hidden, spec.d_out)
