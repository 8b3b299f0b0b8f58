"""`blockdiag`: the linear RNN with 2x2 diagonal blocks (Zucchet & Orvieto Fig. 3B; 32 heads of size 2 at
hidden 64). Each block is initialised like the dense student, with its own eigenvalue remap."""
from __future__ import annotations

from .rnn import LinearRNN
from .spec import CellSpec

BLOCK_SIZE = 2


def build(spec: CellSpec) -> LinearRNN:
    """Linear RNN with 2x2 diagonal blocks (Zucchet & Orvieto 2024, Fig. 3B).

    Uses spec.nu_min_dense, ignores spec.r_min."""
    return LinearRNN(spec.d_in, spec.hidden, spec.d_out, block_size=BLOCK_SIZE, nu_min=spec.nu_min_dense)
