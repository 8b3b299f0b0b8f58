"""The uniform cell interface and the shared fast paths: fused torch RNN kernels (``FusedCoreCell``), the
time loop of the other nonlinear cells (``ScanCell``) and the FFT convolution of linear time-invariant cells.

Every cell maps a sequence ``x`` of shape (batch, T, d_in) to ``y`` of shape (batch, T, d_out) and offers:

- ``init_state(batch)`` -> one state tensor (LSTM packs h and c into one tensor);
- ``step(state, x_t)`` -> ``(state, y_t)``, the stepwise form used by attractor sampling and per-time probes;
- ``forward(x)`` -> ``y``, the fast whole-sequence form used in training;
- ``forward_stepwise(x)``, a plain Python loop over ``step`` (the reference the fast form is tested against;
  parametrised weights are evaluated once per call, inside ``torch.nn.utils.parametrize.cached()``);
- ``forward_pure(x)``, a whole-sequence form that supports double backward (for Hessian probes);
- ``hidden_of(state)``, the hidden vector h inside a state;
- ``param_groups()`` -> {group: [parameters]} for per-group gradient norms (``recurrent``, ``input``, ...).

LTI cells (h_t = A h_{t-1} + B x_t, y_t = Re(C h_t) + D x_t) never loop over time in ``forward``: the
output is the causal convolution of x with the impulse response K_k = Re(C A^k B) (+ D at k = 0),
computed by FFT; A^k is formed elementwise for diagonal A and by log-depth doubling for block A.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.nn.utils import parametrize


class Cell(nn.Module):
    """Base class of every recurrent cell; subclasses set d_in, hidden, d_out and ``GROUPS``."""

    #: parameter-name prefix -> gradient-norm group name; unmatched parameters fall into "other"
    GROUPS: dict[str, str] = {}
    #: the ``CellSpec.init`` values this cell supports (``init_weights`` applies them)
    INITS: tuple[str, ...] = ("default",)
    #: whether seed bundles (trainers.bundle) train this cell: its ``forward_pure`` under ``torch.vmap`` over
    #: stacked parameters, S seeds at once. False where that is slower than S solo runs (bench/bundle.py).
    BATCHABLE: bool = True

    def __init__(self, d_in: int, hidden: int, d_out: int):
        super().__init__()
        self.d_in, self.hidden, self.d_out = d_in, hidden, d_out

    def init_state(self, batch: int) -> Tensor:
        raise NotImplementedError

    def step(self, state: Tensor, x: Tensor) -> tuple[Tensor, Tensor]:
        raise NotImplementedError

    def forward_stepwise(self, x: Tensor) -> Tensor:
        state, ys = self.init_state(x.shape[0]), []
        with parametrize.cached():
            for x_t in x.unbind(1):  # not x[:, t]: its backward writes a zero (batch, T, d_in) tensor per step
                state, y = self.step(state, x_t)
                ys.append(y)
        return torch.stack(ys, dim=1)

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_stepwise(x)

    def forward_pure(self, x: Tensor) -> Tensor:
        """A whole-sequence form that supports double backward (Hessian-vector products). The fast form
        where it does; cells whose fast form is a fused kernel (cuDNN RNNs) override it with the loop."""
        return self.forward(x)

    def hidden_of(self, state: Tensor) -> Tensor:
        """The part of the state that is the hidden vector h (LSTM: h of [h, c])."""
        return state

    def init_weights(self, init: str, t_max: int) -> None:
        """Re-initialise for ``CellSpec.init`` (one of ``INITS``; "default" keeps the constructor's init)."""

    def constrain(self) -> None:
        """Called after every optimiser step; a cell that keeps its weights in a set (the stable LSTM's
        norm bound) projects them back here. Runs under ``torch.no_grad``."""

    def param_groups(self) -> dict[str, list[nn.Parameter]]:
        groups: dict[str, list[nn.Parameter]] = {}
        for name, p in self.named_parameters():
            group = next((g for prefix, g in self.GROUPS.items() if name.startswith(prefix)), "other")
            groups.setdefault(group, []).append(p)
        return groups


class FusedCoreCell(Cell):
    """Cells whose weights live in a torch RNN module ``core`` (nn.RNN / nn.GRU / nn.LSTM, batch_first), so
    training runs torch's fused kernel (cuDNN on GPU), while subclasses write ``step`` out in plain PyTorch
    (double-backward safe: it is also the Hessian probes' path). A bias-free readout maps h to d_out.

    The kernel computes exactly the cell's function for every cell here (vrnn, gru, lstm, slstm; every init:
    inits only set the weights, and slstm's ``constrain`` runs between steps), so there is no fallback. On CPU
    torch's RNNs are composite ops, not a fused kernel: double backward works there too, but at batch 128,
    T = 300 a training step is no faster than ``forward_stepwise`` (``bench/cell_speed.py``) and an HVP through
    it was slower (0.9 s against 0.4-0.7 s for gru / lstm at hidden 64), so ``forward_pure`` is the stepwise
    loop on every device."""

    GROUPS = {"core.weight_hh": "recurrent", "core.bias_hh": "recurrent", "core.weight_ih": "input",
              "core.bias_ih": "input", "readout": "output"}
    STATE_WIDTH = 1  # state size in units of hidden (LSTM: 2, for [h, c])
    INITS = ("default", "orthogonal", "chrono")

    def __init__(self, core: nn.Module, d_out: int):
        super().__init__(core.input_size, core.hidden_size, d_out)
        self.core = core
        self.readout = nn.Linear(core.hidden_size, d_out, bias=False)

    def init_state(self, batch: int) -> Tensor:
        w = self.core.weight_hh_l0
        return torch.zeros(batch, self.STATE_WIDTH * self.hidden, dtype=w.dtype, device=w.device)

    def forward(self, x: Tensor) -> Tensor:
        return self.readout(self.core(x)[0])

    def forward_pure(self, x: Tensor) -> Tensor:
        return self.forward_stepwise(x)  # cuDNN's fused RNN has no double backward

    def hidden_of(self, state: Tensor) -> Tensor:
        return state[..., : self.hidden]

    def init_weights(self, init: str, t_max: int) -> None:
        """``orthogonal``: each gate's block of the recurrent and the input matrix orthogonal, biases zero
        (STAR's setting, Turkoglu et al.); ``chrono``: the same plus ``chrono_bias`` (Tallec & Ollivier 2018)."""
        if init == "default":
            return
        core, gates = self.core, self.core.weight_hh_l0.shape[0] // self.hidden
        with torch.no_grad():
            for w in (core.weight_hh_l0, core.weight_ih_l0):
                for block in w.split(self.hidden, dim=0):
                    block.copy_(nn.init.orthogonal_(torch.empty_like(block)))
            core.bias_hh_l0.zero_()
            core.bias_ih_l0.zero_()
            if init == "chrono":
                if t_max < 2:
                    raise ValueError(f"chrono init needs t_max >= 2 (the sequence length), got {t_max}")
                self.chrono_bias(core.bias_ih_l0.view(gates, self.hidden), t_max)

    def chrono_bias(self, bias: Tensor, t_max: int) -> None:
        """Set the gate biases (``bias`` viewed as (gates, hidden), torch's gate order) for chrono init."""
        raise ValueError(f"{type(self).__name__} has no gates for chrono init")


class ScanCell(Cell):
    """Nonlinear cells with no fused torch kernel (star, lstmf, ornn), written in one form:

        a_t = g_t + W h_{t-1},   h_t = update(a_t, h_{t-1}, *e_t),   y_t = readout(h_t)

    where ``inputs(x)`` -> (g, *e) holds everything that does not depend on h (for one step or a whole
    sequence), ``recurrent_weight()`` is W and ``update`` is elementwise. Subclasses hold the modules ``input``
    (an nn.Linear), ``recurrent`` and ``readout`` (the ``GROUPS`` below). ``step`` and ``forward`` both run that
    form, so a cell writes its equations once. ``forward`` projects every step's input in one matmul, evaluates
    W once per call (ornn: one matrix exponential per training step, not one per time step) and loops over
    time for the recurrent matmul (fused with the add: ``addmm``) and the update only. It is double-backward
    safe, so it is also ``forward_pure``.

    Measured at batch 128, T = 300, hidden 128 on one CPU thread (issue 6; ``bench/cell_speed.py`` times the
    result): the step is matmul-bound there, and this loop runs at 0.3-0.6x an nn.LSTM step of the same size.
    ``torch.jit.script`` of the loop was no faster, and ``torch.compile`` of ``update`` took ~26 s to compile and
    was slower per call than eager on (128, 128) tensors, so the loop stays eager. Slicing ``g[:, t]`` instead of
    ``unbind`` made the backward O(T^2) (each slice's backward writes a zero tensor as large as the sequence):
    10x slower than the stepwise loop for star.
    """

    GROUPS = {"recurrent": "recurrent", "input": "input", "readout": "output"}

    def inputs(self, x: Tensor) -> tuple[Tensor, ...]:
        raise NotImplementedError

    def recurrent_weight(self) -> Tensor:
        raise NotImplementedError

    def update(self, a: Tensor, h: Tensor, *e: Tensor) -> Tensor:
        raise NotImplementedError

    def init_state(self, batch: int) -> Tensor:
        w = self.input.weight  # not the readout's: Stack(block="plain") makes inner readouts the identity
        return torch.zeros(batch, self.hidden, dtype=w.dtype, device=w.device)

    def step(self, state: Tensor, x: Tensor) -> tuple[Tensor, Tensor]:
        g, *e = self.inputs(x)
        h = self.update(torch.addmm(g, state, self.recurrent_weight().T), state, *e)
        return h, self.readout(h)

    def forward(self, x: Tensor) -> Tensor:
        g, *e = self.inputs(x)  # (batch, T, .) each: every step's input part at once
        Wt = self.recurrent_weight().T  # once per call
        h, hs = self.init_state(x.shape[0]), []
        for g_t, *e_t in zip(g.unbind(1), *(v.unbind(1) for v in e)):
            h = self.update(torch.addmm(g_t, h, Wt), h, *e_t)
            hs.append(h)
        return self.readout(torch.stack(hs, dim=1))


def chrono_draw(hidden: int, t_max: int, like: Tensor) -> Tensor:
    """log U(1, t_max - 1) per unit: the chrono init's gate bias, whose gate keeps memory over ~U(1, t_max) steps."""
    steps = torch.empty(hidden, dtype=like.dtype, device=like.device).uniform_(1.0, max(t_max - 1, 1.0 + 1e-6))
    return torch.log(steps)


def fft_size(n: int) -> int:
    """The smallest 5-smooth length >= n (only factors 2, 3, 5): pocketfft is fastest there, and it is often
    much shorter than the next power of two (T = 300: 600 instead of 1024, a 20-35% faster training step)."""
    m = n
    while True:
        k = m
        for p in (2, 3, 5):
            while k % p == 0:
                k //= p
        if k == 1:
            return m
        m += 1


def causal_conv(kernel: Tensor, x: Tensor) -> Tensor:
    """y[b, t, o] = sum_{k<=t} kernel[k, o, i] x[b, t-k, i], by FFT over time.

    kernel: (T, d_out, d_in), real; x: (batch, T, d_in), real.
    """
    T = x.shape[1]
    n = fft_size(2 * T - 1)  # >= 2T - 1, so the circular convolution is a linear one
    kf = torch.fft.rfft(kernel, n=n, dim=0)  # (F, o, i)
    xf = torch.fft.rfft(x, n=n, dim=1)  # (b, F, i)
    if kernel.shape[1] == 1 and kernel.shape[2] == 1:
        yf = xf * kf[None, :, :, 0]  # scalar kernel: a broadcast product, (b, F, 1) * (1, F, 1)
    else:
        yf = torch.einsum("bfi,foi->bfo", xf, kf)
    return torch.fft.irfft(yf, n=n, dim=1)[:, :T]


def block_powers_applied(A: Tensor, V: Tensor, T: int) -> Tensor:
    """A_g^k V_g for k = 0..T-1 by log-depth doubling, for block-diagonal A.

    A: (n_blocks, bs, bs); V: (n_blocks, bs, m). Returns (T, n_blocks, bs, m).
    ceil(log2 T) doublings of batched matmuls; no loop over time.
    """
    out = V[None]  # (1, g, bs, m): k = 0
    M = A  # A^(2^j)
    while out.shape[0] < T:
        out = torch.cat([out, torch.einsum("gij,tgjm->tgim", M, out)], dim=0)
        if out.shape[0] < T:
            M = M @ M
    return out[:T]


class LTICell(Cell):
    """Shared machinery of linear time-invariant cells.

    Subclasses implement ``modal_powers(V, T)`` = A^k V for k < T with V: (hidden, m) and the matrices
    ``input_matrix()`` (hidden, d_in), ``output_matrix()`` (d_out, hidden), which may be complex, and
    the real skip ``D`` (d_out, d_in). ``transition_apply(h)`` = A h is used by the stepwise form.
    """

    def input_matrix(self) -> Tensor:
        raise NotImplementedError

    def output_matrix(self) -> Tensor:
        raise NotImplementedError

    def modal_powers(self, V: Tensor, T: int) -> Tensor:
        raise NotImplementedError

    def transition_apply(self, h: Tensor) -> Tensor:
        raise NotImplementedError

    def impulse_response(self, T: int) -> Tensor:
        """K[k] = Re(C A^k B) + [k == 0] D, shape (T, d_out, d_in)."""
        AkB = self.modal_powers(self.input_matrix(), T)  # (T, hidden, d_in)
        K = torch.einsum("on,tni->toi", self.output_matrix(), AkB).real
        return torch.cat([K[:1] + self.D, K[1:]], dim=0)

    def forward(self, x: Tensor) -> Tensor:
        return causal_conv(self.impulse_response(x.shape[1]), x)

    def init_state(self, batch: int) -> Tensor:
        B = self.input_matrix()
        return torch.zeros(batch, self.hidden, dtype=B.dtype, device=B.device)

    def step(self, state: Tensor, x: Tensor) -> tuple[Tensor, Tensor]:
        B = self.input_matrix()
        h = self.transition_apply(state) + x.to(B.dtype) @ B.T
        y = (h @ self.output_matrix().T).real + x @ self.D.T
        return h, y


def normal_init(*shape: int, scale_dim: int) -> Tensor:
    """N(0, 1)/sqrt(scale_dim) from the global RNG (the trainer seeds it), the authors' ``matrix_init``."""
    return torch.randn(*shape) / math.sqrt(scale_dim)


def ring_init(n: int, r_min: float, r_max: float, max_phase: float) -> tuple[Tensor, Tensor]:
    """Eigenvalue magnitudes uniform in area on the ring [r_min, r_max] and phases in [0, max_phase).

    Returns (nu, theta), both (n,) float64.
    """
    u = torch.rand(n, dtype=torch.float64)
    nu = torch.sqrt(u * (r_max**2 - r_min**2) + r_min**2)
    theta = torch.rand(n, dtype=torch.float64) * max_phase
    return nu, theta


def remap_eigenvalues(A0: Tensor, nu_min: float, nu_max: float = 1.0, max_phase: float = math.pi) -> Tensor:
    """Zucchet & Orvieto's recurrent init: |l| <- nu_min + (nu_max - nu_min) tanh|l|, angle scaled by
    max_phase / pi, A = Re(V diag(l') V^-1). Works on a batch of blocks (..., n, n). Float64 inside."""
    l, V = torch.linalg.eig(A0.double())
    mag = nu_min + (nu_max - nu_min) * torch.tanh(l.abs())
    l2 = torch.polar(mag, l.angle() * max_phase / math.pi)
    return (V @ torch.diag_embed(l2) @ torch.linalg.inv(V)).real
