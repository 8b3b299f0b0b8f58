"""Attractor probe: Lyapunov exponents, distinct-point counts and the probe's rows, each against an exact
reference (linear maps with known eigenvalues, contractions, rotations, Pascanu's bistable map, the chaotic
2-unit LSTM of Ribeiro et al.). Float64 wherever the tolerance is tight."""
from __future__ import annotations

import math

import pyarrow as pa
import pytest
import torch

from trainers.cells.cdiag import DiagonalLTI
from trainers.cells.lstm import LSTMCell
from trainers.cells.rnn import LinearRNN
from trainers.cells.vrnn import VanillaRNNCell
from trainers.probes.attractors import (AttractorProbe, autonomous_orbit, batch_dim_of, count_distinct,
                                        largest_lyapunov, lyapunov_spectrum, projection)
from trainers.probes.base import ProbeContext, parse_options
from layout.schemas import SCHEMAS
from trainers.stack import Stack


pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models: one thread beats two on 2 cores


def rot(theta: float) -> torch.Tensor:
    c, s = math.cos(theta), math.sin(theta)
    return torch.tensor([[c, -s], [s, c]], dtype=torch.float64)


def linear_cell(A: torch.Tensor) -> LinearRNN:
    """A dense LinearRNN (d_in = d_out = 1) in float64 with its transition set to A."""
    cell = LinearRNN(1, A.shape[0], 1).double()
    with torch.no_grad():
        cell.A.copy_(A[None])
    return cell


# ---------------------------------------------------------------- Lyapunov exponents


def test_lyapunov_of_a_linear_map_is_log_of_the_spectral_radius():
    # A = P diag(0.9, 0.5 R(pi/3)) P^-1: eigenvalues 0.9 and 0.5 e^{+-i pi/3}; P a fixed non-orthogonal basis.
    # Largest exponent log 0.9 = -0.10536; the three exponents sum to log|det A| = log(0.9 * 0.25) every step.
    P = torch.tensor([[1.0, 0.3, -0.2], [0.1, 1.0, 0.4], [-0.5, 0.2, 1.0]], dtype=torch.float64)
    core = torch.block_diag(torch.tensor([[0.9]], dtype=torch.float64), 0.5 * rot(math.pi / 3))
    cell = linear_cell(P @ core @ torch.linalg.inv(P))
    gen = torch.Generator().manual_seed(1)
    s0 = torch.randn(2, 3, generator=gen, dtype=torch.float64)
    u = torch.zeros(2, 1, dtype=torch.float64)
    lam = largest_lyapunov(cell.step, s0, u, burn_in=60, n_steps=100)  # misalignment left: (0.5/0.9)^60 ~ 5e-16
    torch.testing.assert_close(lam, torch.full((2,), math.log(0.9), dtype=torch.float64), atol=1e-9, rtol=0)
    spec = lyapunov_spectrum(cell.step, s0, u, burn_in=50, n_steps=200, k=3)
    torch.testing.assert_close(spec.sum(1), torch.full((2,), math.log(0.225), dtype=torch.float64),
                               atol=1e-10, rtol=0)
    # the complex pair: both exponents log 0.5 in the limit; the non-orthogonal basis leaves an O(1/n) wobble
    # (measured 7e-4 at n = 200)
    torch.testing.assert_close(spec[:, 1:], torch.full((2, 2), math.log(0.5), dtype=torch.float64),
                               atol=2e-2, rtol=0)


@pytest.mark.parametrize("parametrisation", ["real_imag", "exp"])
def test_lyapunov_of_a_complex_diagonal_cell(parametrisation):
    # lambda = r e^{i theta}, r = (0.95, 0.6, 0.3, 0.8): largest exponent log 0.95 = -0.05129. In (Re, Im)
    # coordinates the top mode is 0.95 x a rotation of its plane, so the top two real exponents are both log 0.95.
    r = torch.tensor([0.95, 0.6, 0.3, 0.8], dtype=torch.float64)
    theta = torch.tensor([1.0, 2.0, 0.5, 3.0], dtype=torch.float64)
    cell = DiagonalLTI(1, 4, 1, parametrisation=parametrisation, normalise=parametrisation == "exp").double()
    with torch.no_grad():
        if parametrisation == "exp":  # lambda = exp(-exp(a) + i exp(b))
            cell.lam_a.copy_(torch.log(-torch.log(r)))
            cell.lam_b.copy_(torch.log(theta))
        else:
            cell.lam_a.copy_(r * torch.cos(theta))
            cell.lam_b.copy_(r * torch.sin(theta))
    gen = torch.Generator().manual_seed(2)
    s0 = torch.complex(torch.randn(3, 4, generator=gen, dtype=torch.float64),
                       torch.randn(3, 4, generator=gen, dtype=torch.float64))
    u = torch.full((3, 1), 0.7, dtype=torch.float64)
    lam = largest_lyapunov(cell.step, s0, u, burn_in=200, n_steps=100)
    torch.testing.assert_close(lam, torch.full((3,), math.log(0.95), dtype=torch.float64), atol=1e-9, rtol=0)
    spec = lyapunov_spectrum(cell.step, s0, u, burn_in=200, n_steps=100, k=2)
    torch.testing.assert_close(spec, torch.full((3, 2), math.log(0.95), dtype=torch.float64), atol=1e-9, rtol=0)


def contracting_tanh_rnn() -> VanillaRNNCell:
    """8-unit tanh RNN with ||W_hh||_2 = 0.5, random biases and input weights, float64."""
    gen = torch.Generator().manual_seed(3)
    cell = VanillaRNNCell(1, 8, 1).double()
    W = torch.randn(8, 8, generator=gen, dtype=torch.float64)
    with torch.no_grad():
        cell.core.weight_hh_l0.copy_(0.5 * W / torch.linalg.matrix_norm(W, 2))
        cell.core.bias_hh_l0.copy_(torch.randn(8, generator=gen, dtype=torch.float64))
        cell.core.weight_ih_l0.copy_(torch.randn(8, 1, generator=gen, dtype=torch.float64))
    return cell


def test_lyapunov_negative_and_one_point_for_a_contracting_tanh_rnn():
    # J = diag(1 - h'^2) W with |1 - h'^2| <= 1 and ||W|| = 0.5: ||J|| <= 0.5, so every exponent <= log 0.5 = -0.693.
    # Banach: one fixed point per input, whatever the initial state.
    cell = contracting_tanh_rnn()
    gen = torch.Generator().manual_seed(4)
    s0 = 100 * torch.randn(5, 8, generator=gen, dtype=torch.float64)
    u = torch.full((5, 1), 0.4, dtype=torch.float64)
    lam = largest_lyapunov(cell.step, s0, u, burn_in=20, n_steps=100)
    assert (lam <= math.log(0.5) + 1e-12).all(), lam
    xs = autonomous_orbit(cell.step, s0, u, burn_in=100, keep=50, project=projection(cell, "hidden_mean"))
    assert [count_distinct(x) for x in xs] == [1] * 5
    assert count_distinct(xs.reshape(-1)) == 1


def chaotic_lstm(s: float) -> LSTMCell:
    """Ribeiro et al. (2020), repo antonior92/attractors-and-smoothness-RNN, chaotic_lstm.py: a 2-unit LSTM,
    no bias, zero input weights, recurrent weights theta_true (rows in torch's gate order i, i, f, f, g, g, o, o),
    scaled as theta(s) = s * theta_true; chaotic for about 0.9 <= s <= 1.45 (their Fig. 1)."""
    W = torch.tensor([[-1, -4], [-3, -2], [-2, 6], [0, -6], [-1, -6], [6, -9], [4, 1], [-9, -7]], dtype=torch.float64)
    cell = LSTMCell(1, 2, 1).double()
    with torch.no_grad():
        for name, p in cell.core.named_parameters():
            p.zero_()
        cell.core.weight_hh_l0.copy_(s * W)
    return cell


def test_lyapunov_of_ribeiros_chaotic_lstm():
    # h0 = c0 = 0.5, zero input. Measured (float64): +0.17 at s = 1 (chaos; 0.16 over 400 steps, the same for
    # every tangent seed), -0.56 at s = 0.5 (a fixed point). The chaotic orbit visits "many" distinct values:
    # measured 168 of 200 hidden means at tol 1e-4
    # (the strange attractor is thin, so some samples land within 1e-4 of each other), 1 for the fixed point.
    s0 = torch.full((1, 4), 0.5, dtype=torch.float64)
    u = torch.zeros(1, 1, dtype=torch.float64)
    chaos, calm = chaotic_lstm(1.0), chaotic_lstm(0.5)
    assert largest_lyapunov(chaos.step, s0, u, burn_in=100, n_steps=400).item() > 0.05
    assert largest_lyapunov(calm.step, s0, u, burn_in=100, n_steps=400).item() < -0.1
    keep = 200
    xs = autonomous_orbit(chaos.step, s0, u, burn_in=200, keep=keep, project=projection(chaos, "hidden_mean"))
    assert count_distinct(xs[0]) > keep / 2
    xs = autonomous_orbit(calm.step, s0, u, burn_in=200, keep=keep, project=projection(calm, "hidden_mean"))
    assert count_distinct(xs[0]) == 1


def test_a_diverged_orbit_gives_nan_exponent_and_zero_points():
    # x <- 10 x in float32 overflows to inf after ~38 steps from 1: the exponent is undefined (NaN) and no sample
    # is finite; the finite orbit beside it in the same batch (x <- 10 x from 0 stays at 0) is unaffected.
    step = lambda x, u: (10 * x, x)  # noqa: E731
    s0 = torch.tensor([[1.0], [0.0]])
    lam = largest_lyapunov(step, s0, torch.zeros(2, 1), burn_in=50, n_steps=10)
    assert math.isnan(lam[0]) and lam[1].item() == pytest.approx(math.log(10), abs=1e-5)
    xs = autonomous_orbit(step, s0, torch.zeros(2, 1), burn_in=50, keep=5, project=lambda s, y: s[:, 0])
    assert count_distinct(xs[0]) == 0 and count_distinct(xs[1]) == 1


# ---------------------------------------------------------------- distinct points


@pytest.mark.parametrize("p", [3, 5, 7])
def test_rotation_by_2pi_over_p_visits_p_points(p):
    # h <- R(2 pi / p) h from h0 = (cos 0.3, sin 0.3): the points cos/sin(0.3 + 2 pi k / p). hidden_mean is
    # (cos a + sin a) / 2 = sin(a + pi/4) / sqrt 2, which folds two angles a, a' only if a + a' = pi/2 (mod 2 pi);
    # the reference check below confirms the p projected values are well apart at phase 0.3.
    cell = linear_cell(rot(2 * math.pi / p))
    s0 = torch.tensor([[math.cos(0.3), math.sin(0.3)]], dtype=torch.float64)
    u = torch.zeros(1, 1, dtype=torch.float64)
    angles = 0.3 + 2 * math.pi * torch.arange(p, dtype=torch.float64) / p
    exact = ((torch.cos(angles) + torch.sin(angles)) / 2).sort().values
    assert exact.diff().min() > 1e-2
    for name in ("hidden_mean", "hidden_first"):
        xs = autonomous_orbit(cell.step, s0, u, burn_in=50, keep=10 * p, project=projection(cell, name))
        assert count_distinct(xs[0]) == p
    # the orbit's values are the exact cycle points
    torch.testing.assert_close(xs[0, :p].sort().values, torch.cos(angles).sort().values, atol=1e-12, rtol=0)


def test_a_folding_projection_is_resolved_by_x_dx_pairs():
    # p = 3 from phase a0 = -pi/12: a0 + a1 = -pi/6 + 2 pi/3 = pi/2, so hidden_mean maps points 0 and 1 to one
    # value (2 distinct x) while their predecessors differ, so the pairs (x_k, x_k - x_{k-1}) are 3 distinct.
    cell = linear_cell(rot(2 * math.pi / 3))
    a0 = -math.pi / 12
    s0 = torch.tensor([[math.cos(a0), math.sin(a0)]], dtype=torch.float64)
    xs = autonomous_orbit(cell.step, s0, torch.zeros(1, 1, dtype=torch.float64), burn_in=30, keep=31,
                          project=projection(cell, "hidden_mean"))[0]
    assert count_distinct(xs[1:]) == 2
    assert count_distinct(torch.stack([xs[1:], xs.diff()], dim=-1)) == 3


def pascanu_band(w: float = 5.0) -> tuple[float, float]:
    """The b band where x = w sigma(x) + b has three solutions, from the tangencies w sigma'(x) = 1:
    sigma (1 - sigma) = 1/w -> sigma = (1 +- sqrt(1 - 4/w)) / 2, x = logit(sigma), b = x - w sigma.
    w = 5: sigma = 0.7236 / 0.2764, x = +-0.9624, b = 0.9624 - 3.6180 = -2.6556 and -0.9624 - 1.3820 = -2.3444."""
    ends = []
    for sign in (1, -1):
        sig = (1 + sign * math.sqrt(1 - 4 / w)) / 2
        x = math.log(sig / (1 - sig))
        ends.append(x - w * sig)
    return min(ends), max(ends)


def fixed_points(b: float, w: float = 5.0) -> list[float]:
    """Roots of g(x) = w sigma(x) + b - x on [-20, 20], by a sign scan then bisection (float64)."""
    g = lambda x: w / (1 + math.exp(-x)) + b - x  # noqa: E731
    grid = [-20.00123 + 0.01 * i for i in range(4001)]  # offset: no grid point on a root (b = -2.5 has x = 0)
    roots = []
    for lo, hi in zip(grid, grid[1:]):
        if g(lo) * g(hi) < 0:
            for _ in range(80):
                mid = (lo + hi) / 2
                lo, hi = (mid, hi) if g(lo) * g(mid) > 0 else (lo, mid)
            roots.append((lo + hi) / 2)
    return roots


def test_pascanus_map_has_two_stable_fixed_points_in_its_bistable_band():
    # x <- 5 sigma(x) + b (Pascanu et al. 2013, Fig. 4) with b as the constant input; 20 initial states in [-10, 10].
    lo, hi = pascanu_band()
    assert -2.66 < lo < -2.65 and -2.35 < hi < -2.34  # the arithmetic in pascanu_band's docstring
    step = lambda x, b: (5 * torch.sigmoid(x) + b, x)  # noqa: E731
    x0 = torch.linspace(-10, 10, 20, dtype=torch.float64)[:, None]  # 20 points: none on the unstable root 0 of b = -2.5
    ident = lambda state, y: state[:, 0]  # noqa: E731
    for b, expect in ((lo - 0.3, 1), ((lo + hi) / 2, 2), (lo + 0.05, 2), (hi - 0.05, 2), (hi + 0.3, 1)):
        u = torch.full((20, 1), b, dtype=torch.float64)
        xs = autonomous_orbit(step, x0, u, burn_in=400, keep=20, project=ident)
        assert all(count_distinct(x) == 1 for x in xs)
        assert count_distinct(xs.reshape(-1)) == expect, b
        roots = fixed_points(b)
        assert len(roots) == (3 if expect == 2 else 1)
        # the attractors are the outer roots (the middle one of three is unstable: 5 sigma'(x) > 1 there)
        stable = torch.tensor([roots[0], roots[-1]] if expect == 2 else roots, dtype=torch.float64)
        final = xs[:, -1]
        dist = (final[:, None] - stable[None, :]).abs()
        assert dist.min(dim=1).values.max() < 1e-9  # every orbit ends on a stable root
        assert set(dist.argmin(dim=1).tolist()) == set(range(len(stable)))  # and each is reached


def test_count_distinct_tolerance_and_non_finite():
    assert count_distinct(torch.tensor([0.0, 1e-30, 1e-60])) == 1  # absolute floor: an orbit decaying to 0
    assert count_distinct(torch.tensor([1e6, 1e6 + 1.0])) == 1  # relative: 1 < 1e-4 * 1e6
    assert count_distinct(torch.tensor([1.0, 1.001])) == 2
    assert count_distinct(torch.tensor([1.0, float("nan"), 2.0, float("inf")])) == 2
    assert count_distinct(torch.tensor([float("nan"), float("inf")])) == 0
    # 2-D: equal first coordinates, distinct second ones; a chain of small gaps is one cluster (single linkage)
    assert count_distinct(torch.tensor([[0.0, 0.0], [0.0, 1.0], [0.0, 2.0]])) == 3
    assert count_distinct(torch.arange(0, 1, 5e-5, dtype=torch.float64)) == 1


# ---------------------------------------------------------------- the probe


def ctx_for(model: torch.nn.Module, seed: int = 0, step: int = 7) -> ProbeContext:
    return ProbeContext(model=model, task=None, x=None, y=None, step=step, lr=0.0, device=torch.device("cpu"),
                        seed=seed)


SMALL = dict(burn_in=20, keep=10, n_inits=2, n_inputs=3, lyapunov_burn_in=5, lyapunov_steps=10)


@pytest.mark.parametrize("cell,depth", [("lru", 1), ("lstm", 1), ("gru", 2)])
def test_probe_rows_match_the_schemas_and_leave_the_model_alone(cell, depth):
    torch.manual_seed(0)
    model = Stack(cell, 1, 6, 1, depth=depth, d_model=4, r_min=0.5)
    for p in model.parameters():
        p.grad = torch.randn_like(p)
    params = {k: v.clone() for k, v in model.state_dict().items()}
    grads = [p.grad.clone() for p in model.parameters()]
    rng = torch.get_rng_state()
    probe = AttractorProbe(AttractorProbe.Options(**SMALL))
    out = probe(ctx_for(model))
    assert set(out) == set(probe.tables) == {"attractors", "attractor_summary"}
    n_rows = {"attractors": 3 * 2 * 10, "attractor_summary": 3 * (2 + 1)}
    for table, rows in out.items():
        names = [f.name for f in SCHEMAS[table] if f.name not in ("sweep_id", "trial_id")]
        assert sorted(rows) == sorted(names)
        assert {len(v) for v in rows.values()} == {n_rows[table]}
        pa.Table.from_pydict(rows, schema=pa.schema([SCHEMAS[table].field(n) for n in names]))  # types cast
        assert set(rows["step"]) == {7}
    a = out["attractors"]
    assert all(math.isfinite(v) for v in a["x"] + a["dx"])
    assert torch.equal(torch.get_rng_state(), rng)
    for k, v in model.state_dict().items():
        assert torch.equal(v, params[k]), k
    assert all(torch.equal(p.grad, g) for p, g in zip(model.parameters(), grads))


def test_probe_on_a_two_cycle_matches_the_exact_orbit():
    # Stack(rnn, depth 1) with A = -I, B = (1, 3): h_t = h* + (-1)^t (h_0 - h*) with h* = (I - A)^-1 B u = B u / 2.
    # hidden_mean alternates between m* +- e (m* = mean(B) u / 2 = u, e depends on the init), so per orbit:
    # 2 points, x_k + x_{k-1} = 2 u, dx_0 = x_0 - x_{-1} = x_0 - x_1 (a 2-cycle), and exponent log|-1| = 0.
    # Over the 3 inits of an input: 3 different cycles -> 6 points, max exponent 0.
    model = Stack("rnn", 1, 2, 1, depth=1)
    with torch.no_grad():
        model.layers[0].A.copy_(-torch.eye(2)[None])
        model.layers[0].B.copy_(torch.tensor([[1.0], [3.0]]))
    opts = AttractorProbe.Options(burn_in=31, keep=8, n_inits=3, n_inputs=2, input_low=-0.5, input_high=1.5,
                                  lyapunov_burn_in=3, lyapunov_steps=20, init_std=10.0)
    out = AttractorProbe(opts)(ctx_for(model, seed=5, step=0))
    a, s = out["attractors"], out["attractor_summary"]
    x = torch.tensor(a["x"], dtype=torch.float64).reshape(2, 3, 8)
    dx = torch.tensor(a["dx"], dtype=torch.float64).reshape(2, 3, 8)
    u = torch.tensor([-0.5, 1.5], dtype=torch.float64)
    torch.testing.assert_close(x[..., 1:] + x[..., :-1], 2 * u[:, None, None].expand(2, 3, 7), atol=1e-4, rtol=0)
    torch.testing.assert_close(dx[..., 1:], x[..., 1:] - x[..., :-1], atol=1e-4, rtol=0)
    torch.testing.assert_close(dx[..., 0], x[..., 0] - x[..., 1], atol=1e-4, rtol=0)
    assert (dx.abs() > 1e-2).all()  # a real 2-cycle: every step moves
    assert a["input_value"][:24] == [-0.5] * 24 and a["input_id"][24:] == [1] * 24
    assert a["init_id"][:9] == [0] * 8 + [1] and a["k"][:9] == list(range(8)) + [0]
    assert s["init_id"] == [0, 1, 2, -1] * 2 and s["input_id"] == [0] * 4 + [1] * 4
    assert s["n_points"] == [2, 2, 2, 6] * 2
    assert all(abs(v) < 1e-6 for v in s["lyapunov"])


def test_probe_on_a_contraction_finds_the_fixed_point_and_log_of_the_rate():
    # A = 0.5 I, B = (1, 3), u on a grid: every orbit sits at h* = (I - A)^-1 B u = 2 B u = (2u, 6u), so
    # hidden_mean = 4 u, dx = 0, one point per orbit and per input, and the exponent is log 0.5 exactly.
    model = Stack("rnn", 1, 2, 1, depth=1)
    with torch.no_grad():
        model.layers[0].A.copy_(0.5 * torch.eye(2)[None])
        model.layers[0].B.copy_(torch.tensor([[1.0], [3.0]]))
    opts = AttractorProbe.Options(burn_in=60, keep=5, n_inits=2, n_inputs=4, lyapunov_burn_in=2, lyapunov_steps=5)
    out = AttractorProbe(opts)(ctx_for(model))
    a, s = out["attractors"], out["attractor_summary"]
    torch.testing.assert_close(torch.tensor(a["x"]), 4 * torch.tensor(a["input_value"]), atol=1e-5, rtol=0)
    assert max(abs(v) for v in a["dx"]) < 1e-5
    assert s["n_points"] == [1] * len(s["n_points"])
    torch.testing.assert_close(torch.tensor(s["lyapunov"], dtype=torch.float64),
                               torch.full((12,), math.log(0.5), dtype=torch.float64), atol=1e-6, rtol=0)


def test_hidden_mean_reads_the_last_layer_of_a_stack():
    model = Stack("lstm", 1, 3, 1, depth=2, d_model=4)
    assert batch_dim_of(model) == 1 and batch_dim_of(model.layers[0]) == 0
    state = torch.randn(2, 5, 6)  # (depth, batch, [h, c])
    torch.testing.assert_close(projection(model, "hidden_mean")(state, None), state[1, :, :3].mean(-1))
    torch.testing.assert_close(projection(model, "hidden_first")(state, None), state[1, :, 0])


def test_options_parse_and_validate():
    o = parse_options(AttractorProbe.Options, "every=50:burn_in=100:project=output:init_std=3", "attractors")
    assert (o.every, o.burn_in, o.project, o.init_std, o.keep) == (50, 100, "output", 3.0, 400)
    with pytest.raises(ValueError, match="project"):
        AttractorProbe(AttractorProbe.Options(project="mean"))
    with pytest.raises(ValueError, match="burn_in"):
        AttractorProbe(AttractorProbe.Options(burn_in=0))
