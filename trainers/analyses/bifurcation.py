"""`bifurcation`: the bifurcation diagram of x <- w sigma(x) + b with w = 5 over b, Pascanu, Mikolov & Bengio
(2013), Fig. 4, computed with the attractor probe's functions (``trainers.probes.attractors``).

For each b on a grid the map runs autonomously from several initial states x_0 spread over [-10, 10]
(``autonomous_orbit``); after the burn-in the kept samples are the attractors. The map is monotone, so every
orbit ends on a stable fixed point: one for most b, two in the band where x = 5 sigma(x) + b has three roots
(the middle one unstable). The band's ends are the tangencies 5 sigma'(x) = 1, i.e.
sigma = (1 +- sqrt(1 - 4/5)) / 2, x = logit(sigma), b = x - 5 sigma: (-2.6556, -2.3444). Crossing an end (a
bifurcation) or the unstable root (a basin boundary) is what makes x_t jump and gradients explode.

Rows: ``attractors`` (step 0, input_id = index of b, input_value = b, init_id, k, x, dx) and
``attractor_summary`` per (b, init) with ``n_points`` (``count_distinct`` of the kept (x, dx) pairs) and the
Lyapunov exponent of the orbit's end (``largest_lyapunov``: log(5 sigma'(x*)) < 0 at a stable fixed point), plus
one row per b with init_id = -1: n_points over all its inits (2 inside the band) and their largest exponent.
``cfg.probe_batch`` values of b (the sweep keeps it small at smoke scale).
"""
from __future__ import annotations

import torch
from torch import Tensor

from ..probes.attractors import autonomous_orbit, count_distinct, largest_lyapunov

W = 5.0  # the fixed recurrent weight of Fig. 4
B_RANGE = (-4.0, -1.0)  # the b axis, around the bistable band (-2.656, -2.344)
N_INITS = 8  # initial states linspace(-10, 10, N_INITS): both sides of the unstable root (|x| < 0.97)
INIT_RANGE = (-10.0, 10.0)
BURN_IN = 1000  # steps before sampling: the slowest convergence is next to the band's ends (saddle-node)
KEEP = 10  # samples kept per orbit
LYAPUNOV_BURN_IN, LYAPUNOV_STEPS = 10, 50
TOL = 1e-4  # count_distinct's relative tolerance


def step(state: Tensor, b: Tensor) -> tuple[Tensor, Tensor]:
    """One step of x <- W sigma(x) + b on a (batch, 1) state with b (batch, 1) as the constant input."""
    x = W * torch.sigmoid(state) + b
    return x, x


def bistable_band(w: float = W) -> tuple[float, float]:
    """The b interval where x = w sigma(x) + b has three fixed points (w > 4), from the tangencies w sigma'(x) = 1."""
    if w <= 4:
        raise ValueError(f"x = w sigma(x) + b is bistable only for w > 4, got w={w}")
    s = torch.tensor([0.5 + 0.5 * (1 - 4 / w) ** 0.5, 0.5 - 0.5 * (1 - 4 / w) ** 0.5], dtype=torch.float64)
    ends = torch.logit(s) - w * s
    return ends.min().item(), ends.max().item()


def bifurcation(bs: Tensor, n_inits: int = N_INITS, burn_in: int = BURN_IN, keep: int = KEEP
                ) -> tuple[Tensor, Tensor, Tensor]:
    """Orbits of every (b, x_0): returns (x, dx, lyapunov) with x, dx (len(bs), n_inits, keep) and lyapunov
    (len(bs), n_inits), float64; row i * n_inits + j of the batch is (b_i, init j)."""
    nb = len(bs)
    x0 = torch.linspace(*INIT_RANGE, n_inits, dtype=torch.float64).repeat(nb)[:, None]
    u = bs.double().repeat_interleave(n_inits)[:, None]
    # burn_in - 1 + keep + 1 steps: the window's first sample is the last burn-in one, x_{-1} for dx_0
    window, end = autonomous_orbit(step, x0, u, burn_in - 1, keep + 1, lambda s, y: s[:, 0], return_state=True)
    lyap = largest_lyapunov(step, end, u, LYAPUNOV_BURN_IN, LYAPUNOV_STEPS, 0, torch.Generator().manual_seed(0))
    x, dx = window[:, 1:], window.diff(dim=1)
    return x.reshape(nb, n_inits, keep), dx.reshape(nb, n_inits, keep), lyap.reshape(nb, n_inits)


def bifurcation_rows(bs: Tensor, x: Tensor, dx: Tensor, lyap: Tensor, tol: float = TOL) -> dict[str, dict]:
    """``attractors`` and ``attractor_summary`` columns (step 0) of ``bifurcation``'s output."""
    nb, ni, keep = x.shape
    pairs = torch.stack([x, dx], dim=-1)  # (nb, ni, keep, 2)
    summary: dict[str, list] = {c: [] for c in ("input_id", "input_value", "init_id", "lyapunov", "n_points")}
    for i in range(nb):
        per_init = [(j, lyap[i, j].item(), count_distinct(pairs[i, j], tol)) for j in range(ni)]
        union = (-1, lyap[i].max().item(), count_distinct(pairs[i].reshape(-1, 2), tol))
        for j, lam, n_points in per_init + [union]:
            for c, v in zip(summary, (i, bs[i].item(), j, lam, n_points)):
                summary[c].append(v)
    n = nb * ni * keep
    return {
        "attractors": {
            "step": [0] * n,
            "input_id": torch.arange(nb).repeat_interleave(ni * keep).tolist(),
            "input_value": bs.double().repeat_interleave(ni * keep).tolist(),
            "init_id": torch.arange(ni).repeat_interleave(keep).repeat(nb).tolist(),
            "k": torch.arange(keep).repeat(nb * ni).tolist(),
            "x": x.reshape(-1).tolist(),
            "dx": dx.reshape(-1).tolist(),
        },
        "attractor_summary": {"step": [0] * (nb * (ni + 1)), **summary},
    }


def run(cfg, writer) -> dict:
    """Bifurcation diagram of x <- 5 sigma(x) + b over b (Pascanu et al. 2013, Fig. 4).

    The analysis trial: ``cfg.probe_batch`` values of b over B_RANGE."""
    nb = cfg.probe_batch
    if nb < 2:
        raise ValueError(f"bifurcation needs probe_batch >= 2 values of b, got {nb}")
    bs = torch.linspace(*B_RANGE, nb, dtype=torch.float64)
    x, dx, lyap = bifurcation(bs)
    for table, columns in bifurcation_rows(bs, x, dx, lyap).items():
        writer.extend(table, columns)
    return dict(status="completed", steps_done=0, final_loss=None, device="cpu")
