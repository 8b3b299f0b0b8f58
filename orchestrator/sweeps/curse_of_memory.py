"""curse-of-memory: Zucchet & Orvieto (NeurIPS 2024), "Recurrent neural networks: vanishing and exploding
gradients are not the end of the story", Fig. 3A (final loss vs nu0, rnn vs lru) and Fig. 3B (the ablation
rnn -> blockdiag -> cdiag -> +gamma -> lru at the largest nu0).

A student (hidden 64) learns a fixed linear teacher (hidden 10, T = 300) whose eigenvalue magnitudes lie in
[nu0, 1): the closer nu0 is to 1, the longer the memory. The paper's result: the dense rnn's final loss
rises steeply as nu0 -> 1 while the lru stays low; near-diagonal connectivity recovers most of the gap.
Settings from the authors' scans (NicolasZucchet/Vanishing-and-exploding-gradients-are-not-the-end-of-the-
story, scans/comparison_architectures_LSI_*.yaml): Adam, cosine decay, 10,000 steps, batch 128, 10 seeds,
the best learning rate per (model, nu0) from a log grid. Here Optuna's TPE picks the rate within the same
range, on a seed outside the seed stage's, then every seed runs at the chosen rate. The quick and paper
scales add Fig. 4: the float64 Hessian of a student set exactly to a small teacher (two eigenvalue pairs
with |lambda| ~ 0.99), its full spectrum and how concentrated its top eigenvectors are (analysis hessian_opt).

Run:   sweep launch curse-of-memory [--scale smoke|quick|paper]
Cost on 2 CPU cores: smoke < 1 min; quick ~10 min (rnn, blockdiag, cdiag, cdiag_norm, lru; 4 nu0; 400 steps);
paper: 7 cells x 7 nu0 x (5 search + 10 seed) trials x 10,000 steps — hours on a CPU box, see the README's
projection for a cluster.
"""
from __future__ import annotations

from ..spec import SweepSpec

NAME = "curse-of-memory"

# The authors' learning-rate grids, as log-uniform search ranges.
LR_RANGES = (
    "rnn:3.2e-5:3.2e-3", "blockdiag:3.2e-5:3.2e-3",
    "cdiag:3.2e-3:0.32", "cdiag_norm:3.2e-3:0.32", "lru:3.2e-3:0.32",
    "gru:1e-4:3.2e-2", "lstm:1e-4:3.2e-2",
)
PAPER_NUS = (0.32, 0.68, 0.84, 0.92, 0.96, 0.98, 0.99)
FIG4 = ("hessian_opt:rnn", "hessian_opt:cdiag", "hessian_opt:lru")  # Hessian at optimality: dense vs diagonal
# Sharpness (top Hessian eigenvalues, x lr) along training in the seed stage. One call costs about 50-90
# training steps (bench/hessian.py), so: at the end of the short quick trials, every 1,000 steps at paper scale.
QUICK_PROBES = ("hessian:at_init=false",)
PAPER_PROBES = ("hessian:every=1000",)

_COMMON = dict(name=NAME, tasks=("teacher_student",), depths=(1,), seq_lens=(300,), hidden=64, teacher_hidden=10,
               lr_ranges=LR_RANGES, lr_min=1e-7)


def get_spec(scale: str) -> SweepSpec:
    if scale == "smoke":
        return SweepSpec(scale=scale, cells=("rnn", "lru"), nus=(0.68, 0.99), seeds=2, steps=30, batch=16,
                         lr_search_trials=2, eval_batch=64, checkpoint_every=10, **_COMMON)
    if scale == "quick":
        return SweepSpec(scale=scale, cells=("rnn", "blockdiag", "cdiag", "cdiag_norm", "lru"),
                         nus=(0.68, 0.92, 0.98, 0.99), seeds=3, steps=400, batch=64, lr_search_trials=4,
                         eval_batch=512, checkpoint_every=200, analyses=FIG4,
                         probes=QUICK_PROBES, **_COMMON)
    if scale == "paper":
        return SweepSpec(scale=scale, cells=("rnn", "blockdiag", "cdiag", "cdiag_norm", "lru", "gru", "lstm"),
                         nus=PAPER_NUS, seeds=10, steps=10_000, batch=128, lr_search_trials=5,
                         eval_batch=1024, checkpoint_every=1000, analyses=FIG4,
                         probes=PAPER_PROBES, **_COMMON)
    raise ValueError(scale)
