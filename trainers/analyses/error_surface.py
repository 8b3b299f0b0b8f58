"""`error_surface`: the error surface of a one-unit recurrent network, Pascanu, Mikolov & Bengio (2013), Fig. 3.

The unit is x_t = w sigma(x_{t-1}) + b (sigma the logistic function, no input), started at x_0 = 0.5 and trained
to have sigma(x_50) = 0.7: E_50(w, b) = (sigma(x_50) - 0.7)^2. Over a (w, b) grid the surface is flat almost
everywhere with a steep "wall" where a small change of (w, b) moves x_0 across the boundary between the two
basins of attraction of the bistable map (w > 4): there the gradient explodes, and a plain gradient step is
thrown far away, which is what norm clipping prevents. Every grid point is one element of a float64 batch: one
Python loop of 50 steps for the whole grid.

Rows: the ``surface`` table, param_x "w", param_y "b", one row per grid point; ``cfg.probe_batch`` points per
axis (the sweep keeps it small at smoke scale).
"""
from __future__ import annotations

import torch
from torch import Tensor

W_RANGE = (0.0, 10.0)  # the recurrent weight w; the map is bistable for w > 4
B_RANGE = (-8.0, 2.0)  # the bias b; the basin boundary through x_0 = 0.5 is the line b = 0.5 - w sigma(0.5)
STEPS = 50  # the loss reads x_50
X0 = 0.5  # initial state
TARGET = 0.7  # target of sigma(x_50)


def error_surface(w: Tensor, b: Tensor, steps: int = STEPS, x0: float = X0, target: float = TARGET) -> Tensor:
    """E = (sigma(x_steps) - target)^2 for every (w_i, b_j): shape (len(w), len(b)), in float64."""
    ww, bb = torch.meshgrid(w.double(), b.double(), indexing="ij")
    x = torch.full_like(ww, x0)
    for _ in range(steps):
        x = ww * torch.sigmoid(x) + bb
    return (torch.sigmoid(x) - target) ** 2


def surface_rows(w: Tensor, b: Tensor, loss: Tensor) -> dict[str, dict[str, list]]:
    """``surface`` table columns for a grid: w varies slowest (row i * len(b) + j is (w_i, b_j))."""
    ww, bb = torch.meshgrid(w.double(), b.double(), indexing="ij")
    n = loss.numel()
    return {"surface": {"param_x": ["w"] * n, "x": ww.reshape(-1).tolist(), "param_y": ["b"] * n,
                        "y": bb.reshape(-1).tolist(), "loss": loss.reshape(-1).tolist()}}


def run(cfg, writer) -> dict:
    """Error surface of a one-unit recurrent network (Pascanu et al. 2013, Fig. 3).

    The analysis trial: ``cfg.probe_batch`` x ``cfg.probe_batch`` points over W_RANGE x B_RANGE."""
    n = cfg.probe_batch
    if n < 2:
        raise ValueError(f"error_surface needs probe_batch >= 2 grid points per axis, got {n}")
    w = torch.linspace(*W_RANGE, n, dtype=torch.float64)
    b = torch.linspace(*B_RANGE, n, dtype=torch.float64)
    loss = error_surface(w, b)
    for table, columns in surface_rows(w, b, loss).items():
        writer.extend(table, columns)
    return dict(status="completed", steps_done=0, final_loss=loss.min().item(), device="cpu")
