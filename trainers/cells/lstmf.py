"""`lstmf`: the LSTM with only a forget gate, as the STAR paper defines it (Turkoglu et al., Appendix A.3,
Eqs. 22-24; their baseline "LSTMw/f", after van der Westhuizen & Lasenby 2018):

    f  = sigmoid(W_xf x + W_hf h + b_f)
    z  = tanh(W_xz x + W_hz h + b_z)
    h' = tanh(f * h + (1 - f) * z)

This is the STAR paper's form. JANET (van der Westhuizen & Lasenby) keeps a cell state c' = f c + (1 - f') z,
h' = c', with the input let in by 1 - f' = 1 - sigmoid(s - beta), beta = 1; the authors' code
(0zgur0/STAckable-Recurrent-network, rnn_cells.py, forget_only) runs that c recurrence and outputs
h = tanh(c'). The deep-rnn sweep follows the paper's equations, as it does for STAR: one state (h), no cell
state, no input or output gate.
Parameters: ``input`` = [W_xf; W_xz] with bias [b_f; b_z] (gate order f, z), ``recurrent`` = [W_hf; W_hz]
(no bias), and a bias-free ``readout`` h -> d_out. The time loop is ``ScanCell``'s.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from .base import ScanCell, chrono_draw
from .spec import CellSpec
from .star import orthogonal_blocks_


class ForgetOnlyLSTMCell(ScanCell):
    INITS = ("default", "orthogonal", "chrono")

    def __init__(self, d_in: int, hidden: int, d_out: int):
        super().__init__(d_in, hidden, d_out)
        self.input = nn.Linear(d_in, 2 * hidden)  # rows [0, hidden): W_xf, b_f; rows [hidden, 2 hidden): W_xz, b_z
        self.recurrent = nn.Linear(hidden, 2 * hidden, bias=False)  # [W_hf; W_hz]
        self.readout = nn.Linear(hidden, d_out, bias=False)

    def inputs(self, x: Tensor) -> tuple[Tensor]:
        return (self.input(x),)  # [W_xf x + b_f, W_xz x + b_z]

    def recurrent_weight(self) -> Tensor:
        return self.recurrent.weight

    def update(self, a: Tensor, h: Tensor) -> Tensor:
        gf, gz = a.chunk(2, dim=-1)
        f = torch.sigmoid(gf)
        return torch.tanh(f * h + (1 - f) * torch.tanh(gz))

    def init_weights(self, init: str, t_max: int) -> None:
        """``orthogonal``: each gate's input and recurrent block random orthogonal, biases zero; ``chrono``:
        the same plus the forget bias b_f = log U(1, t_max - 1) (Tallec & Ollivier 2018; STAR, Appendix C.1
        "the forget bias of LSTMw/f"), b_z = 0."""
        if init == "default":
            return
        with torch.no_grad():
            orthogonal_blocks_(self.input.weight, self.hidden)
            orthogonal_blocks_(self.recurrent.weight, self.hidden)
            self.input.bias.zero_()
            if init == "chrono":
                if t_max < 2:
                    raise ValueError(f"chrono init needs t_max >= 2 (the sequence length), got {t_max}")
                self.input.bias[: self.hidden] = chrono_draw(self.hidden, t_max, self.input.bias)


def build(spec: CellSpec) -> ForgetOnlyLSTMCell:
    """LSTM with only a forget gate, as the STAR paper defines it (Turkoglu et al. 2021).

    PyTorch-default Linear init U(-1/sqrt(fan_in), 1/sqrt(fan_in)); ``init`` orthogonal/chrono replace it."""
    return ForgetOnlyLSTMCell(spec.d_in, spec.hidden, spec.d_out)
