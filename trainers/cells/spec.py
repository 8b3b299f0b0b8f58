"""What every cell factory receives."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CellSpec:
    d_in: int  # input features per time step
    hidden: int  # recurrent state size (complex units for diagonal cells, real for the rest)
    d_out: int  # output features per time step
    r_min: float = 0.0  # diagonal cells: smallest |lambda| of the ring init (the paper sets it to nu0)
    r_max: float = 1.0  # diagonal cells: largest |lambda| of the ring init
    nu_min_dense: float = 0.0  # dense/block linear cells: nu_min of the eigenvalue remap (0 in the paper)
    init: str = "default"  # default (each cell's own) | orthogonal (recurrent and input matrices, zero biases)
    #                        | chrono (orthogonal plus chrono gate biases drawn from t_max; gated cells only)
    #                        | smart_tanh (vrnn: Pascanu et al.'s sparse recurrent matrix at spectral radius 0.95)
    t_max: int = 0  # the longest dependency chrono init aims at (the task's sequence length)


INITS = ("default", "orthogonal", "chrono", "smart_tanh")
