"""signal-propagation: Zucchet & Orvieto (NeurIPS 2024), "Recurrent neural networks: vanishing and exploding
gradients are not the end of the story", Fig. 5: signal propagation in deep recurrent stacks at initialisation.

Four residual blocks [recurrent -> GELU -> GLU -> residual] (``block="glu"``, depth 4) whose recurrent
eigenvalues start on the ring |lambda| in [1 - 1/t, 1 - 1/(2t)] for t in {1, sqrt(10), 10, 10^1.5, 100}
(``nus`` = 1 - 1/t, ``nu_max_frac`` = 0.5), for the complex diagonal RNN (cdiag), the LRU (its input
normalisation gamma = sqrt(1 - |lambda|^2)) and the GRU (update-gate bias on the same ring), each without and
with LayerNorm. Nothing is trained (steps = 0): the ``signal`` probe measures, per layer, mean(h^2) and the
mean squared loss gradient of the recurrent parameters and of the others, on AR(1) inputs (rho = 0.9) standing
in for the paper's BERT embeddings (task ``ar1``). The paper's result: without normalisation the cdiag's
activity and gradients blow up as |lambda| -> 1 (mean(h^2) ~ 1/(1 - |lambda|^2)), the LRU's and GRU's stay flat;
LayerNorm tames the cdiag's gradients.
Settings: REFERENCE.md "Signal propagation at init (Fig. 5)" (repo NicolasZucchet/Vanishing-and-exploding-
gradients-are-not-the-end-of-the-story).

Run:   sweep launch signal-propagation [--scale smoke|quick|paper]; sweep report signal-propagation
Cost on 2 CPU cores: smoke 12 trials, < 1 min; quick 90 trials (3 seeds), about 3 min; paper 300 trials
(10 seeds, T = 1,000, batch 64), about 15 min: every trial is one forward and one backward pass.
"""
from __future__ import annotations

import math

from trainers.probe_spec import ProbeSpec

from ..spec import SweepSpec

NAME = "signal-propagation"
TS = (1.0, math.sqrt(10.0), 10.0, 10.0 ** 1.5, 100.0)  # the paper's memory lengths t
NUS = tuple(round(1.0 - 1.0 / t, 6) for t in TS)  # ring floor |lambda| >= 1 - 1/t; ceiling 1 - 1/(2t)

_COMMON = dict(name=NAME, tasks=("ar1",), cells=("cdiag", "lru", "gru"), depths=(4,), block="glu",
               nu_max_frac=0.5, layer_norms=(False, True), steps=0, lr_search_trials=0, grad_norm_every=0,
               checkpoint_every=0, hidden=64, d_model=32)


def get_spec(scale: str) -> SweepSpec:
    if scale == "smoke":
        return SweepSpec(scale=scale, nus=(NUS[0], NUS[-1]), seq_lens=(50,), seeds=1, batch=8, eval_batch=8,
                         probes=(ProbeSpec("signal"),), probe_batch=8, **_COMMON)
    if scale == "quick":
        return SweepSpec(scale=scale, nus=NUS, seq_lens=(300,), seeds=3, batch=32, eval_batch=32,
                         probes=(ProbeSpec("signal"),), probe_batch=32, **_COMMON)
    if scale == "paper":
        return SweepSpec(scale=scale, nus=NUS, seq_lens=(1000,), seeds=10, batch=64, eval_batch=64,
                         probes=(ProbeSpec("signal"),), probe_batch=64, **_COMMON)
    raise ValueError(scale)
