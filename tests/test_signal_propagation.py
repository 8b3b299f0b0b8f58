"""The `signal-propagation` sweep (Zucchet & Orvieto Fig. 5): its task, the GRU's ring init, the paper's
qualitative result at small size, and the sweep end to end through the CLI (real Ray, Parquet, DuckDB)."""
from __future__ import annotations


import pytest
import torch
from typer.testing import CliRunner

from orchestrator.cli import app
from orchestrator.sweeps import resolve
from orchestrator.sweeps.signal_propagation import NUS, TS
from sweepcheck import cli_rows
from trainers.cells import CellSpec, build_cell
from trainers.probes.signal import signal_stats
from trainers.stack import Stack
from trainers.tasks import task_class

runner = CliRunner()


def test_ar1_task_has_the_chosen_autocorrelation():
    task = task_class("ar1")(seq_len=400, rho=0.9)
    x, y = task.sample(256, torch.Generator().manual_seed(0))
    assert x.shape == y.shape == (256, 400, 1)
    x = x[..., 0].double()
    assert abs(x.var().item() - 1.0) < 0.05  # stationary N(0, 1) at every step
    lag1 = (x[:, 1:] * x[:, :-1]).mean() / x.var()
    lag5 = (x[:, 5:] * x[:, :-5]).mean() / x.var()
    assert abs(lag1.item() - 0.9) < 0.02 and abs(lag5.item() - 0.9 ** 5) < 0.03
    assert abs(y.mean().item()) < 0.02 and abs(y.var().item() - 1.0) < 0.02  # N(0, 1) targets


def test_sweep_grid_is_the_papers():
    """t in {1, sqrt 10, 10, 10^1.5, 100}: nu = 1 - 1/t and the ring's ceiling 1 - 1/(2t)."""
    spec = resolve("signal-propagation", "paper")
    assert spec.nus == NUS and len(spec.grid()) == 3 * 5 * 2
    for t, nu in zip(TS, spec.nus):
        assert abs(nu - (1 - 1 / t)) < 1e-6 and abs(spec.nu_max(nu) - (1 - 1 / (2 * t))) < 1e-6
    assert spec.steps == 0 and spec.depths == (4,) and spec.block == "glu" and spec.layer_norms == (False, True)


def test_gru_update_gate_starts_on_the_ring():
    torch.manual_seed(0)
    cell = build_cell("gru", CellSpec(3, 500, 1, r_min=0.9, r_max=0.95))
    h = cell.hidden
    z = torch.sigmoid(cell.core.bias_ih_l0[h:2 * h] + cell.core.bias_hh_l0[h:2 * h])
    assert 0.9 - 1e-6 <= z.min().item() and z.max().item() <= 0.95 + 1e-6
    assert z.max() - z.min() > 0.04  # spread over the ring, not one value
    # with the weight matrices zeroed, h' = z h + (1 - z) n, n = tanh(b_in + r b_hn): a state decays as z
    with torch.no_grad():
        cell.core.weight_hh_l0.zero_()
        cell.core.weight_ih_l0.zero_()
    s2, _ = cell.step(torch.ones(1, h), torch.zeros(1, 3))
    b_i, b_h = cell.core.bias_ih_l0, cell.core.bias_hh_l0
    n = torch.tanh(b_i[2 * h:] + torch.sigmoid(b_i[:h] + b_h[:h]) * b_h[2 * h:])
    torch.testing.assert_close(s2[0], z + (1 - z) * n)


def _act(cell: str, nu: float) -> float:
    torch.manual_seed(0)
    model = Stack(cell, 1, 16, 1, depth=2, d_model=8, block="glu", r_min=nu, r_max=1 - 0.5 * (1 - nu))
    g = torch.Generator().manual_seed(0)
    x, y = task_class("ar1")(seq_len=200).sample(8, g)
    rows = signal_stats(model, x, y)
    return sum(v for q, v in zip(rows["quantity"], rows["value"]) if q == "act_sq") / 2


def test_cdiag_activity_explodes_as_nu_goes_to_one_and_the_lrus_does_not(one_thread):
    """The paper's Fig. 5A at small size: mean(h^2) ~ 1/(1 - |lambda|^2) without normalisation; the LRU's gamma
    keeps it O(1): it drifts down by a few times (the transient: T = 200 is short of the time constant at
    nu = 0.99, so h has not reached its stationary size), while the cdiag's grows by orders of magnitude."""
    cdiag = [_act("cdiag", nu) for nu in (NUS[0], NUS[2], NUS[4])]
    lru = [_act("lru", nu) for nu in (NUS[0], NUS[2], NUS[4])]
    assert cdiag[0] < cdiag[1] < cdiag[2] and cdiag[2] / cdiag[0] > 10, cdiag
    assert max(lru) / min(lru) < 6 and max(lru) < 2 and cdiag[2] > 30 * lru[2], lru


def hand_lambda_grads(cell, x: torch.Tensor, z: torch.Tensor, polar: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """dL/d(magnitude) and dL/d(angle) of a diagonal cell's lambda, by torch.autograd on two separate leaf
    tensors: a hand-written complex recurrence h_t = lambda h_{t-1} + gamma B x_t, y_t = Re(C h_t) + D x_t
    (a Python loop over time in complex128), loss 0.5 mean((y - z)^2). ``polar``: the leaves are |lambda| and
    arg(lambda) (cdiag); otherwise the LRU's own w_nu, w_theta with lambda = exp(-exp(w_nu) + i exp(w_theta))."""
    a, b = cell.lam_a.detach().double(), cell.lam_b.detach().double()
    if polar:
        mag, ang = torch.hypot(a, b).requires_grad_(), torch.atan2(b, a).requires_grad_()
        lam = mag * torch.exp(1j * ang)
    else:
        mag, ang = a.clone().requires_grad_(), b.clone().requires_grad_()
        lam = torch.exp(-torch.exp(mag) + 1j * torch.exp(ang))
    B = torch.complex(cell.B_re.detach().double(), cell.B_im.detach().double())
    if cell.normalise:
        g = cell.gamma.detach().double()
        B = (torch.exp(g) if cell.parametrisation == "exp" else g)[:, None] * B
    C = torch.complex(cell.C_re.detach().double(), cell.C_im.detach().double())
    D = cell.D.detach().double()
    h = torch.zeros(x.shape[0], B.shape[0], dtype=torch.complex128)
    ys = []
    for t in range(x.shape[1]):
        xt = x[:, t].to(torch.complex128)
        h = lam * h + xt @ B.T
        ys.append((h @ C.T).real + x[:, t] @ D.T)
    loss = 0.5 * (torch.stack(ys, 1) - z).pow(2).mean()
    return torch.autograd.grad(loss, (mag, ang))


@pytest.mark.parametrize("cell,polar", [("lru", False), ("cdiag", True), ("cdiag_norm", True)])
def test_lambda_gradient_split_matches_autograd_on_separate_leaves(cell, polar, one_thread):
    torch.manual_seed(0)
    model = Stack(cell, 2, 6, 3, depth=1, r_min=0.9, r_max=0.99).double()
    g = torch.Generator().manual_seed(1)
    x = torch.randn(4, 40, 2, generator=g, dtype=torch.float64)
    z = torch.randn(4, 40, 3, generator=g, dtype=torch.float64)
    rows = signal_stats(model, x, z)
    got = dict(zip(rows["quantity"], rows["value"]))
    assert rows["layer"] == [1] * 5 and set(got) == {"act_sq", "grad_sq_recurrent", "grad_sq_other", "grad_sq_nu",
                                                      "grad_sq_theta"}
    g_mag, g_ang = hand_lambda_grads(model.layers[0], x, z, polar)
    assert got["grad_sq_nu"] == pytest.approx(g_mag.pow(2).mean().item(), rel=1e-9)
    assert got["grad_sq_theta"] == pytest.approx(g_ang.pow(2).mean().item(), rel=1e-9)
    assert got["grad_sq_theta"] > 0 and got["grad_sq_nu"] > 0
    if not polar:  # the LRU's w_nu and w_theta are its recurrent parameters: their squares average to it
        assert got["grad_sq_recurrent"] == pytest.approx((got["grad_sq_nu"] + got["grad_sq_theta"]) / 2, rel=1e-9)


def test_gated_cells_keep_recurrent_vs_other_only(one_thread):
    torch.manual_seed(0)
    model = Stack("gru", 1, 8, 1, depth=2, d_model=4, block="glu", r_min=0.9, r_max=0.95)
    x, y = task_class("ar1")(seq_len=20).sample(4, torch.Generator().manual_seed(0))
    rows = signal_stats(model, x, y)
    assert rows["quantity"] == ["act_sq", "grad_sq_recurrent", "grad_sq_other"] * 2


def test_lru_angle_gradient_grows_with_memory_and_magnitude_does_not(one_thread):
    """Fig. 5B at small size: as |lambda| -> 1 the LRU's angle gradient grows by orders of magnitude while its
    magnitude gradient does not grow (gamma keeps the activity flat, the angle still feels every time step)."""
    def grads(nu: float) -> tuple[float, float]:
        torch.manual_seed(0)
        model = Stack("lru", 1, 16, 1, depth=2, d_model=8, block="glu", r_min=nu, r_max=1 - 0.5 * (1 - nu))
        x, y = task_class("ar1")(seq_len=200).sample(8, torch.Generator().manual_seed(0))
        rows = signal_stats(model, x, y)
        mean = lambda q: sum(v for k, v in zip(rows["quantity"], rows["value"]) if k == q) / 2
        return mean("grad_sq_nu"), mean("grad_sq_theta")
    (nu_1, th_1), (nu_100, th_100) = grads(NUS[0]), grads(NUS[-1])
    assert th_100 / th_1 > 10 and nu_100 / nu_1 < 3 and th_100 > 100 * nu_100, (nu_1, th_1, nu_100, th_100)


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_smoke_sweep_end_to_end(smoke_sweep):
    results, sid, _ = smoke_sweep("signal-propagation")  # shared with test_claims
    spec = resolve("signal-propagation", "smoke")
    trials = cli_rows(results, f"SELECT stage, status, steps_done, count(*) AS n FROM trials "
                               f"WHERE sweep_id = '{sid}' GROUP BY ALL")
    assert trials == [{"stage": "seed", "status": "completed", "steps_done": "0", "n": str(len(spec.grid()))}]
    n = cli_rows(results, f"SELECT count(*) AS n, count(DISTINCT (trial_id, layer, quantity)) AS d FROM signal "
                          f"WHERE sweep_id = '{sid}' AND step = 0")[0]
    # trials x layers x quantities, once each: 5 quantities for the diagonal cells (nu, theta split), 3 for gru
    per_cell = {"cdiag": 5, "lru": 5, "gru": 3}
    assert n["n"] == n["d"] == str(sum(4 * per_cell[p["cell"]] for p in spec.grid()))
    # the paper's ordering already at smoke size: at the largest nu, cdiag's activity far above the LRU's
    act = {(row["cell"], float(row["nu"])): float(row["a"]) for row in cli_rows(
        results, f"SELECT cell, nu, avg(value) AS a FROM signal JOIN trials USING (sweep_id, trial_id) "
                 f"WHERE sweep_id = '{sid}' AND quantity = 'act_sq' AND NOT layer_norm GROUP BY ALL")}
    assert act[("cdiag", NUS[-1])] > 10 * act[("lru", NUS[-1])]
    r = runner.invoke(app, ["report", sid, "--results", str(results)])
    assert r.exit_code == 0, r.output
    report = results / sid / "report"
    assert (report / "fig5.png").stat().st_size > 50_000
    table = (report / "signal-propagation.md").read_text()
    assert table.count("| cdiag |") == 4 and "| lru | off | 100 |" in table
