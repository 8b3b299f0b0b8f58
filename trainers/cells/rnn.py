"""`rnn`: the dense linear RNN student of Zucchet & Orvieto (2024), h_t = A h_{t-1} + B x_t, y_t = C h_t + D x_t.

No nonlinearity and no bias. A ~ N(0, 1)/sqrt(n) with its eigenvalues remapped (|l| <- nu_min + (1 - nu_min)
tanh|l|); the authors initialise the student with nu_min = 0, which trained better than the teacher's
distribution. B, C, D ~ N(0, 1/fan_in) (flax's lecun-normal Dense init in the authors' code).
The same class with ``block_size`` < hidden is the block-diagonal student (`blockdiag`) and, frozen, the teacher.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from .base import LTICell, block_powers_applied, normal_init, remap_eigenvalues
from .spec import CellSpec


class LinearRNN(LTICell):
    GROUPS = {"A": "recurrent", "B": "input", "C": "output", "D": "output"}

    def __init__(self, d_in: int, hidden: int, d_out: int, block_size: int | None = None,
                 nu_min: float = 0.0, nu_max: float = 1.0, max_phase: float = math.pi):
        super().__init__(d_in, hidden, d_out)
        bs = block_size or hidden
        if hidden % bs:
            raise ValueError(f"hidden={hidden} is not a multiple of block_size={bs}")
        self.block_size, self.n_blocks = bs, hidden // bs
        A0 = normal_init(self.n_blocks, bs, bs, scale_dim=bs)
        self.A = nn.Parameter(remap_eigenvalues(A0, nu_min, nu_max, max_phase).float())
        self.B = nn.Parameter(normal_init(hidden, d_in, scale_dim=d_in))
        self.C = nn.Parameter(normal_init(d_out, hidden, scale_dim=hidden))
        self.D = nn.Parameter(normal_init(d_out, d_in, scale_dim=d_in))

    def input_matrix(self) -> Tensor:
        return self.B

    def output_matrix(self) -> Tensor:
        return self.C

    def dense_A(self) -> Tensor:
        """The full (hidden, hidden) transition matrix."""
        return torch.block_diag(*self.A)

    def modal_powers(self, V: Tensor, T: int) -> Tensor:
        Vb = V.reshape(self.n_blocks, self.block_size, -1)
        return block_powers_applied(self.A, Vb, T).reshape(T, self.hidden, -1)

    def transition_apply(self, h: Tensor) -> Tensor:
        hb = h.reshape(h.shape[0], self.n_blocks, self.block_size)
        return torch.einsum("gij,bgj->bgi", self.A, hb).reshape(h.shape)


def build(spec: CellSpec) -> LinearRNN:
    """Dense linear RNN h' = A h + B x, y = C h + D x (Zucchet & Orvieto 2024).

    Uses spec.nu_min_dense (0 in the paper), ignores spec.r_min."""
    return LinearRNN(spec.d_in, spec.hidden, spec.d_out, nu_min=spec.nu_min_dense)
