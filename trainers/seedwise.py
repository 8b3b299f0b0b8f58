"""Adam and SGD over stacked parameters (seed on dim 0) that behave as one optimiser per seed.

A seed bundle (trainers.bundle) trains S seeds' parameters stacked on a leading axis. Adam and SGD are
elementwise, so one update of the stacked tensors is S solo updates, except where a seed must not step: a
seed whose clipped gradient is NaN/Inf skips its step (solo: no ``opt.step()``, Adam's step count does not
advance) and a finished seed is frozen. ``step(mask)`` therefore updates only the seeds in ``mask`` and keeps
a step count per seed (Adam's bias correction uses the seed's own count). ``step(mask, lr)`` takes each seed's
own learning rate, an (S,) float64 tensor (a bundle of several rates); without it every seed uses the group's.
The arithmetic follows ``torch.optim.Adam`` / ``SGD`` (single-tensor path, no weight decay, no momentum, no
amsgrad), so a bundle's seed matches a solo run to float tolerance (tests/test_bundle.py).
Subclasses of ``torch.optim.Optimizer``: the solo run's lr schedulers and state_dict work unchanged. Every state
tensor has the seed axis first, so ``select_seeds`` can keep a subset of seeds (a resumed bundle whose other
seeds had finished).
"""
from __future__ import annotations

import torch
from torch import Tensor


def _per_seed(v: Tensor, like: Tensor) -> Tensor:
    """(S,) -> (S, 1, ..., 1), broadcastable against the stacked ``like``."""
    return v.view(-1, *([1] * (like.dim() - 1)))


class SeedwiseSGD(torch.optim.Optimizer):
    def __init__(self, params, lr: float):
        super().__init__(params, dict(lr=lr))

    @torch.no_grad()
    def step(self, mask: Tensor, lr: Tensor | None = None) -> None:  # type: ignore[override]
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    new = (p.add(p.grad, alpha=-group["lr"]) if lr is None
                           else p - _per_seed(lr.to(p.dtype), p) * p.grad)
                    p.copy_(torch.where(_per_seed(mask, p), new, p))


class SeedwiseAdam(torch.optim.Optimizer):
    def __init__(self, params, lr: float, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps))

    @torch.no_grad()
    def step(self, mask: Tensor, lr: Tensor | None = None) -> None:  # type: ignore[override]
        for group in self.param_groups:
            (beta1, beta2), eps = group["betas"], group["eps"]
            lr = group["lr"] if lr is None else lr.to(torch.float64)
            params = [p for p in group["params"] if p.grad is not None]
            if not params:
                continue
            for p in params:
                if p.is_complex():
                    raise TypeError("SeedwiseAdam takes real parameters (store complex ones as two real tensors)")
                state = self.state[p]
                if not state:
                    state["step"] = torch.zeros(p.shape[0], dtype=torch.float32, device=p.device)
                    state["exp_avg"] = torch.zeros_like(p)
                    state["exp_avg_sq"] = torch.zeros_like(p)
            # the bias corrections of every parameter at once, (P, S): a handful of ops per step, not per parameter
            steps = torch.stack([self.state[p]["step"] for p in params]) + mask.to(torch.float32)
            t = steps.double().clamp_min(1.0)  # seeds that never stepped: any finite value, masked below
            step_sizes, bias2_sqrts = lr / (1 - beta1 ** t), torch.sqrt(1 - beta2 ** t)
            for i, p in enumerate(params):
                state, m = self.state[p], _per_seed(mask, p)
                exp_avg = state["exp_avg"].lerp(p.grad, 1 - beta1)
                exp_avg_sq = state["exp_avg_sq"].mul(beta2).addcmul_(p.grad, p.grad, value=1 - beta2)
                step_size = _per_seed(step_sizes[i].to(p.dtype), p)
                denom = (exp_avg_sq.sqrt() / _per_seed(bias2_sqrts[i].to(p.dtype), p)).add_(eps)
                p.copy_(torch.where(m, p - step_size * (exp_avg / denom), p))
                state["exp_avg"] = torch.where(m, exp_avg, state["exp_avg"])
                state["exp_avg_sq"] = torch.where(m, exp_avg_sq, state["exp_avg_sq"])
                state["step"] = steps[i]


SEEDWISE = {"adam": SeedwiseAdam, "sgd": SeedwiseSGD}  # the bundle's counterpart of trainers.build.OPTIMIZERS


def select_seeds(state_dict: dict, idx: list[int]) -> dict:
    """An optimiser state_dict that keeps only the seeds ``idx`` (every state tensor is seed-first)."""
    keep = torch.tensor(idx, dtype=torch.long)
    state = {k: {name: v.index_select(0, keep.to(v.device)) for name, v in s.items()}
             for k, s in state_dict["state"].items()}
    return dict(state_dict, state=state)
