"""The Hessian probe and the Hessian at optimality, against exact references.

The reference Hessian is ``torch.autograd.functional.hessian`` of the loss as a function of the flat
parameter vector through ``functional_call(model.forward)`` (for gru/lstm/vrnn that is torch's own nn.GRU /
nn.LSTM / nn.RNN, a different code path from the probe's ``forward_pure``), then ``torch.linalg.eigvalsh``.
Everything numerical is float64.
"""
from __future__ import annotations

import math

import pyarrow as pa
import pytest
import torch
from torch.func import functional_call

from trainers.analyses.hessian_opt import CELLS as OPT_CELLS, hessian_at_optimum, hessian_opt_rows, student, teacher, \
    teacher_outputs
from trainers.probes.base import ProbeContext, parse_options
from trainers.probes.hessian import HessianOptions, HessianProbe, hvp_fn
from trainers.probes.spectrum import hutchinson_trace, ipr, k90, lanczos, lanczos_eigs, power_iteration_top_k, \
    rademacher, slq_density, top_bottom
from layout.schemas import SCHEMAS
from trainers.stack import Stack
from trainers.tasks.teacher_student import TeacherStudent

F64 = torch.float64


pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models: one thread beats two on 2 cores


def small_problem(cell: str, depth: int = 1, hidden: int = 4, T: int = 10, batch: int = 3, seed: int = 1):
    torch.manual_seed(seed)
    model = Stack(cell, 1, hidden, 1, depth=depth, d_model=4, r_min=0.9).to(F64)
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, T, 1, generator=g, dtype=F64)
    y = torch.randn(batch, T, 1, generator=g, dtype=F64)
    return model, x, y


def dense_hessian(model, x, y) -> torch.Tensor:
    names = [n for n, _ in model.named_parameters()]
    shapes = [p.shape for p in model.parameters()]
    theta0 = torch.cat([p.detach().reshape(-1) for p in model.parameters()])

    def loss(theta):
        params, i = {}, 0
        for n, s in zip(names, shapes):
            params[n] = theta[i: i + s.numel()].reshape(s)
            i += s.numel()
        return 0.5 * ((functional_call(model, params, (x,)) - y) ** 2).mean()

    return torch.autograd.functional.hessian(loss, theta0, vectorize=True)


def model_hvp(model, x, y):
    return hvp_fn(lambda: 0.5 * ((model.forward_pure(x) - y) ** 2).mean(), list(model.parameters()))


def rotated(eigs: list[float], seed: int = 0) -> torch.Tensor:
    """Q diag(eigs) Q^T with a random orthogonal Q: a dense symmetric matrix of known spectrum."""
    n = len(eigs)
    Q, _ = torch.linalg.qr(torch.randn(n, n, generator=torch.Generator().manual_seed(seed), dtype=F64))
    return Q @ torch.diag(torch.tensor(eigs, dtype=F64)) @ Q.T


CASES = [("rnn", 1), ("lru", 1), ("cdiag", 1), ("gru", 1), ("lstm", 1), ("vrnn", 1), ("rnn", 2), ("gru", 2)]


@pytest.mark.parametrize("cell,depth", CASES)
def test_lanczos_extremes_match_dense_hessian(cell, depth):
    model, x, y = small_problem(cell, depth)
    Hd = dense_hessian(model, x, y)
    ev = torch.linalg.eigvalsh(Hd)
    H = model_hvp(model, x, y)
    assert H.dim == Hd.shape[0]
    ext = top_bottom(H, H.dim, k_top=3, k_bottom=1, tol=1e-4, max_iter=H.dim,
                     generator=torch.Generator().manual_seed(0))
    assert ext.converged and ext.n_hvp == H.calls
    top_ref, bottom_ref = ev.flip(0)[:3], ev[:1]
    assert bottom_ref.item() < 0  # negative curvature is present at these random points
    assert ((ext.top - top_ref).abs() / top_ref.abs()).max() < 1e-4
    assert ((ext.bottom - bottom_ref).abs() / bottom_ref.abs()).max() < 1e-4
    # the Ritz vectors (used for localisation) are eigenvectors: ||H y - theta y|| <= 1e-3 |theta|
    for vals, vecs in ((ext.top, ext.top_vectors), (ext.bottom, ext.bottom_vectors)):
        for i in range(len(vals)):
            r = Hd @ vecs[:, i] - vals[i] * vecs[:, i]
            assert r.norm() <= 1e-3 * abs(vals[i])


def test_lanczos_is_a_tridiagonalisation():
    model, x, y = small_problem("rnn")
    Hd = dense_hessian(model, x, y)
    H = model_hvp(model, x, y)
    a, b, Q = lanczos(H, H.dim, 12, torch.Generator().manual_seed(3))
    T = torch.diag(a) + torch.diag(b, 1) + torch.diag(b, -1)
    assert torch.allclose(Q @ Q.T, torch.eye(12, dtype=F64), atol=1e-12)  # full reorthogonalisation
    assert torch.allclose(Q @ Hd @ Q.T, T, atol=1e-9 * Hd.abs().max())


def test_full_lanczos_recovers_repeated_eigenvalues():
    # 4 distinct values, 7 eigenvalues: a single Krylov space has dimension 4 and breaks down there;
    # the restarts orthogonal to it find the other copies, so m = dim gives the whole spectrum.
    eigs = [3.0, 3.0, 3.0, 1.0, 1.0, 0.0, -2.0]
    A = rotated(eigs)
    theta, Y = lanczos_eigs(lambda v: A @ v, 7, 7, torch.Generator().manual_seed(0))
    assert torch.allclose(theta, torch.tensor(sorted(eigs), dtype=F64), atol=1e-10)
    assert torch.allclose(A @ Y, Y * theta, atol=1e-10)
    ext = top_bottom(lambda v: A @ v, 7, k_top=3, k_bottom=1, tol=1e-8, max_iter=7,
                     generator=torch.Generator().manual_seed(0))
    assert torch.allclose(ext.top, torch.tensor([3.0, 3.0, 3.0], dtype=F64), atol=1e-10)
    assert ext.bottom.item() == pytest.approx(-2.0, abs=1e-10)


def test_top_bottom_stops_early_on_a_spread_spectrum():
    # 200 eigenvalues: the extremes are separated from the bulk, so far fewer than 200 products are needed
    eigs = [100.0, 60.0, 40.0, -30.0] + torch.linspace(-1, 1, 196).tolist()
    A = rotated(eigs, seed=1)
    ext = top_bottom(lambda v: A @ v, 200, 3, 1, 1e-4, 200, torch.Generator().manual_seed(0))
    assert ext.converged and ext.n_hvp < 40
    assert torch.allclose(ext.top, torch.tensor([100.0, 60.0, 40.0], dtype=F64), rtol=1e-4)
    assert ext.bottom.item() == pytest.approx(-30.0, rel=1e-4)


def test_hutchinson_is_exact_on_a_diagonal_matrix():
    d = torch.tensor([2.0, -1.0, 0.5, 7.0, 3.25], dtype=F64)
    # z^T diag(d) z = sum_i d_i z_i^2 = sum_i d_i for z_i in {-1, 1}: 2 - 1 + 0.5 + 7 + 3.25 = 11.75
    assert hutchinson_trace(lambda v: d * v, 5, 3, torch.Generator().manual_seed(0)) == pytest.approx(11.75, abs=1e-13)


def test_hutchinson_is_within_its_standard_error_of_the_trace():
    model, x, y = small_problem("rnn")
    Hd = dense_hessian(model, x, y)
    H = model_hvp(model, x, y)
    n = 400
    est = hutchinson_trace(H, H.dim, n, torch.Generator().manual_seed(5))
    # Var(z^T H z) = 2 sum_{i != j} H_ij^2 for Rademacher z, so the mean of n has sd sqrt(that / n)
    off = Hd - torch.diag(torch.diag(Hd))
    sd = math.sqrt(2 * (off**2).sum().item() / n)
    assert abs(est - torch.trace(Hd).item()) < 4 * sd
    assert sd < 0.2 * abs(torch.trace(Hd).item())  # the check is not vacuous


def test_density_weights_and_mean():
    model, x, y = small_problem("lru")
    Hd = dense_hessian(model, x, y)
    H = model_hvp(model, x, y)
    dim = H.dim
    nodes, weights = slq_density(H, dim, n_vectors=2, m=8, generator=torch.Generator().manual_seed(7))
    assert nodes.shape == weights.shape == (16,)
    assert weights.sum().item() == pytest.approx(1.0, abs=1e-12)
    assert weights[:8].sum().item() == pytest.approx(0.5, abs=1e-12)
    # mean = (1/2) sum_r e1^T T_r e1 = (1/2) sum_r z_r^T H z_r / dim, for the same Rademacher z_r
    g = torch.Generator().manual_seed(7)
    z1 = rademacher(dim, g, F64, "cpu")
    z2 = rademacher(dim, g, F64, "cpu")  # lanczos draws nothing more without a breakdown
    expected = 0.5 * (z1 @ Hd @ z1 + z2 @ Hd @ z2).item() / dim
    assert (nodes * weights).sum().item() == pytest.approx(expected, rel=1e-9)
    # a full-dimension run's nodes are the exact spectrum
    full_nodes, full_w = slq_density(H, dim, 1, dim, torch.Generator().manual_seed(8))
    ev = torch.linalg.eigvalsh(Hd)
    assert torch.allclose(full_nodes, ev, atol=1e-8 * ev.abs().max())
    # over many runs the mean approaches tr H / dim (each run is one Hutchinson sample / dim)
    n = 60
    nodes, weights = slq_density(H, dim, n, 4, torch.Generator().manual_seed(9))
    off = Hd - torch.diag(torch.diag(Hd))
    sd = math.sqrt(2 * (off**2).sum().item() / n) / dim
    assert abs((nodes * weights).sum().item() - torch.trace(Hd).item() / dim) < 4 * sd


def test_ipr_and_k90_on_hand_made_vectors():
    e1 = torch.zeros(10, dtype=F64)
    e1[0] = -2.0
    assert ipr(e1) == pytest.approx(1.0) and k90(e1) == 1
    for n in (7, 10, 25):  # flat: ipr = n / n^2 = 1/n, k90 = ceil(0.9 n) (7 -> 7, 10 -> 9, 25 -> 23)
        u = torch.ones(n, dtype=F64)
        assert ipr(u) == pytest.approx(1 / n) and k90(u) == math.ceil(0.9 * n)
    v = torch.tensor([3.0, 4.0], dtype=F64)  # squares 9, 16: ipr (81 + 256) / 625; 16/25 < 0.9 -> k90 = 2
    assert ipr(v) == pytest.approx(337 / 625) and k90(v) == 2
    w = torch.tensor([1.0, -10.0, 1.0, 1.0], dtype=F64)  # 100/103 = 0.971 >= 0.9 -> 1; ipr 10003 / 103^2
    assert ipr(w) == pytest.approx(10003 / 10609) and k90(w) == 1


def test_power_iteration_baseline_on_a_known_spectrum():
    A = rotated([10.0, 5.0, 2.0, 1.0, 0.5, 0.1])
    out = power_iteration_top_k(lambda v: A @ v, 6, 3, max_iter=100, tol=1e-6,
                                generator=torch.Generator().manual_seed(0))
    assert out["eigenvalues"] == pytest.approx([10.0, 5.0, 2.0], rel=1e-5)
    assert out["n_hvp"] == sum(len(h) for h in out["history"]) <= 300


def probe_ctx(model, seed: int = 3, step: int = 7, lr: float = 0.01):
    task = TeacherStudent(0.9, seq_len=12)
    x, y = task.sample(4, torch.Generator().manual_seed(0))
    return ProbeContext(model=model, task=task, x=x, y=y, step=step, lr=lr, device=torch.device("cpu"), seed=seed)


@pytest.mark.parametrize("cell", ["lru", "gru"])
def test_probe_rows_match_schema_and_leave_the_model_alone(cell):
    torch.manual_seed(0)
    model = Stack(cell, 1, 4, 1, r_min=0.9)  # float32, as in training
    ctx = probe_ctx(model)
    for p in model.parameters():
        p.grad = torch.full_like(p, 0.5)
    before = [(p.detach().clone(), p.grad.clone()) for p in model.parameters()]
    rng = torch.get_rng_state()
    opts = parse_options(HessianOptions, "every=5:k_top=3:k_bottom=1:trace_samples=4:density_steps=6:max_iter=200",
                         "hessian")
    with torch.no_grad():  # the trainer may call probes anywhere; the probe enables grad itself
        out = HessianProbe(opts)(ctx)
    assert torch.equal(rng, torch.get_rng_state())
    for p, (v, g) in zip(model.parameters(), before):
        assert p.dtype == torch.float32 and torch.equal(p.detach(), v) and torch.equal(p.grad, g)
    rows = out["hessian"]
    cols = [f.name for f in SCHEMAS["hessian"] if f.name not in ("sweep_id", "trial_id")]
    assert sorted(rows) == sorted(cols)
    n = len(rows["stat"])
    table = pa.Table.from_pydict(dict(rows, sweep_id=["s"] * n, trial_id=["t"] * n), schema=SCHEMAS["hessian"])
    assert table.num_rows == n and set(rows["step"]) == {7}
    by = {}
    for s, i, v, w in zip(rows["stat"], rows["idx"], rows["value"], rows["weight"]):
        by.setdefault(s, []).append((i, v, w))
    assert {s: len(r) for s, r in by.items()} == {"top": 3, "bottom": 1, "trace": 1, "density": 6, "ipr": 3,
                                                  "k90": 3, "sharpness_lr": 1}
    assert all(w is None for s, r in by.items() if s != "density" for _, _, w in r)
    assert sum(w for _, _, w in by["density"]) == pytest.approx(1.0, abs=1e-12)
    # values against the dense Hessian of the float64 copy
    m64 = Stack(cell, 1, 4, 1, r_min=0.9).to(F64)
    m64.load_state_dict({k: v.double() for k, v in model.state_dict().items()})
    ev = torch.linalg.eigvalsh(dense_hessian(m64, ctx.x.double(), ctx.y.double()))
    top = [v for _, v, _ in sorted(by["top"])]
    assert top == pytest.approx(ev.flip(0)[:3].tolist(), rel=1e-4)
    assert by["bottom"][0][1] == pytest.approx(ev[0].item(), rel=1e-4)
    assert by["sharpness_lr"][0][1] == pytest.approx(top[0] * 0.01, rel=1e-12)
    assert all(0 < v <= 1 for _, v, _ in by["ipr"]) and all(1 <= v <= len(ev) for _, v, _ in by["k90"])


def test_probe_is_deterministic_per_seed():
    torch.manual_seed(0)
    model = Stack("rnn", 1, 4, 1)
    opts = HessianOptions(trace_samples=3, density_steps=4)
    a = HessianProbe(opts)(probe_ctx(model, seed=1))["hessian"]
    b = HessianProbe(opts)(probe_ctx(model, seed=1))["hessian"]
    c = HessianProbe(opts)(probe_ctx(model, seed=2))["hessian"]
    assert a == b
    trace = lambda r: r["value"][r["stat"].index("trace")]  # noqa: E731
    assert trace(a) != trace(c)  # other random vectors


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_probe_on_cuda_matches_cpu():
    torch.manual_seed(0)
    for cell in ("gru", "lru", "rnn"):
        model = Stack(cell, 1, 6, 1, r_min=0.9)
        ctx = probe_ctx(model)
        cpu = HessianProbe(HessianOptions(trace_samples=3, density_steps=5))(ctx)["hessian"]
        cuda_ctx = ProbeContext(model=model.cuda(), task=ctx.task.to(torch.device("cuda")), x=ctx.x.cuda(),
                                y=ctx.y.cuda(), step=ctx.step, lr=ctx.lr, device=torch.device("cuda"), seed=ctx.seed)
        gpu = HessianProbe(HessianOptions(trace_samples=3, density_steps=5))(cuda_ctx)["hessian"]
        assert gpu["stat"] == cpu["stat"]
        for s, u, v in zip(cpu["stat"], cpu["value"], gpu["value"]):
            if s in ("top", "trace", "sharpness_lr"):
                assert v == pytest.approx(u, rel=1e-6), (cell, s)


# ---- the Hessian at optimality (Zucchet & Orvieto Fig. 4) ----

@pytest.fixture(scope="module")
def optimum():
    return {cell: hessian_at_optimum(cell) for cell in OPT_CELLS}


def test_students_compute_the_teacher():
    t = teacher(0.99, seed=0)
    assert torch.allclose(t["lam"].abs(), torch.full((4,), 0.99, dtype=F64))
    assert int((t["lam"].imag > 0).sum()) == 2  # two conjugate pairs
    x = torch.randn(5, 300, 1, generator=torch.Generator().manual_seed(11), dtype=F64)
    y = teacher_outputs(t, x)
    for cell in OPT_CELLS:
        with torch.no_grad():
            assert (student(cell, t)(x) - y).abs().max() < 1e-10 * y.abs().max()


def test_optimum_is_a_stationary_point_with_a_psd_hessian(optimum):
    for cell, r in optimum.items():
        ev = torch.tensor(r["eigenvalues"], dtype=F64)
        assert len(ev) == r["n_params"] and bool((ev[1:] >= ev[:-1]).all())
        assert r["loss"] < 1e-20 and r["max_output_error"] < 1e-10
        assert r["grad_norm"] < 1e-9 * ev[-1].item()  # ~1e-10 against curvature ~1e6
        assert ev[0] >= -1e-12 * ev[-1]  # PSD up to round-off (Gauss-Newton at zero residual)
        # rank 9 = the dimension of 4-state SISO transfer functions (4 poles, 4 zeros' coefficients, D):
        # every other direction is a reparametrisation symmetry (similarity for rnn, B/C rescaling per mode)
        assert int((ev > 1e-8 * ev[-1]).sum()) == 9, cell


def test_diagonal_models_concentrate_the_top_eigenvectors(optimum):
    rnn = optimum["rnn"]
    for cell in ("cdiag", "lru"):
        r = optimum[cell]
        assert r["top_ipr"][0] > 2 * rnn["top_ipr"][0]
        assert r["top_k90"][0] < rnn["top_k90"][0]
        # also relative to size (a flat vector has ipr 1/n, k90 ~ 0.9 n)
        assert r["top_ipr"][0] * r["n_params"] > 2 * rnn["top_ipr"][0] * rnn["n_params"]
        assert max(r["top_mass"], key=r["top_mass"].get).startswith("lam")  # on the eigenvalues themselves
    assert rnn["top_mass"]["A"] > 0.9 and rnn["top_k90"][0] >= 5  # spread over many entries of A


@pytest.mark.parametrize("seed", [1, 2])
def test_localisation_holds_for_other_teachers(seed):
    rnn, cdiag = hessian_at_optimum("rnn", seed=seed), hessian_at_optimum("cdiag", seed=seed)
    assert cdiag["top_ipr"][0] > rnn["top_ipr"][0] and cdiag["top_k90"][0] < rnn["top_k90"][0]


def test_hessian_opt_rows_match_schema(optimum):
    r = optimum["cdiag"]
    rows = hessian_opt_rows(r, step=0)["hessian"]
    n = len(rows["stat"])
    pa.Table.from_pydict(dict(rows, sweep_id=["s"] * n, trial_id=["t"] * n), schema=SCHEMAS["hessian"])
    eig = [v for s, v in zip(rows["stat"], rows["value"]) if s == "eig"]
    assert eig == r["eigenvalues"] and len(eig) == 13
    assert rows["stat"].count("ipr") == rows["stat"].count("k90") == 3
