"""One trial: build the task and model, train (Adam or SGD, cosine or constant rate), record every step, evaluate.

``run_trial(cfg)`` is the whole trial; Ray Tune calls it through ``orchestrator.worker``, tests and notebooks
can call it directly. Rows go straight to the results location through one ``TrialWriter``:
``steps`` every step, ``grad_norms`` every ``grad_norm_every`` steps, one ``trials`` row (written as
``running`` at the start and replaced at the end). A non-finite loss stops the trial as ``diverged``;
an exception marks it ``failed`` with the reason; neither stops the sweep.
"""
from __future__ import annotations

import datetime as dt
import functools
import io
import json
import math
import platform
import socket
import time
from typing import Callable

import torch

from .analyses import ANALYSES, analysis
from .config import TrialConfig
from .damage import read_checkpoint
from .location import same_config
from .probes import ProbeContext, build_probe
from .probes.grad_norms import group_norms
from .record import TrialWriter
from .solved import is_solved
from .stack import Stack
from .tasks import task_class

CHECK_EVERY = 25  # steps between device syncs that move losses to the host and test for divergence
EVAL_SEED = 2**31 - 1  # the evaluation batch is the same for every trial of a task
PROBE_SEED = 2**31 - 2  # and so is the probe batch


def pick_device(name: str) -> torch.device:
    """``auto``: the first CUDA device this process can see (Ray sets CUDA_VISIBLE_DEVICES to the GPUs it
    assigned the trial, none when the trial asked for none), else the CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


@functools.cache  # once per process: importlib.metadata parses each package's METADATA (~2 ms a call)
def versions() -> str:
    import numpy
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version(), "torch": torch.__version__, "numpy": numpy.__version__}
    for pkg in ("ray", "rnn-dynamics-sweeps"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            pass
    return json.dumps(out, sort_keys=True)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def trial_row(cfg: TrialConfig, **fields) -> dict:
    """The ``trials`` row: config columns plus the given outcome fields."""
    return dict(
        sweep=cfg.sweep, stage=cfg.stage, task=cfg.task, cell=cfg.cell, depth=cfg.depth, hidden=cfg.hidden,
        batch=cfg.batch, nu=cfg.nu, seq_len=cfg.seq_len, layer_norm=cfg.layer_norm, seed=cfg.seed, lr=cfg.lr,
        clip=cfg.clip, group_key=cfg.group_key or None,
        host=socket.gethostname(), versions=versions(), config_json=cfg.to_json(), **fields)


FINAL = ("completed", "diverged", "failed")
SUMMARY = ("status", "error", "steps_done", "final_loss", "best_loss", "final_metric", "solved_step", "device",
           "wall_s", "probe_s")
OPTIMIZERS = {"adam": torch.optim.Adam, "sgd": torch.optim.SGD}
SCHEDULES = ("cosine", "constant", "step")


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
    resume = _load_checkpoint(writer, cfg)
    writer.restore(resume["writer"] if resume else None)
    started = dt.datetime.fromisoformat(resume["started_at"]) if resume else _now()
    t0 = time.perf_counter() - (resume["wall_s"] if resume else 0.0)
    writer.write_trial(trial_row(cfg, status="running", steps_done=resume["step"] if resume else 0,
                                 started_at=started, node=node))

    def on_checkpoint(state: dict) -> None:
        buf = io.BytesIO()
        torch.save(dict(state, config_json=cfg.to_json()), buf)
        writer.save_checkpoint(buf.getvalue())

    run = _Run(cfg, writer, t0, started, on_progress, on_checkpoint)
    try:
        outcome = run.train(resume) if cfg.kind == "train" else analysis(cfg.kind)(cfg, writer)
    except OSError:  # the results location failed (no space, ...): not the trial's fault; it stays resumable
        raise
    except Exception as e:  # a deterministic failure of this trial: record it, the sweep goes on
        outcome = failed(e, steps_done=run.steps_done, device=run.device, probe_s=run.probe_s)
    summary = close_trial(cfg, writer, outcome, started, time.perf_counter() - t0, node)
    writer.drop_checkpoint()
    return summary


def open_trial(cfg: TrialConfig) -> tuple[TrialWriter, dict | None]:
    """The trial's writer, and its summary when its ``trials`` row is already final for this exact config
    (then it is not trained again)."""
    writer = TrialWriter(cfg.results, cfg.sweep_id, cfg.trial_id, cfg.flush_rows, cfg.flush_s)
    done = writer.read_trial()
    if done and done["status"] in FINAL and same_config(done["config_json"], cfg):  # wherever the sweep is now
        return writer, {k: done[k] for k in SUMMARY}
    return writer, None


def close_trial(cfg: TrialConfig, writer: TrialWriter, outcome: dict, started: dt.datetime, wall_s: float,
                node: str | None) -> dict:
    """Flush the trial's rows, write its final ``trials`` row; returns its summary."""
    writer.flush()
    outcome = dict(outcome, wall_s=wall_s)
    writer.write_trial(trial_row(cfg, started_at=started, ended_at=_now(), node=node, **outcome))
    return {k: outcome.get(k) for k in SUMMARY}


def failed(e: Exception, **fields) -> dict:
    """The outcome of a trial that raised: ``failed`` with the one-line reason."""
    return dict(status="failed", error=f"{type(e).__name__}: {e}".splitlines()[0][:500], **fields)


def _load_checkpoint(writer: TrialWriter, cfg: TrialConfig) -> dict | None:
    """The trial's last checkpoint, if there is one for this exact config (tensors and plain data only)."""
    data = writer.load_checkpoint()
    if data is None:
        return None
    state = read_checkpoint(data, writer.checkpoint_path())  # None when damaged: the trial starts again
    return state if state and same_config(state.get("config_json"), cfg) else None


def build_model(cfg: TrialConfig, task, device: torch.device) -> Stack:
    """The trial's model, initialised from its own seed (the global RNG, seeded here)."""
    torch.manual_seed(cfg.seed)
    return Stack(cfg.cell, task.d_in, cfg.hidden, task.d_out, depth=cfg.depth, d_model=cfg.d_model,
                 layer_norm=cfg.layer_norm, r_min=cfg.nu, r_max=cfg.nu_max, block=cfg.block,
                 init=cfg.init, t_max=cfg.seq_len).to(device)


def check_optimizer(cfg: TrialConfig) -> None:
    if cfg.optimizer not in OPTIMIZERS or cfg.schedule not in SCHEDULES:
        raise ValueError(f"optimizer={cfg.optimizer!r}, schedule={cfg.schedule!r}; valid: "
                         f"{', '.join(OPTIMIZERS)} and {', '.join(SCHEDULES)}")


def make_schedule(opt: torch.optim.Optimizer, cfg: TrialConfig) -> torch.optim.lr_scheduler.LRScheduler:
    """The rate per step; ``step``: lr * lr_gamma^k after the k-th milestone (step m trains at the decayed rate
    from step m + 1 on: the schedule steps once per optimiser step, as the authors' MultiStepLR once per epoch)."""
    if cfg.schedule == "step":
        return torch.optim.lr_scheduler.MultiStepLR(opt, milestones=list(cfg.lr_milestones), gamma=cfg.lr_gamma)
    return (torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(cfg.steps, 1), eta_min=cfg.lr_min)
            if cfg.schedule == "cosine" else torch.optim.lr_scheduler.ConstantLR(opt, factor=1.0))


def data_generator(cfg: TrialConfig, device: torch.device) -> torch.Generator:
    """The trial's training-data stream: its own, not the init's."""
    return torch.Generator(device).manual_seed(cfg.seed * 7919 + 17)


def fixed_batches(task, cfg: TrialConfig, device: torch.device, probing: bool) -> tuple:
    """(eval_x, eval_y, probe_x, probe_y): the same for every trial of a task (probe batch only if probing)."""
    eval_x, eval_y = task.eval_sample(cfg.eval_batch, torch.Generator(device).manual_seed(EVAL_SEED))
    probe_x, probe_y = (task.sample(cfg.probe_batch, torch.Generator(device).manual_seed(PROBE_SEED))
                        if probing else (None, None))
    return eval_x, eval_y, probe_x, probe_y


def evaluate(model: torch.nn.Module, task, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float | None]:
    """(loss, metric) on the fixed evaluation batch."""
    with torch.no_grad():
        y_hat = model(x)
        return task.loss(y_hat, y).item(), task.metric(y_hat, y)


def drain_due(cfg: TrialConfig, n_pending: int, step: int, checkpoint: bool, solved: bool) -> bool:
    """Whether this step moves the buffered per-step values to the host (and tests for divergence)."""
    return n_pending >= CHECK_EVERY or step == cfg.steps or checkpoint or solved


def progress_due(cfg: TrialConfig, step: int, checkpoint: bool) -> bool:
    return checkpoint or step % cfg.report_every < CHECK_EVERY or step == cfg.steps


def diverged_outcome(step: int, steps_done: int, evals: list[float], **fields) -> dict:
    finite = [e for e in evals if math.isfinite(e)]
    return dict(status="diverged", error=f"non-finite loss at step {step}", steps_done=steps_done,
                final_loss=math.nan, best_loss=min(finite) if finite else None, **fields)


def final_outcome(final: float, final_metric: float | None, steps_done: int, evals: list[float], **fields) -> dict:
    """The outcome after the last step (or the solved one): ``evals`` already holds ``final``."""
    finite = [e for e in evals if math.isfinite(e)]
    return dict(status="completed" if math.isfinite(final) else "diverged", steps_done=steps_done,
                final_loss=final, best_loss=min(finite) if finite else None, final_metric=final_metric, **fields)


class Probing:
    """A trial's probes: built from its config, called on its model at the steps they are due."""

    def __init__(self, cfg: TrialConfig, task, device: torch.device, x, y):
        self.cfg, self.task, self.device, self.x, self.y = cfg, task, device, x, y
        self.probes = [build_probe(p) for p in cfg.probes]
        self.probe_s = 0.0

    def due(self, step: int) -> bool:
        return any(p.due(step, self.cfg.steps) for p in self.probes)

    def __call__(self, model: torch.nn.Module, writer: TrialWriter, step: int, lr: float) -> None:
        t = time.perf_counter()
        ctx = ProbeContext(model=model, task=self.task, x=self.x, y=self.y, step=step, lr=lr, device=self.device,
                           seed=self.cfg.seed)
        for probe in self.probes:
            if probe.due(step, self.cfg.steps):
                for table, columns in probe(ctx).items():
                    writer.extend(table, columns)
        self.probe_s += time.perf_counter() - t


class _Run:
    """The training loop of one trial, and the state a checkpoint holds."""

    def __init__(self, cfg, writer, t0, started, on_progress, on_checkpoint):
        self.cfg, self.writer, self.t0, self.started = cfg, writer, t0, started
        self.on_progress, self.on_checkpoint = on_progress, on_checkpoint
        self.steps_done, self.device, self.probe_s = 0, None, 0.0

    def train(self, resume: dict | None) -> dict:
        cfg, writer = self.cfg, self.writer
        device = pick_device(cfg.device)
        self.device = str(device)
        task = task_class(cfg.task).from_config(cfg).to(device)
        model = build_model(cfg, task, device)
        eval_x, eval_y, probe_x, probe_y = fixed_batches(task, cfg, device, bool(cfg.probes))
        probing = Probing(cfg, task, device, probe_x, probe_y)
        params = [p for p in model.parameters() if p.requires_grad]
        groups = model.param_groups()
        check_optimizer(cfg)
        opt = OPTIMIZERS[cfg.optimizer](params, lr=cfg.lr)
        sched = make_schedule(opt, cfg)
        data = data_generator(cfg, device)
        max_norm = cfg.clip if cfg.clip else math.inf
        evals: list[float] = []
        self.solved_step = None
        if resume:
            model.load_state_dict(resume["model"])
            opt.load_state_dict(resume["opt"])
            sched.load_state_dict(resume["sched"])
            data.set_state(resume["data_rng"])
            evals = list(resume["evals"])
            self.solved_step = resume.get("solved_step")
            self.steps_done = resume["step"]
            self.probe_s = probing.probe_s = resume["probe_s"]

        def run_probes(step: int) -> None:
            probing(model, writer, step, sched.get_last_lr()[0])
            self.probe_s = probing.probe_s

        if probing.probes and not resume:
            run_probes(0)

        pending: list[tuple] = []
        diverged_at = None
        for step in range(self.steps_done + 1, (self.steps_done if self.solved_step else cfg.steps) + 1):
            x, y = task.sample(cfg.batch, data)
            y_hat = model(x)
            loss = task.loss(y_hat, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.grad_norm_every and step % cfg.grad_norm_every == 0:
                norms = group_norms(groups)
                writer.extend("grad_norms", {"step": [step] * len(norms), "group": list(norms),
                                             "norm": list(norms.values())})
            grad_norm = torch.nn.utils.clip_grad_norm_(params, max_norm)  # the norm before clipping
            lr = sched.get_last_lr()[0]
            if max_norm == math.inf or torch.isfinite(grad_norm):  # clipping on: a NaN/Inf gradient is skipped
                opt.step()
                with torch.no_grad():
                    model.constrain()
            sched.step()
            metric = task.metric(y_hat, y) if task.has_metric else None
            pending.append((step, loss.detach(), grad_norm.detach(), lr, metric, time.perf_counter() - self.t0))
            if probing.due(step) and torch.isfinite(loss):
                run_probes(step)
            checkpoint = bool(cfg.checkpoint_every and step % cfg.checkpoint_every == 0 and step < cfg.steps)
            if cfg.solve_every and step % cfg.solve_every == 0 and is_solved(model, task, cfg.eval_batch, cfg.seed,
                                                                             step, device):
                self.solved_step = step  # Pascanu et al.: no error on fresh sequences; training stops here
            if drain_due(cfg, len(pending), step, checkpoint, bool(self.solved_step)):
                self.steps_done, diverged_at = _drain(pending, writer, max_norm)
                pending.clear()
                if diverged_at is not None:
                    break
                if cfg.eval_every and step % cfg.eval_every == 0 and step < cfg.steps:
                    evals.append(evaluate(model, task, eval_x, eval_y)[0])
                last_loss = writer.last_value("steps", "loss")
                if checkpoint:
                    writer.flush()  # every row up to this step is on disk before the checkpoint names it
                    self.on_checkpoint(dict(
                        step=step, model=model.state_dict(), opt=opt.state_dict(), sched=sched.state_dict(),
                        data_rng=data.get_state(), evals=evals, writer=writer.state(), solved_step=self.solved_step,
                        wall_s=time.perf_counter() - self.t0, probe_s=self.probe_s,
                        started_at=self.started.isoformat()))
                if self.on_progress and progress_due(cfg, step, checkpoint):
                    self.on_progress({"step": step, "loss": last_loss})
            if self.solved_step:
                break
        if diverged_at is not None:
            return diverged_outcome(diverged_at, self.steps_done, evals, device=self.device, probe_s=self.probe_s)
        final, final_metric = evaluate(model, task, eval_x, eval_y)
        evals.append(final)
        return final_outcome(final, final_metric, self.steps_done, evals, solved_step=self.solved_step,
                             device=self.device, probe_s=self.probe_s)


def _drain(pending: list[tuple], writer: TrialWriter, max_norm: float) -> tuple[int, int | None]:
    """Move buffered per-step values to the host and the writer; stop at the first non-finite loss.

    Returns (last step recorded, the step whose loss was non-finite or None)."""
    losses = torch.stack([p[1] for p in pending]).float().tolist()
    norms = torch.stack([p[2] for p in pending]).float().tolist()
    last = pending[0][0] - 1
    for (step, _, _, lr, metric, wall), loss, norm in zip(pending, losses, norms):
        writer.append("steps", dict(step=step, loss=loss, metric=metric, lr=lr, grad_norm=norm,
                                    clipped=bool(norm > max_norm), wall_s=wall))
        last = step
        if not math.isfinite(loss):
            return last, step
    return last, None
