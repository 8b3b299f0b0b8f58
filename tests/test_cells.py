"""Numerical tests of the cells, the stack and the teacher against independent exact references.

Every reference here is computed a second, independent way: a Python loop over time, a direct double sum,
``torch.linalg.matrix_power``, ``torch.linalg.eigvals``, or torch's own ``nn.GRU`` / ``nn.LSTM``.
Tight comparisons run in float64 so a mismatch of 1e-9 is a bug, not rounding.
"""
from __future__ import annotations

import math

import pytest
import torch
from torch import Tensor, nn

from trainers.cells import CELLS, CellSpec, LTICell, build_cell
from trainers.cells.base import block_powers_applied, causal_conv, remap_eigenvalues
from trainers.cells.cdiag import DiagonalLTI
from trainers.cells.rnn import LinearRNN
from trainers.stack import Stack
from trainers.tasks.teacher_student import TeacherStudent

CELL_NAMES = sorted(CELLS)
LTI_NAMES = [n for n in CELL_NAMES if isinstance(build_cell(n, CellSpec(1, 4, 1)), LTICell)]
T, BATCH = 64, 3
R_MIN = 0.9  # long memory: |lambda| >= 0.9, so 0.9^64 ~ 1e-3 of the input is still in the state at t = 63


pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models: one thread beats two on 2 cores


def assert_close(actual: Tensor, expected: Tensor, rtol: float = 1e-9, atol_rel: float = 1e-10, what: str = ""):
    """|actual - expected| <= rtol |expected| + atol_rel * max|expected| (atol scaled to the output's size)."""
    scale = max(expected.abs().max().item(), 1e-30)
    err = (actual - expected).abs()
    bound = rtol * expected.abs() + atol_rel * scale
    worst = (err - bound).max().item()
    assert worst <= 0, f"{what}: max |diff| {err.max().item():.3e} exceeds the bound (scale {scale:.3e})"


def make_cell(name: str, d_in: int = 2, hidden: int = 6, d_out: int = 3, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return build_cell(name, CellSpec(d_in, hidden, d_out, r_min=R_MIN, nu_min_dense=R_MIN)).double()


def make_stack(name: str, depth: int, layer_norm: bool, seed: int = 0) -> Stack:
    torch.manual_seed(seed)
    return Stack(name, d_in=2, hidden=6, d_out=3, depth=depth, d_model=5, layer_norm=layer_norm,
                 r_min=R_MIN).double()


def check_fast_equals_stepwise(model: nn.Module, d_in: int, d_out: int, seed: int = 1):
    """forward(x) == forward_stepwise(x), values and gradients of a random linear functional of y."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(BATCH, T, d_in, generator=g, dtype=torch.float64)
    w = torch.randn(BATCH, T, d_out, generator=g, dtype=torch.float64)  # loss = <w, y>: every output counts
    names, params = zip(*model.named_parameters())

    y_fast = model(x)
    grads_fast = torch.autograd.grad((w * y_fast).sum(), params)
    y_loop = model.forward_stepwise(x)
    grads_loop = torch.autograd.grad((w * y_loop).sum(), params)

    assert y_fast.shape == y_loop.shape == (BATCH, T, d_out)
    assert y_fast.dtype == torch.float64
    assert y_loop.abs().max() > 1e-3  # not trivially zero
    assert_close(y_fast, y_loop, what="output")
    for n, gf, gl in zip(names, grads_fast, grads_loop):
        assert_close(gf, gl, rtol=1e-8, atol_rel=1e-9, what=f"grad {n}")


# ---------------------------------------------------------------- fast form == stepwise form


@pytest.mark.parametrize("d_in,d_out", [(1, 1), (2, 3)])  # (1, 1): causal_conv's scalar branch
@pytest.mark.parametrize("name", CELL_NAMES)
def test_cell_forward_equals_stepwise(name, d_in, d_out):
    check_fast_equals_stepwise(make_cell(name, d_in=d_in, d_out=d_out), d_in, d_out)


@pytest.mark.parametrize("depth,layer_norm", [(1, False), (3, False), (3, True)])
@pytest.mark.parametrize("name", CELL_NAMES)
def test_stack_forward_equals_stepwise(name, depth, layer_norm):
    model = make_stack(name, depth, layer_norm)
    if layer_norm:  # move LayerNorm off its (1, 0) init so a wrong norm placement would show
        with torch.no_grad():
            for norm in model.norms:
                norm.weight.uniform_(0.5, 1.5)
                norm.bias.uniform_(-0.5, 0.5)
    check_fast_equals_stepwise(model, 2, 3)


def test_stack_state_is_one_tensor_per_layer():
    model = make_stack("lstm", depth=3, layer_norm=False)
    s = model.init_state(BATCH)
    assert s.shape == (3, BATCH, 2 * 6)  # layers stacked on a leading axis; LSTM state is [h, c]
    s2, y = model.step(s, torch.randn(BATCH, 2, dtype=torch.float64))
    assert s2.shape == s.shape and y.shape == (BATCH, 3)


# ---------------------------------------------------------------- causal_conv


def direct_conv(K: Tensor, x: Tensor) -> Tensor:
    """y[b, t] = sum_{k<=t} K[k] @ x[b, t-k], the definition, as a double loop."""
    b, T_, _ = x.shape
    y = torch.zeros(b, T_, K.shape[1], dtype=x.dtype)
    for t in range(T_):
        for k in range(t + 1):
            y[:, t] += x[:, t - k] @ K[k].T
    return y


@pytest.mark.parametrize("T_", [1, 2, 17, 40])  # odd lengths and T = 1 exercise the FFT padding
@pytest.mark.parametrize("d_in,d_out", [(1, 1), (2, 3)])
def test_causal_conv_matches_direct_sum(T_, d_in, d_out):
    g = torch.Generator().manual_seed(T_)
    K = torch.randn(T_, d_out, d_in, generator=g, dtype=torch.float64)
    x = torch.randn(2, T_, d_in, generator=g, dtype=torch.float64)
    assert_close(causal_conv(K, x), direct_conv(K, x), rtol=1e-10, atol_rel=1e-12, what="conv")


def test_causal_conv_is_causal():
    # an impulse at t = 5 must leave y[:, :5] exactly zero (up to FFT round-off) and give y[:, 5 + k] = K[k]
    T_ = 20
    K = torch.randn(T_, 1, 1, dtype=torch.float64)
    x = torch.zeros(1, T_, 1, dtype=torch.float64)
    x[0, 5, 0] = 1.0
    y = causal_conv(K, x)
    assert y[0, :5].abs().max() < 1e-12
    assert torch.allclose(y[0, 5:, 0], K[: T_ - 5, 0, 0], atol=1e-12)


# ---------------------------------------------------------------- block_powers_applied


@pytest.mark.parametrize("T_", [1, 2, 37, 64])  # 37: not a power of two, the last doubling is truncated
@pytest.mark.parametrize("bs", [2, 3])
def test_block_powers_applied_matches_matrix_power(T_, bs):
    g = torch.Generator().manual_seed(100 * bs + T_)
    n_blocks, m = 4, 3
    A = torch.randn(n_blocks, bs, bs, generator=g, dtype=torch.float64)
    A = 0.98 * A / torch.linalg.matrix_norm(A, ord=2)[:, None, None]  # spectral norm 0.98: powers stay O(1)
    V = torch.randn(n_blocks, bs, m, generator=g, dtype=torch.float64)
    out = block_powers_applied(A, V, T_)
    assert out.shape == (T_, n_blocks, bs, m)
    for k in range(T_):
        ref = torch.linalg.matrix_power(A, k) @ V  # batched over blocks
        assert_close(out[k], ref, rtol=1e-10, atol_rel=1e-12, what=f"A^{k} V")


# ---------------------------------------------------------------- remap_eigenvalues


def check_remap(A0: Tensor, nu_min: float, nu_max: float):
    A = remap_eigenvalues(A0, nu_min, nu_max, max_phase=math.pi)
    assert A.dtype == torch.float64 and A.shape == A0.shape
    l0 = torch.linalg.eigvals(A0.double())
    l1 = torch.linalg.eigvals(A)
    mag = l1.abs()
    assert (mag >= nu_min - 1e-12).all() and (mag < nu_max).all(), (mag.min(), mag.max())
    # expected spectrum: each l -> (nu_min + (nu_max - nu_min) tanh|l|) e^{i angle(l)}; compare as sets per matrix
    expected = torch.polar(nu_min + (nu_max - nu_min) * torch.tanh(l0.abs()), l0.angle())
    l1, expected = l1.reshape(-1, l1.shape[-1]), expected.reshape(-1, l1.shape[-1])
    l0 = l0.reshape(-1, l0.shape[-1])
    for got, exp, orig in zip(l1, expected, l0):
        dist = (got[:, None] - exp[None, :]).abs()  # (n, n)
        match = dist.argmin(dim=1)
        assert sorted(match.tolist()) == list(range(len(exp))), "spectra do not match one-to-one"
        assert dist.min(dim=1).values.max() < 1e-8
        # the angle is kept: unit phasors agree (compared as e^{i angle} so that -pi and pi are the same)
        ph_got, ph_orig = got / got.abs(), orig[match] / orig[match].abs()
        assert (ph_got - ph_orig).abs().max() < 1e-8


def test_remap_eigenvalues_batch_of_2x2_blocks():
    torch.manual_seed(3)
    A0 = torch.randn(200, 2, 2) / math.sqrt(2)  # mixes complex pairs and pairs of real eigenvalues (both signs)
    l0 = torch.linalg.eigvals(A0.double())
    assert (l0.imag.abs() > 1e-6).any() and (l0.imag.abs() < 1e-12).any()
    check_remap(A0, nu_min=0.5, nu_max=0.95)


@pytest.mark.parametrize("nu_min", [0.0, 0.68, 0.99])
def test_remap_eigenvalues_10x10(nu_min):
    torch.manual_seed(4)
    check_remap(torch.randn(10, 10) / math.sqrt(10), nu_min=nu_min, nu_max=1.0)


# ---------------------------------------------------------------- LRU / diagonal init and LTI kernels


def test_lru_lambda_on_ring_and_gamma_normalises():
    torch.manual_seed(5)
    r_min = 0.5
    cell = build_cell("lru", CellSpec(1, 256, 1, r_min=r_min))
    mag = cell.lam().abs().double()
    assert (mag >= r_min - 1e-6).all() and (mag <= 1.0).all()
    # uniform in area on the ring: |l|^2 ~ U[r_min^2, 1], so mean |l|^2 = (r_min^2 + 1) / 2 = 0.625
    assert abs((mag**2).mean().item() - 0.625) < 0.05
    # gamma = exp(w_gamma) = sqrt(1 - |lambda|^2) at init (computed here in float64 from the stored params)
    lam64 = torch.exp(torch.complex(-torch.exp(cell.lam_a.double()), torch.exp(cell.lam_b.double())))
    gamma = torch.exp(cell.gamma.double())
    assert_close(gamma, torch.sqrt(1 - lam64.abs() ** 2), rtol=1e-5, atol_rel=0, what="gamma")


def lti_matrices(cell: LTICell) -> tuple[Tensor, Tensor, Tensor]:
    """(A, B, C) rebuilt from the raw parameters, by the formulas in the papers, not by the cell's methods."""
    if isinstance(cell, LinearRNN):
        return torch.block_diag(*cell.A), cell.B, cell.C
    assert isinstance(cell, DiagonalLTI)
    a, b = cell.lam_a, cell.lam_b
    if cell.parametrisation == "exp":  # lambda = exp(-exp(w_nu) + i exp(w_theta)), gamma = exp(w_gamma)
        lam = torch.exp(-torch.exp(a)) * torch.exp(1j * torch.exp(b))
        gamma = torch.exp(cell.gamma) if cell.normalise else torch.ones_like(a)
    else:  # lambda = a + i b, gamma stored as itself
        lam = a + 1j * b
        gamma = cell.gamma if cell.normalise else torch.ones_like(a)
    B = gamma[:, None] * (cell.B_re + 1j * cell.B_im)  # diag(gamma) B
    return torch.diag(lam), B, cell.C_re + 1j * cell.C_im


@pytest.mark.parametrize("name", LTI_NAMES)
def test_impulse_response_is_C_Ak_B(name):
    cell = make_cell(name, d_in=2, hidden=6, d_out=3)
    A, B, C = (m.detach() for m in lti_matrices(cell))
    K = cell.impulse_response(T).detach()
    assert K.shape == (T, 3, 2)
    for k in range(T):
        ref = (C @ torch.linalg.matrix_power(A, k) @ B).real + (cell.D.detach() if k == 0 else 0)  # K_0 = CB + D
        assert_close(K[k], ref, rtol=1e-9, atol_rel=1e-10, what=f"K_{k}")


# ---------------------------------------------------------------- gru / lstm against torch's modules


def randomise(module: nn.Module, scale: float = 0.6, seed: int = 7):
    """Weights larger than torch's default init, so the gates saturate partly and the nonlinearity matters."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(scale * torch.randn(p.shape, generator=g, dtype=p.dtype))


@pytest.mark.parametrize("name,ref_cls", [("gru", nn.GRU), ("lstm", nn.LSTM)])
def test_gated_cell_matches_torch_module(name, ref_cls):
    d_in, hidden = 3, 5
    cell = make_cell(name, d_in=d_in, hidden=hidden, d_out=hidden)
    randomise(cell.core)
    with torch.no_grad():
        cell.readout.weight.copy_(torch.eye(hidden, dtype=torch.float64))  # y = h
    ref = ref_cls(d_in, hidden, batch_first=True).double()
    ref.load_state_dict(cell.core.state_dict())  # same four tensors, an independent module
    x = torch.randn(BATCH, T, d_in, dtype=torch.float64)
    with torch.no_grad():
        out_ref, final_ref = ref(x)
        assert_close(cell.forward_stepwise(x), out_ref, what="stepwise vs torch")
        assert_close(cell(x), out_ref, what="forward vs torch")
        state = cell.init_state(BATCH)
        for t in range(T):
            state, _ = cell.step(state, x[:, t])
    if name == "lstm":
        h_n, c_n = final_ref
        h, c = state.chunk(2, dim=-1)  # state = cat([h, c], -1)
        assert_close(h, h_n[0], what="h_T")
        assert_close(c, c_n[0], what="c_T")
    else:
        assert_close(state, final_ref[0], what="h_T")



@pytest.mark.parametrize("name,ref_cls", [("vrnn", nn.RNN), ("gru", nn.GRU), ("lstm", nn.LSTM)])
def test_plain_stack_is_a_multilayer_torch_rnn(name, ref_cls):
    """``block="plain"``: layer l + 1 reads layer l's h, the top readout is the output; the same as torch's own
    num_layers=3 module with the layers' weights copied in (an independent implementation)."""
    d_in, hidden, depth = 3, 5, 3
    torch.manual_seed(0)
    stack = Stack(name, d_in, hidden, 2, depth=depth, block="plain").double()
    ref = ref_cls(d_in, hidden, num_layers=depth, batch_first=True).double()
    with torch.no_grad():
        for l, layer in enumerate(stack.layers):
            randomise(layer.core)
            for k, v in layer.core.state_dict().items():
                getattr(ref, k.replace("_l0", f"_l{l}")).copy_(v)
    x = torch.randn(BATCH, T, d_in, dtype=torch.float64)
    with torch.no_grad():
        expected = stack.layers[-1].readout(ref(x)[0])
        assert_close(stack(x), expected, what="forward vs torch")
        assert_close(stack.forward_stepwise(x), expected, what="stepwise vs torch")
    assert all(isinstance(layer.readout, nn.Identity) for layer in stack.layers[:-1])
    with pytest.raises(ValueError, match="block='plain' needs a cell with a readout"):
        Stack("lru", d_in, hidden, 2, depth=2, block="plain")


@pytest.mark.parametrize("name", ["vrnn", "gru", "lstm"])
def test_orthogonal_init_makes_every_gate_block_orthogonal(name):
    torch.manual_seed(0)
    cell = build_cell(name, CellSpec(7, 7, 1, init="orthogonal"))
    for w in (cell.core.weight_hh_l0, cell.core.weight_ih_l0):
        for block in w.detach().double().split(7, dim=0):
            assert_close(block @ block.T, torch.eye(7, dtype=torch.float64), rtol=0, atol_rel=1e-6, what="W W^T")
    assert cell.core.bias_hh_l0.abs().max() == 0 and cell.core.bias_ih_l0.abs().max() == 0


def test_chrono_init_sets_the_memory_gates():
    """Tallec & Ollivier: the gate that keeps the state gets log U(1, T - 1); the LSTM's input gate its negative."""
    torch.manual_seed(0)
    lstm = build_cell("lstm", CellSpec(2, 400, 1, init="chrono", t_max=100))
    b = lstm.core.bias_ih_l0.detach().view(4, 400)
    assert 0 <= b[1].min() and b[1].max() <= math.log(99) + 1e-6 and b[1].max() > math.log(50)
    assert torch.equal(b[0], -b[1]) and b[2:].abs().max() == 0 and lstm.core.bias_hh_l0.abs().max() == 0
    gru = build_cell("gru", CellSpec(2, 400, 1, init="chrono", t_max=100))
    z = gru.core.bias_ih_l0.detach().view(3, 400)[1]
    assert 0 <= z.min() and z.max() <= math.log(99) + 1e-6
    with pytest.raises(ValueError, match="does not support init='chrono'; valid: default, orthogonal"):
        build_cell("vrnn", CellSpec(2, 4, 1, init="chrono", t_max=100))
    with pytest.raises(ValueError, match="does not support init='orthogonal'; valid: default"):
        build_cell("lru", CellSpec(2, 4, 1, init="orthogonal"))
    with pytest.raises(ValueError, match="chrono init needs t_max >= 2"):
        build_cell("lstm", CellSpec(2, 4, 1, init="chrono"))

# ---------------------------------------------------------------- teacher


@pytest.mark.parametrize("nu", [0.32, 0.68, 0.9, 0.99])
def test_teacher_eigenvalues_in_band(nu):
    mag = TeacherStudent(nu, seq_len=10).teacher_eigenvalues().abs()
    assert mag.shape == (10,)
    assert (mag >= nu).all() and (mag < 1).all(), (mag.min().item(), mag.max().item())


def test_teacher_fixed_by_its_own_seed():
    torch.manual_seed(0)
    t1 = TeacherStudent(0.9, seq_len=10)
    after = torch.rand(1)  # the global draw that follows building a teacher under global seed 0
    torch.manual_seed(12345)
    t2 = TeacherStudent(0.9, seq_len=10)
    for (n, p1), (_, p2) in zip(t1.teacher.named_parameters(), t2.teacher.named_parameters()):
        assert torch.equal(p1, p2), n
    # building a teacher leaves the global RNG alone (fork_rng): the next draw is the one seed 0 alone gives
    torch.manual_seed(0)
    assert torch.equal(torch.rand(1), after)
    # and a different teacher seed gives a different teacher
    t3 = TeacherStudent(0.9, seq_len=10, teacher_seed=43)
    assert not torch.equal(t1.teacher.B, t3.teacher.B)


def test_teacher_sample_reproducible_by_generator():
    task = TeacherStudent(0.9, seq_len=50)
    x1, y1 = task.sample(4, torch.Generator().manual_seed(1))
    x2, y2 = task.sample(4, torch.Generator().manual_seed(1))
    x3, y3 = task.sample(4, torch.Generator().manual_seed(2))
    assert x1.shape == (4, 50, 1) and y1.shape == (4, 50, 1)
    assert torch.equal(x1, x2) and torch.equal(y1, y2)
    assert not torch.equal(x1, x3) and not torch.equal(y1, y3)


def teacher_loop(task: TeacherStudent, x: Tensor) -> Tensor:
    """h_t = A h_{t-1} + B x_t, y_t = C h_t + D x_t, by hand in float64 from the teacher's matrices."""
    tch = task.teacher
    A, B, C, D = (m.detach().double() for m in (tch.dense_A(), tch.B, tch.C, tch.D))
    x = x.double()
    h = torch.zeros(x.shape[0], A.shape[0], dtype=torch.float64)
    ys = []
    for t in range(x.shape[1]):
        h = h @ A.T + x[:, t] @ B.T
        ys.append(h @ C.T + x[:, t] @ D.T)
    return torch.stack(ys, dim=1)


@pytest.mark.parametrize("nu", [0.68, 0.99])
def test_teacher_target_equals_recurrence(nu):
    task = TeacherStudent(nu, seq_len=300)
    x, y = task.sample(4, torch.Generator().manual_seed(0))
    ref = teacher_loop(task, x)
    # the task's own float32 target: float32 round-off only (A^k by repeated squaring, then the FFT), measured
    # 5e-7 (nu = 0.68) and 1e-5 (nu = 0.99) of the output's scale; a wrong kernel is off by O(1)
    assert y.dtype == torch.float32
    assert_close(y.double(), ref, rtol=0, atol_rel=5e-5, what="float32 target")
    # the same teacher in float64 agrees to round-off
    task.teacher.double()
    with torch.no_grad():
        y64 = task.teacher(x.double())
    assert_close(y64, ref, what="float64 target")


@pytest.mark.parametrize("nu", [0.0, 1.0, -0.5, 1.5])
def test_teacher_rejects_nu_outside_unit_interval(nu):
    with pytest.raises(ValueError):
        TeacherStudent(nu)


# ---------------------------------------------------------------- parameter groups


def check_groups_partition(model: nn.Module):
    groups = model.param_groups()
    in_groups = [id(p) for ps in groups.values() for p in ps]
    all_ids = [id(p) for p in model.parameters()]
    assert sorted(in_groups) == sorted(all_ids), "every parameter in exactly one group"
    assert len(set(in_groups)) == len(in_groups)
    return groups


@pytest.mark.parametrize("name", CELL_NAMES)
def test_param_groups_partition(name):
    cell = make_cell(name)
    groups = check_groups_partition(cell)
    assert "other" not in groups, {n for n, p in cell.named_parameters() if any(p is q for q in groups["other"])}
    assert groups.get("recurrent"), "a recurrent group exists"


@pytest.mark.parametrize("name", LTI_NAMES)
def test_lti_recurrent_group_is_what_the_transition_depends_on(name):
    # the parameters with a nonzero gradient through A h (transition_apply) are exactly the "recurrent" group
    cell = make_cell(name)
    h0 = cell.init_state(BATCH)
    h = torch.randn(h0.shape, dtype=h0.dtype)
    out = cell.transition_apply(h)
    params = list(cell.parameters())
    grads = torch.autograd.grad(out.abs().square().sum(), params, allow_unused=True)
    used = {id(p) for p, g in zip(params, grads) if g is not None and g.abs().max() > 0}
    assert used == {id(p) for p in cell.param_groups()["recurrent"]}


@pytest.mark.parametrize("name", ["gru", "lstm"])
def test_gated_recurrent_group_is_hidden_to_hidden(name):
    cell = make_cell(name)
    names = {n for n, p in cell.named_parameters() if any(p is q for q in cell.param_groups()["recurrent"])}
    assert names == {"core.weight_hh_l0", "core.bias_hh_l0"}


@pytest.mark.parametrize("depth,layer_norm", [(1, False), (3, True)])
def test_stack_param_groups_partition(depth, layer_norm):
    model = make_stack("lru", depth, layer_norm)
    groups = check_groups_partition(model)
    assert all(f"layer{l}.recurrent" in groups for l in range(1, depth + 1))
    assert ("encoder" in groups) == (depth > 1) and ("norm" in groups) == layer_norm


def test_fft_size_is_the_smallest_5_smooth_length():
    from trainers.cells.base import fft_size

    def smooth(m):
        for p in (2, 3, 5):
            while m % p == 0:
                m //= p
        return m == 1

    for n in range(1, 700):
        m = fft_size(n)
        assert m >= n and smooth(m) and not any(smooth(k) for k in range(n, m))
    assert fft_size(599) == 600  # T = 300
