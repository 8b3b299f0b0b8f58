"""exploding-gradients: Pascanu, Mikolov & Bengio (2013), "On the difficulty of training recurrent neural
networks" (arXiv 1211.5063), Fig. 7 (success rate on the temporal order task vs sequence length, plain SGD vs
norm clipping), Fig. 3 (error surface of a one-unit RNN over (w, b)) and Fig. 4 (bifurcation diagram of
x <- 5 sigma(x) + b over b).

Training (the seed stage): the temporal order task (trainers/tasks/temporal_order.py) on a tanh RNN (``vrnn``)
with 50 units, plain SGD at a constant rate, batch 20, fresh sequences every step, initialised as the authors'
``smart_tanh`` (sparse recurrent matrix at spectral radius 0.95, small input and output weights; repo
pascanur/trainingRNNs, RNN.py). Clipping (clip > 0) rescales the gradient to norm c when it is larger and skips
a step whose norm is NaN/Inf; clip 0 is plain SGD. Every 20 steps the model is evaluated on ``eval_batch``
sequences drawn fresh at that check (10,000 at paper scale, in chunks of 1,000; trainers/solved.py); the first
check with zero errors records ``solved_step`` and stops the trial. Source: RNN.py of pascanur/trainingRNNs
(``checkFreq`` 20, ``ebs`` 10,000, ``cbs`` 1,000, ``task.generate`` at each check, stop at ``error < .0001``;
``nhid`` 50, ``bs`` 20, ``lr`` .01, ``cutoff`` 1, ``clipstyle`` rescale, ``init`` smart_tanh).
A trial "succeeds" when it has a solved_step (a diverged trial, NaN loss, is a failure).
Analyses (the analysis stage, no training): ``error_surface`` (Fig. 3) and ``bifurcation`` (Fig. 4), with
``probe_batch`` grid points per axis.

Scales. ``paper``: the authors' code settings (lr 0.01, batch 20, 50 runs per point, up to 100k steps, 10,000
evaluation sequences) over lengths 20-250 and the thresholds 1 (their default) and 5. ``quick`` raises the rate
to 0.1 so that the exploding-gradient effect shows within 2,000 steps (at lr 0.01, plain SGD solved T = 20 in
both of two tries here, after 860 and 1,400 steps). Measured at quick (4 seeds each; success = solved runs / runs):

    T    plain SGD   clip 1 (steps clipped)   clip 5 (steps clipped)
    10   4/4         4/4 (39%)                4/4 (2%)
    20   0/4         4/4 (73%), mean step 500 4/4 (7%), mean step 935
    30   0/4         3/4 (78%), mean step 1140 0/4 (1%)

Threshold 1 rescales most steps (it also acts as a smaller step); threshold 5 touches only the rare spikes and
still turns 0/4 into 4/4 at T = 20, consistent with the paper's reading that the few exploding steps are what
derails plain SGD.
``smoke`` is a plumbing test (4 short trials and the two analyses on small grids).

Departures from the authors' code, and why:
- the check's sequences come from a generator seeded by (trial seed, step), not from the training ``rng``: the
  same draws for a resumed trial, a seed bundle and a solo run; the statistics are the same;
- a NaN/Inf gradient skips the step; the authors replace it by ``0.02 W_hh`` (a shrink of W_hh), a heuristic the
  paper does not discuss;
- fixed sequence length per trial (the paper's Fig. 7 is per length; their script can also draw lengths in
  [min_length, max_length]);
- ``final_loss``/``final_metric`` are on one fixed evaluation batch (the same for every trial of a length), so
  trials compare on equal data.

Run:   sweep launch exploding-gradients [--scale smoke|quick|paper]; sweep report exploding-gradients
Check: python bench/check_exploding_gradients.py (runs quick, asserts the acceptance, prints the numbers)
Cost on 2 shared CPU cores: smoke ~35 s with Ray start-up; quick 6 min wall (36 trials, 615 s of trial time; the
unsolved runs use their whole 2,000 steps); paper: 6 lengths x 3 clips x 50 seeds x up to 100k steps at
T <= 250, with a 10,000-sequence evaluation every 20 steps — a cluster job (days on a CPU box).
"""
from __future__ import annotations

from ..spec import SweepSpec
from ..spec_records import Analysis

NAME = "exploding-gradients"
ANALYSES = (Analysis("error_surface"), Analysis("bifurcation"))

_COMMON = dict(name=NAME, tasks=("temporal_order",), cells=("vrnn",), depths=(1,), nus=(0.0,), hidden=50,
               optimizer="sgd", schedule="constant", batch=20, init="smart_tanh", solve_every=20,
               lr_search_trials=0, analyses=ANALYSES)


def get_spec(scale: str) -> SweepSpec:
    if scale == "smoke":
        return SweepSpec(scale=scale, seq_lens=(10, 20), clips=(0.0, 1.0), seeds=1, steps=200, lr=0.1,
                         eval_batch=200, probe_batch=12, checkpoint_every=0, **_COMMON)
    if scale == "quick":
        return SweepSpec(scale=scale, seq_lens=(10, 20, 30), clips=(0.0, 1.0, 5.0), seeds=4, steps=2000, lr=0.1,
                         eval_batch=1000, probe_batch=64, checkpoint_every=500, **_COMMON)
    if scale == "paper":
        return SweepSpec(scale=scale, seq_lens=(20, 50, 100, 150, 200, 250), clips=(0.0, 1.0, 5.0), seeds=50,
                         steps=100_000, lr=0.01, eval_batch=10_000, probe_batch=200, checkpoint_every=5000,
                         **_COMMON)
    raise ValueError(scale)
