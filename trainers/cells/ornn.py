"""`ornn`: the orthogonal RNN with modReLU of Lezcano-Casado & Martínez-Rubio (ICML 2019, "expRNN"), as
Ribeiro, Tiels, Aguirre & Schön (AISTATS 2020) used it (repo antonior92/attractors-and-smoothness-RNN, through
the expRNN submodule's ``OrthogonalRNN``, ``init='henaff'``).

    h' = modReLU(U x + W h),  modReLU(z)_k = sign(z_k) * relu(|z_k| + b_k),  y = V h

W is orthogonal by construction: ``torch.nn.utils.parametrizations.orthogonal`` with the matrix exponential
map and a trivialisation base, W = B expm(A - A^T) (A lower-triangular and free). The base B is the henaff
init (Henaff et al. 2016, expRNN's ``henaff_init_``): block-diagonal 2x2 rotations by angles
theta_k ~ U(-pi, pi), i.e. expm of the skew-symmetric matrix with theta_k on the superdiagonal of block k; A
starts at zero, so W starts at B. expRNN re-bases every K = 100 steps ("dynamic trivialisation"); here the
base stays fixed (torch's static trivialisation), which spans the same connected component of O(n).
U: Kaiming-normal (fan-in, ReLU gain, expRNN's ``input_kernel``); b ~ U(-0.01, 0.01) (expRNN's ``modrelu``);
V: the bias-free readout every cell here has. The state is h, zero at the start.

The time loop is ``ScanCell``'s: ``forward`` evaluates the parametrised W once per call (one matrix
exponential per training step), projects the whole input sequence at once and then loops over time; ``step``
evaluates W itself, unless the caller wraps its loop in ``torch.nn.utils.parametrize.cached()`` (the attractor
probe, ``forward_stepwise`` and ``Stack.unroll`` do).
"""
from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.nn.utils import parametrizations

from .base import ScanCell
from .spec import CellSpec


def modrelu(z: Tensor, b: Tensor) -> Tensor:
    """sign(z) * relu(|z| + b), elementwise (b broadcast over the batch)."""
    return torch.sign(z) * torch.relu(z.abs() + b)


def henaff_rotation(n: int, generator: torch.Generator | None = None) -> Tensor:
    """Block-diagonal 2x2 rotations [[cos t, sin t], [-sin t, cos t]], t ~ U(-pi, pi) (odd n: a trailing 1)."""
    theta = (torch.rand(n // 2, generator=generator, dtype=torch.float64) * 2 - 1) * math.pi
    S = torch.zeros(n, n, dtype=torch.float64)
    idx = torch.arange(0, 2 * (n // 2), 2)
    S[idx, idx + 1] = theta
    return torch.matrix_exp(S - S.T)


class OrthogonalRNNCell(ScanCell):
    GROUPS = {"recurrent": "recurrent", "b": "recurrent", "input": "input", "readout": "output"}

    def __init__(self, d_in: int, hidden: int, d_out: int):
        super().__init__(d_in, hidden, d_out)
        self.input = nn.Linear(d_in, hidden, bias=False)
        nn.init.kaiming_normal_(self.input.weight, nonlinearity="relu")
        self.recurrent = nn.Linear(hidden, hidden, bias=False)
        parametrizations.orthogonal(self.recurrent, "weight", orthogonal_map="matrix_exp", use_trivialization=True)
        # sets the base B (A = 0 so W = B), in the default dtype like every other parameter here: float32 by
        # default, float64 under torch.set_default_dtype(torch.float64) (henaff_rotation is exact in float64)
        self.recurrent.weight = henaff_rotation(hidden).to(torch.get_default_dtype())
        self.b = nn.Parameter(torch.empty(hidden).uniform_(-0.01, 0.01))
        self.readout = nn.Linear(hidden, d_out, bias=False)

    def W(self) -> Tensor:
        """The orthogonal recurrent matrix (one matrix exponential unless inside ``parametrize.cached()``)."""
        return self.recurrent.weight

    def inputs(self, x: Tensor) -> tuple[Tensor]:
        return (x @ self.input.weight.T,)  # U x

    def recurrent_weight(self) -> Tensor:
        return self.W()

    def update(self, a: Tensor, h: Tensor) -> Tensor:
        return modrelu(a, self.b)


def build(spec: CellSpec) -> OrthogonalRNNCell:
    """Orthogonal RNN with modReLU (expRNN, Lezcano-Casado & Martinez-Rubio 2019).

    The henaff init above; ignores r_min."""
    return OrthogonalRNNCell(spec.d_in, spec.hidden, spec.d_out)
