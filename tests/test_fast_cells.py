"""The fast training paths of the nonlinear cells (issue 6, "Fast nonlinear cells").

- lstm / gru / vrnn / slstm train through torch's fused nn.LSTM / nn.GRU / nn.RNN (``FusedCoreCell.forward``);
  they must equal the written-out stepwise equations in the stacks the sweeps build (residual ``glu`` blocks,
  ``block="plain"``, depth > 1, chrono init, which tests torch's gate order), values and gradients.
- star / lstmf / ornn run ``ScanCell.forward``; ``step`` shares its ``update``, so they are checked against
  the papers' equations written out here a second time, and against the stepwise form.
- ornn's orthogonal parametrisation (one matrix exponential) runs once per forward call, not once per step.
- Hessian-vector products (double backward) through an lstm stack: ``forward_pure`` never enters the fused
  kernel (cuDNN has none), and H v equals a central difference of gradients.
Float64 throughout, so a mismatch of 1e-9 is a bug, not rounding.
"""
from __future__ import annotations

import pytest
import torch
from test_cells import BATCH, T, assert_close, check_fast_equals_stepwise
from torch import Tensor

from trainers.cells import CellSpec, build_cell
from trainers.cells.base import FusedCoreCell, ScanCell
from trainers.cells.ornn import modrelu
from trainers.probes.hessian import HVP
from trainers.stack import Stack

FUSED = ["gru", "lstm", "slstm", "vrnn"]
SCAN = ["lstmf", "ornn", "star"]
F64 = torch.float64

pytestmark = pytest.mark.usefixtures("one_thread")


def stack(name: str, block: str, depth: int, init: str = "default", seed: int = 0) -> Stack:
    torch.manual_seed(seed)
    return Stack(name, d_in=2, hidden=6, d_out=3, depth=depth, d_model=5, layer_norm=block == "glu",
                 block=block, init=init, t_max=T).double()


def test_the_cell_families():
    """The split the tests below rely on: every fused cell has a torch RNN core, every scan cell has none."""
    for name in FUSED:
        assert isinstance(build_cell(name, CellSpec(2, 4, 1)), FusedCoreCell), name
    for name in SCAN:
        assert isinstance(build_cell(name, CellSpec(2, 4, 1)), ScanCell), name


# ---------------------------------------------------------------- fast == stepwise in the sweeps' stacks


@pytest.mark.parametrize("block,depth", [("glu", 2), ("glu", 3), ("plain", 3)])
@pytest.mark.parametrize("name", FUSED + SCAN)
def test_stack_fast_equals_stepwise(name, block, depth):
    check_fast_equals_stepwise(stack(name, block, depth), 2, 3)


@pytest.mark.parametrize("name", ["gru", "lstm"])
def test_fused_equals_stepwise_after_chrono_init(name):
    """Chrono sets one gate's bias (LSTM: f and i, GRU: z): a gate-order mismatch between the fused kernel
    and the stepwise equations would show here even where the default init hides it."""
    model = stack(name, "plain", 2, init="chrono")
    check_fast_equals_stepwise(model, 2, 3)


# ---------------------------------------------------------------- scan cells against their papers' equations


def reference_loop(cell: ScanCell, x: Tensor) -> Tensor:
    """The equations of each cell's docstring, written out again: h_0 = 0, y_t = V h_t."""
    h, ys = torch.zeros(x.shape[0], cell.hidden, dtype=x.dtype), []
    n = cell.hidden
    for t in range(x.shape[1]):
        xt = x[:, t]
        if type(cell).__name__ == "STARCell":  # K = sigmoid(W_Kx x + b_K + W_Kh h), z = tanh(W_z x + b_z)
            Wx, b = cell.input.weight, cell.input.bias
            K = torch.sigmoid(xt @ Wx[:n].T + b[:n] + h @ cell.recurrent.weight.T)
            z = torch.tanh(xt @ Wx[n:].T + b[n:])
            h = torch.tanh((1 - K) * h + K * z)
        elif type(cell).__name__ == "ForgetOnlyLSTMCell":  # f, z from [x; h]; h' = tanh(f h + (1 - f) z)
            Wx, b, Wh = cell.input.weight, cell.input.bias, cell.recurrent.weight
            f = torch.sigmoid(xt @ Wx[:n].T + b[:n] + h @ Wh[:n].T)
            z = torch.tanh(xt @ Wx[n:].T + b[n:] + h @ Wh[n:].T)
            h = torch.tanh(f * h + (1 - f) * z)
        else:  # ornn: h' = modReLU(U x + W h)
            h = modrelu(xt @ cell.input.weight.T + h @ cell.recurrent.weight.T, cell.b)
        ys.append(h @ cell.readout.weight.T)
    return torch.stack(ys, dim=1)


@pytest.mark.parametrize("name", SCAN)
def test_scan_cell_matches_its_equations(name):
    torch.manual_seed(0)
    cell = build_cell(name, CellSpec(2, 6, 3)).double()
    with torch.no_grad():  # move every parameter off its init (zero biases, ornn's A = 0) so every term matters
        for p in cell.parameters():
            p.add_(0.3 * torch.randn_like(p))
    x = torch.randn(BATCH, T, 2, dtype=F64)
    w = torch.randn(BATCH, T, 3, dtype=F64)
    params = list(cell.parameters())
    y_fast, y_ref = cell(x), reference_loop(cell, x)
    assert y_ref.abs().max() > 1e-2
    assert_close(y_fast, y_ref, what="forward vs equations")
    for gf, gr in zip(torch.autograd.grad((w * y_fast).sum(), params),
                      torch.autograd.grad((w * y_ref).sum(), params)):
        assert_close(gf, gr, rtol=1e-8, atol_rel=1e-9, what="grad")


def test_scan_gradient_reaches_the_input():
    """In a stack the inner layers' inputs need gradients: d y / d x from the fast loop == the stepwise one."""
    model = stack("star", "plain", 2)
    x = torch.randn(BATCH, T, 2, dtype=F64, requires_grad=True)
    (gx_fast,) = torch.autograd.grad(model(x).square().sum(), x)
    (gx_loop,) = torch.autograd.grad(model.forward_stepwise(x).square().sum(), x)
    assert gx_loop.abs().max() > 1e-3
    assert_close(gx_fast, gx_loop, rtol=1e-8, atol_rel=1e-9, what="d loss / d x")


# ---------------------------------------------------------------- ornn: one matrix exponential per call


def count_parametrisation_calls(cell) -> list[int]:
    """A counter on the orthogonal parametrisation module's forward (one call = one matrix exponential)."""
    calls = [0]
    cell.recurrent.parametrizations.weight[0].register_forward_hook(lambda *_: calls.__setitem__(0, calls[0] + 1))
    return calls


def test_ornn_parametrisation_once_per_forward():
    torch.manual_seed(0)
    cell = build_cell("ornn", CellSpec(2, 6, 3))
    calls = count_parametrisation_calls(cell)
    x = torch.randn(BATCH, T, 2)

    state = cell.init_state(BATCH)
    for t in range(T):  # the bare stepwise interface, outside any cache: the counter sees every step
        state, _ = cell.step(state, x[:, t])
    assert calls[0] == T

    calls[0] = 0
    cell(x).square().mean().backward()  # one training step's forward + backward
    assert calls[0] == 1
    calls[0] = 0
    cell.forward_stepwise(x)
    assert calls[0] == 1


def test_ornn_stack_unroll_evaluates_each_layer_once():
    model = Stack("ornn", 2, 6, 3, depth=2, block="plain")
    counters = [count_parametrisation_calls(layer) for layer in model.layers]
    x = torch.randn(BATCH, T, 2)
    model(x)
    model.unroll(x)
    assert [c[0] for c in counters] == [2, 2]  # one per layer per call, two calls


# ---------------------------------------------------------------- double backward through an lstm stack


@pytest.mark.parametrize("block", ["glu", "plain"])
def test_hvp_through_lstm_stack(block):
    """H v by double backward through ``forward_pure`` == (g(theta + eps v) - g(theta - eps v)) / (2 eps);
    ``forward_pure`` never runs the fused core (its cuDNN form has no double backward)."""
    model = stack("lstm", block, 2)
    cores = [0]
    for layer in model.layers:
        layer.core.register_forward_hook(lambda *_: cores.__setitem__(0, cores[0] + 1))
    g = torch.Generator().manual_seed(3)
    x = torch.randn(BATCH, 20, 2, generator=g, dtype=F64)
    y = torch.randn(BATCH, 20, 3, generator=g, dtype=F64)
    params = list(model.parameters())

    def loss() -> Tensor:
        return 0.5 * (model.forward_pure(x) - y).square().mean()

    hvp = HVP(loss, params)
    v = torch.randn(hvp.dim, generator=g, dtype=F64)
    hv = hvp(v)
    assert cores[0] == 0

    def flat_grad() -> Tensor:
        return torch.cat([q.reshape(-1) for q in torch.autograd.grad(loss(), params)])

    eps, offsets = 1e-5, torch.split(v, [p.numel() for p in params])
    with torch.no_grad():
        for p, d in zip(params, offsets):
            p.add_(eps * d.view_as(p))
    g_plus = flat_grad()
    with torch.no_grad():
        for p, d in zip(params, offsets):
            p.sub_(2 * eps * d.view_as(p))
    g_minus = flat_grad()
    fd = (g_plus - g_minus) / (2 * eps)  # error O(eps^2) ~ 1e-10 relative
    assert hv.abs().max() > 1e-3
    assert_close(hv, fd, rtol=1e-6, atol_rel=1e-6, what="H v vs central difference")
