"""Lattice gradients (``lattice`` table): the gradient magnitude at every (layer, time) node of an unrolled
depth-L stack, for the loss on the last output only and for the loss on all outputs (STAR, Turkoglu et al.,
Fig. 2; repo 0zgur0/STAckable-Recurrent-network). A vanilla tanh stack with orthogonal weights grows toward
early and shallow nodes, an LSTM shrinks, STAR stays near constant.

What is differentiated. h_t^l is the hidden vector of layer l after step t (``layer.hidden_of`` of its
state: h, not the LSTM's c). It reaches the loss by two routes: the next step of its own layer and, through
the cell's readout, the layers above at the same step. The total derivative needs the tensor that feeds
*both*, which is not the stacked state S_t of ``Stack.unroll`` (S_t only feeds step t + 1, so d loss / d S_T
is zero). While ``model.unroll`` runs, each layer's ``step`` is wrapped to keep the state it returns, and a
cell with a ``readout`` submodule (vrnn, gru, lstm) has that module's input kept as well: for those cells
the readout input *is* the h node upstream of the returned state (the LSTM returns cat(h, c), whose h slice
is a copy that the readout never sees). LTI cells compute their output from the returned state itself.

Definitions (rows of ``lattice``):
- ``wrt="hidden"``: grad_norm(l, t) = mean over the batch's samples b of ||d L_b / d h_t^l[b]||_2, where L_b is
  the loss of sample b alone. Task losses are means over the batch (L = mean_b L_b, samples independent), so
  this is B * ||d L / d h_t^l[b]|| averaged over b: independent of the probe batch size. Complex states: the
  norm of the complex gradient, = the norm over real and imaginary parts.
- ``wrt="params"``: grad_norm(l, t) = ||d L / d theta_{l,t}||_2 over all the cell's parameters (not the stack's
  encoder, norms, mixers or decoder), where theta_{l,t} is the copy of layer l's parameters used at step t
  (every step uses theta_l + zeta_{l,t} with zeta = 0; the gradient is taken with respect to the zetas).
  The parameters are shared by the batch, so this is the gradient of the batch loss, not a per-sample mean.
  Summed over t it is the ordinary parameter gradient.
- ``loss="last"``: the task loss on the last output only; ``loss="all"``: the task loss on every output (the
  task's mean over time steps, so "all" is on the scale of one output's loss).
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Iterator

import torch
from torch import Tensor, nn

from .base import Probe, ProbeContext, ProbeOptions

LossFn = Callable[[Tensor], Tensor]  # model output (batch, T, d_out) -> scalar


class _StepOf(nn.Module):
    """``cell.step`` as a module forward, so ``torch.func.functional_call`` can swap the cell's parameters."""

    def __init__(self, cell: nn.Module):
        super().__init__()
        self.cell = cell

    def forward(self, state: Tensor, x: Tensor) -> tuple[Tensor, Tensor]:
        return type(self.cell).step(self.cell, state, x)  # the class's step, not the wrapper installed below


@dataclass
class _Capture:
    hidden: list[list[Tensor]]  # hidden[l][t]: h_t^l, the node that feeds both the next step and the readout
    zetas: list[list[dict[str, Tensor]]]  # zetas[l][t]: zero perturbations of layer l's parameters at step t


@contextmanager
def _instrumented(model: nn.Module, params: bool) -> Iterator[_Capture]:
    """Wrap every layer's ``step`` for the duration of the block (restored on exit, also on error)."""
    layers = list(model.layers)
    cap = _Capture([[] for _ in layers], [[] for _ in layers])
    handles = []
    try:
        for l, layer in enumerate(layers):
            seen: list[Tensor] = []  # inputs of the readout during the current step
            readout = getattr(layer, "readout", None)
            if isinstance(readout, nn.Module):
                handles.append(readout.register_forward_pre_hook(lambda _m, args, seen=seen: seen.append(args[0])))
            stepper = _StepOf(layer)
            names = [n for n, p in layer.named_parameters() if p.requires_grad]

            def step(state: Tensor, x: Tensor, l=l, layer=layer, seen=seen, stepper=stepper, names=names):
                seen.clear()
                if params:
                    ps = dict(layer.named_parameters())
                    zeta = {n: torch.zeros_like(ps[n], requires_grad=True) for n in names}
                    s, y = torch.func.functional_call(stepper, {f"cell.{n}": ps[n] + z for n, z in zeta.items()},
                                                      (state, x))
                    cap.zetas[l].append(zeta)
                else:
                    s, y = stepper(state, x)
                h = layer.hidden_of(s)
                if seen:  # the readout's input is h itself, upstream of the returned state
                    if len(seen) != 1 or seen[0].shape != h.shape:
                        raise RuntimeError(f"layer {l + 1}: the readout saw {[tuple(v.shape) for v in seen]}, "
                                           f"expected one input shaped like h {tuple(h.shape)}")
                    h = seen[0]
                cap.hidden[l].append(h)
                return s, y

            layer.step = step  # an instance attribute shadowing the class method; deleted below
        yield cap
    finally:
        for h in handles:
            h.remove()
        for layer in layers:
            layer.__dict__.pop("step", None)


def lattice_gradients(model: nn.Module, x: Tensor, loss_fn_last: LossFn, loss_fn_all: LossFn | None = None,
                      params: bool = False) -> dict[tuple[str, str], Tensor]:
    """Gradient magnitudes on the (layer, time) lattice of ``model`` (a ``Stack``) run on ``x`` (batch, T, d_in).

    Returns ``{(loss, wrt): Tensor (depth, T)}`` (float64, on the CPU) for loss in "last" (``loss_fn_last``)
    and "all" (``loss_fn_all``, skipped when None), wrt in "hidden" and, when ``params``, "params"; entry
    [l, t] is layer l + 1 after step t + 1. Definitions in the module docstring. Parameters and their .grad
    are untouched (``torch.autograd.grad``).
    """
    losses = {"last": loss_fn_last, "all": loss_fn_all}
    losses = {k: f for k, f in losses.items() if f is not None}
    B = x.shape[0]
    with torch.enable_grad(), _instrumented(model, params) as cap:
        y, _ = model.unroll(x)
    depth, T = len(cap.hidden), len(cap.hidden[0])
    hs = [h for layer in cap.hidden for h in layer]
    zs = [z for layer in cap.zetas for step in layer for z in step.values()] if params else []
    sizes = [len(step) for layer in cap.zetas for step in layer] if params else []
    out: dict[tuple[str, str], Tensor] = {}
    for i, (name, fn) in enumerate(losses.items()):
        grads = torch.autograd.grad(fn(y), hs + zs, allow_unused=True, materialize_grads=True,
                                    retain_graph=i < len(losses) - 1)
        gh = torch.stack(grads[: len(hs)])  # (depth * T, batch, hidden)
        per_sample = torch.linalg.vector_norm(gh.reshape(depth * T, B, -1), dim=-1) * B
        out[(name, "hidden")] = per_sample.mean(dim=1).reshape(depth, T).double().cpu()
        if params:
            sq = torch.stack([torch.linalg.vector_norm(g).double() ** 2 for g in grads[len(hs):]])
            per_node = torch.stack([c.sum() for c in torch.split(sq, sizes)])
            out[(name, "params")] = per_node.sqrt().reshape(depth, T).cpu()
    return out


@dataclass(frozen=True)
class LatticeOptions(ProbeOptions):
    every: int = 0  # steps between calls after init (0 = at init only)
    at_init: bool = True  # at step 0, the setting of STAR Fig. 2
    at_end: bool = False  # also after the last step
    seq_len: int = 0  # 0 = the probe batch's own T; else the first seq_len steps (the lattice is depth x T rows)
    batch: int = 0  # 0 = the whole probe batch; else its first `batch` sequences
    params: bool = False  # also the gradient w.r.t. each step's copy of the cell parameters (wrt="params")


class LatticeProbe(Probe):
    """Gradient norm at every (layer, time) node of the unrolled network.

    ``lattice:every=N:seq_len=T:batch=B:params=true``; rows (step, loss, wrt, layer, t, grad_norm).

    The loss is the trial's task loss against the probe batch's targets: "last" on y_hat[:, -1:] vs
    y[:, -1:], "all" on the whole sequence. Targets must be per time step (y shaped (batch, T, ...)); a task
    whose target is a single label per sequence gets only the "last" rows, from its own loss.
    """

    name = "lattice"
    tables = ("lattice",)
    Options = LatticeOptions

    def __call__(self, ctx: ProbeContext) -> dict[str, dict[str, list]]:
        o = self.options
        x, y = ctx.x, ctx.y
        if o.batch:
            x, y = x[: o.batch], y[: o.batch]
        per_step = y.dim() >= 2 and y.shape[1] == x.shape[1]
        if o.seq_len:
            x = x[:, : o.seq_len]
            y = y[:, : o.seq_len] if per_step else y
        if per_step:
            last = lambda y_hat: ctx.task.loss(y_hat[:, -1:], y[:, -1:])
            all_ = lambda y_hat: ctx.task.loss(y_hat, y)
        else:
            last, all_ = (lambda y_hat: ctx.task.loss(y_hat, y)), None
        res = lattice_gradients(ctx.model, x, last, all_, params=o.params)
        rows: dict[str, list] = {k: [] for k in ("step", "loss", "wrt", "layer", "t", "grad_norm")}
        for (loss, wrt), g in res.items():
            depth, T = g.shape
            n = depth * T
            rows["step"] += [ctx.step] * n
            rows["loss"] += [loss] * n
            rows["wrt"] += [wrt] * n
            rows["layer"] += [l for l in range(1, depth + 1) for _ in range(T)]
            rows["t"] += list(range(1, T + 1)) * depth
            rows["grad_norm"] += g.reshape(-1).tolist()
        return {"lattice": rows}
