"""Gradient magnitudes on the depth x time lattice at initialisation (Turkoglu et al., STAR, Fig. 2 and
Appendix B Fig. 6; repo 0zgur0/STAckable-Recurrent-network): the ``lattice_init`` analysis trial.

The paper's simulation: a plain deep stack (layer l + 1 reads layer l's h, no residual) of one cell type,
zero initial states and biases, random orthogonal weight matrices (``init="orthogonal"``), inputs
x_t = a x_{t-1} + (1 - a) z_t with z_t ~ N(0, 1) i.i.d. and a = 0.5 (x_0 = 0), and the mean gradient magnitude
per cell of the unrolled lattice for a loss on the last output only and on all outputs, averaged over many
weight draws (10K in the paper). Expected: a vanilla tanh RNN's gradient grows toward early and shallow
cells, an LSTM's vanishes there, STAR's stays of the same order.

Here: depth L = the trial's ``depth`` (the deep-rnn sweep lists its depths deepest first, so its analysis
trials get the deepest), a square lattice T = L (depth and time play equal roles: every cell's distance to
the loss mixes both directions), ``hidden`` units, one input channel (the digits tasks' one pixel per step,
as in pixel-by-pixel MNIST), a 10-way readout on the top layer with cross-entropy against random labels
drawn per step ("last": the label of step T; "all": the mean over steps). ``RUNS`` weight draws (seeds
derived from the trial's seed) of ``probe_batch`` sequences each; a row's grad_norm is the mean over the
draws of ``trainers.probes.lattice.lattice_gradients`` (wrt "hidden": the per-sample norm of d loss / d h,
batch mean; wrt "params": the norm of d loss / d (the cell's parameters as used at that step)).
Rows: ``lattice`` (step 0, loss, wrt, layer, t, grad_norm).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ..probes.lattice import lattice_gradients
from ..stack import Stack

A = 0.5  # input autocorrelation of the paper's simulation
RUNS = 8  # independent weight and input draws averaged per lattice
D_IN = 1  # input channels (one pixel per step)
D_OUT = 10  # readout classes


def correlated_inputs(batch: int, T: int, d_in: int, a: float, generator: torch.Generator) -> Tensor:
    """x_t = a x_{t-1} + (1 - a) z_t, x_0 = 0, z_t ~ N(0, 1) i.i.d.; shape (batch, T, d_in)."""
    z = torch.randn(batch, T, d_in, generator=generator)
    xs, prev = [], torch.zeros(batch, d_in)
    for t in range(T):
        prev = a * prev + (1 - a) * z[:, t]
        xs.append(prev)
    return torch.stack(xs, dim=1)


def lattice_at_init(cell: str, depth: int, T: int, hidden: int, batch: int, seed: int = 0, runs: int = RUNS,
                    params: bool = True) -> dict[tuple[str, str], Tensor]:
    """{(loss, wrt): (depth, T) float64 mean over ``runs`` draws}, loss in last/all, wrt in hidden/params."""
    total: dict[tuple[str, str], Tensor] = {}
    for r in range(runs):
        torch.manual_seed(seed * 100_003 + r)  # the weight draw
        model = Stack(cell, D_IN, hidden, D_OUT, depth=depth, block="plain", init="orthogonal", t_max=max(T, 2))
        g = torch.Generator().manual_seed(seed * 100_003 + r + 50_000)  # the input and label draw
        x = correlated_inputs(batch, T, D_IN, A, g)
        y = torch.randint(0, D_OUT, (batch, T), generator=g)
        last = lambda y_hat, y=y: F.cross_entropy(y_hat[:, -1], y[:, -1])  # noqa: E731
        all_ = lambda y_hat, y=y: F.cross_entropy(y_hat.reshape(-1, D_OUT), y.reshape(-1))  # noqa: E731
        for key, grid in lattice_gradients(model, x, last, all_, params=params).items():
            total[key] = total.get(key, 0.0) + grid / runs
    return total


def lattice_rows(grids: dict[tuple[str, str], Tensor], step: int = 0) -> dict[str, list]:
    rows: dict[str, list] = {k: [] for k in ("step", "loss", "wrt", "layer", "t", "grad_norm")}
    for (loss, wrt), g in grids.items():
        depth, T = g.shape
        rows["step"] += [step] * (depth * T)
        rows["loss"] += [loss] * (depth * T)
        rows["wrt"] += [wrt] * (depth * T)
        rows["layer"] += [l for l in range(1, depth + 1) for _ in range(T)]
        rows["t"] += list(range(1, T + 1)) * depth
        rows["grad_norm"] += g.reshape(-1).tolist()
    return rows


def run(cfg, writer) -> dict:
    """Depth x time lattice of gradient magnitudes at init (Turkoglu et al., STAR Fig. 2).

    The analysis trial (``analyses=lattice_init:<cell>``): the L x L lattice of ``cfg.cell`` at init."""
    grids = lattice_at_init(cfg.cell, cfg.depth, cfg.depth, cfg.hidden, cfg.probe_batch, seed=cfg.seed)
    writer.extend("lattice", lattice_rows(grids))
    return dict(status="completed", steps_done=0, final_loss=None, device="cpu")
