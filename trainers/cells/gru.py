"""`gru`: a GRU whose weights live in a ``torch.nn.GRU`` (so training uses torch's fused kernel, cuDNN on
GPU) and whose stepwise form writes the equations out in plain PyTorch (double-backward safe, so Hessian
probes can use it). A bias-free linear readout maps the hidden state to d_out.

r = sigmoid(W_ir x + b_ir + W_hr h + b_hr), z = sigmoid(W_iz x + b_iz + W_hz h + b_hz),
n = tanh(W_in x + b_in + r * (W_hn h + b_hn)), h' = (1 - z) * n + z * h.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from .base import FusedCoreCell, chrono_draw
from .spec import CellSpec


class GRUCell(FusedCoreCell):
    def __init__(self, d_in: int, hidden: int, d_out: int):
        super().__init__(nn.GRU(d_in, hidden, batch_first=True), d_out)

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

    def chrono_bias(self, bias: Tensor, t_max: int) -> None:
        """The update gate z keeps the state (h' = (1 - z) n + z h): b_z = log U(1, t_max - 1)."""
        bias[1] = chrono_draw(self.hidden, t_max, bias)


def build(spec: CellSpec) -> GRUCell:
    """GRU, on torch.nn.GRU's fused kernel.

    PyTorch-default GRU weights U(-1/sqrt(hidden), 1/sqrt(hidden)), except the update gate's bias, which
    holds the memory ring like the diagonal cells' |lambda|: with zero input and state, h' = z h + (1 - z) n and
    z = sigmoid(b_iz + b_hz), so b_iz = logit(u), u ~ U[r_min, r_max] per unit (clamped to [1e-4, 1 - 1e-4]),
    and b_hz = 0. Zucchet & Orvieto (2024, Fig. 5) compare the GRU with the LRU at the same nu range this way.
    ``init="orthogonal"``/``"chrono"`` replace it (``init_weights``)."""
    cell = GRUCell(spec.d_in, spec.hidden, spec.d_out)
    with torch.no_grad():
        u = torch.empty(spec.hidden).uniform_(spec.r_min, spec.r_max).clamp(1e-4, 1 - 1e-4)
        cell.core.bias_ih_l0[spec.hidden: 2 * spec.hidden] = torch.logit(u)
        cell.core.bias_hh_l0[spec.hidden: 2 * spec.hidden] = 0.0
    return cell
