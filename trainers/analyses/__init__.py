"""Analyses: trials that compute something from a sweep's settings without training a model (a trial of
stage ``analysis``, its ``TrialConfig.analysis`` one of these), such as the Hessian at the optimum (Zucchet &
Orvieto Fig. 4), an error surface
(Pascanu et al. Fig. 3) or a bifurcation diagram over a parameter (Pascanu Fig. 4, Ribeiro Fig. 1).

A sweep lists them in ``SweepSpec.analyses`` as ``name`` or ``name:cell``; each becomes one trial of the
``analysis`` stage whose ``cell`` is the given cell (else the analysis name). One file per analysis with
``run(cfg: TrialConfig, writer: TrialWriter) -> outcome`` (the ``trials`` summary fields: status, steps_done,
final_loss, ...), registered here by name.
"""
from __future__ import annotations

from typing import Callable

from ..registry import lookup
from . import bifurcation, error_surface, hessian_opt, lattice_init
from . import chaotic_lstm

ANALYSES: dict[str, Callable] = {
    "hessian_opt": hessian_opt.run,
    "lattice_init": lattice_init.run,
    "error_surface": error_surface.run,
    "bifurcation": bifurcation.run,
    "chaotic_lstm": chaotic_lstm.run,
}


def analysis(name: str) -> Callable:
    return lookup(ANALYSES, "analysis", name)


__all__ = ["ANALYSES", "analysis"]
