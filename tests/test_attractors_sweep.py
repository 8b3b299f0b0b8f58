"""The `attractors` sweep (Ribeiro et al. 2020): the sine and symbols tasks, the stable LSTM and the orthogonal
RNN against independent references, the chaotic-LSTM analysis, the probe's one-hot / task inputs, and one
smoke-scale launch through the CLI, then query and report."""
from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pytest
import scipy.linalg
import torch
from typer.testing import CliRunner

from orchestrator.cli import app
from sweepcheck import cli_rows as q
from trainers.analyses import chaotic_lstm as chaos
from trainers.cells import CellSpec, build_cell
from trainers.cells.lstm import LSTMCell
from trainers.cells.ornn import OrthogonalRNNCell, henaff_rotation, modrelu
from trainers.cells.slstm import FORGET_INPUT_L1, RECURRENT_L1
from trainers.probes import build_probe
from trainers.probes.base import ProbeContext
from layout.schemas import SCHEMAS
from trainers.stack import Stack
from trainers.tasks.sine import Sine
from trainers.tasks.symbols import Symbols, generate

runner = CliRunner()


# ------------------------------------------------------------------------------------------- tasks
def test_sine_sequences_are_the_authors_sin_of_the_cumulated_frequency():
    task = Sine(seq_len=40)
    x, y = task.eval_sample(1024, torch.Generator().manual_seed(0))
    assert x.shape == y.shape == (100, 40, 1)  # the whole fixed set of 100 sequences
    omega = x[:, 0, 0].double()
    assert torch.equal(x, x[:, :1].expand_as(x))  # constant input
    assert math.isclose(omega[0].item(), math.pi / 16, rel_tol=1e-6) and math.isclose(omega[-1].item(), math.pi / 8,
                                                                                         rel_tol=1e-6)
    # y_t = sin(sum_{k<=t} omega) = sin(omega (t + 1)): sequence 37, steps 0 and 39 by hand
    w = math.pi / 16 + 37 * (math.pi / 8 - math.pi / 16) / 99
    assert math.isclose(y[37, 0, 0].item(), math.sin(w), abs_tol=1e-6)
    assert math.isclose(y[37, 39, 0].item(), math.sin(40 * w), abs_tol=1e-6)
    xb, _ = task.sample(10, torch.Generator().manual_seed(3))
    xc, _ = task.sample(10, torch.Generator().manual_seed(3))
    assert xb.shape == (10, 40, 1) and torch.equal(xb, xc) and len(set(xb[:, 0, 0].tolist())) == 10  # no repeats
    assert task.loss(torch.zeros_like(y), y).item() == pytest.approx((y.double() ** 2).mean().item(), rel=1e-6)
    assert Sine.constant_inputs().shape == (10, 1)


def test_symbols_positions_labels_and_fixed_splits():
    task = Symbols(seq_len=60)
    for x, y in ((task.train_x, task.train_y), (task.val_x, task.val_y)):
        assert x.shape == (1000, 60, 6) and y.shape == (1000,)
        assert torch.equal(x.sum(-1), torch.ones(1000, 60))  # one-hot at every step
        sym = x.argmax(-1)
        relevant = sym < 2
        assert torch.equal(relevant.sum(1), torch.full((1000,), 2))  # exactly two relevant symbols
        assert relevant[:, 9:19].sum(1).eq(1).all() and relevant[:, 39:49].sum(1).eq(1).all()
        v1 = sym[:, 9:19].gather(1, relevant[:, 9:19].float().argmax(1, keepdim=True))[:, 0]
        v2 = sym[:, 39:49].gather(1, relevant[:, 39:49].float().argmax(1, keepdim=True))[:, 0]
        assert torch.equal(y, 2 * v1 + v2)  # (p,p)=0, (p,q)=1, (q,p)=2, (q,q)=3: the order matters
        counts = torch.bincount(y, minlength=4)
        assert (counts > 200).all(), counts  # four balanced classes
    again = Symbols(seq_len=60)
    assert torch.equal(again.train_x, task.train_x) and torch.equal(again.val_y, task.val_y)  # fixed seeds
    assert not torch.equal(task.train_x, task.val_x)
    xe, ye = task.eval_sample(300, torch.Generator().manual_seed(9))
    assert torch.equal(xe, task.val_x[:300]) and torch.equal(ye, task.val_y[:300])
    # positions do not scale with the length: the length-200 set has the same windows
    x200, _ = generate(50, 200, seed=5)
    assert (x200.argmax(-1)[:, 49:] >= 2).all()
    with pytest.raises(ValueError, match="seq_len >= 49"):
        Symbols(seq_len=40)
    logits = torch.zeros(4, 60, 4)
    logits[:, -1, 2] = 5.0
    assert task.metric(logits, torch.tensor([2, 2, 1, 0])) == 0.5


# ------------------------------------------------------------------------------------------- slstm
def test_slstm_rescales_every_column_to_the_authors_l1_norms(one_thread):
    torch.manual_seed(0)
    cell = build_cell("slstm", CellSpec(3, 5, 2))
    ih0 = cell.core.weight_ih_l0.detach().clone()

    def check():
        W, U, n = cell.core.weight_hh_l0.detach(), cell.core.weight_ih_l0.detach(), 5
        for k, bound in enumerate(RECURRENT_L1):
            torch.testing.assert_close(W[k * n:(k + 1) * n].abs().sum(0), torch.full((n,), bound), rtol=1e-6, atol=0)
        torch.testing.assert_close(U[n:2 * n].abs().sum(0), torch.full((3,), FORGET_INPUT_L1), rtol=1e-6, atol=0)

    check()  # already at construction
    # the other input blocks are free: untouched by the rescaling
    assert torch.equal(cell.core.weight_ih_l0[:5].detach(), ih0[:5])
    assert torch.equal(cell.core.weight_ih_l0[10:].detach(), ih0[10:])
    # not a projection: a column well inside the bound is scaled UP to it (the authors' stabilize_lstm)
    with torch.no_grad():
        cell.core.weight_hh_l0[:5, 0] = torch.tensor([0.01, 0.0, -0.01, 0.0, 0.0])
    cell.constrain()
    torch.testing.assert_close(cell.core.weight_hh_l0[:5, 0].detach(),
                               torch.tensor([0.1975, 0.0, -0.1975, 0.0, 0.0]), rtol=1e-6, atol=1e-7)
    # through training: an Adam step, then the trainer's constrain
    opt = torch.optim.Adam(cell.parameters(), lr=0.1)
    x = torch.randn(4, 7, 3)
    cell(x).pow(2).mean().backward()
    opt.step()
    with torch.no_grad():
        cell.constrain()
    check()
    with torch.no_grad():
        torch.testing.assert_close(cell(x), cell.forward_stepwise(x), rtol=1e-5, atol=1e-6)


# -------------------------------------------------------------------------------------------- ornn
def ornn64(d_in: int = 3, hidden: int = 6, d_out: int = 2, seed: int = 0) -> OrthogonalRNNCell:
    """A float64 ornn whose unconstrained matrix is moved off zero (so W = B expm(A - A^T) != B)."""
    torch.manual_seed(seed)
    cell = build_cell("ornn", CellSpec(d_in, hidden, d_out)).double()
    with torch.no_grad():
        cell.recurrent.parametrizations.weight[0].base.copy_(henaff_rotation(hidden))  # float64, not rounded
        cell.recurrent.parametrizations.weight.original.normal_(0, 0.3)
        cell.b.uniform_(-0.5, 0.5)
    return cell


def reference_W(cell: OrthogonalRNNCell) -> np.ndarray:
    """W = B expm(A - A^T), A = tril(X), by scipy in float64: independent of torch's parametrisation."""
    X = cell.recurrent.parametrizations.weight.original.detach().numpy()
    B = cell.recurrent.parametrizations.weight[0].base.numpy()
    A = np.tril(X)
    return B @ scipy.linalg.expm(A - A.T)


def test_ornn_step_matches_float64_equations(one_thread):
    cell = ornn64()
    W, U, b, V = reference_W(cell), cell.input.weight.detach().numpy(), cell.b.detach().numpy(), \
        cell.readout.weight.detach().numpy()
    rng = np.random.default_rng(0)
    h, x = rng.normal(size=(4, 6)), rng.normal(size=(4, 3))
    z = x @ U.T + h @ W.T
    h_ref = np.sign(z) * np.maximum(np.abs(z) + b, 0.0)  # modReLU
    with torch.no_grad():
        h_new, y = cell.step(torch.from_numpy(h), torch.from_numpy(x))
    np.testing.assert_allclose(h_new.numpy(), h_ref, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(y.numpy(), h_ref @ V.T, rtol=1e-12, atol=1e-12)
    assert (h_ref == 0).any()  # the test exercises the dead zone of modReLU (|z| + b < 0)
    assert torch.equal(modrelu(torch.tensor([-2.0, 0.1, 3.0]), torch.tensor([-0.5, -0.5, 0.5])),
                       torch.tensor([-1.5, 0.0, 3.5]))


def test_ornn_W_is_orthogonal_at_init_and_through_training(one_thread):
    torch.manual_seed(1)
    cell = build_cell("ornn", CellSpec(2, 16, 1))
    W0 = cell.W().detach().double()
    torch.testing.assert_close(W0 @ W0.T, torch.eye(16, dtype=torch.float64), rtol=0, atol=1e-6)
    # henaff init: 2x2 rotation blocks, so W is block diagonal with unit-modulus eigenvalues
    mask = torch.block_diag(*[torch.ones(2, 2)] * 8).bool()
    assert (W0[~mask] == 0).all() and torch.allclose(W0[0, 0], W0[1, 1]) and torch.allclose(W0[0, 1], -W0[1, 0])
    opt = torch.optim.Adam(cell.parameters(), lr=0.05)
    for _ in range(5):
        opt.zero_grad()
        cell(torch.randn(8, 10, 2)).pow(2).mean().backward()
        opt.step()
    W = cell.W().detach().double()
    assert (W - W0).abs().max() > 1e-2  # training moved it
    torch.testing.assert_close(W @ W.T, torch.eye(16, dtype=torch.float64), rtol=0, atol=1e-6)  # float32 map
    W64 = ornn64(hidden=16).W().detach()
    torch.testing.assert_close(W64 @ W64.T, torch.eye(16, dtype=torch.float64), rtol=0, atol=1e-12)
    np.testing.assert_allclose(W64.numpy(), reference_W(ornn64(hidden=16)), rtol=0, atol=1e-12)


def test_ornn_forward_equals_stepwise_and_evaluates_W_once(one_thread):
    cell = ornn64(d_in=2, hidden=8, d_out=3)
    x = torch.randn(5, 30, 2, dtype=torch.float64)
    calls = []
    hook = cell.recurrent.parametrizations.weight[0].register_forward_hook(lambda *a: calls.append(1))
    y = cell(x)
    assert len(calls) == 1  # one matrix exponential per whole-sequence forward, not one per step
    hook.remove()
    torch.testing.assert_close(y, cell.forward_stepwise(x), rtol=1e-12, atol=1e-12)
    # and gradients flow to every parameter through the loop
    y.pow(2).mean().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in cell.parameters())


def test_ornn_builds_under_float64_default_dtype(one_thread):
    """Built with torch.float64 as the default dtype (as every other cell can be), ornn is float64 throughout:
    W is orthogonal to 1e-12 and a 20-step forward matches the modReLU equations run in numpy float64."""
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        torch.manual_seed(3)
        cell = build_cell("ornn", CellSpec(3, 8, 2))
        x = torch.randn(4, 20, 3)
        with torch.no_grad():
            y = cell(x)
    finally:
        torch.set_default_dtype(old)
    assert all(p.dtype == torch.float64 for p in cell.parameters())
    assert y.dtype == torch.float64
    W = reference_W(cell)  # scipy's expm of the stored float64 parametrisation
    np.testing.assert_allclose(W @ W.T, np.eye(8), rtol=0, atol=1e-12)
    with torch.no_grad():
        np.testing.assert_allclose(cell.W().numpy(), W, rtol=0, atol=1e-12)
    U, b, V = (t.detach().numpy() for t in (cell.input.weight, cell.b, cell.readout.weight))
    h, ys = np.zeros((4, 8)), []
    for t in range(20):
        z = x[:, t].numpy() @ U.T + h @ W.T
        h = np.sign(z) * np.maximum(np.abs(z) + b, 0.0)
        ys.append(h @ V.T)
    np.testing.assert_allclose(y.numpy(), np.stack(ys, axis=1), rtol=1e-12, atol=1e-12)
    assert np.abs(y.numpy()).max() > 1e-3


# ------------------------------------------------------------------------------------ chaotic LSTM
def test_chaotic_lstm_analysis_against_torch_lstm_in_float64():
    r = chaos.chaotic_lstm(n=31)  # s = 0.5, 0.55, ..., 2.0 (1.0 is on this grid)
    s = r["s"]
    assert len(s) == 31 and (s == 1.0).sum() == 1
    # independent reference: torch's fused nn.LSTM with weights s * theta_true, h0 = c0 = 0.5, zero input
    W = torch.tensor(chaos.W_TRUE, dtype=torch.float64)
    outs = {}
    for si in (0.5, 1.0, 1.2, 1.65):
        lstm = torch.nn.LSTM(1, 2, bias=False, batch_first=True).double()
        with torch.no_grad():
            lstm.weight_ih_l0.zero_()
            lstm.weight_hh_l0.copy_(si * W)
            h0 = torch.full((1, 1, 2), 0.5, dtype=torch.float64)
            outs[si] = lstm(torch.zeros(1, 200, 1, dtype=torch.float64), (h0, h0.clone()))[0][0, 100:]
    for si, out in outs.items():
        i = int((s - si).abs().argmin())
        expected = ((out - outs[1.0]) ** 2).mean().item()
        assert r["loss"][i].item() == pytest.approx(expected, rel=1e-9, abs=1e-15)
        torch.testing.assert_close(r["x"][i], out[:, 0], rtol=1e-10, atol=1e-12)
    i1, i05 = int((s == 1.0).nonzero()[0, 0]), 0
    assert r["loss"][i1].item() == 0.0
    assert 0.14 < r["lyapunov"][i1].item() < 0.19  # chaos at theta_true (measured +0.16)
    assert r["lyapunov"][i05].item() == pytest.approx(-0.56, abs=0.02)  # a stable fixed point at s = 0.5
    assert r["n_points"][i05].item() == 1 and r["n_points"][i1].item() > 50
    rows = chaos.rows(r)
    for table, cols in rows.items():
        names = [f.name for f in SCHEMAS[table] if f.name not in ("sweep_id", "trial_id")]
        assert sorted(cols) == sorted(names)
        pa.Table.from_pydict(cols, schema=pa.schema([SCHEMAS[table].field(n) for n in names]))
    assert len(rows["attractors"]["x"]) == 31 * 100 and set(rows["surface"]["param_y"]) == {None}


def test_chaotic_cell_is_the_lstm_with_scaled_weights():
    # the analysis runs the s = 1 cell on (s h, c); it must equal an LSTMCell whose weights are s * W
    cell, step = chaos.chaotic_cell(), chaos.scaled_step(chaos.chaotic_cell())
    state = torch.randn(3, 4, dtype=torch.float64)
    s = torch.tensor([[0.7], [1.0], [1.9]], dtype=torch.float64)
    for k in range(3):
        ref = LSTMCell(1, 2, 2).double()
        with torch.no_grad():
            for p in ref.core.parameters():
                p.zero_()
            ref.core.weight_hh_l0.copy_(s[k, 0] * cell.core.weight_hh_l0)
            ref.readout.weight.copy_(cell.readout.weight)
            torch.testing.assert_close(step(state[k:k + 1], s[k:k + 1])[0],
                                       ref.step(state[k:k + 1], torch.zeros(1, 1, dtype=torch.float64))[0])


# ----------------------------------------------------------------------------------- probe inputs
def probe_ctx(model, task) -> ProbeContext:
    return ProbeContext(model=model, task=task, x=None, y=None, step=4, lr=0.0, device=torch.device("cpu"), seed=0)


@pytest.mark.parametrize("cell", ["lstm", "slstm", "ornn"])
def test_probe_onehot_and_task_inputs(cell, one_thread):
    torch.manual_seed(0)
    small = "burn_in=10:keep=5:n_inits=2:lyapunov_burn_in=3:lyapunov_steps=5"
    model = Stack(cell, 6, 8, 4)
    params = {k: v.clone() for k, v in model.state_dict().items()}
    for spec in (f"attractors:inputs=onehot:project=output:{small}", f"attractors:inputs=task:{small}"):
        out = build_probe(spec)(probe_ctx(model, Symbols(seq_len=50)))
        a, s = out["attractors"], out["attractor_summary"]
        assert len(a["x"]) == 6 * 2 * 5 and set(a["input_value"]) == {1.0}
        assert sorted(set(a["input_id"])) == list(range(6)) and s["init_id"] == [0, 1, -1] * 6
        assert all(math.isfinite(v) for v in a["x"] + s["lyapunov"])
    out = build_probe(f"attractors:inputs=task:{small}")(probe_ctx(Stack(cell, 1, 8, 1), Sine(seq_len=20)))
    values = sorted(set(out["attractor_summary"]["input_value"]))
    np.testing.assert_allclose(values, np.linspace(math.pi / 16, math.pi / 8, 10), rtol=1e-6)
    for k, v in model.state_dict().items():
        assert torch.equal(v, params[k]), k
    with pytest.raises(ValueError, match="constant_inputs"):
        build_probe(f"attractors:inputs=task:{small}")(probe_ctx(model, object()))
    with pytest.raises(ValueError, match="inputs='ghost'"):
        build_probe("attractors:inputs=ghost")


# ---------------------------------------------------------------------------------- end to end
@pytest.fixture(scope="module")
def swept(smoke_sweep):
    return smoke_sweep("attractors")


@pytest.mark.slow
def test_smoke_sweep_rows(swept):
    results, sid, _ = swept
    w = f"WHERE sweep_id = '{sid}'"
    trials = q(results, f"SELECT trial_id, task, cell, stage, status, steps_done FROM trials {w}")
    seed = [t for t in trials if t["stage"] == "seed"]
    assert {(t["task"], t["cell"]) for t in seed} == {(t, c) for t in ("sine", "symbols")
                                                      for c in ("lstm", "slstm", "ornn")}
    assert all(t["status"] == "completed" and t["steps_done"] == "6" for t in seed), seed
    (ana,) = [t for t in trials if t["stage"] == "analysis"]
    assert ana["status"] == "completed" and ana["trial_id"] == "chaotic_lstm"
    # attractor snapshots at init, every 3 steps and at the end; the task's inputs
    rows = q(results, f"SELECT t.task, list(DISTINCT a.step ORDER BY a.step) AS steps, "
                      f"count(DISTINCT a.input_id) AS n, min(a.input_value) AS lo, max(a.input_value) AS hi "
                      f"FROM attractors a JOIN trials t USING (sweep_id, trial_id) "
                      f"{w.replace('sweep_id', 'a.sweep_id')} AND t.stage = 'seed' GROUP BY ALL")
    got = {r["task"]: r for r in rows}
    assert got["sine"]["steps"] == got["symbols"]["steps"] == "[0, 3, 6]"
    assert (got["sine"]["n"], got["symbols"]["n"]) == ("10", "6")
    assert float(got["sine"]["lo"]) == pytest.approx(math.pi / 16, rel=1e-6) and got["symbols"]["lo"] == "1.0"
    (n,) = q(results, f"SELECT count(*) AS n FROM surface {w} AND trial_id = 'chaotic_lstm' AND param_x = 's'")
    assert int(n["n"]) == len(chaos.s_grid())


@pytest.mark.slow
def test_smoke_sweep_report(swept):
    results, _, _ = swept
    r = runner.invoke(app, ["report", "attractors", "--results", str(results)])
    assert r.exit_code == 0, r.output
    paths = r.output.split()
    names = {p.rsplit("/", 1)[-1] for p in paths if p.endswith((".png", ".md"))}
    assert {"table1.png", "fig4_sine_bifurcation.png", "fig7_symbols_bifurcation.png", "fig5_6_training.png",
            "fig1_chaotic_lstm.png", "table1.md", "attractors.md"} <= names, r.output
    for p in paths:
        if p.endswith(".png"):
            with open(p, "rb") as f:
                assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    with open(next(p for p in paths if p.endswith("table1.md"))) as f:
        table = f.read()
    assert "| L | LSTM | sLSTM | oRNN |" in table and "| 50 |" in table
