"""`vrnn`: the vanilla tanh RNN, h' = tanh(W_ih x + b_ih + W_hh h + b_hh), weights in a ``torch.nn.RNN`` (fused
kernel for training) with the stepwise form written out in plain PyTorch; a bias-free readout maps h to d_out."""
from __future__ import annotations

import torch
from torch import Tensor, nn

from .base import FusedCoreCell
from .spec import CellSpec

SMART_TANH_RADIUS = 0.95  # spectral radius of the recurrent matrix after smart_tanh init (pascanur/trainingRNNs)
SMART_TANH_NONZERO = 15  # non-zero recurrent weights per row
SMART_TANH_STD = 0.01  # std of the input, recurrent (before rescaling) and readout weights


class VanillaRNNCell(FusedCoreCell):
    INITS = ("default", "orthogonal", "smart_tanh")
    def __init__(self, d_in: int, hidden: int, d_out: int):
        super().__init__(nn.RNN(d_in, hidden, nonlinearity="tanh", batch_first=True), d_out)

    def step(self, state: Tensor, x: Tensor) -> tuple[Tensor, Tensor]:
        c = self.core
        h = torch.tanh(x @ c.weight_ih_l0.T + c.bias_ih_l0 + state @ c.weight_hh_l0.T + c.bias_hh_l0)
        return h, self.readout(h)

    def init_weights(self, init: str, t_max: int) -> None:
        """``smart_tanh``: the init of Pascanu, Mikolov & Bengio (2013) for tanh RNNs (RNN.py of
        pascanur/trainingRNNs): W_hh ~ N(0, 0.01^2) with all but 15 random entries per row zeroed, then rescaled
        to spectral radius 0.95 (the one-attractor regime, close to the edge where gradients can explode);
        W_ih and the readout ~ N(0, 0.01^2); biases zero. Draws from the global RNG (the trainer seeds it)."""
        if init != "smart_tanh":
            return super().init_weights(init, t_max)
        c, n = self.core, self.hidden
        with torch.no_grad():
            w = torch.randn(n, n, dtype=torch.float64) * SMART_TANH_STD
            for row in w:
                row[torch.randperm(n)[SMART_TANH_NONZERO:]] = 0.0
            w *= SMART_TANH_RADIUS / torch.linalg.eigvals(w).abs().max()
            c.weight_hh_l0.copy_(w)
            c.weight_ih_l0.normal_(0.0, SMART_TANH_STD)
            self.readout.weight.normal_(0.0, SMART_TANH_STD)
            c.bias_hh_l0.zero_()
            c.bias_ih_l0.zero_()


def build(spec: CellSpec) -> VanillaRNNCell:
    """Vanilla tanh RNN, on torch.nn.RNN's fused kernel.

    PyTorch-default init U(-1/sqrt(hidden), 1/sqrt(hidden)); ignores r_min."""
    return VanillaRNNCell(spec.d_in, spec.hidden, spec.d_out)
