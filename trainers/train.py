"""One trial: build the task and model, train (Adam or SGD, cosine or constant rate), record every step, evaluate.

``run_trial(cfg)`` is the whole trial; Ray Tune calls it through ``orchestrator.worker``, tests and notebooks
can call it directly. Rows go straight to the results location through one ``TrialWriter``:
``steps`` every step, ``grad_norms`` every ``grad_norm_every`` steps, one ``trials`` row (written as
``running`` at the start and replaced at the end). A non-finite loss stops the trial as ``diverged``;
an exception marks it ``failed`` with the reason; neither stops the sweep. What follows each step (probes,
solved checks, draining rows, divergence, evaluations, checkpoints' contents) is ``trainers.cadence``, shared
with seed bundles (``trainers.bundle``); what a trial is built from is ``trainers.build``; its life in the
results location is ``trainers.trial``.
"""
from __future__ import annotations

import io
import time
from typing import Callable

import torch

from .analyses import ANALYSES, analysis
from .build import OPTIMIZERS, build_model, check_optimizer, fixed_batches, make_schedule, pick_device
from .cadence import Cadence, checkpoint_due, grad_norms_due, report_due, takes_step
from .config import TrialConfig
from .probes.grad_norms import grad_norm_rows, group_norms
from .tasks import task_class
from .trial import clock, close_trial, failed, of_config, open_trial, saved_state, start_trial


def kinds() -> tuple[str, ...]:
    """What a trial can do: train a model, or run one of the registered analyses."""
    return ("train", *ANALYSES)


def run_trial(cfg: TrialConfig, on_progress: Callable[[dict], None] | None = None, node: str | None = None) -> dict:
    """Train one trial and record it; returns the summary (status, final_loss, ...).

    Restartable by construction: every ``checkpoint_every`` steps the rows so far are flushed and the
    trial's state (model, optimiser, schedule, data RNG, part numbers) is saved beside them. A restarted
    trial (a resumed sweep, a retry after a lost node) continues from that checkpoint after dropping the
    rows written since, so every row lands exactly once; a trial whose ``trials`` row is already final for
    this exact config is not trained again: its summary is returned.
    """
    writer, done = open_trial(cfg)
    if done is not None:
        return done
    resume = saved_state(writer)
    resume = resume if of_config(resume, cfg) else None
    started, t0 = clock(resume)
    start_trial(cfg, writer, resume, resume["step"] if resume else 0, started, node)

    def on_checkpoint(state: dict) -> None:
        buf = io.BytesIO()
        torch.save(dict(state, config_json=cfg.to_json()), buf)
        writer.save_checkpoint(buf.getvalue())

    run = _Run(cfg, writer, t0, started, on_progress, on_checkpoint)
    try:
        outcome = analysis(cfg.analysis)(cfg, writer) if cfg.stage == "analysis" else run.train(resume)
    except OSError:  # the results location failed (no space, ...): not the trial's fault; it stays resumable
        raise
    except Exception as e:  # a deterministic failure of this trial: record it, the sweep goes on
        outcome = failed(e, **run.progress())
    summary = close_trial(cfg, writer, outcome, started, time.perf_counter() - t0, node)
    writer.drop_checkpoint()
    return summary


class _Run:
    """The training loop of one trial; what follows each step is its ``Cadence``."""

    def __init__(self, cfg, writer, t0, started, on_progress, on_checkpoint):
        self.cfg, self.writer, self.t0, self.started = cfg, writer, t0, started
        self.on_progress, self.on_checkpoint = on_progress, on_checkpoint
        self.cadence: Cadence | None = None
        self.device = None

    def progress(self) -> dict:
        """How far the trial got (for a ``failed`` outcome)."""
        c = self.cadence
        return dict(steps_done=c.steps_done if c else 0, device=self.device, probe_s=c.probe_s if c else 0.0)

    def train(self, resume: dict | None) -> dict:
        cfg, writer = self.cfg, self.writer
        device = pick_device(cfg.device)
        self.device = str(device)
        task = task_class(cfg.task).from_config(cfg).to(device)
        model = build_model(cfg, task, device)
        cad = self.cadence = Cadence(cfg, writer, task, device, fixed_batches(task, cfg, device, bool(cfg.probes)))
        params = [p for p in model.parameters() if p.requires_grad]
        groups = model.param_groups()
        check_optimizer(cfg)
        opt = OPTIMIZERS[cfg.optimizer](params, lr=cfg.lr)
        sched = make_schedule(opt, cfg)
        if resume:
            model.load_state_dict(resume["model"])
            opt.load_state_dict(resume["opt"])
            sched.load_state_dict(resume["sched"])
            cad.restore(resume, resume["step"])
        if cad.probes and not resume:
            cad.probe(model, 0, sched.get_last_lr()[0])

        for step in range(cad.steps_done + 1, (cad.steps_done if cad.solved_step else cfg.steps) + 1):
            x, y = task.sample(cfg.batch, cad.data)
            y_hat = model(x)
            loss = task.loss(y_hat, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if grad_norms_due(cfg, step):
                writer.extend("grad_norms", grad_norm_rows(step, group_norms(groups)))
            grad_norm = torch.nn.utils.clip_grad_norm_(params, cad.max_norm)  # the norm before clipping
            lr = sched.get_last_lr()[0]
            if takes_step(grad_norm, cad.max_norm):
                opt.step()
                with torch.no_grad():
                    model.constrain()
            sched.step()
            metric = task.metric(y_hat, y) if task.has_metric else None
            checkpoint = checkpoint_due(cfg, step)
            drained = cad.after_step(step, loss.detach(), grad_norm.detach(), lr, metric, time.perf_counter() - self.t0,
                                     lambda: model, lambda: sched.get_last_lr()[0], checkpoint)
            if drained and cad.diverged_at is None:
                last_loss = writer.last_value("steps", "loss")
                if checkpoint:
                    writer.flush()  # every row up to this step is on disk before the checkpoint names it
                    self.on_checkpoint(dict(
                        step=step, model=model.state_dict(), opt=opt.state_dict(), sched=sched.state_dict(),
                        **cad.state(), wall_s=time.perf_counter() - self.t0, started_at=self.started.isoformat()))
                if self.on_progress and report_due(cfg, step, checkpoint):
                    self.on_progress({"step": step, "loss": last_loss})
            if cad.done:
                break
        return cad.outcome(lambda: model, device=self.device)
