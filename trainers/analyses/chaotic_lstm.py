"""Ribeiro, Tiels, Aguirre & Schön (AISTATS 2020), Fig. 1: the chaotic LSTM, whose cost function is jagged
exactly where its bifurcation diagram is chaotic (repo antonior92/attractors-and-smoothness-RNN,
chaotic_lstm.py).

The model: a 2-unit LSTM without biases, zero input weights and zero input, h0 = c0 = 0.5, recurrent weights
theta_true = W (rows in torch's gate order i, i, f, f, g, g, o, o; the authors' comments label the row pairs
W_hi, W_hf, W_hg, W_ho, and torch's ``nn.LSTM``, which they load it into, orders its gates i, f, g, o):

    W = [[-1, -4], [-3, -2], [-2, 6], [0, -6], [-1, -6], [6, -9], [4, 1], [-9, -7]]

Along the ray theta(s) = s theta_true, s in [0.5, 2] (``N_S`` values from linspace plus s = 1 exactly):

- ``surface`` rows (param_x = "s", param_y null, y null): the loss at s, the mean squared difference between
  the model's outputs h_t (both units) at t = 100 .. 199 and those of s = 1 (T = 200, burn-in 100), so the
  loss is 0 at s = 1. Jagged for about 0.9 <= s <= 1.45 (the paper), smooth outside.
- the bifurcation diagram through the attractor probe's functions (``autonomous_orbit``, ``count_distinct``,
  ``largest_lyapunov``): ``attractors`` rows with ``input_id`` = index of s, ``input_value`` = s (the
  bifurcation parameter stands where a probe puts its constant input), init_id 0 (the one initial state),
  k = 0 .. 99 and x = h_1 at t = 100 + k (the first output, as the authors plot), dx = x_k - x_{k-1};
  ``attractor_summary`` rows per s with ``n_points`` (distinct (x, dx) pairs) and ``lyapunov`` (largest
  exponent per step, from the state at t = 200: 100 alignment steps, then 400). Step = 0 throughout.

Every s runs in one float64 batch. As the weights enter only through s W h (no bias, no input), the map at s
is the s = 1 LSTM cell's step applied to (s h, c): the batch runs ``LSTMCell.step`` with s carried as the
constant "input" of the probe functions' step signature. Known values: Lyapunov exponent +0.16..0.17 at
s = 1 (chaos), -0.56 at s = 0.5 (a fixed point).
"""
from __future__ import annotations

import torch
from torch import Tensor

from ..cells.lstm import LSTMCell
from ..probes.attractors import autonomous_orbit, count_distinct, largest_lyapunov

W_TRUE = ((-1.0, -4.0), (-3.0, -2.0), (-2.0, 6.0), (0.0, -6.0), (-1.0, -6.0), (6.0, -9.0), (4.0, 1.0), (-9.0, -7.0))
S_LOW, S_HIGH = 0.5, 2.0
N_S = 751  # linspace points (a step of 0.002), plus s = 1
SEQ_LEN, BURN_IN = 200, 100
STATE0 = 0.5
LYAPUNOV_BURN_IN, LYAPUNOV_STEPS = 100, 400


def chaotic_cell() -> LSTMCell:
    """The float64 2-unit LSTM at s = 1: zero biases and input weights, W_hh = W_TRUE."""
    cell = LSTMCell(1, 2, 2).double()
    with torch.no_grad():
        for p in cell.core.parameters():
            p.zero_()
        cell.core.weight_hh_l0.copy_(torch.tensor(W_TRUE, dtype=torch.float64))
    return cell.requires_grad_(False)


def s_grid(n: int = N_S) -> Tensor:
    """linspace(S_LOW, S_HIGH, n) with 1.0 added (if absent), sorted; float64."""
    s = torch.linspace(S_LOW, S_HIGH, n, dtype=torch.float64)
    if not bool((s == 1.0).any()):
        s = torch.sort(torch.cat([s, torch.ones(1, dtype=torch.float64)])).values
    return s


def scaled_step(cell: LSTMCell):
    """step(state, s) of the LSTM with weights s * theta_true, for a batch of s (shape (batch, 1))."""
    def step(state: Tensor, s: Tensor) -> tuple[Tensor, Tensor]:
        h, c = state.chunk(2, dim=-1)
        return cell.step(torch.cat([s * h, c], dim=-1), torch.zeros_like(s))
    return step


def chaotic_lstm(n: int = N_S) -> dict[str, Tensor]:
    """{s (n,), loss (n,), x (n, K), dx (n, K), lyapunov (n,), n_points (n,)} with K = SEQ_LEN - BURN_IN."""
    cell = chaotic_cell()
    s = s_grid(n)
    u = s[:, None]
    step = scaled_step(cell)
    state0 = torch.full((len(s), 4), STATE0, dtype=torch.float64)
    keep = SEQ_LEN - BURN_IN
    # steps 1 .. SEQ_LEN, projected on h (both units); the window starts one sample early for dx_0 = x_0 - x_{-1}
    window, end = autonomous_orbit(step, state0, u, BURN_IN - 1, keep + 1, lambda st, y: cell.hidden_of(st),
                                   return_state=True)  # (n, 2, keep + 1)
    outputs = window[..., 1:]  # h at t = BURN_IN + 1 .. SEQ_LEN
    loss = ((outputs - outputs[(s == 1.0).nonzero()[0, 0]]) ** 2).mean(dim=(1, 2))
    x, dx = window[:, 0, 1:], window[:, 0].diff(dim=1)  # the first output, as the authors plot
    lyap = largest_lyapunov(step, end, u, LYAPUNOV_BURN_IN, LYAPUNOV_STEPS, generator=torch.Generator().manual_seed(0))
    n_points = torch.tensor([count_distinct(torch.stack([x[i], dx[i]], dim=-1)) for i in range(len(s))])
    return dict(s=s, loss=loss, x=x, dx=dx, lyapunov=lyap, n_points=n_points)


def rows(result: dict[str, Tensor]) -> dict[str, dict[str, list]]:
    s, x = result["s"], result["x"]
    n, keep = x.shape
    return {
        "surface": {"param_x": ["s"] * n, "x": s.tolist(), "param_y": [None] * n, "y": [None] * n,
                    "loss": result["loss"].tolist()},
        "attractors": {"step": [0] * (n * keep), "input_id": torch.arange(n).repeat_interleave(keep).tolist(),
                       "input_value": s.repeat_interleave(keep).tolist(), "init_id": [0] * (n * keep),
                       "k": torch.arange(keep).repeat(n).tolist(), "x": x.reshape(-1).tolist(),
                       "dx": result["dx"].reshape(-1).tolist()},
        "attractor_summary": {"step": [0] * n, "input_id": list(range(n)), "input_value": s.tolist(),
                              "init_id": [0] * n, "lyapunov": result["lyapunov"].tolist(),
                              "n_points": result["n_points"].tolist()},
    }


def run(cfg, writer) -> dict:
    """The chaotic LSTM's jagged loss and its bifurcation diagram (Ribeiro et al. 2020, Fig. 1).

    The analysis trial (``analyses=chaotic_lstm``): Fig. 1's loss along s and bifurcation diagram."""
    result = chaotic_lstm()
    for table, columns in rows(result).items():
        writer.extend(table, columns)
    # the result is a curve, not one number: final_loss stays null (the curve is in ``surface``)
    return dict(status="completed", steps_done=0, final_loss=None, device="cpu")


if __name__ == "__main__":
    r = chaotic_lstm()
    for target in (0.5, 0.9, 1.0, 1.2, 1.45, 1.6, 2.0):
        i = int((r["s"] - target).abs().argmin())
        print(f"s={r['s'][i].item():.3f} loss={r['loss'][i].item():.4g} lyapunov={r['lyapunov'][i].item():+.3f} "
              f"n_points={int(r['n_points'][i])}")
