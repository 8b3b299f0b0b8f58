"""`star`: the STAckable Recurrent cell of Turkoglu et al., "Gating Revisited: Deep Multi-layer RNNs That Can Be
Trained" (Eqs. 10-12), as their code implements it (repo 0zgur0/STAckable-Recurrent-network):

    K  = sigmoid(W_Kx x + W_Kh h + b_K)      (the one gate, a "Kalman gain": large K lets the input in)
    z  = tanh(W_z x + b_z)                   (the input, projected; no recurrent term)
    h' = tanh((1 - K) * h + K * z)

The authors' star.py writes the gate the other way round, keep = sigmoid(f) with f = W [x; h] + b and the
chrono bias b = log U(1, t_max) (so K = 1 - keep = sigmoid(-f), b_K = -b), and lets the input in with
1 - sigmoid(f - beta), beta = 1 (JANET's shift), not with K = 1 - sigmoid(f); the form above (REFERENCE.md) is
their equation without that shift.
At zero state with orthogonal weights both Jacobians have singular values 0.5 (paper, Sec. 4), between the
vanilla RNN's 1 (gradients grow through the lattice) and the LSTM's 0.25 (they vanish).
Parameters: ``input`` = [W_Kx; W_z] with bias [b_K; b_z] (one (2 hidden, d_in) matrix, gate order K, z),
``recurrent`` = W_Kh (no bias), and a bias-free ``readout`` h -> d_out (``Stack(block="plain")`` makes the
inner layers' readouts the identity). The time loop is ``ScanCell``'s: a = [W_Kx x + b_K] + W_Kh h, with z
passed through to the update.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from .base import ScanCell, chrono_draw
from .spec import CellSpec


def orthogonal_blocks_(w: Tensor, hidden: int) -> None:
    """Each (hidden, fan_in) gate block of ``w`` (stacked on dim 0) an independent random orthogonal matrix."""
    for block in w.split(hidden, dim=0):
        block.copy_(nn.init.orthogonal_(torch.empty_like(block)))


class STARCell(ScanCell):
    INITS = ("default", "orthogonal", "chrono")

    def __init__(self, d_in: int, hidden: int, d_out: int):
        super().__init__(d_in, hidden, d_out)
        self.input = nn.Linear(d_in, 2 * hidden)  # rows [0, hidden): W_Kx, b_K; rows [hidden, 2 hidden): W_z, b_z
        self.recurrent = nn.Linear(hidden, hidden, bias=False)  # W_Kh
        self.readout = nn.Linear(hidden, d_out, bias=False)

    def inputs(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """(W_Kx x + b_K, z = tanh(W_z x + b_z)): the parts of a step that do not depend on h."""
        gk, gz = self.input(x).chunk(2, dim=-1)
        return gk, torch.tanh(gz)

    def recurrent_weight(self) -> Tensor:
        return self.recurrent.weight

    def update(self, a: Tensor, h: Tensor, z: Tensor) -> Tensor:
        return torch.tanh(h + torch.sigmoid(a) * (z - h))  # = tanh((1 - K) h + K z), K = sigmoid(a)

    def init_weights(self, init: str, t_max: int) -> None:
        """``orthogonal``: W_Kx, W_z, W_Kh each random orthogonal, biases zero (the setting of the paper's
        lattice simulation, Fig. 2); ``chrono``: the same plus b_K = -log U(1, t_max - 1) (Tallec & Ollivier
        2018, as STAR's code applies it: K starts small, so h is kept over ~U(1, t_max) steps), b_z = 0."""
        if init == "default":
            return
        with torch.no_grad():
            orthogonal_blocks_(self.input.weight, self.hidden)
            self.recurrent.weight.copy_(nn.init.orthogonal_(torch.empty_like(self.recurrent.weight)))
            self.input.bias.zero_()
            if init == "chrono":
                if t_max < 2:
                    raise ValueError(f"chrono init needs t_max >= 2 (the sequence length), got {t_max}")
                self.input.bias[: self.hidden] = -chrono_draw(self.hidden, t_max, self.input.bias)


def build(spec: CellSpec) -> STARCell:
    """STAckable Recurrent cell (Turkoglu et al. 2021).

    PyTorch-default Linear init U(-1/sqrt(fan_in), 1/sqrt(fan_in)); ``init`` orthogonal/chrono replace it."""
    return STARCell(spec.d_in, spec.hidden, spec.d_out)
