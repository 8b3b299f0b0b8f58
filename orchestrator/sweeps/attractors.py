"""attractors: Ribeiro, Tiels, Aguirre & Schön (AISTATS 2020), "Beyond exploding and vanishing gradients:
analysing RNN training using attractors and smoothness": Table 1 (few-relevant-symbols accuracy vs length
for LSTM, stable LSTM and orthogonal RNN), Figs. 4 and 7 (attractor snapshots over training), Figs. 5-6
(training curves) and Fig. 1 (the chaotic LSTM's loss along theta(s) = s theta_true next to its bifurcation
diagram).

Grid: tasks (``sine``: sine-wave generation from a constant frequency input, MSE; ``symbols``: 4-class order
of two relevant symbols among distractors, cross-entropy on the last output) x cells (``lstm``; ``slstm``,
rescaled after every step into Miller & Hardt's stable set; ``ornn``, orthogonal W with modReLU) x lengths x
seeds; hidden 200, Adam, global-norm clip 0.25, batch 100 at paper scale (REFERENCE.md "attractors"; repo
antonior92/attractors-and-smoothness-RNN). Every trial records attractor snapshots (probe ``attractors``
with ``inputs=task``: the sine task's 10 frequencies in linspace(pi/16, pi/8), the symbols task's 6 one-hot
symbols; ``project=output``: the output y_t, for symbols the (p,p) logit; random initial states of std 100),
at init, every ``every`` steps and at the end. At paper scale the probe takes each task's own orbit settings
(``orbit=task``, the tasks' ``ORBIT``): sine burn-in 1200, keep 400, 4 initial states (sine-generator/train.py:
seq_len_orbit 1600, burnout_orbit 1200, n_sequences_orbit 4); symbols burn-in 400, keep 400, 10 initial states
(sequence-classification/train.py: 800, 400, 10). The analysis stage runs ``chaotic_lstm`` (Fig. 1).

One learning rate and one batch size for both tasks (the grid gives every group the spec's ``lr``): the
authors use Adam 1e-3 for sine and 1e-2 for symbols; here 3e-3, a rate at which both tasks train
(measured on this machine at hidden 64, batch 32: at 1e-2 the oRNN stays at chance on symbols T = 100 after
300 steps, at 1e-3 it reaches 0.88 after 800 steps, at 3e-3 it solves T = 100 in ~550 steps and reaches a sine
MSE of 0.05 in 800; the LSTM's sine MSE is 0.04 after 1000 steps at 3e-3). A per-task rate is one
``--set lr_grids=sine/*:1e-3,symbols/*:1e-2`` away (the paper scale sets exactly that, ``PAPER_RATES``).
Schedule at paper scale: the authors' step decay (``schedule="step"``, ``lr_decays`` per task; their MultiStepLR,
stepped once per epoch of 10 batches, so epoch milestones x 10 are step milestones): sine x 0.1 after epochs
500, 1000, 2000 (sine-generator/train.py, gamma 0.1; its later defaults 8000, 15000, 25000 lie past the paper's
4,000 epochs); symbols x 0.25 after epochs 500, 1000, 2000 (sequence-classification/train.py: gamma 0.25, not
0.1). Smoke and quick keep the cosine schedule (their few hundred steps end before the first milestone).
``solve_every`` stops a symbols trial at the first check where the validation
accuracy is 1 (the paper: "until accuracy one is attained"); the sine task has no accuracy and never stops early.

Scales:
- ``smoke``: plumbing, a few steps at hidden 8, lengths 50.
- ``quick``: hidden 64, batch 32, lengths {50, 100}, 2 seeds, 800 steps; the qualitative result at the
  shortest memory that separates the cells cheaply (see ``QUICK_LENGTHS`` and bench/check_attractors.py).
- ``paper``: hidden 200, batch 100, lengths {50, 100, 200, 300, 500}, 10,000 steps (1,000 epochs of 10
  batches; the paper ran up to 15,000 epochs and the sine task 4,000 epochs of 10 batches), 3 seeds.

Departures at paper scale, and why: one step budget for both tasks (10,000 steps: the grid has one ``steps``),
so only the first decay (after step 5,000) takes effect; the sine task's batch is 100 (the authors: 10 of its
100 sequences per step), one batch size for both tasks.

Run:   sweep launch attractors [--scale smoke|quick|paper]; sweep report attractors
Check: python bench/check_attractors.py (runs quick, asserts the three acceptance checks, prints the numbers)
Cost on 2 CPU cores: smoke < 1 min (measured 50 s with the Ray start, the chaotic-LSTM analysis ~5 s of it);
quick 24 trials + the analysis, measured 631 s wall on a shared, busy 2-core box (10-70 s per trial, 15-20% of
it in the attractor snapshots; symbols trials that reach accuracy 1 stop early);
paper: 30 groups x 3 seeds x 10,000 steps at hidden 200 and T <= 500 — a GPU cluster job (days on a CPU box).
"""
from __future__ import annotations

from trainers.probe_spec import ProbeSpec

from ..lr_grid import LrGrid
from ..spec import SweepSpec
from ..spec_records import Analysis, LrDecay

NAME = "attractors"
CELLS = ("lstm", "slstm", "ornn")
TASKS = ("sine", "symbols")
ANALYSES = (Analysis("chaotic_lstm"),)
PAPER_LENGTHS = (50, 100, 200, 300, 500)
# Quick: the longest length at which the oRNN learns the symbols task in 800 steps at hidden 64, batch 32
# (measured: accuracy 1.0 at T = 100 after ~550 steps at lr 3e-3; at T = 200 still at chance after 500 steps),
# while the LSTM, which solves T = 50 in ~350 steps, stays at chance at T = 100 (the paper's LSTM solves 100
# and 200 too, after up to thousands of epochs: a budget effect that shows the same ordering).
QUICK_LENGTHS = (50, 100)
# Paper scale: the authors' rate per task (Adam 1e-3 for sine, 1e-2 for symbols), as one-rate grids by task.
PAPER_RATES = (LrGrid(task="sine", rates=(1e-3,)), LrGrid(task="symbols", rates=(1e-2,)))
# the authors' MultiStepLR per task, milestones in steps (10 batches per epoch): task:gamma:m1:m2:m3
PAPER_DECAYS = (LrDecay("sine", 0.1, (5000, 10000, 20000)), LrDecay("symbols", 0.25, (5000, 10000, 20000)))


def probes(every: int, burn_in: int, keep: int, n_inits: int, lyap: int) -> tuple[ProbeSpec, ...]:
    return (ProbeSpec("attractors", (("every", str(every)), ("inputs", "task"), ("project", "output"),
                                     ("burn_in", str(burn_in)), ("keep", str(keep)), ("n_inits", str(n_inits)),
                                     ("lyapunov_burn_in", str(lyap)), ("lyapunov_steps", str(2 * lyap)))),)


_COMMON = dict(name=NAME, tasks=TASKS, cells=CELLS, depths=(1,), nus=(0.0,), clips=(0.25,), optimizer="adam",
               schedule="cosine", lr=3e-3, lr_min=1e-5, lr_search_trials=0, analyses=ANALYSES)


def get_spec(scale: str) -> SweepSpec:
    if scale == "smoke":
        return SweepSpec(scale=scale, seq_lens=(50,), seeds=1, steps=6, batch=8, hidden=8, eval_batch=50,
                         probe_batch=4, checkpoint_every=0, grad_norm_every=3, solve_every=0,
                         probes=probes(every=3, burn_in=20, keep=8, n_inits=2, lyap=5), **_COMMON)
    if scale == "quick":
        return SweepSpec(scale=scale, seq_lens=QUICK_LENGTHS, seeds=2, steps=800, batch=32, hidden=64,
                         eval_batch=1000, probe_batch=8, checkpoint_every=400, solve_every=50,
                         probes=probes(every=100, burn_in=600, keep=100, n_inits=2, lyap=50), **_COMMON)
    if scale == "paper":
        return SweepSpec(scale=scale, seq_lens=PAPER_LENGTHS, seeds=3, steps=10_000, batch=100, hidden=200,
                         lr_grids=PAPER_RATES, eval_batch=1000, probe_batch=8, checkpoint_every=1000, solve_every=100,
                         probes=(ProbeSpec("attractors", (("every", "250"), ("inputs", "task"), ("project", "output"),
                                                          ("orbit", "task"), ("lyapunov_burn_in", "100"),
                                                          ("lyapunov_steps", "200"))),),
                         **{**_COMMON, "schedule": "step", "lr_decays": PAPER_DECAYS})
    raise ValueError(scale)
