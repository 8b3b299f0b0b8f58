"""curse-of-memory: Zucchet & Orvieto (NeurIPS 2024), "Recurrent neural networks: vanishing and exploding
gradients are not the end of the story", Fig. 3A (final loss vs nu0, rnn vs lru) and Fig. 3B (the ablation
rnn -> blockdiag -> cdiag -> +gamma -> lru at the largest nu0).

A student (hidden 64) learns a fixed linear teacher (hidden 10, T = 300) whose eigenvalue magnitudes lie in
[nu0, 1): the closer nu0 is to 1, the longer the memory. The paper's result: the dense rnn's final loss
rises steeply as nu0 -> 1 while the lru stays low; near-diagonal connectivity recovers most of the gap.
Settings from the authors' scans (NicolasZucchet/Vanishing-and-exploding-gradients-are-not-the-end-of-the-
story, scans/comparison_architectures_LSI_{RNN,LRU}.yaml for Fig. 3A, scans/ablation_LRU_p1.yaml and
ablation_LRU_p2.yaml for Fig. 3B): Adam, cosine decay to 1e-7, 10,000 steps, batch 128, 10 seeds, nu0 in
{0.36, 0.68, 0.84, 0.92, 0.96, 0.98, 0.99}, and their protocol (``lr_search = grid``): every rate of the
model's grid trains every seed, the rate with the lowest mean final loss over the seeds is the one plotted
(``trials.selected``; a rate with a diverged seed loses to any rate without one), as that mean with its
standard error. Rate grids (paper scale, ``PAPER_GRIDS``): rnn {3.2e-3, 1e-3, 3.2e-4, 1e-4, 3.2e-5};
blockdiag (p2, 32 heads of 2x2) {0.01, 0.0032, 0.001, 3.2e-4}; the diagonal cells of p1 (cdiag, cdiag_norm =
+gamma, cdiag_exp = +exp without gamma, lru) {0.1, ..., 1e-4}.
Departures, and why:
- Fig. 3A and 3B are one grid of cells x nu0 here, so cdiag, cdiag_norm and lru train the union of their Fig. 3A
  grid {0.32, ..., 0.0032} and the ablation's {0.1, ..., 1e-4} at every nu0 (the best of a union is at least as
  good as the best of either; the ablation cells run at every nu0, not only 0.99). cdiag_exp keeps p1's grid.
- gru and lstm (paper scale only) are not in the paper's figure; their grid spans their former search range.
- quick and smoke scales: 400 (30) steps, 3 (2) seeds, 4 (2) nu0 and 2-3 rates per cell, each a subset of the
  paper's grid around the rates that win at 400 steps, so the quick sweep costs about what the old protocol did.
- Seeds 0..9, not the authors' jax_seed 2023..2032 (a different random generator either way).
The quick and paper
scales add Fig. 4: the float64 Hessian of a student set exactly to a small teacher (two eigenvalue pairs
with |lambda| ~ 0.99), its full spectrum and how concentrated its top eigenvectors are (analysis hessian_opt).

Run:   sweep launch curse-of-memory [--scale smoke|quick|paper]
Cost on 2 CPU cores: smoke < 1 min; quick a few minutes (rnn, blockdiag, cdiag, cdiag_norm, cdiag_exp, lru;
4 nu0; 400 steps; each group's rates x seeds one bundle); paper: 8 cells x 7 nu0 x (4-8 rates x 10 seeds) runs x
10,000 steps — hours on a CPU box, see the README's projection for a cluster.
"""
from __future__ import annotations

from trainers.probe_spec import ProbeSpec

from ..lr_grid import LrGrid
from ..spec import SweepSpec
from ..spec_records import Analysis, LrRange

NAME = "curse-of-memory"

DIAGONAL = ("cdiag", "cdiag_norm", "cdiag_exp", "lru")  # ablation_LRU_p1's four variants
FIG3A_DIAG = (0.32, 0.1, 0.032, 0.01, 0.0032)  # comparison_architectures_LSI_LRU.yaml
FIG3B_DIAG = (0.1, 0.032, 0.01, 0.0032, 0.001, 3.2e-4, 1e-4)  # ablation_LRU_p1.yaml
PAPER_GRIDS = (
    LrGrid("rnn", (3.2e-3, 1e-3, 3.2e-4, 1e-4, 3.2e-5)),  # comparison_architectures_LSI_RNN.yaml
    LrGrid("blockdiag", (0.01, 0.0032, 0.001, 3.2e-4)),  # ablation_LRU_p2.yaml
    *(LrGrid(c, tuple(sorted(set(FIG3A_DIAG) | set(FIG3B_DIAG), reverse=True))) for c in ("cdiag", "cdiag_norm",
                                                                                        "lru")),
    LrGrid("cdiag_exp", FIG3B_DIAG),
    *(LrGrid(c, (3.2e-2, 1e-2, 3.2e-3, 1e-3, 3.2e-4, 1e-4)) for c in ("gru", "lstm")),
)
QUICK_GRIDS = (LrGrid("rnn", (1e-3, 3.2e-4)), LrGrid("blockdiag", (0.01, 0.0032)),
               *(LrGrid(c, (0.1, 0.032, 0.01)) for c in DIAGONAL))
SMOKE_GRIDS = (LrGrid("rnn", (1e-3, 3.2e-4)), LrGrid("lru", (0.032, 0.01)))
# The same ranges, log-uniform, for ``--set lr_search=tpe`` (not the paper's protocol: Optuna suggests rates within
# them, each Optuna trial trains every seed at its rate and is scored by their mean, the lowest mean is selected).
LR_RANGES = tuple(LrRange(cell, lo, hi) for cell, lo, hi in (
    ("rnn", 3.2e-5, 3.2e-3), ("blockdiag", 3.2e-5, 3.2e-3),
    ("cdiag", 3.2e-3, 0.32), ("cdiag_norm", 3.2e-3, 0.32), ("cdiag_exp", 3.2e-3, 0.32), ("lru", 3.2e-3, 0.32),
    ("gru", 1e-4, 3.2e-2), ("lstm", 1e-4, 3.2e-2),
))
PAPER_NUS = (0.36, 0.68, 0.84, 0.92, 0.96, 0.98, 0.99)
FIG4 = tuple(Analysis("hessian_opt", c) for c in ("rnn", "cdiag", "lru"))  # Hessian at optimality: dense vs diagonal
# Sharpness (top Hessian eigenvalues, x lr) along training in the seed stage. One call costs about 50-90
# training steps (bench/hessian.py), so: at the end of the short quick trials, every 1,000 steps at paper scale.
QUICK_PROBES = (ProbeSpec("hessian", (("at_init", "false"),)),)
PAPER_PROBES = (ProbeSpec("hessian", (("every", "1000"),)),)

_COMMON = dict(name=NAME, tasks=("teacher_student",), depths=(1,), seq_lens=(300,), hidden=64, teacher_hidden=10,
               lr_search="grid", lr_ranges=LR_RANGES, lr_min=1e-7)


def get_spec(scale: str) -> SweepSpec:
    if scale == "smoke":
        return SweepSpec(scale=scale, cells=("rnn", "lru"), nus=(0.68, 0.99), seeds=2, steps=30, batch=16,
                         lr_grids=SMOKE_GRIDS, lr_search_trials=2, eval_batch=64, checkpoint_every=10, **_COMMON)
    if scale == "quick":
        return SweepSpec(scale=scale, cells=("rnn", "blockdiag", *DIAGONAL),
                         nus=(0.68, 0.92, 0.98, 0.99), seeds=3, steps=400, batch=64, lr_grids=QUICK_GRIDS,
                         lr_search_trials=4,
                         eval_batch=512, checkpoint_every=200, analyses=FIG4,
                         probes=QUICK_PROBES, **_COMMON)
    if scale == "paper":
        return SweepSpec(scale=scale, cells=("rnn", "blockdiag", *DIAGONAL, "gru", "lstm"),
                         nus=PAPER_NUS, seeds=10, steps=10_000, batch=128, lr_grids=PAPER_GRIDS, lr_search_trials=5,
                         eval_batch=1024, checkpoint_every=1000, analyses=FIG4,
                         probes=PAPER_PROBES, **_COMMON)
    raise ValueError(scale)
