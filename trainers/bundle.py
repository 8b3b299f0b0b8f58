"""Bundles: the runs of one group (same config but ``seed``, ``lr`` and ``trial_id``: its rates x seeds) trained as
one batched model.

Each seed's model is built and initialised exactly as a solo trial builds it (``build_model``, its own seed);
``torch.func.stack_module_state`` stacks their parameters on a leading seed axis and
``torch.vmap(functional_call)`` runs the S models at once through ``forward_pure`` (plain PyTorch ops; a
fused cuDNN/ATen RNN kernel has no vmap rule). The loss is the sum of the per-seed losses; the parameters are
disjoint, so each seed's gradient is its solo gradient. Each seed draws its batch from its own generator
exactly as solo does. Per seed, as solo: the global-norm clipping (its own norm), the NaN/Inf skip (no step,
Adam's count does not advance: ``trainers.seedwise``), ``constrain()``, the ``grad_norms`` rows, and its own
``TrialWriter``, ``trials`` row and trial id; what follows each step (the ``steps`` rows, the divergence test
and solved checks, probes and evaluations on the seed's own solo module, loaded from its slice) is the seed's
``trainers.cadence.Cadence``, the very code a solo run calls. A finished seed (diverged,
solved) gets its final row at once and leaves the stacked tensors before the next step (``_keep_rows``: its
slices of the parameters, buffers and optimiser state are dropped), so the seeds still training no longer pay
for it; its rows stop exactly where solo's would. Each member has its own learning rate: its solo schedule runs on a
stand-in optimiser (``_member_rates``), so every step uses the very float a solo run would, and its own
optimiser state (Adam's moments and step count are per member already).

One checkpoint for the whole bundle, ``_checkpoints/<bundle_id>.pt`` (every seed's state and part numbers,
written after every seed's rows are flushed), so a killed bundle resumes with every seed's rows exactly once;
a seed whose ``trials`` row is already final for its config is not retrained (it leaves the bundle).
"""
from __future__ import annotations

import copy
import functools
import io
import time
from typing import Callable

import torch
from torch import Tensor, nn
from torch.func import functional_call, stack_module_state

from .build import build_model, check_optimizer, fixed_batches, make_schedule, pick_device
from .cadence import Cadence, checkpoint_due, grad_norms_due, report_due, takes_step
from .cells import CELLS, Cell, CellSpec, build_cell
from .config import TrialConfig
from .probes.grad_norms import grad_norm_rows, seed_group_norms
from .record import TrialWriter
from .seedwise import SEEDWISE, select_seeds
from .tasks import task_class
from .trial import clock, close_trial, failed, of_config, open_trial, saved_state, start_trial


@functools.cache
def bundle_supported(cell: str) -> bool:
    """Whether ``cell`` trains in seed bundles (its ``BATCHABLE``); unknown cells are not (they fail solo)."""
    if cell not in CELLS:
        return False
    return build_cell(cell, CellSpec(1, 4, 1, t_max=4)).BATCHABLE


def bundle_members_ok(cfgs: list[TrialConfig]) -> None:
    """A bundle's trials must differ only in seed, learning rate and trial id (one group)."""
    ref = {k: v for k, v in vars(cfgs[0]).items() if k not in ("seed", "lr", "trial_id")}
    for c in cfgs[1:]:
        other = {k: v for k, v in vars(c).items() if k not in ("seed", "lr", "trial_id")}
        if other != ref:
            diff = sorted(k for k in ref if ref[k] != other[k])
            raise ValueError(f"bundle members differ in {', '.join(diff)}; only seed, lr and trial_id may")


class _Pure(nn.Module):
    """The model's double-backward-safe whole-sequence form as a module's ``forward`` (what vmap runs)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: Tensor | None) -> Tensor | None:
        """``x``: the outputs; None: ``constrain()`` in place (on the tensors ``functional_call`` put in)."""
        if x is None:
            self.model.constrain()
            return None
        return self.model.forward_pure(x)


def run_bundle(bundle_id: str, cfgs: list[TrialConfig], on_progress: Callable[[dict], None] | None = None,
               node: str | None = None) -> list[dict]:
    """Train the seeds ``cfgs`` as one bundle; returns each seed's summary, in order (as ``run_trial``'s)."""
    bundle_members_ok(cfgs)
    summaries: dict[str, dict] = {}
    members: list[tuple[TrialConfig, TrialWriter]] = []
    for cfg in cfgs:
        writer, done = open_trial(cfg)
        if done is not None:
            summaries[cfg.trial_id] = done
        else:
            members.append((cfg, writer))
    if members:
        head = members[0][0]
        store = TrialWriter(head.results, head.sweep_id, bundle_id)  # holds the bundle's checkpoint, no rows
        saved = saved_state(store)
        seeds = (saved or {}).get("seeds", {})  # it may hold more seeds than these: seeds that have finished since
        resume = saved if all(of_config(seeds.get(c.trial_id), c) for c, _ in members) else None
        started, t0 = clock(resume)
        for cfg, writer in members:
            start_trial(cfg, writer, resume["seeds"][cfg.trial_id] if resume else None,
                        resume["step"] if resume else 0, started, node)

        def finish(i: int, outcome: dict) -> None:
            cfg, writer = members[i]
            summaries[cfg.trial_id] = close_trial(cfg, writer, outcome, started, time.perf_counter() - t0, node)

        run = _BundleRun(members, t0, started, on_progress, store, finish)
        try:
            run.train(resume)
        except OSError:  # the results location failed (no space, ...): not the trial's fault; it stays resumable
            raise
        except Exception as e:  # a deterministic failure: every seed still training is failed, the sweep goes on
            for i, (cfg, _) in enumerate(members):
                if cfg.trial_id not in summaries:
                    finish(i, failed(e, **run.progress(i)))
        store.drop_checkpoint()
    return [summaries[c.trial_id] for c in cfgs]


class _BundleRun:
    """The training loop of a bundle: batched compute; what follows each step is each seed's ``Cadence``."""

    def __init__(self, members, t0, started, on_progress, store: TrialWriter, finish: Callable[[int, dict], None]):
        self.cfgs = [c for c, _ in members]
        self.writers = [w for _, w in members]
        self.cfg, self.t0, self.started, self.on_progress, self.store, self.finish = (
            self.cfgs[0], t0, started, on_progress, store, finish)
        self.cadences: list[Cadence] = []
        self.device = None

    def progress(self, i: int) -> dict:
        """How far seed ``i`` got (for a ``failed`` outcome)."""
        c = self.cadences[i] if self.cadences else None
        return dict(steps_done=c.steps_done if c else 0, device=self.device, probe_s=c.probe_s if c else 0.0)

    def train(self, resume: dict | None) -> None:
        cfg, cfgs, writers, S = self.cfg, self.cfgs, self.writers, len(self.cfgs)
        device = pick_device(cfg.device)
        self.device = str(device)
        task = task_class(cfg.task).from_config(cfg).to(device)
        models = [build_model(c, task, device) for c in cfgs]  # each its solo init; also the probes' modules
        batches = fixed_batches(task, cfg, device, bool(cfg.probes))
        cads = self.cadences = [Cadence(c, w, task, device, batches) for c, w in zip(cfgs, writers)]
        check_optimizer(cfg)
        params, buffers = stack_module_state([_Pure(m) for m in models])
        params = {k: v for k, v in params.items() if v.requires_grad}
        names = {id(p): f"model.{n}" for n, p in models[0].named_parameters()}
        groups = {g: [names[id(p)] for p in ps] for g, ps in models[0].param_groups().items()}
        base = copy.deepcopy(_Pure(models[0])).to("meta")

        def loss_of(p: dict, b: dict, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
            y_hat = functional_call(base, (p, b), (x,))
            return task.loss(y_hat, y), y_hat

        forward = torch.vmap(loss_of)
        opt, sched = _optimiser(cfg, params)
        rates = _member_rates(cfgs)
        max_norm = cads[0].max_norm
        start = 0
        if resume:
            idx = [resume["trial_ids"].index(c.trial_id) for c in cfgs]
            keep = torch.tensor(idx, device=device)
            with torch.no_grad():
                for k, v in params.items():
                    v.copy_(resume["params"][k].to(device).index_select(0, keep))
            opt.load_state_dict(select_seeds(resume["opt"], idx))
            sched.load_state_dict(resume["sched"])
            start = resume["step"]
            for c, cad in zip(cfgs, cads):
                cad.restore(resume["seeds"][c.trial_id], start)
            for _ in range(start):
                _step_rates(rates)
        active = [True] * S
        rows = list(range(S))  # the seeds in the stacked tensors, in stack order (finished ones leave)

        def solo(i: int) -> nn.Module:
            """Seed i's own module, holding its current parameters (for probes and evaluations)."""
            j = rows.index(i)
            with torch.no_grad():
                for n, p in models[i].named_parameters():
                    p.copy_(params[f"model.{n}"][j])
            return models[i]

        def next_lr(i: int) -> float:
            return rates[i][1].get_last_lr()[0]

        def finish(i: int) -> None:
            active[i] = False
            self.finish(i, cads[i].outcome(lambda: solo(i), device=self.device))

        if cfg.probes and not resume:
            for i in range(S):
                cads[i].probe(solo(i), 0, next_lr(i))
        constrain = _has_constrain(models[0])
        for step in range(start + 1, cfg.steps + 1):
            if not any(active):
                break
            if not all(active[i] for i in rows):
                keep = [j for j, i in enumerate(rows) if active[i]]
                rows = [rows[j] for j in keep]
                params, buffers, opt, sched = _keep_rows(keep, params, buffers, opt, sched, cfg)
            x, y = task.sample_seeds(cfg.batch, [cads[i].data for i in rows])
            for v in params.values():
                v.grad = None
            losses, y_hat = forward(params, buffers, x, y)
            losses.sum().backward()
            if grad_norms_due(cfg, step):
                for i, norms_i in zip(rows, seed_group_norms(params, groups)):
                    writers[i].extend("grad_norms", grad_norm_rows(step, norms_i))
            norms = _clip_per_seed(list(params.values()), max_norm)
            lrs = [next_lr(i) for i in rows]
            stepping = takes_step(norms, max_norm)  # every row is a seed still training
            opt.step(stepping, torch.tensor(lrs, dtype=torch.float64, device=device))
            if constrain:
                _constrain_seeds(base, params, buffers, stepping)
            sched.step()
            _step_rates(rates)
            wall = time.perf_counter() - self.t0
            checkpoint = checkpoint_due(cfg, step)
            reported, per_seed = None, {}  # per_seed: each seed's loss, for Tune's loggers (--log-to)
            for j, i in enumerate(rows):
                metric = task.metric(y_hat[j], y[j]) if task.has_metric else None
                drained = cads[i].after_step(step, losses[j].detach(), norms[j], lrs[j], metric, wall,
                                             functools.partial(solo, i), functools.partial(next_lr, i), checkpoint)
                if drained and cads[i].diverged_at is None:  # a loss of this very step (a flush may have written it)
                    reported = per_seed[f"loss_seed{cfgs[i].seed}"] = writers[i].last_value("steps", "loss")
                if cads[i].done:
                    finish(i)
            if checkpoint and any(active):
                self._checkpoint(step, rows, params, opt, sched, active)
            if self.on_progress and reported is not None and report_due(cfg, step, checkpoint):
                self.on_progress({"step": step, "loss": reported, "seeds_training": sum(active), **per_seed})
        for i in range(S):
            if active[i]:
                finish(i)

    def _checkpoint(self, step, rows, params, opt, sched, active) -> None:
        """Every active seed's rows are on disk, then one atomic checkpoint names them all (``trial_ids``: the
        seeds of the stacked tensors, in stack order; a seed that finished this step is still among them)."""
        seeds = {}
        for i, (c, w) in enumerate(zip(self.cfgs, self.writers)):
            if active[i]:
                w.flush()
                seeds[c.trial_id] = dict(config_json=c.to_json(), **self.cadences[i].state())
        buf = io.BytesIO()
        torch.save(dict(step=step, trial_ids=[self.cfgs[i].trial_id for i in rows], params=dict(params),
                        opt=opt.state_dict(), sched=sched.state_dict(), seeds=seeds,
                        wall_s=time.perf_counter() - self.t0, started_at=self.started.isoformat()), buf)
        self.store.save_checkpoint(buf.getvalue())


def _optimiser(cfg: TrialConfig, params: dict) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler]:
    opt = SEEDWISE[cfg.optimizer](list(params.values()), lr=cfg.lr)
    return opt, make_schedule(opt, cfg)


def _member_rates(cfgs: list[TrialConfig]) -> list[tuple]:
    """Each member's (stand-in optimiser, solo lr schedule): ``get_last_lr()`` is the rate its solo run uses."""
    out = []
    for c in cfgs:
        stand_in = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=c.lr)
        out.append((stand_in, make_schedule(stand_in, c)))
    return out


def _step_rates(rates: list[tuple]) -> None:
    for stand_in, sched in rates:
        stand_in.step()  # no gradient: nothing moves; it only keeps the scheduler's order check quiet
        sched.step()


def _keep_rows(keep: list[int], params: dict, buffers: dict, opt, sched, cfg: TrialConfig) -> tuple:
    """The stacked parameters, buffers, optimiser and schedule with only the rows ``keep`` (the seeds still
    training): new leaf tensors, an optimiser holding those rows' state, the schedule where it was."""
    idx = torch.tensor(keep, device=next(iter(params.values())).device)
    with torch.no_grad():
        params = {k: v.index_select(0, idx).requires_grad_() for k, v in params.items()}
        buffers = {k: v.index_select(0, idx) for k, v in buffers.items()}
    state, sched_state = select_seeds(opt.state_dict(), keep), sched.state_dict()
    opt, sched = _optimiser(cfg, params)
    opt.load_state_dict(state)
    sched.load_state_dict(sched_state)
    return params, buffers, opt, sched


def _has_constrain(model: nn.Module) -> bool:
    """Whether any cell of the model overrides ``Cell.constrain`` (a projection after every step)."""
    return any(type(m).constrain is not Cell.constrain for m in model.modules()
               if isinstance(m, Cell) and not hasattr(m, "layers"))


def _constrain_seeds(base: nn.Module, params: dict, buffers: dict, mask: Tensor) -> None:
    """``constrain()`` on the seeds in ``mask``, in place on their slices (views of the stacked tensors)."""
    with torch.no_grad():
        for i in mask.nonzero().flatten().tolist():
            functional_call(base, ({k: v[i] for k, v in params.items()}, {k: v[i] for k, v in buffers.items()}),
                            (None,))


def _clip_per_seed(params: list[Tensor], max_norm: float) -> Tensor:
    """``clip_grad_norm_`` per seed: each seed's global norm over its slices (returned, (S,)), and its
    gradient scaled by min(1, max_norm / (norm + 1e-6)) as torch does (a no-op factor 1 when off)."""
    grads = [p.grad for p in params if p.grad is not None]
    per_param = torch.stack([torch.linalg.vector_norm(g.flatten(1), dim=1) for g in grads])  # (P, S)
    norms = torch.linalg.vector_norm(per_param, dim=0)
    coef = (max_norm / (norms + 1e-6)).clamp(max=1.0)
    for g in grads:
        g.mul_(coef.view(-1, *([1] * (g.dim() - 1))))
    return norms


__all__ = ["bundle_supported", "run_bundle"]
