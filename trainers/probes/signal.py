"""Signal propagation at initialisation (``signal`` table): per layer of a deep stack, the mean squared
activation and the mean squared gradient of the recurrent and of the other parameters (Zucchet & Orvieto
2024, Fig. 5; repo NicolasZucchet/Vanishing-and-exploding-gradients-are-not-the-end-of-the-story).

The paper fed BERT embeddings to 4 residual blocks [recurrent -> GELU -> GLU -> residual]
(``Stack(..., block="glu")``) with |lambda| on the ring [1 - 1/t, 1 - 1/(2t)] and found that without input
normalisation (cdiag) mean(h^2) and the recurrent gradients blow up as |lambda| -> 1, while the LRU's gamma keeps
them flat. Offline the inputs are AR(1) with a chosen autocorrelation rho (``ar1_inputs``).

Definitions (rows of ``signal``, one per layer l and quantity):
- ``act_sq``: mean of |h_t^l|^2 over batch, time and hidden units (complex states: |h|^2 = re^2 + im^2; the
  LSTM's h only), from ``model.unroll`` without a graph.
- ``grad_sq_recurrent``: mean over the entries of layer l's ``recurrent`` parameter group (lambda's two real
  parameters for diagonal cells, A for dense ones, W_hh and b_hh for gated ones) of (dL/dtheta)^2.
- ``grad_sq_other``: the same mean over every other trainable parameter of layer l: the cell's other groups
  (input, gamma, output) plus the block's norm and GLU mixer. The stack's encoder and decoder belong to no
  layer and are left out.
- ``grad_sq_nu`` and ``grad_sq_theta`` (diagonal cells only: the paper's Fig. 5B split of the recurrent
  gradient into magnitude and angle): the mean over the layer's units of (dL/d nu_n)^2 and (dL/d theta_n)^2.
  For the LRU (``exp``: lambda = exp(-exp(w_nu) + i exp(w_theta))) these are its own parameters w_nu and
  w_theta, whose squares average to ``grad_sq_recurrent``. For cdiag / cdiag_norm (lambda = a + i b trained
  directly) they are the gradients with respect to lambda's polar coordinates, |lambda| and arg(lambda):
  dL/d|lambda| = g_a cos phi + g_b sin phi, dL/d phi = -g_a b + g_b a. Gated and dense cells have no such
  split and get no rows (their recurrent vs other rows stay).
The loss is L = 0.5 mean((y - z)^2) over batch, time and outputs, against a fixed target z ~ N(0, 1) of the
output's shape (a regression loss at init whose output gradient does not vanish where y is small); the
gradient goes through the model's training forward.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ..cells.cdiag import DiagonalLTI
from .base import Probe, ProbeContext, ProbeOptions

QUANTITIES = ("act_sq", "grad_sq_recurrent", "grad_sq_other")
LAMBDA_QUANTITIES = ("grad_sq_nu", "grad_sq_theta")  # diagonal cells only


def ar1_inputs(batch: int, T: int, d: int, rho: float, generator: torch.Generator,
               dtype: torch.dtype = torch.float32) -> Tensor:
    """AR(1) sequences (batch, T, d) on the generator's device: x_1 ~ N(0, 1) (the stationary law), then
    x_t = rho x_{t-1} + sqrt(1 - rho^2) eps_t, eps_t ~ N(0, 1) i.i.d. Every x_t is N(0, 1) and
    corr(x_t, x_{t+k}) = rho^k, for each of the d channels independently. |rho| < 1."""
    if not -1.0 < rho < 1.0:
        raise ValueError(f"rho={rho} must lie in (-1, 1)")
    eps = torch.randn(batch, T, d, generator=generator, device=generator.device, dtype=dtype)
    c = math.sqrt(1.0 - rho * rho)
    xs = [eps[:, 0]]
    for t in range(1, T):
        xs.append(rho * xs[-1] + c * eps[:, t])
    return torch.stack(xs, dim=1)


def layer_param_split(model: nn.Module) -> list[tuple[list[nn.Parameter], list[nn.Parameter]]]:
    """Per layer of a ``Stack``: (recurrent parameters, other parameters) as defined in the module docstring."""
    split = []
    for l, layer in enumerate(model.layers):
        groups = layer.param_groups()
        rec = [p for p in groups.get("recurrent", []) if p.requires_grad]
        other = [p for g, ps in groups.items() if g != "recurrent" for p in ps if p.requires_grad]
        other += [p for p in model.norms[l].parameters() if p.requires_grad]
        other += [p for p in model.mixers[l].parameters() if p.requires_grad]
        split.append((rec, other))
    return split


def lambda_split(layer: nn.Module, g_a: Tensor, g_b: Tensor) -> tuple[Tensor, Tensor] | None:
    """(dL/d nu, dL/d theta) per unit of a diagonal cell, from the gradients of its stored lambda parameters
    (``lam_a``, ``lam_b``); None for a cell without a complex diagonal lambda. See the module docstring."""
    if not isinstance(layer, DiagonalLTI):
        return None
    if layer.parametrisation == "exp":
        return g_a, g_b  # w_nu, w_theta: the LRU's own magnitude and angle parameters
    a, b = layer.lam_a.detach(), layer.lam_b.detach()
    r = torch.hypot(a, b)
    return g_a * a / r + g_b * b / r, -g_a * b + g_b * a  # d/d|lambda|, d/d arg(lambda)


def _mean_sq(grads: list[Tensor]) -> float:
    n = sum(g.numel() for g in grads)
    return sum(g.double().pow(2).sum() for g in grads).item() / n if n else float("nan")


def signal_stats(model: nn.Module, x: Tensor, target: Tensor) -> dict[str, list]:
    """Rows {layer, quantity, value} (no ``step``) of ``model`` (a ``Stack``) on ``x`` (batch, T, d_in) with the
    loss 0.5 mean((model(x) - target)^2). Parameters and their .grad are untouched. A layer without
    recurrent parameters gets NaN for ``grad_sq_recurrent``."""
    with torch.no_grad():
        _, states = model.unroll(x)
    S = torch.stack(states)  # (T, depth, batch, state)
    split = layer_param_split(model)
    flat = [p for rec, other in split for p in rec + other]
    with torch.enable_grad():
        loss = 0.5 * (model(x) - target).pow(2).mean()
        grads = torch.autograd.grad(loss, flat, allow_unused=True, materialize_grads=True)
    by_param = {id(p): g for p, g in zip(flat, grads)}
    rows: dict[str, list] = {"layer": [], "quantity": [], "value": []}
    for l, (layer, (rec, other)) in enumerate(zip(model.layers, split)):
        h = layer.hidden_of(S[:, l])
        act = (h.abs().pow(2) if h.is_complex() else h.pow(2)).double().mean().item()
        values = (act, _mean_sq([by_param[id(p)] for p in rec]), _mean_sq([by_param[id(p)] for p in other]))
        split_grads = (lambda_split(layer, by_param[id(layer.lam_a)], by_param[id(layer.lam_b)])
                       if isinstance(layer, DiagonalLTI) else None)
        if split_grads is not None:
            values += tuple(_mean_sq([g]) for g in split_grads)
        for q, v in zip(QUANTITIES + LAMBDA_QUANTITIES, values):
            rows["layer"].append(l + 1)
            rows["quantity"].append(q)
            rows["value"].append(v)
    return rows


@dataclass(frozen=True)
class SignalOptions(ProbeOptions):
    every: int = 0  # steps between calls after init (0 = at init only, the paper's setting)
    at_init: bool = True  # at step 0
    at_end: bool = False  # also after the last step
    rho: float = 0.9  # lag-1 autocorrelation of the AR(1) inputs
    seq_len: int = 0  # 0 = the probe batch's T
    batch: int = 0  # 0 = the probe batch's size
    ar1: bool = True  # AR(1) inputs drawn from a generator seeded by the trial's seed; false = the probe batch x


class SignalProbe(Probe):
    """Per layer at init: mean squared activations and gradients of recurrent vs other parameters.

    ``signal:rho=0.9:seq_len=300:batch=32``; rows (step, layer, quantity, value), see the module docstring.

    Random numbers (AR(1) inputs, the N(0, 1) target) come from a generator seeded by ``ctx.seed`` on the
    trial's device: the same inputs at every call of a trial, and the global RNG is left alone.
    """

    name = "signal"
    tables = ("signal",)
    Options = SignalOptions

    def __call__(self, ctx: ProbeContext) -> dict[str, dict[str, list]]:
        o = self.options
        B = o.batch or ctx.x.shape[0]
        T = o.seq_len or ctx.x.shape[1]
        gen = torch.Generator(device=ctx.device).manual_seed(ctx.seed)
        if o.ar1:
            x = ar1_inputs(B, T, ctx.x.shape[-1], o.rho, gen, dtype=ctx.x.dtype)
        else:
            x = ctx.x[:B, :T]
        target = torch.randn(x.shape[0], x.shape[1], ctx.model.d_out, generator=gen, device=gen.device,
                             dtype=x.dtype)
        rows = signal_stats(ctx.model, x, target)
        return {"signal": {"step": [ctx.step] * len(rows["layer"]), **rows}}
