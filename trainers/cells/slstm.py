"""`slstm`: the stable LSTM of Miller & Hardt (ICLR 2019), as Ribeiro, Tiels, Aguirre & Schön (AISTATS 2020)
trained it (repo antonior92/attractors-and-smoothness-RNN, rnn_wrap.py ``stabilize_lstm``).

An ``lstm`` (fused ``torch.nn.LSTM`` for training, the same stepwise equations) whose ``constrain()``, called
after every optimiser step, rescales the weights into Miller & Hardt's sufficient condition for a contractive
LSTM: every column j of each gate's recurrent block W_g (the weights leaving unit h_j) gets the L1 norm

    input gate 0.395, forget gate 0.155, cell candidate 0.099, output gate 0.395  (torch's gate order i, f, g, o)

and every column of the forget gate's input block U_f gets L1 norm 0.25. Biases and the other input blocks
are left free. This is what the authors' code does, and it is NOT a projection onto the norm ball: every
column is rescaled to exactly the bound, W[:, j] <- W[:, j] * bound / ||W[:, j]||_1, also the columns that
were already inside it (Miller & Hardt's own text projects; Ribeiro's figures come from this rescaling). A
column whose norm is 0 stays 0 (the authors' code would divide by zero there). Unlike the authors' code the
rescaling is also applied once at construction, so the model is stable from its first forward pass and its
step-0 attractor snapshot is the stable model's too.
"""
from __future__ import annotations

import torch
from torch import Tensor

from .lstm import LSTMCell
from .spec import CellSpec

RECURRENT_L1 = (0.395, 0.155, 0.099, 0.395)  # column L1 norms of W_i, W_f, W_g, W_o
FORGET_INPUT_L1 = 0.25  # column L1 norm of U_f


def rescale_columns_(w: Tensor, bound: float) -> None:
    """In place: every column of ``w`` rescaled to L1 norm ``bound`` (zero columns stay zero)."""
    norms = w.abs().sum(dim=0, keepdim=True)
    w.mul_(torch.where(norms > 0, bound / norms.clamp_min(torch.finfo(w.dtype).tiny), torch.zeros_like(norms)))


class StableLSTMCell(LSTMCell):
    INITS = ("default",)  # the rescaling would undo an orthogonal or chrono init of the recurrent matrix

    def __init__(self, d_in: int, hidden: int, d_out: int):
        super().__init__(d_in, hidden, d_out)
        self.constrain()

    @torch.no_grad()
    def constrain(self) -> None:
        core, n = self.core, self.hidden
        for k, bound in enumerate(RECURRENT_L1):
            rescale_columns_(core.weight_hh_l0[k * n: (k + 1) * n], bound)
        rescale_columns_(core.weight_ih_l0[n: 2 * n], FORGET_INPUT_L1)


def build(spec: CellSpec) -> StableLSTMCell:
    """Stable LSTM (Miller & Hardt 2019): an LSTM kept in the contractive set.

    PyTorch-default LSTM init, then rescaled into the stable set; ignores r_min."""
    return StableLSTMCell(spec.d_in, spec.hidden, spec.d_out)
