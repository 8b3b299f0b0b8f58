"""Per-parameter-group gradient norms (``grad_norms`` table), taken before clipping."""
from __future__ import annotations

import torch
from torch import nn


def group_norms(groups: dict[str, list[nn.Parameter]]) -> dict[str, float]:
    """L2 norm of the gradient of each group (one device sync for all groups)."""
    names, norms = [], []
    for name, params in groups.items():
        grads = [p.grad for p in params if p.grad is not None]
        if grads:
            names.append(name)
            norms.append(torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads])))
    return dict(zip(names, torch.stack(norms).tolist())) if norms else {}
