"""deep-rnn: Turkoglu et al., "Gating Revisited: Deep Multi-layer RNNs That Can Be Trained" (the STAR cell),
Fig. 2 (gradient magnitude on the depth x time lattice at init) and Tables 3-4 (accuracy vs depth on
sequential and permuted pixel-by-pixel MNIST).

Cells: vrnn, lstm, lstmf (forget gate only, the paper's Eqs. 22-24), gru, star; plain deep stacks (layer
l + 1 reads layer l's h, no residual; ``block="plain"``), depths 1-16. Settings from the paper (Appendix C.1)
and the authors' code (0zgur0/STAckable-Recurrent-network): 128 units, Adam 1e-3, batch 100, global-norm
clip 5, orthogonal weight matrices. Data: MNIST is not reachable offline, so at smoke and quick scale the tasks
are scikit-learn's 8x8 digits as 64-step one-pixel sequences (``digits``) and their fixed pixel permutation
(``pdigits``). At paper scale the sequences are 784 steps, the paper's length: with ``--set data_dir=DIR`` the
real MNIST IDX files in DIR (the official 60,000 / 10,000 split), without it the 8x8 digits upsampled
bilinearly to 28x28 offline (trainers/tasks/digits.py).

Init, per cell (``cell_inits``): at paper scale, orthogonal weights for vrnn, and for the gated cells (lstm,
lstmf, gru, star) chrono gate biases on top of orthogonal weights (the paper, Appendix C.1: b_K = -log U(1, T - 1)
for STAR, the forget bias of LSTM and LSTMw/f; trainers/cells for each cell's ``chrono``), all in one sweep; the
vanilla RNN has no gate to bias. At smoke and quick scale (64 steps) every cell is ``orthogonal``: the
orthogonal init alone trains the gated cells there, and the quick numbers below were measured with it.

Departures at paper scale, and why:
- without data_dir the 784-step sequences are the 1,797 8x8 digits upsampled (360 held out), not MNIST's 70,000
  images: the offline stand-in; ``--set data_dir=DIR`` removes it;
- the rate is constant (``schedule="constant"``), with no decay the paper does not state.

The analysis stage runs ``lattice_init`` per cell: the L x L lattice (L = the first listed depth, so depths are
listed deepest first) of the paper's simulation (orthogonal weights, zero biases and states, inputs
x_t = 0.5 x_{t-1} + 0.5 z_t), loss on the last output and on all outputs, gradients w.r.t. h and parameters.

Run:   sweep launch deep-rnn [--scale smoke|quick|paper]
Cost on 2 CPU cores: smoke < 1 min; quick ~8 min on idle cores (5 cells x depths {8, 2, 1} x 2 tasks, hidden 32,
300 steps; one depth-8 step takes 84 (vrnn) to 317 ms (lstmf); 19 min measured with the machine shared at load 7-11);
paper: 5 cells x 6 depths x 2 tasks x 3 seeds at 128 units, 100 epochs of MNIST — GPU-days, a cluster job.
"""
from __future__ import annotations

from ..spec import SweepSpec
from ..spec_records import Analysis, CellInit

NAME = "deep-rnn"
CELLS = ("vrnn", "lstm", "lstmf", "gru", "star")
PAPER_DEPTHS = (16, 12, 8, 4, 2, 1)  # deepest first: the lattice analyses take the first group's depth
LATTICE = tuple(Analysis("lattice_init", c) for c in CELLS)
PAPER_INITS = (CellInit("vrnn", "orthogonal"),  # the paper's
               *(CellInit(c, "chrono") for c in ("lstm", "lstmf", "gru", "star")))

_COMMON = dict(name=NAME, tasks=("digits", "pdigits"), nus=(0.0,), seq_lens=(64,), clips=(5.0,),
               block="plain", init="orthogonal", optimizer="adam", schedule="cosine", lr=1e-3, lr_min=1e-5,
               lr_search_trials=0, grad_norm_every=25)


def get_spec(scale: str) -> SweepSpec:
    if scale == "smoke":
        return SweepSpec(scale=scale, cells=("vrnn", "star"), depths=(3, 1), seeds=1, steps=8, batch=16,
                         hidden=8, eval_batch=64, probe_batch=4, checkpoint_every=0,
                         analyses=(Analysis("lattice_init", "vrnn"), Analysis("lattice_init", "star")), **_COMMON)
    if scale == "quick":
        return SweepSpec(scale=scale, cells=CELLS, depths=(8, 2, 1), seeds=1, steps=300, batch=64, hidden=32,
                         eval_batch=360, probe_batch=32, checkpoint_every=0, analyses=LATTICE, **_COMMON)
    if scale == "paper":
        # 100 epochs of MNIST at batch 100 = 60,000 steps; eval on the 10,000 test images
        return SweepSpec(scale=scale, cells=CELLS, depths=PAPER_DEPTHS, seeds=3, steps=60_000, batch=100,
                         hidden=128, eval_batch=10_000, probe_batch=64, checkpoint_every=2000, analyses=LATTICE,
                         **{**_COMMON, "schedule": "constant", "seq_lens": (784,), "cell_inits": PAPER_INITS})
    raise ValueError(scale)
