"""What follows each optimiser step of a trial, and when: written once for a solo run (``trainers.train``) and
for every seed of a bundle (``trainers.bundle``).

The two loops compute a step differently (one model; S models stacked under ``torch.vmap``), then hand each
trial's values to its ``Cadence``, which does the rest in one order: buffer the step's values on the device;
run the probes that are due (on a finite loss); check whether the task is solved (every ``solve_every``
steps); every ``CHECK_EVERY`` steps, and at a checkpoint, the last step or a solved step, move the buffer to
the trial's writer (one device sync) and stop at the first non-finite loss (diverged); evaluate every
``eval_every`` steps; and at the end give the trial's outcome. It also owns the trial's data stream and what a
checkpoint keeps of all this (``state``/``restore``). The step's own shared rules live here too: no clipping
is a limit of inf, and with clipping on a NaN/Inf gradient skips the step (``takes_step``). A bundle's seed
therefore writes its solo run's rows at its solo run's steps by construction, not only by test.

Why one cadence that both loops call, rather than a solo run as a bundle of one: a bundle computes through
``forward_pure`` under vmap, the seedwise optimisers and a per-seed clip, so a solo run made a bundle of one
would no longer write today's numbers (the ornn's batched ``matrix_exp`` alone moves a seed ~1e-6 off its solo
run within two steps: tests/test_bundle.py), and some cells must stay solo anyway (``Cell.BATCHABLE`` false:
the LSTM's fused kernel is 2x faster solo than vmapped, bench/bundle.py). So a solo loop stays; with one
cadence the two loops share every rule and differ only in how a step is computed, at no cost to solo runs.
"""
from __future__ import annotations

import math
import time
from typing import Callable

import torch
from torch import Tensor, nn

from .build import data_generator, evaluate
from .config import TrialConfig
from .probes import ProbeContext, build_probe
from .record import TrialWriter
from .solved import is_solved

CHECK_EVERY = 25  # steps between device syncs that move losses to the host and test for divergence


def clip_limit(cfg: TrialConfig) -> float:
    """The global-norm clipping threshold; inf when clipping is off."""
    return cfg.clip if cfg.clip else math.inf


def takes_step(norm: Tensor, max_norm: float) -> Tensor | bool:
    """Whether a run takes its optimiser step after a gradient of global norm ``norm`` (a solo run's scalar, or a
    bundle's (S,) norms: then a mask). Always with clipping off (a solo run gets True: no device sync); with
    clipping on, a NaN/Inf gradient is skipped (Pascanu et al. 2013): no update, Adam's step count does not
    advance."""
    if max_norm == math.inf:
        return True if norm.dim() == 0 else torch.ones_like(norm, dtype=torch.bool)
    return torch.isfinite(norm)


def checkpoint_due(cfg: TrialConfig, step: int) -> bool:
    return bool(cfg.checkpoint_every and step % cfg.checkpoint_every == 0 and step < cfg.steps)


def grad_norms_due(cfg: TrialConfig, step: int) -> bool:
    return bool(cfg.grad_norm_every and step % cfg.grad_norm_every == 0)


def report_due(cfg: TrialConfig, step: int, checkpoint: bool) -> bool:
    """Whether a drained step is reported to ``on_progress`` (Ray Tune's metrics)."""
    return checkpoint or step % cfg.report_every < CHECK_EVERY or step == cfg.steps


class Cadence:
    """One trial's bookkeeping between optimiser steps (see the module docstring)."""

    def __init__(self, cfg: TrialConfig, writer: TrialWriter, task, device: torch.device, batches: tuple):
        self.cfg, self.writer, self.task, self.device = cfg, writer, task, device
        self.eval_x, self.eval_y, self.probe_x, self.probe_y = batches  # build.fixed_batches
        self.probes = [build_probe(p) for p in cfg.probes]
        self.data = data_generator(cfg, device)
        self.max_norm = clip_limit(cfg)
        self.pending: list[tuple] = []  # (step, loss, grad_norm, lr, metric, wall_s), losses and norms on device
        self.evals: list[float] = []
        self.steps_done, self.solved_step, self.diverged_at, self.probe_s = 0, None, None, 0.0
        self.pruned_at: int | None = None  # the step after which the sweep's pruner stopped the trial

    @property
    def done(self) -> bool:
        """Whether the trial has stopped early: diverged, solved or pruned."""
        return self.diverged_at is not None or self.solved_step is not None or self.pruned_at is not None

    def state(self) -> dict:
        """What a checkpoint keeps of the trial's bookkeeping (its rows are flushed first)."""
        return dict(data_rng=self.data.get_state(), evals=self.evals, writer=self.writer.state(),
                    solved_step=self.solved_step, probe_s=self.probe_s)

    def restore(self, saved: dict, step: int) -> None:
        """Continue from the checkpoint state ``saved``, taken after ``step``."""
        self.data.set_state(saved["data_rng"])
        self.evals = list(saved["evals"])
        self.solved_step = saved.get("solved_step")
        self.steps_done, self.probe_s = step, saved["probe_s"]

    def probe(self, model: nn.Module, step: int, lr: float) -> None:
        """The probes due at ``step`` on ``model``; ``lr``: the rate of the next step."""
        t = time.perf_counter()
        ctx = ProbeContext(model=model, task=self.task, x=self.probe_x, y=self.probe_y, step=step, lr=lr,
                           device=self.device, seed=self.cfg.seed)
        for probe in self.probes:
            if probe.due(step, self.cfg.steps):
                for table, columns in probe(ctx).items():
                    self.writer.extend(table, columns)
        self.probe_s += time.perf_counter() - t

    def after_step(self, step: int, loss: Tensor, grad_norm: Tensor, lr: float, metric: float | None, wall_s: float,
                   model: Callable[[], nn.Module], next_lr: Callable[[], float], checkpoint: bool) -> bool:
        """Step ``step``'s bookkeeping; ``model()``: the trial's module holding its current parameters. Returns
        whether the step drained: then its rows are written up to ``steps_done``, or it ``diverged_at``."""
        cfg = self.cfg
        self.pending.append((step, loss, grad_norm, lr, metric, wall_s))
        if any(p.due(step, cfg.steps) for p in self.probes) and torch.isfinite(loss):
            self.probe(model(), step, next_lr())
        if cfg.solve_every and step % cfg.solve_every == 0 and is_solved(model(), self.task, cfg.eval_batch, cfg.seed,
                                                                         step, self.device):
            self.solved_step = step  # Pascanu et al.: no error on fresh sequences; training stops here
        if not (len(self.pending) >= CHECK_EVERY or step == cfg.steps or checkpoint or self.solved_step):
            return False
        self._drain()
        if (cfg.pruning and step < cfg.steps and self.diverged_at is None and not self.solved_step
                and self.writer.prune_requested()):  # at its last step a run has nothing left to save
            self.pruned_at = step
        if self.diverged_at is None and cfg.eval_every and step % cfg.eval_every == 0 and step < cfg.steps:
            self.evals.append(evaluate(model(), self.task, self.eval_x, self.eval_y)[0])
        return True

    def _drain(self) -> None:
        """Move the buffered values to the host and the writer; stop at the first non-finite loss."""
        pending = self.pending
        losses = torch.stack([p[1] for p in pending]).float().tolist()
        norms = torch.stack([p[2] for p in pending]).float().tolist()
        for (step, _, _, lr, metric, wall), loss, norm in zip(pending, losses, norms):
            self.writer.append("steps", dict(step=step, loss=loss, metric=metric, lr=lr, grad_norm=norm,
                                             clipped=bool(norm > self.max_norm), wall_s=wall))
            self.steps_done = step
            if not math.isfinite(loss):
                self.diverged_at = step
                break
        pending.clear()

    def outcome(self, model: Callable[[], nn.Module], **fields) -> dict:
        """The trial's outcome once it stops: diverged at its first non-finite loss, else evaluated on the fixed
        batch after its last (solved, pruned) step: completed, or diverged when that loss is not finite, or pruned
        (its final loss is the one at the step it stopped)."""
        if self.diverged_at is not None:
            end = dict(status="diverged", error=f"non-finite loss at step {self.diverged_at}", final_loss=math.nan)
        else:
            final, final_metric = evaluate(model(), self.task, self.eval_x, self.eval_y)
            self.evals.append(final)
            end = dict(status="completed" if math.isfinite(final) else "diverged", final_loss=final,
                       final_metric=final_metric, solved_step=self.solved_step)
            if self.pruned_at is not None and end["status"] == "completed":  # a non-finite loss stays diverged
                end.update(status="pruned", error=f"stopped by the sweep's pruner after step {self.pruned_at} "
                                                  f"of {self.cfg.steps}")
        finite = [e for e in self.evals if math.isfinite(e)]
        return dict(end, steps_done=self.steps_done, best_loss=min(finite) if finite else None, probe_s=self.probe_s,
                    **fields)
