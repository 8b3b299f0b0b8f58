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
