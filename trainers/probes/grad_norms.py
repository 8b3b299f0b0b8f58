"""Per-parameter-group gradient norms (``grad_norms`` table), taken before clipping: of one model (a solo run)
or of each seed of stacked parameters (a bundle, seed on dim 0)."""
from __future__ import annotations

import torch
from torch import Tensor, nn


def group_norms(groups: dict[str, list[nn.Parameter]]) -> dict[str, float]:
    """L2 norm of the gradient of each group (one device sync for all groups)."""
    names, norms = [], []
    for name, params in groups.items():
        grads = [p.grad for p in params if p.grad is not None]
        if grads:
            names.append(name)
            norms.append(torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads])))
    return dict(zip(names, torch.stack(norms).tolist())) if norms else {}


def seed_group_norms(params: dict[str, Tensor], groups: dict[str, list[str]]) -> list[dict[str, float]]:
    """``group_norms`` of each seed of the stacked ``params`` (by name; ``groups``: each group's parameter
    names), in stack order; [] when no parameter has a gradient."""
    names, norms = [], []
    for g, ps in groups.items():
        grads = [params[n].grad for n in ps if n in params and params[n].grad is not None]
        if grads:
            names.append(g)
            norms.append(torch.linalg.vector_norm(
                torch.stack([torch.linalg.vector_norm(x.flatten(1), dim=1) for x in grads]), dim=0))
    return [dict(zip(names, row)) for row in torch.stack(norms).T.tolist()] if norms else []


def grad_norm_rows(step: int, norms: dict[str, float]) -> dict[str, list]:
    """The ``grad_norms`` rows of ``step``: one a group."""
    return {"step": [step] * len(norms), "group": list(norms), "norm": list(norms.values())}
