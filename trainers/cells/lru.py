"""`lru`: the Linear Recurrent Unit (Orvieto et al. 2023) as used by Zucchet & Orvieto (2024):
lambda = exp(-exp(w_nu) + i exp(w_theta)), learned input normalisation gamma = exp(w_gamma) initialised to
sqrt(1 - |lambda|^2), ring init with r_min = nu0. See `cdiag.DiagonalLTI` for the shared implementation."""
from __future__ import annotations

from .cdiag import DiagonalLTI
from .spec import CellSpec


def build(spec: CellSpec) -> DiagonalLTI:
    """Linear Recurrent Unit: exponential parametrisation, gamma normalisation (Orvieto et al. 2023).

    Exp parametrisation + gamma normalisation; ring init on [r_min, r_max]."""
    return DiagonalLTI(spec.d_in, spec.hidden, spec.d_out, spec.r_min, spec.r_max,
                       parametrisation="exp", normalise=True)
