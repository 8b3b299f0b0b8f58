"""The lattice-gradient and signal-propagation probes, against hand computations and independent loops.

References used here: a depth-2 linear stack with scalar units differentiated by hand (the arithmetic is in
the comments); a manual re-implementation of the residual stack with each cell's equations written out and
a zero real perturbation added to every h_t^l (and, for parameters, to every step's copy of the weights), so
the reference never touches the probe's step wrappers, readout hooks or complex-gradient conventions; the
AR(1) recursion replayed from the same generator seed.
"""
from __future__ import annotations

import math

import pytest
import torch
from torch import Tensor, nn

from trainers.probes.base import ProbeContext, parse_options
from trainers.probes.lattice import LatticeOptions, LatticeProbe, lattice_gradients
from trainers.probes.signal import SignalOptions, SignalProbe, ar1_inputs, signal_stats
from layout.schemas import SCHEMAS
from trainers.stack import Stack
from trainers.tasks.teacher_student import TeacherStudent


pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models: one thread beats two on 2 cores


def mse(y_hat: Tensor, y: Tensor) -> Tensor:
    return 0.5 * ((y_hat - y) ** 2).mean()


# ---------------------------------------------------------------------------------------------------------
# lattice: a tiny linear stack by hand


def hand_stack() -> Stack:
    """Depth 2, d_model = hidden = 1, identity encoder/decoder, cells h_t = a h_{t-1} + b u_t, y_t = c h_t.

    layer 1: a1, b1, c1 = 0.5, 1, 2;  layer 2: a2, b2, c2 = 0.5, 1, 1;  D = 0 and all biases 0.
    Residual block: u1 = u0 + c1 h1, u2 = u1 + c2 h2, output = u2.
    """
    m = Stack("rnn", 1, 1, 1, depth=2, d_model=1).double()
    with torch.no_grad():
        m.encoder.weight.fill_(1.0), m.encoder.bias.zero_(), m.decoder.weight.fill_(1.0), m.decoder.bias.zero_()
        for layer, (a, b, c) in zip(m.layers, [(0.5, 1.0, 2.0), (0.5, 1.0, 1.0)]):
            layer.A.fill_(a), layer.B.fill_(b), layer.C.fill_(c), layer.D.zero_()
    return m


def hand_backprop(x: list[float], weights: list[float], a=(0.5, 0.5), b=(1.0, 1.0), c=(2.0, 1.0)):
    """Scalar forward pass and reverse accumulation of the hand stack, in plain floats.

    weights[s] = dL/d out_s. Returns (dL/dh1_t, dL/dh2_t, forward values) for t = 1..T.
    Backward: dL/du2_t = w_t; dL/dh2_t = c2 dL/du2_t + a2 dL/dh2_{t+1}; dL/du1_t = dL/du2_t + b2 dL/dh2_t;
    dL/dh1_t = c1 dL/du1_t + a1 dL/dh1_{t+1}.
    """
    T = len(x)
    h1, h2, fw = 0.0, 0.0, {"h1": [], "h2": [], "u0": list(x), "u1": []}
    for t in range(T):
        h1 = a[0] * h1 + b[0] * x[t]
        u = x[t] + c[0] * h1
        h2 = a[1] * h2 + b[1] * u
        fw["h1"].append(h1), fw["h2"].append(h2), fw["u1"].append(u)
    g1, g2, gu1 = [0.0] * T, [0.0] * T, [0.0] * T
    n1 = n2 = 0.0
    for t in reversed(range(T)):
        g2[t] = n2 = c[1] * weights[t] + a[1] * n2
        gu1[t] = weights[t] + b[1] * g2[t]
        g1[t] = n1 = c[0] * gu1[t] + a[0] * n1
    return g1, g2, gu1, fw


def test_lattice_hidden_matches_hand_computation():
    # x = (1, 0, 0), target 0. Forward: t=1: h1=1, u1=1+2*1=3, h2=3, out=3+3=6
    #                                  t=2: h1=.5, u1=0+1=1, h2=.5*3+1=2.5, out=1+2.5=3.5
    #                                  t=3: h1=.25, u1=.5, h2=1.25+.5=1.75, out=.5+1.75=2.25
    # "last": L = 0.5 * 2.25^2, e = dL/dout_3 = 2.25.
    #   dL/dh2_t = e c2 a2^(3-t) = 2.25 * (.25, .5, 1) = (.5625, 1.125, 2.25)
    #   dL/du1_3 = e (1 + c2 b2) = 4.5;  dL/du1_2 = e c2 b2 a2 = 1.125;  dL/du1_1 = e a2^2 = .5625
    #   dL/dh1_3 = c1 * 4.5 = 9;  dL/dh1_2 = c1 * 1.125 + a1 * 9 = 6.75;  dL/dh1_1 = c1 * .5625 + a1 * 6.75 = 4.5
    m = hand_stack()
    x = torch.tensor([[1.0, 0.0, 0.0]], dtype=torch.float64)[..., None]
    y = torch.zeros_like(x)
    res = lattice_gradients(m, x, lambda yh: mse(yh[:, -1:], y[:, -1:]), lambda yh: mse(yh, y))
    expected_last = torch.tensor([[4.5, 6.75, 9.0], [0.5625, 1.125, 2.25]], dtype=torch.float64)
    torch.testing.assert_close(res[("last", "hidden")], expected_last, rtol=1e-12, atol=0)
    # "all": L = mean_t 0.5 out_t^2, dL/dout_t = out_t / 3 = (2, 7/6, 0.75); same recursion in floats
    g1, g2, _, _ = hand_backprop([1.0, 0.0, 0.0], [6.0 / 3, 3.5 / 3, 2.25 / 3])
    torch.testing.assert_close(res[("all", "hidden")], torch.tensor([g1, g2], dtype=torch.float64),
                               rtol=1e-12, atol=0)
    assert set(res) == {("last", "hidden"), ("all", "hidden")}


def test_lattice_hidden_is_a_per_sample_mean_independent_of_batch_size():
    # Samples x and 2x: the linear stack doubles every gradient of the second sample's own loss, so the
    # mean over samples of ||dL_b/dh|| is 1.5 times the single-sample value (and not divided by the batch).
    m = hand_stack()
    x = torch.tensor([[1.0, 0.0, 0.0], [2.0, 0.0, 0.0]], dtype=torch.float64)[..., None]
    y = torch.zeros_like(x)
    res = lattice_gradients(m, x, lambda yh: mse(yh[:, -1:], y[:, -1:]))
    expected = 1.5 * torch.tensor([[4.5, 6.75, 9.0], [0.5625, 1.125, 2.25]], dtype=torch.float64)
    torch.testing.assert_close(res[("last", "hidden")], expected, rtol=1e-12, atol=0)
    assert ("all", "hidden") not in res


def test_lattice_params_matches_hand_computation():
    # Parameters used at step t by layer 1 (A, B, C, D): h1_t = A h1_{t-1} + B u0_t, y1_t = C h1_t + D u0_t, so
    # dL/dA_t = g_h1_t h1_{t-1}, dL/dB_t = g_h1_t u0_t, dL/dC_t = g_u1_t h1_t, dL/dD_t = g_u1_t u0_t.
    # "last", t = 1: h1_0 = 0, u0 = 1, h1 = 1, g_h1 = 4.5, g_u1 = .5625 -> (0, 4.5, .5625, .5625),
    #   norm sqrt(20.25 + 2 * .31640625) = 4.5698...
    # Layer 2 likewise with u1 as input and dL/dy2_t = dL/dout_t (= 0 before the last step).
    m = hand_stack()
    x = torch.tensor([[1.0, 0.0, 0.0]], dtype=torch.float64)[..., None]
    y = torch.zeros_like(x)
    res = lattice_gradients(m, x, lambda yh: mse(yh[:, -1:], y[:, -1:]), lambda yh: mse(yh, y), params=True)
    assert res[("last", "params")][0, 0].item() == pytest.approx(math.sqrt(20.25 + 2 * 0.31640625), rel=1e-12)
    out = [6.0, 3.5, 2.25]
    for loss, w in (("last", [0.0, 0.0, 2.25]), ("all", [o / 3 for o in out])):
        g1, g2, gu1, fw = hand_backprop([1.0, 0.0, 0.0], w)
        expected = torch.zeros(2, 3, dtype=torch.float64)
        for t in range(3):
            h1_prev = fw["h1"][t - 1] if t else 0.0
            h2_prev = fw["h2"][t - 1] if t else 0.0
            l1 = [g1[t] * h1_prev, g1[t] * fw["u0"][t], gu1[t] * fw["h1"][t], gu1[t] * fw["u0"][t]]
            l2 = [g2[t] * h2_prev, g2[t] * fw["u1"][t], w[t] * fw["h2"][t], w[t] * fw["u1"][t]]
            expected[0, t] = math.sqrt(sum(v * v for v in l1))
            expected[1, t] = math.sqrt(sum(v * v for v in l2))
        torch.testing.assert_close(res[(loss, "params")], expected, rtol=1e-12, atol=0)


# ---------------------------------------------------------------------------------------------------------
# lattice: brute force on gated and complex stacks (cell equations written out)


def vrnn_eq(P: dict, state: Tensor, v: Tensor, delta: Tensor):
    h = torch.tanh(v @ P["core.weight_ih_l0"].T + P["core.bias_ih_l0"] + state @ P["core.weight_hh_l0"].T
                   + P["core.bias_hh_l0"]) + delta
    return h, h @ P["readout.weight"].T


def lstm_eq(P: dict, state: Tensor, v: Tensor, delta: Tensor):
    h, c = state.chunk(2, dim=-1)
    i, f, g, o = (v @ P["core.weight_ih_l0"].T + P["core.bias_ih_l0"] + h @ P["core.weight_hh_l0"].T
                  + P["core.bias_hh_l0"]).chunk(4, dim=-1)
    c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    h = torch.sigmoid(o) * torch.tanh(c) + delta  # the perturbation moves h only; c carries on unperturbed
    return torch.cat([h, c], dim=-1), h @ P["readout.weight"].T


def cdiag_eq(P: dict, state: Tensor, v: Tensor, delta: Tensor):
    lam = torch.complex(P["lam_a"], P["lam_b"])
    B, C = torch.complex(P["B_re"], P["B_im"]), torch.complex(P["C_re"], P["C_im"])
    h = lam * state + v.to(B.dtype) @ B.T + torch.view_as_complex(delta)  # delta: (batch, hidden, 2) real
    return h, (h @ C.T).real + v @ P["D"].T


EQS = {"vrnn": vrnn_eq, "lstm": lstm_eq, "cdiag": cdiag_eq}


def brute_force_lattice(m: Stack, cell: str, x: Tensor, loss_fn, params: bool):
    """The residual stack of ``Stack.step`` rewritten with the cell equations above; every h_t^l gets a zero
    real perturbation and, when ``params``, every step gets its own zero-perturbed parameter copy."""
    B, T, _ = x.shape
    Hn = m.layers[0].hidden
    dshape = (B, Hn, 2) if cell == "cdiag" else (B, Hn)
    deltas = [[torch.zeros(dshape, dtype=x.dtype, requires_grad=True) for _ in range(T)] for _ in m.layers]
    zetas = [[{n: torch.zeros_like(p, requires_grad=True) for n, p in layer.named_parameters()} for _ in range(T)]
             for layer in m.layers]
    states = [layer.init_state(B) for layer in m.layers]
    ys = []
    for t in range(T):
        u = m.encoder(x[:, t])
        for l, layer in enumerate(m.layers):
            P = {n: p + zetas[l][t][n] if params else p for n, p in layer.named_parameters()}
            states[l], y = EQS[cell](P, states[l], m.norms[l](u), deltas[l][t])
            u = u + m.mixers[l](y)
        ys.append(m.decoder(u))
    loss = loss_fn(torch.stack(ys, dim=1))
    flat_d = [d for row in deltas for d in row]
    flat_z = [z for row in zetas for step in row for z in step.values()]
    grads = torch.autograd.grad(loss, flat_d + flat_z if params else flat_d)
    gd = torch.stack(grads[: len(flat_d)]).reshape(len(m.layers), T, B, -1)
    hidden = (torch.linalg.vector_norm(gd, dim=-1) * B).mean(dim=-1)
    if not params:
        return hidden, None
    sq = torch.stack([g.pow(2).sum() for g in grads[len(flat_d):]]).reshape(len(m.layers), T, -1)
    return hidden, sq.sum(-1).sqrt()


@pytest.mark.parametrize("cell", ["vrnn", "lstm", "cdiag"])
def test_lattice_matches_brute_force(cell):
    torch.manual_seed(3)
    m = Stack(cell, 2, 5, 1, depth=2, d_model=4, block="glu", layer_norm=True, r_min=0.5).double()
    x = torch.randn(3, 6, 2, dtype=torch.float64)
    y = torch.randn(3, 6, 1, dtype=torch.float64)
    last = lambda yh: mse(yh[:, -1:], y[:, -1:])
    full = lambda yh: mse(yh, y)
    res = lattice_gradients(m, x, last, full, params=True)
    for name, fn in (("last", last), ("all", full)):
        hidden, par = brute_force_lattice(m, cell, x, fn, params=True)
        torch.testing.assert_close(res[(name, "hidden")], hidden, rtol=1e-10, atol=1e-14)
        torch.testing.assert_close(res[(name, "params")], par, rtol=1e-10, atol=1e-14)
    # the last step's gradient is not zero: the same-step route through the readout is counted
    assert (res[("last", "hidden")][:, -1] > 0).all()
    # the probe's wrappers are gone: step is the class method again, no hook left on the readout
    for layer in m.layers:
        assert "step" not in layer.__dict__
        assert not getattr(layer, "readout", nn.Identity())._forward_pre_hooks


# ---------------------------------------------------------------------------------------------------------
# lattice: STAR Fig. 2 (vanilla tanh stack with orthogonal weights; LSTM for contrast)

L_DEPTH, T_STEPS, HIDDEN, BATCH = 4, 24, 64, 16


def orthogonal_stack(cell: str, seed: int = 0) -> Stack:
    """STAR's lattice simulation: every weight matrix orthogonal (semi-orthogonal where not square: the
    encoder column and the decoder row), every bias zero; d_model = hidden so the readouts are square."""
    torch.manual_seed(seed)
    m = Stack(cell, 1, HIDDEN, 1, depth=L_DEPTH, d_model=HIDDEN)
    with torch.no_grad():
        for p in m.parameters():
            torch.nn.init.orthogonal_(p) if p.dim() >= 2 else p.zero_()
    return m


def star_inputs(scale: float, seed: int = 10) -> Tensor:
    """x_t = a x_{t-1} + (1 - a) z_t, a = 0.5, z ~ N(0, scale^2), x_0 = 0 (STAR's lattice input)."""
    g = torch.Generator().manual_seed(seed)
    z = scale * torch.randn(BATCH, T_STEPS, 1, generator=g)
    xs, prev = [], torch.zeros(BATCH, 1)
    for t in range(T_STEPS):
        prev = 0.5 * prev + 0.5 * z[:, t]
        xs.append(prev)
    return torch.stack(xs, dim=1)


def last_output_lattice(m: Stack, x: Tensor) -> Tensor:
    y = torch.zeros(x.shape[0], x.shape[1], 1)
    return lattice_gradients(m, x, lambda yh: mse(yh[:, -1:], y[:, -1:]))[("last", "hidden")]


def all_outputs_lattice(m: Stack, x: Tensor) -> Tensor:
    y = torch.zeros(x.shape[0], x.shape[1], 1)
    return lattice_gradients(m, x, lambda yh: mse(yh[:, -1:], y[:, -1:]), lambda yh: mse(yh, y))[("all", "hidden")]


def quarters(g: Tensor) -> Tensor:
    """Per layer: mean over the first quarter of time steps / mean over the last quarter."""
    q = g.shape[1] // 4
    return g[:, :q].mean(1) / g[:, -q:].mean(1)


def test_vrnn_orthogonal_lattice_grows_toward_shallow_layers():
    # Loss on the last output. Measured (seeds 0..3): layer-1 / layer-4 mean 17..25; g(1, 1) / g(4, T) 2.1..3.7.
    # Each node receives the gradient of the next time step and of the layer above through orthogonal maps
    # (times tanh' <= 1); where tanh' ~ 1 their squared norms add, so |g|^2 counts lattice paths.
    g = last_output_lattice(orthogonal_stack("vrnn"), star_inputs(1.0))
    by_layer = g.mean(dim=1)
    assert (by_layer[:-1] > by_layer[1:]).all(), by_layer
    assert by_layer[0] > 5 * by_layer[-1]
    assert g[0, 0] > 1.5 * g[-1, -1]


def test_vrnn_orthogonal_lattice_all_outputs_grows_toward_early_and_shallow():
    # STAR's second panel (loss on every output) at unit input scale. Measured (seeds 0..3): first/last
    # quarter of layer 1 3.4..4.1, of layer 2 1.6..2.4; g(1, 1) / g(4, T) 18..33.
    g = all_outputs_lattice(orthogonal_stack("vrnn"), star_inputs(1.0))
    by_layer = g.mean(dim=1)
    assert (by_layer[:-1] > by_layer[1:]).all(), by_layer
    r = quarters(g)
    assert r[0] > 2 and r[1] > 1.2, r
    assert g[0, 0] > 8 * g[-1, -1]


def test_vrnn_orthogonal_lattice_grows_toward_early_times_only_where_tanh_is_linear():
    # Early-time growth needs tanh' ~ 1 along the time path. With STAR's unit-scale input the residual stream
    # grows with depth (rms h per layer 0.19, 0.33, 0.45, 0.55 at t = T) and the deeper rows shrink toward
    # early times (first/last quarter 0.95, 0.23, 0.03, 0.004); at input scale 0.1 (rms h 0.03 .. 0.28) the
    # shallow rows grow toward early times (4.8, 2.2, then 0.9, 0.25) and g(1,1)/g(4,T) is 28 (seeds 0..3:
    # layer 1 4.0..4.8, layer 2 1.85..2.5, ratio 21..29; top layer at unit scale 0.003..0.006).
    m = orthogonal_stack("vrnn")
    small = last_output_lattice(m, star_inputs(0.1))
    r = quarters(small)
    assert r[0] > 2.5 and r[1] > 1.5, r
    assert small[0, 0] > 10 * small[-1, -1]
    unit = quarters(last_output_lattice(m, star_inputs(1.0)))
    assert unit[-1] < 0.1, unit  # the saturated top layer: the tanh slope wins over the path count


def test_lstm_orthogonal_lattice_shrinks_toward_early_times():
    # STAR's contrast: the LSTM's gates (sigmoid(0) = 1/2 at zero bias) halve the carried state every step.
    # Measured first/last quarter ~ 1e-4 in every layer.
    r = quarters(last_output_lattice(orthogonal_stack("lstm"), star_inputs(1.0)))
    assert (r < 1e-2).all(), r


# ---------------------------------------------------------------------------------------------------------
# signal


def test_ar1_inputs_replay_the_recursion_exactly():
    rho = 0.7
    x = ar1_inputs(3, 50, 2, rho, torch.Generator().manual_seed(5), dtype=torch.float64)
    eps = torch.randn(3, 50, 2, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    torch.testing.assert_close(x[:, 0], eps[:, 0], rtol=0, atol=0)
    torch.testing.assert_close(x[:, 1:] - rho * x[:, :-1], math.sqrt(1 - rho**2) * eps[:, 1:], rtol=1e-12, atol=1e-12)


def test_ar1_inputs_are_stationary_unit_variance_with_lag1_correlation_rho():
    rho, B, T, d = 0.9, 2000, 40, 2
    x = ar1_inputs(B, T, d, rho, torch.Generator().manual_seed(0), dtype=torch.float64)
    # Per-time variance over B*d = 4000 independent values: sd of the estimate sqrt(2/4000) = 0.022;
    # 0.12 is over 5 sd, at the first and at the last step (stationary from the start).
    for t in (0, T - 1):
        assert x[:, t].var().item() == pytest.approx(1.0, abs=0.12)
    # Pooled lag-1 correlation over n = B*d*(T-1) = 156,000 pairs: Bartlett's sd sqrt((1 - rho^2)/n) ~ 1.1e-3
    # for one series; chains of 40 steps make the pairs dependent, so allow 0.01 (~9 sd).
    r1 = (x[:, 1:] * x[:, :-1]).mean() / x.pow(2).mean()
    assert r1.item() == pytest.approx(rho, abs=0.01)
    r5 = (x[:, 5:] * x[:, :-5]).mean() / x.pow(2).mean()
    assert r5.item() == pytest.approx(rho**5, abs=0.02)


def signal_stack(cell: str, t: float, seed: int = 0) -> Stack:
    torch.manual_seed(seed)
    return Stack(cell, 16, 32, 16, depth=4, d_model=16, block="glu", r_min=1 - 1 / t, r_max=1 - 1 / (2 * t))


def signal_values(cell: str, t: float) -> dict[str, Tensor]:
    g = torch.Generator().manual_seed(1)
    x = ar1_inputs(4, 200, 16, 0.9, g)
    rows = signal_stats(signal_stack(cell, t), x, torch.randn(4, 200, 16, generator=g))
    out: dict[str, list] = {}
    for layer, q, v in zip(rows["layer"], rows["quantity"], rows["value"]):
        out.setdefault(q, []).append(v)
    assert [l for l, q in zip(rows["layer"], rows["quantity"]) if q == "act_sq"] == [1, 2, 3, 4]
    return {q: torch.tensor(v, dtype=torch.float64) for q, v in out.items()}


def test_signal_cdiag_blows_up_as_nu_goes_to_one_and_lru_stays_flat():
    # Zucchet & Orvieto Fig. 5A at init: without normalisation mean(h^2) grows like 1/(1 - |lambda|^2) per
    # layer (compounded through the residual stream); the LRU's gamma = sqrt(1 - |lambda|^2) cancels it.
    # Measured (T = 300, batch 8): cdiag act_sq layer 1..4 from 0.40..0.58 at t = 1 to 14..3100 at t = 100;
    # lru 0.34..0.50 -> 0.21..0.33; cdiag's recurrent grad_sq grows ~1e11, the lru's ~1e2..1e3.
    cd1, cd100 = signal_values("cdiag", 1.0), signal_values("cdiag", 100.0)
    lr1, lr100 = signal_values("lru", 1.0), signal_values("lru", 100.0)
    assert (cd100["act_sq"] > 10 * cd1["act_sq"]).all(), (cd1["act_sq"], cd100["act_sq"])
    ratio = lr100["act_sq"] / lr1["act_sq"]
    assert ((ratio > 1 / 3) & (ratio < 3)).all(), ratio
    cd_growth = cd100["grad_sq_recurrent"] / cd1["grad_sq_recurrent"]
    lr_growth = lr100["grad_sq_recurrent"] / lr1["grad_sq_recurrent"]
    assert (cd_growth > 1e3 * lr_growth).all(), (cd_growth, lr_growth)


def test_signal_grad_split_matches_param_groups():
    # The recurrent mean square is taken over exactly the layer's `recurrent` group (lam_a, lam_b: 2 * 32
    # entries); recompute it from an ordinary backward pass on a copy of the model.
    m = signal_stack("cdiag", 10.0)
    g = torch.Generator().manual_seed(2)
    x, z = ar1_inputs(2, 30, 16, 0.5, g), torch.randn(2, 30, 16, generator=g)
    rows = signal_stats(m, x, z)
    copy = signal_stack("cdiag", 10.0)
    copy.load_state_dict(m.state_dict())
    (0.5 * (copy(x) - z).pow(2).mean()).backward()
    layer = copy.layers[2]
    rec = torch.cat([layer.lam_a.grad, layer.lam_b.grad]).double()
    others = [p.grad for n, p in layer.named_parameters() if not n.startswith("lam")]
    others += [p.grad for p in copy.mixers[2].parameters()]
    other = torch.cat([g_.reshape(-1) for g_ in others]).double()
    got = {q: v for l, q, v in zip(rows["layer"], rows["quantity"], rows["value"]) if l == 3}
    assert got["grad_sq_recurrent"] == pytest.approx(rec.pow(2).mean().item(), rel=1e-5)
    assert got["grad_sq_other"] == pytest.approx(other.pow(2).mean().item(), rel=1e-5)
    with torch.no_grad():
        _, S = m.unroll(x)
    h = torch.stack([s[2] for s in S])
    assert got["act_sq"] == pytest.approx((h.real**2 + h.imag**2).double().mean().item(), rel=1e-6)


# ---------------------------------------------------------------------------------------------------------
# both probes: schema, options, no side effects


def probe_context(model: Stack, T: int = 12) -> ProbeContext:
    task = TeacherStudent(nu=0.5, seq_len=T)
    x, y = task.sample(5, torch.Generator().manual_seed(0))
    return ProbeContext(model=model, task=task, x=x, y=y, step=7, lr=1e-3, device=torch.device("cpu"), seed=3)


def schema_columns(table: str) -> set[str]:
    return set(SCHEMAS[table].names) - {"sweep_id", "trial_id"}


@pytest.mark.parametrize("probe, spec", [
    (LatticeProbe, "seq_len=8:batch=3:params=true"),
    (SignalProbe, "rho=0.8:seq_len=20:batch=4"),
    (SignalProbe, "ar1=false"),
])
def test_probe_rows_schema_and_no_side_effects(probe, spec):
    torch.manual_seed(0)
    model = Stack("lstm", 1, 6, 1, depth=3, d_model=4, block="glu", layer_norm=True)
    ctx = probe_context(model)
    (ctx.task.loss(model(ctx.x), ctx.y)).backward()  # some .grad that the probe must leave alone
    params = {n: p.detach().clone() for n, p in model.named_parameters()}
    grads = {n: p.grad.clone() for n, p in model.named_parameters()}
    rng = torch.get_rng_state()
    out = probe(parse_options(probe.Options, spec, probe.name))(ctx)
    assert set(out) == set(probe.tables)
    (table,) = probe.tables
    rows = out[table]
    assert set(rows) == schema_columns(table)
    n = len(rows["step"])
    assert n > 0 and all(len(v) == n for v in rows.values())
    assert set(rows["step"]) == {7}
    if probe is LatticeProbe:
        assert n == 2 * 2 * 3 * 8  # losses x wrt x layers x seq_len
        assert set(rows["t"]) == set(range(1, 9)) and set(rows["layer"]) == {1, 2, 3}
        assert all(math.isfinite(v) and v >= 0 for v in rows["grad_norm"])
    else:
        assert n == 3 * 3 and sorted(set(rows["quantity"])) == ["act_sq", "grad_sq_other", "grad_sq_recurrent"]
        assert all(math.isfinite(v) and v > 0 for v in rows["value"])
    for name, p in model.named_parameters():
        assert torch.equal(p, params[name]), name
        assert torch.equal(p.grad, grads[name]), name
    assert torch.equal(torch.get_rng_state(), rng)
    assert all("step" not in layer.__dict__ for layer in model.layers)


def test_lattice_probe_rows_carry_the_hand_values_at_their_layer_and_t():
    # The hand stack of test_lattice_hidden_matches_hand_computation seen through the probe: x = (1, 0, 0) and
    # target 0, so the row (last, hidden, layer l, t) must hold the hand value at [l - 1, t - 1].
    ctx = probe_context(hand_stack(), T=3)
    ctx.x = torch.tensor([[1.0, 0.0, 0.0]], dtype=torch.float64)[..., None]
    ctx.y = torch.zeros_like(ctx.x)
    rows = LatticeProbe(LatticeOptions(params=True))(ctx)["lattice"]
    got = {(lo, w, l, t): v for lo, w, l, t, v in
           zip(rows["loss"], rows["wrt"], rows["layer"], rows["t"], rows["grad_norm"])}
    assert len(got) == 2 * 2 * 2 * 3
    expected = [[4.5, 6.75, 9.0], [0.5625, 1.125, 2.25]]
    for l in (1, 2):
        for t in (1, 2, 3):
            assert got[("last", "hidden", l, t)] == pytest.approx(expected[l - 1][t - 1], rel=1e-12)
    assert got[("last", "params", 1, 1)] == pytest.approx(math.sqrt(20.25 + 2 * 0.31640625), rel=1e-12)


def test_signal_probe_is_reproducible_from_the_trial_seed():
    torch.manual_seed(0)
    model = Stack("lru", 1, 8, 1, depth=2, d_model=4, block="glu", r_min=0.9)
    ctx = probe_context(model)
    probe = SignalProbe(SignalOptions(seq_len=16))
    a, b = probe(ctx)["signal"]["value"], probe(ctx)["signal"]["value"]
    assert a == b
    ctx.seed = 4
    assert probe(ctx)["signal"]["value"] != a


def test_options_parse_and_defaults():
    o = parse_options(LatticeOptions, "every=50:params=true:seq_len=30", "lattice")
    assert (o.every, o.params, o.seq_len, o.batch, o.at_init, o.at_end) == (50, True, 30, 0, True, False)
    s = parse_options(SignalOptions, "rho=0.5:ar1=false", "signal")
    assert (s.rho, s.ar1, s.every, s.at_end) == (0.5, False, 0, False)
    assert LatticeProbe.name == "lattice" and SignalProbe.name == "signal"
