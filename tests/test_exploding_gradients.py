"""The exploding-gradients sweep (Pascanu, Mikolov & Bengio 2013): the temporal order task, the smart_tanh init,
the error-surface and bifurcation analyses against float64 references, a trial that stops when solved, and a
smoke-scale launch through the CLI with its report."""
from __future__ import annotations

import math

import pytest
import torch
from sweepcheck import cli_rows as q
from typer.testing import CliRunner

from analysis.db import query_arrow
from orchestrator.cli import app
from trainers.analyses.bifurcation import bifurcation, bifurcation_rows, bistable_band
from trainers.analyses.error_surface import error_surface
from trainers.cells import CellSpec, build_cell
from trainers.config import TrialConfig
from trainers.tasks import task_class
from trainers.bundle import run_bundle
from trainers.record import TrialWriter
from trainers.solved import check_generator, check_sequences
from trainers.build import build_model, data_generator
from trainers.train import run_trial

runner = CliRunner()


# ---------------------------------------------------------------------------------------------- the task
def relevant_positions(x: torch.Tensor) -> list[list[tuple[int, int]]]:
    """Per sequence, the (t, symbol) pairs on channels 0-1 (A, B), read straight off the one-hot input."""
    return [[(t, int(x[i, t, :2].argmax())) for t in range(x.shape[1]) if x[i, t, :2].sum() > 0]
            for i in range(x.shape[0])]


def test_temporal_order_layout_positions_and_labels(one_thread):
    task = task_class("temporal_order")(25)  # k = floor(2.5) = 2: p0 in [2, 4), p1 in [12, 14)
    assert (task.d_in, task.d_out, task.has_metric) == (6, 4, True)
    x, y = task.sample(400, torch.Generator().manual_seed(3))
    assert x.shape == (400, 25, 6) and x.dtype == torch.float32 and y.shape == (400,) and y.dtype == torch.int64
    assert torch.all(x.sum(-1) == 1) and torch.all((x == 0) | (x == 1))  # one symbol per step
    p0s, p1s = set(), set()
    for i, rel in enumerate(relevant_positions(x)):
        assert len(rel) == 2, rel  # exactly two relevant symbols; every other step is a distractor (channels 2-5)
        (p0, v0), (p1, v1) = rel
        assert 2 <= p0 < 4 and 12 <= p1 < 14
        assert y[i] == v0 + 2 * v1  # AA = 0, BA = 1, AB = 2, BB = 3
        p0s.add(p0)
        p1s.add(p1)
    assert p0s == {2, 3} and p1s == {12, 13} and set(y.tolist()) == {0, 1, 2, 3}
    distractors = x[:, :, 2:].sum((0, 1))  # each of c, d, e, f about a quarter of the 400 * 23 distractor steps
    assert distractors.sum() == 400 * 23 and torch.all((distractors - 2300).abs() < 200)
    # L = 10: k = 1, so the positions are fixed at 1 and 5
    x10, _ = task_class("temporal_order")(10).sample(50, torch.Generator().manual_seed(0))
    assert all([t for t, _ in rel] == [1, 5] for rel in relevant_positions(x10))
    # same generator state, same batch (the evaluation set is reproducible)
    x2, y2 = task.sample(400, torch.Generator().manual_seed(3))
    assert torch.equal(x, x2) and torch.equal(y, y2)
    with pytest.raises(ValueError, match="seq_len >= 10"):
        task_class("temporal_order")(9)


def test_temporal_order_loss_and_metric_read_the_last_step():
    task = task_class("temporal_order")(10)
    y = torch.tensor([0, 1, 2, 3])
    y_hat = torch.zeros(4, 10, 4)
    y_hat[:, :-1, 0] = 50.0  # earlier steps say "AA": ignored
    y_hat[torch.arange(4), -1, y] = 50.0
    assert task.metric(y_hat, y) == 1.0 and task.loss(y_hat, y).item() < 1e-6
    y_hat[0, -1] = torch.tensor([0.0, 50.0, 0.0, 0.0])  # one wrong answer of four
    assert task.metric(y_hat, y) == 0.75
    assert task.loss(y_hat, y).item() == pytest.approx(50.0 / 4, rel=1e-4)  # CE of that one ~ 50, mean over 4


def test_smart_tanh_init_is_pascanus():
    torch.manual_seed(1)
    cell = build_cell("vrnn", CellSpec(6, 50, 4, init="smart_tanh"))
    w = cell.core.weight_hh_l0.detach().double()
    assert torch.linalg.eigvals(w).abs().max().item() == pytest.approx(0.95, abs=1e-6)
    assert torch.all((w != 0).sum(1) == 15)  # 15 non-zero recurrent weights per row
    assert torch.all(cell.core.bias_hh_l0 == 0) and torch.all(cell.core.bias_ih_l0 == 0)
    for p in (cell.core.weight_ih_l0, cell.readout.weight):
        assert 0.007 < p.std().item() < 0.013  # N(0, 0.01^2)
    with pytest.raises(ValueError, match="does not support init='smart_tanh'"):
        build_cell("lstm", CellSpec(6, 8, 4, init="smart_tanh"))


# --------------------------------------------------------------------------------------------- Fig. 3
def direct_error(w: float, b: float) -> float:
    """(sigma(x_50) - 0.7)^2 of x_t = w sigma(x_{t-1}) + b from x_0 = 0.5, scalar float64 arithmetic."""
    x = 0.5
    for _ in range(50):
        x = w / (1 + math.exp(-x)) + b
    return (1 / (1 + math.exp(-x)) - 0.7) ** 2


def test_error_surface_matches_a_direct_float64_evaluation():
    w = torch.tensor([0.0, 1.5, 4.0, 6.0, 9.5], dtype=torch.float64)
    b = torch.tensor([-7.0, -3.0, -0.5, math.log(0.7 / 0.3), 1.5], dtype=torch.float64)
    E = error_surface(w, b)
    assert E.shape == (5, 5) and E.dtype == torch.float64
    for i, wi in enumerate(w.tolist()):
        for j, bj in enumerate(b.tolist()):
            assert E[i, j].item() == pytest.approx(direct_error(wi, bj), abs=1e-14)
    assert E[0, 3].item() < 1e-28  # w = 0: x_t = b, and b = logit(0.7) hits the target exactly
    # the wall: for w = 8 the map is bistable and x_0 = 0.5 is the unstable fixed point at b* = 0.5 - 8 sigma(0.5);
    # just below b* the orbit falls to the low attractor (sigma ~ 0, E ~ 0.49), just above it climbs (E ~ 0.09)
    b_star = 0.5 - 8 / (1 + math.exp(-0.5))
    lo, hi = error_surface(torch.tensor([8.0]), torch.tensor([b_star - 0.01, b_star + 0.01]))[0].tolist()
    assert lo > 0.45 and hi < 0.1


# --------------------------------------------------------------------------------------------- Fig. 4
def fixed_points(b: float, w: float = 5.0) -> list[float]:
    """Roots of g(x) = w sigma(x) + b - x on [-20, 20], by a sign scan then bisection (float64)."""
    g = lambda x: w / (1 + math.exp(-x)) + b - x
    grid = [-20.00123 + 0.01 * i for i in range(4001)]  # offset: no grid point on a root
    roots = []
    for lo, hi in zip(grid, grid[1:]):
        if g(lo) * g(hi) < 0:
            for _ in range(80):
                mid = (lo + hi) / 2
                lo, hi = (mid, hi) if g(lo) * g(mid) > 0 else (lo, mid)
            roots.append((lo + hi) / 2)
    return roots


def test_bifurcation_two_branches_inside_the_tangency_band_one_outside(one_thread):
    # tangencies 5 sigma'(x) = 1: sigma = (1 +- sqrt(1/5)) / 2 = 0.7236 / 0.2764, x = +-0.9624,
    # b = 0.9624 - 5 * 0.7236 = -2.6556 and -0.9624 - 5 * 0.2764 = -2.3444
    lo, hi = bistable_band()
    assert lo == pytest.approx(-2.6556, abs=1e-4) and hi == pytest.approx(-2.3444, abs=1e-4)
    cases = [(lo - 0.3, 1), (lo + 0.02, 2), ((lo + hi) / 2, 2), (hi - 0.02, 2), (hi + 0.3, 1)]
    bs = torch.tensor([b for b, _ in cases], dtype=torch.float64)
    x, dx, lyap = bifurcation(bs)
    rows = bifurcation_rows(bs, x, dx, lyap)
    summ = rows["attractor_summary"]
    union = {i: n for i, j, n in zip(summ["input_id"], summ["init_id"], summ["n_points"]) if j == -1}
    assert union == {i: n for i, (_, n) in enumerate(cases)}
    assert all(n == 1 for j, n in zip(summ["init_id"], summ["n_points"]) if j >= 0)  # each orbit: a fixed point
    for i, (b, n) in enumerate(cases):
        roots = fixed_points(b)
        stable = [roots[0], roots[-1]] if n == 2 else roots
        assert len(roots) == (3 if n == 2 else 1)
        ends = x[i, :, -1]
        dist = (ends[:, None] - torch.tensor(stable, dtype=torch.float64)[None]).abs()
        assert dist.min(1).values.max() < 1e-9 and set(dist.argmin(1).tolist()) == set(range(n))
        # Lyapunov exponent at a fixed point = log |f'(x*)| = log(5 sigma(x*) (1 - sigma(x*)))
        s = torch.sigmoid(ends)
        assert torch.allclose(lyap[i], torch.log(5 * s * (1 - s)), atol=1e-6)
    assert len(rows["attractors"]["x"]) == len(cases) * 8 * 10 and len(summ["n_points"]) == len(cases) * 9


# ---------------------------------------------------------------------------------- a trial that solves
def trial_cfg(tmp_path, **kw) -> TrialConfig:
    base = dict(sweep="t", sweep_id="eg", trial_id="x", results=str(tmp_path), task="temporal_order", cell="vrnn",
                hidden=50, seq_len=10, init="smart_tanh", optimizer="sgd", schedule="constant", lr=0.1, clip=1.0,
                steps=400, batch=20, eval_batch=500, solve_every=20, checkpoint_every=0, device="cpu")
    return TrialConfig(**{**base, **kw})


def test_trial_records_solved_step_and_stops(tmp_path, one_thread):
    out = run_trial(trial_cfg(tmp_path))
    assert out["status"] == "completed" and out["solved_step"] is not None, out
    assert out["solved_step"] % 20 == 0 and out["steps_done"] == out["solved_step"] < 400
    assert out["final_metric"] == 1.0  # zero errors on the evaluation batch
    rows = query_arrow(str(tmp_path), "SELECT count(*) AS n, max(step) AS last FROM steps").to_pylist()[0]
    assert rows == {"n": out["solved_step"], "last": out["solved_step"]}
    (t,) = query_arrow(str(tmp_path), "SELECT solved_step, steps_done FROM trials").to_pylist()
    assert t == {"solved_step": out["solved_step"], "steps_done": out["solved_step"]}
    # without solve checks the same trial runs its whole budget and records no solved step
    out = run_trial(trial_cfg(tmp_path, trial_id="y", solve_every=0, steps=60))
    assert out["solved_step"] is None and out["steps_done"] == 60


class Crash(BaseException):
    """Stands in for a killed process (not an Exception, so the trial is not recorded as failed)."""


def test_solved_check_draws_fresh_sequences_per_check_deterministically():
    task = task_class("temporal_order")(30)
    draw = lambda seed, step, n=300: [torch.cat(t) for t in zip(*check_sequences(task, n, seed, step))]
    x20, y20 = draw(0, 20)
    x40, _ = draw(0, 40)
    assert x20.shape == (300, 30, 6) and y20.shape == (300,)
    assert not torch.equal(x20, x40) and not torch.equal(x20, draw(1, 20)[0])  # fresh per check and per seed
    assert torch.equal(x20, draw(0, 20)[0])  # a function of (seed, step) alone: a resumed trial draws the same
    # 10,000 sequences come in chunks of the authors' 1,000, all distinct from one another
    chunks = list(check_sequences(task, 10_000, 0, 20))
    assert [len(y) for _, y in chunks] == [1000] * 10
    assert not torch.equal(chunks[0][0], chunks[1][0])


def reference_solved_step(cfg: TrialConfig) -> int | None:
    """Pascanu et al.'s loop written out by hand: plain SGD with norm clipping on the trial's own batches, and
    at every 20th step the number of wrong last-step answers on that check's fresh draws (all at once, no
    chunks, no early exit); the first check with zero wrong answers is the solved step."""
    task = task_class(cfg.task).from_config(cfg)
    model = build_model(cfg, task, torch.device("cpu"))
    data = data_generator(cfg, torch.device("cpu"))
    params = list(model.parameters())
    for step in range(1, cfg.steps + 1):
        x, y = task.sample(cfg.batch, data)
        loss = torch.nn.functional.cross_entropy(model(x)[:, -1], y)
        grads = torch.autograd.grad(loss, params)
        norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))
        scale = torch.clamp(cfg.clip / (norm + 1e-6), max=1.0)  # rescale to norm clip (float32, as torch does)
        with torch.no_grad():
            for p, g in zip(params, grads):
                p.add_(g * scale, alpha=-cfg.lr)
        if step % cfg.solve_every == 0:
            xc, yc = task.sample(cfg.eval_batch, check_generator(cfg.seed, step))
            with torch.no_grad():
                wrong = int((model(xc)[:, -1].argmax(-1) != yc).sum())
            if wrong == 0:
                return step
    return None


def test_solved_step_matches_an_independent_check_on_the_same_draws(tmp_path, one_thread):
    # 50 sequences per check: few enough that a nearly solved model passes some draws and fails others (seed 0
    # passes a check at step 20 on some draws but is solved only at step 120 on its fresh ones)
    for seed in (0, 1):
        cfg = trial_cfg(tmp_path, trial_id=f"s{seed}", seed=seed, eval_batch=50)
        out = run_trial(cfg)
        assert out["solved_step"] is not None and out["solved_step"] > cfg.solve_every  # some check failed first
        assert out["solved_step"] == reference_solved_step(cfg), seed


def test_solved_step_survives_a_kill_and_a_bundle_solves_as_solo(tmp_path, one_thread):
    kw = dict(checkpoint_every=20, report_every=1, flush_rows=7)
    solo = {s: run_trial(trial_cfg(tmp_path, trial_id=f"u{s}", seed=s, **kw))["solved_step"] for s in (0, 1)}
    assert all(v is not None and v > 40 for v in solo.values()), solo

    def crash(metrics):
        if metrics["step"] >= solo[0] - 10:
            raise Crash

    cfg = trial_cfg(tmp_path, trial_id="k0", seed=0, **kw)
    with pytest.raises(Crash):
        run_trial(cfg, on_progress=crash)
    assert TrialWriter(str(tmp_path), "eg", "k0").load_checkpoint() is not None
    assert run_trial(cfg)["solved_step"] == solo[0]  # resumed: the same fresh draws at every check
    out = run_bundle("b", [trial_cfg(tmp_path, trial_id=f"b{s}", seed=s, **kw) for s in (0, 1)])
    assert [o["solved_step"] for o in out] == [solo[0], solo[1]]


# --------------------------------------------------------------------------------------- the whole sweep
@pytest.fixture(scope="module")
def smoke(smoke_sweep):
    return smoke_sweep("exploding-gradients")


@pytest.mark.slow
def test_smoke_sweep_rows(smoke):
    results, sid, _ = smoke
    w = f"WHERE sweep_id = '{sid}'"
    trials = q(results, f"SELECT trial_id, stage, status, seq_len, clip, steps_done, solved_step FROM trials {w} "
                        "ORDER BY trial_id")
    assert [t["trial_id"] for t in trials] == ["bifurcation", "error_surface", "vrnn-d1-nu0-T10-clip0-s0",
                                               "vrnn-d1-nu0-T10-clip1-s0", "vrnn-d1-nu0-T20-clip0-s0",
                                               "vrnn-d1-nu0-T20-clip1-s0"]
    assert all(t["status"] == "completed" for t in trials)
    for t in trials[2:]:  # a solved trial stopped at its solved step; the others ran the whole 200 steps
        assert t["steps_done"] == (t["solved_step"] or "200")
    assert {(t["seq_len"], t["clip"]) for t in trials[2:]} == {("10", ""), ("10", "1.0"), ("20", ""), ("20", "1.0")}
    (n,) = q(results, f"SELECT count(*) AS n, count(DISTINCT (x, y)) AS u FROM surface {w}")
    assert n == {"n": "144", "u": "144"}  # probe_batch 12 per axis
    lo, hi = bistable_band()
    band = q(results, f"SELECT input_value AS b, n_points FROM attractor_summary {w} AND init_id = -1 ORDER BY b")
    assert len(band) == 12
    two = [float(r["b"]) for r in band if r["n_points"] == "2"]
    assert two and all(lo <= b <= hi for b in two)  # every bistable grid value lies in the tangency band
    assert all(r["n_points"] == "1" for r in band if not lo <= float(r["b"]) <= hi)


@pytest.mark.slow
def test_smoke_report(smoke):
    results, _, _ = smoke
    r = runner.invoke(app, ["report", "exploding-gradients", "--results", str(results)])
    assert r.exit_code == 0, r.output
    paths = r.output.split()
    for name in ("fig7.png", "fig3.png", "fig4.png"):
        path = next(p for p in paths if p.endswith(name))
        with open(path, "rb") as f:
            data = f.read()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000, (name, len(data))
    with open(next(p for p in paths if p.endswith("exploding-gradients.md"))) as f:
        table = f.read()
    assert "| 10 | 0 | 1 |" in table and "| 20 | 1 | 1 |" in table and "two attractors" in table
