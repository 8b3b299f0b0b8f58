"""`hessian`: Hessian eigen-statistics of the trial's loss on its fixed probe batch (``hessian`` table).

Everything is matrix-free, built on Hessian-vector products (HVPs) by double backward: one
``autograd.grad(loss, params, create_graph=True)`` for the gradient g, then ``autograd.grad(g, params,
grad_outputs=v)`` = H v per product. On top of the HVP the probe runs the estimates of
``trainers.probes.spectrum`` (Lanczos top/bottom eigenvalues, Hutchinson trace, SLQ density, ipr/k90).

``HessianProbe`` runs these on a float64 deep copy of the trial's model (option ``dtype=float64``, the
default: the model is small and the copy is cheap, and float64 makes tol = 1e-4 reachable and the HVP's
round-off negligible; ``dtype=model`` uses the live model in its own dtype). The model's parameters, their
``.grad`` and the global RNG are never touched: products use ``autograd.grad`` and random vectors come from a
CPU ``torch.Generator`` seeded from the trial's seed only, so every call of a trial uses the same random
vectors (common random numbers: differences between steps are not sampling noise) and CPU and CUDA see the
same vectors. The forward is ``forward_pure`` (cuDNN RNNs have no double backward).

Rows (SCHEMAS["hessian"]; weight is null except for density):
  top (idx 0 = largest), bottom (idx 0 = smallest), trace (idx 0), density (idx = node index over the
  concatenated runs: run r's nodes are r*m .. r*m + m - 1), ipr and k90 (idx = rank of the top eigenvector,
  0 = top), sharpness_lr (idx 0: top eigenvalue x the next step's lr; 2 is the edge of stability of plain
  gradient descent).
"""
from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass
from typing import Callable

import torch
from torch import Tensor

from .base import Probe, ProbeContext, ProbeOptions
from .spectrum import hutchinson_trace, ipr, k90, slq_density, top_bottom


class HVP:
    """v -> H v for the Hessian of ``loss_fn()`` w.r.t. ``params``, on flat vectors of length ``dim``.

    The gradient graph is built once (create_graph=True) and kept; each call is one backward pass through
    it. ``calls`` counts the products. Parameters the loss does not depend on get zero rows and columns.
    """

    def __init__(self, loss_fn: Callable[[], Tensor], params: list[Tensor]):
        self.params = list(params)
        self.dim = sum(p.numel() for p in self.params)
        self.calls = 0
        loss = loss_fn()
        grads = torch.autograd.grad(loss, self.params, create_graph=True, materialize_grads=True)
        self.loss = loss.detach()
        self.grad = torch.cat([g.reshape(-1) for g in grads])
        p0 = self.params[0]
        self.dtype, self.device = p0.dtype, p0.device

    def __call__(self, v: Tensor) -> Tensor:
        self.calls += 1
        if not self.grad.requires_grad:  # the loss is linear in the parameters: H = 0
            return torch.zeros_like(v)
        hv = torch.autograd.grad(self.grad, self.params, grad_outputs=v.to(self.grad.dtype), retain_graph=True,
                                 materialize_grads=True)
        return torch.cat([h.reshape(-1) for h in hv]).to(v.dtype)


def hvp_fn(loss_fn: Callable[[], Tensor], params: list[Tensor]) -> HVP:
    """The Hessian-vector product of ``loss_fn()`` (a closure over ``params``) by double backward."""
    return HVP(loss_fn, params)


@dataclass(frozen=True)
class HessianOptions(ProbeOptions):
    k_top: int = 3  # largest eigenvalues reported (and the eigenvectors localisation is measured on)
    k_bottom: int = 1  # smallest eigenvalues reported (negative curvature)
    tol: float = 1e-4  # relative residual tolerance of the top/bottom Ritz pairs
    max_iter: int = 100  # HVP budget of the top/bottom Lanczos run
    trace_samples: int = 10  # Rademacher vectors of the Hutchinson trace (0: no trace row)
    density_vectors: int = 1  # SLQ runs (0: no density rows)
    density_steps: int = 30  # Lanczos steps per SLQ run (nodes per run)
    localisation_top: int = 3  # top eigenvectors whose ipr and k90 are reported (<= k_top)
    batch: int = 0  # sequences of the probe batch used (its first ones); 0 = all
    dtype: str = "float64"  # float64: probe a float64 deep copy of the model | model: the model as it is


class HessianProbe(Probe):
    """Top/bottom eigenvalues, Hutchinson trace, SLQ density, top-eigenvector localisation, sharpness x lr.

    Cost (HVPs, each about two backward passes through ``forward_pure``): the top/bottom run's n_hvp (at
    most max_iter) + trace_samples + density_vectors * density_steps; see bench/hessian.py for it as a
    multiple of one training step.
    """

    name = "hessian"
    tables = ("hessian",)
    Options = HessianOptions

    def __call__(self, ctx: ProbeContext) -> dict[str, dict[str, list]]:
        o = self.options
        if o.dtype not in ("float64", "model"):
            raise ValueError(f"hessian:dtype={o.dtype!r}; expected float64 or model")
        x, y = (ctx.x, ctx.y) if not o.batch else (ctx.x[: o.batch], ctx.y[: o.batch])
        if o.dtype == "float64":
            model = copy.deepcopy(ctx.model).to(torch.float64)
            for p in model.parameters():
                p.grad = None
            x = x.double() if x.is_floating_point() else x
            y = y.double() if y.is_floating_point() else y
        else:
            model = ctx.model
        probe_ctx = dataclasses.replace(ctx, model=model, x=x, y=y)
        params = [p for p in model.parameters() if p.requires_grad]
        with torch.enable_grad():
            H = hvp_fn(probe_ctx.loss_pure, params)
            dt, dev, dim = H.dtype, H.device, H.dim
            gen = torch.Generator().manual_seed(1_000_003 * ctx.seed + 0x4E55)
            ext = top_bottom(H, dim, o.k_top, o.k_bottom, o.tol, o.max_iter, gen, dt, dev)
            trace = hutchinson_trace(H, dim, o.trace_samples, gen, dt, dev) if o.trace_samples else None
            nodes, weights = (slq_density(H, dim, o.density_vectors, o.density_steps, gen, dt, dev)
                              if o.density_vectors else (torch.empty(0), torch.empty(0)))
        #: what the last call cost, for benchmarks and logs (not written to any table)
        self.last_stats = {"dim": dim, "n_hvp": H.calls, "lanczos_hvp": ext.n_hvp, "converged": ext.converged,
                           "residuals": ext.residuals.tolist()}
        rows: dict[str, list] = {"step": [], "stat": [], "idx": [], "value": [], "weight": []}

        def add(stat: str, values, weights_=None) -> None:
            values = [float(v) for v in values]
            rows["step"] += [ctx.step] * len(values)
            rows["stat"] += [stat] * len(values)
            rows["idx"] += list(range(len(values)))
            rows["value"] += values
            rows["weight"] += [float(w) for w in weights_] if weights_ is not None else [None] * len(values)

        add("top", ext.top.tolist())
        add("bottom", ext.bottom.tolist())
        if trace is not None:
            add("trace", [trace])
        if len(nodes):
            add("density", nodes.tolist(), weights.tolist())
        n_loc = min(o.localisation_top, ext.top_vectors.shape[1])
        add("ipr", [ipr(ext.top_vectors[:, i]) for i in range(n_loc)])
        add("k90", [k90(ext.top_vectors[:, i]) for i in range(n_loc)])
        if len(ext.top):
            add("sharpness_lr", [ext.top[0].item() * ctx.lr])
        return {"hessian": rows}
