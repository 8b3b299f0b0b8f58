"""Bundles: the runs of one group (same config but ``seed``, ``lr`` and ``trial_id``: its rates x seeds) trained as
one batched model.

Each seed's model is built and initialised exactly as a solo trial builds it (``build_model``, its own seed);
``torch.func.stack_module_state`` stacks their parameters on a leading seed axis and
``torch.vmap(functional_call)`` runs the S models at once through ``forward_pure`` (plain PyTorch ops; a
fused cuDNN/ATen RNN kernel has no vmap rule). The loss is the sum of the per-seed losses; the parameters are
disjoint, so each seed's gradient is its solo gradient. Each seed draws its batch from its own generator
exactly as solo does. Per seed, as solo: the global-norm clipping (its own norm), the NaN/Inf skip (no step,
Adam's count does not advance: ``trainers.seedwise``), ``constrain()``, the ``steps``/``grad_norms`` rows, the
divergence test and solved checks at solo's cadence, probes and evaluations (on the seed's own solo module,
loaded from its slice), and its own ``TrialWriter``, ``trials`` row and trial id. A finished seed (diverged,
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
import datetime as dt
import functools
import io
import math
import time
from typing import Callable

import torch
from torch import Tensor, nn
from torch.func import functional_call, stack_module_state

from .cells import CELLS, Cell, CellSpec, build_cell
from .config import TrialConfig
from .damage import read_checkpoint
from .location import same_config
from .record import TrialWriter
from .seedwise import SEEDWISE, select_seeds
from .solved import is_solved
from .tasks import task_class
from .train import (
    Probing, _drain, _now, build_model, check_optimizer, close_trial, data_generator, diverged_outcome,
    drain_due, evaluate, failed, final_outcome, fixed_batches, make_schedule, open_trial, pick_device, progress_due,
    trial_row)


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
        resume = _load_checkpoint(store, [c for c, _ in members])
        started = dt.datetime.fromisoformat(resume["started_at"]) if resume else _now()
        t0 = time.perf_counter() - (resume["wall_s"] if resume else 0.0)
        for cfg, writer in members:
            writer.restore(resume["seeds"][cfg.trial_id]["writer"] if resume else None)
            writer.write_trial(trial_row(cfg, status="running", steps_done=resume["step"] if resume else 0,
                                         started_at=started, node=node))

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
                    finish(i, failed(e, steps_done=run.steps_done[i], device=run.device, probe_s=run.probe_s[i]))
        store.drop_checkpoint()
    return [summaries[c.trial_id] for c in cfgs]


def _load_checkpoint(store: TrialWriter, cfgs: list[TrialConfig]) -> dict | None:
    """The bundle's last checkpoint if it holds every one of ``cfgs`` with the same config (it may hold more:
    seeds that have finished since)."""
    data = store.load_checkpoint()
    if data is None:
        return None
    state = read_checkpoint(data, store.checkpoint_path())  # None when damaged: the bundle starts again
    seeds = (state or {}).get("seeds", {})
    ok = all(c.trial_id in seeds and same_config(seeds[c.trial_id]["config_json"], c) for c in cfgs)
    return state if ok else None


class _BundleRun:
    """The training loop of a bundle: batched compute, per-seed bookkeeping in solo's order."""

    def __init__(self, members, t0, started, on_progress, store: TrialWriter, finish: Callable[[int, dict], None]):
        self.cfgs = [c for c, _ in members]
        self.writers = [w for _, w in members]
        self.cfg, self.t0, self.started, self.on_progress, self.store, self.finish = (
            self.cfgs[0], t0, started, on_progress, store, finish)
        S = len(members)
        self.steps_done, self.probe_s, self.device = [0] * S, [0.0] * S, None

    def train(self, resume: dict | None) -> None:
        cfg, cfgs, writers, S = self.cfg, self.cfgs, self.writers, len(self.cfgs)
        device = pick_device(cfg.device)
        self.device = str(device)
        task = task_class(cfg.task).from_config(cfg).to(device)
        models = [build_model(c, task, device) for c in cfgs]  # each its solo init; also the probes' modules
        eval_x, eval_y, probe_x, probe_y = fixed_batches(task, cfg, device, bool(cfg.probes))
        probings = [Probing(c, task, device, probe_x, probe_y) for c in cfgs]
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
        datas = [data_generator(c, device) for c in cfgs]
        max_norm = cfg.clip if cfg.clip else math.inf
        evals: list[list[float]] = [[] for _ in range(S)]
        solved: list[int | None] = [None] * S  # a checkpoint holds only seeds still training: never solved
        start = 0
        if resume:
            idx = [resume["trial_ids"].index(c.trial_id) for c in cfgs]
            keep = torch.tensor(idx, device=device)
            with torch.no_grad():
                for k, v in params.items():
                    v.copy_(resume["params"][k].to(device).index_select(0, keep))
            opt.load_state_dict(select_seeds(resume["opt"], idx))
            sched.load_state_dict(resume["sched"])
            for i, c in enumerate(cfgs):
                seed = resume["seeds"][c.trial_id]
                datas[i].set_state(seed["data_rng"])
                evals[i] = list(seed["evals"])
                probings[i].probe_s = self.probe_s[i] = seed["probe_s"]
            start = resume["step"]
            self.steps_done = [start] * S
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

        def probe(i: int, step: int) -> None:
            probings[i](solo(i), writers[i], step, rates[i][1].get_last_lr()[0])
            self.probe_s[i] = probings[i].probe_s

        def finish_final(i: int) -> None:
            final, final_metric = evaluate(solo(i), task, eval_x, eval_y)
            evals[i].append(final)
            active[i] = False
            self.finish(i, final_outcome(final, final_metric, self.steps_done[i], evals[i], solved_step=solved[i],
                                         device=self.device, probe_s=self.probe_s[i]))

        if cfg.probes and not resume:
            for i in range(S):
                probe(i, 0)
        pending: list[list[tuple]] = [[] for _ in range(S)]
        constrain = _has_constrain(models[0])
        for step in range(start + 1, cfg.steps + 1):
            if not any(active):
                break
            if not all(active[i] for i in rows):
                keep = [j for j, i in enumerate(rows) if active[i]]
                rows = [rows[j] for j in keep]
                params, buffers, opt, sched = _keep_rows(keep, params, buffers, opt, sched, cfg)
            x, y = task.sample_seeds(cfg.batch, [datas[i] for i in rows])
            for v in params.values():
                v.grad = None
            losses, y_hat = forward(params, buffers, x, y)
            losses.sum().backward()
            if cfg.grad_norm_every and step % cfg.grad_norm_every == 0:
                _grad_norm_rows(params, groups, [writers[i] for i in rows], step)
            norms = _clip_per_seed(list(params.values()), max_norm)
            lrs = [rates[i][1].get_last_lr()[0] for i in rows]
            # every row is a seed still training; with clipping on, a NaN/Inf gradient skips that seed's step
            stepping = torch.isfinite(norms) if max_norm != math.inf else torch.ones_like(norms, dtype=torch.bool)
            opt.step(stepping, torch.tensor(lrs, dtype=torch.float64, device=device))
            if constrain:
                _constrain_seeds(base, params, buffers, stepping)
            sched.step()
            _step_rates(rates)
            wall = time.perf_counter() - self.t0
            checkpoint = bool(cfg.checkpoint_every and step % cfg.checkpoint_every == 0 and step < cfg.steps)
            reported, per_seed = None, {}  # per_seed: each seed's loss, for Tune's loggers (--log-to)
            for j, i in enumerate(rows):
                metric = task.metric(y_hat[j], y[j]) if task.has_metric else None
                pending[i].append((step, losses[j].detach(), norms[j], lrs[j], metric, wall))
                if probings[i].due(step) and torch.isfinite(losses[j]):
                    probe(i, step)
                if (cfg.solve_every and step % cfg.solve_every == 0
                        and is_solved(solo(i), task, cfg.eval_batch, cfgs[i].seed, step, device)):
                    solved[i] = step
                if drain_due(cfg, len(pending[i]), step, checkpoint, solved[i] is not None):
                    self.steps_done[i], diverged_at = _drain(pending[i], writers[i], max_norm)
                    pending[i].clear()
                    if diverged_at is not None:
                        active[i] = False
                        self.finish(i, diverged_outcome(diverged_at, self.steps_done[i], evals[i], device=self.device,
                                                        probe_s=self.probe_s[i]))
                        continue
                    if cfg.eval_every and step % cfg.eval_every == 0 and step < cfg.steps:
                        evals[i].append(evaluate(solo(i), task, eval_x, eval_y)[0])
                    reported = writers[i].last_value("steps", "loss") if writers[i].pending("steps") else reported
                    if writers[i].pending("steps"):
                        per_seed[f"loss_seed{self.cfgs[i].seed}"] = writers[i].last_value("steps", "loss")
                if solved[i] is not None:
                    finish_final(i)
            if checkpoint and any(active):
                self._checkpoint(step, rows, params, opt, sched, datas, evals, active)
            if self.on_progress and reported is not None and progress_due(cfg, step, checkpoint):
                self.on_progress({"step": step, "loss": reported, "seeds_training": sum(active), **per_seed})
        for i in range(S):
            if active[i]:
                finish_final(i)

    def _checkpoint(self, step, rows, params, opt, sched, datas, evals, active) -> None:
        """Every active seed's rows are on disk, then one atomic checkpoint names them all (``trial_ids``: the
        seeds of the stacked tensors, in stack order; a seed that finished this step is still among them)."""
        seeds = {}
        for i, (c, w) in enumerate(zip(self.cfgs, self.writers)):
            if active[i]:
                w.flush()
                seeds[c.trial_id] = dict(config_json=c.to_json(), data_rng=datas[i].get_state(), evals=evals[i],
                                         writer=w.state(), probe_s=self.probe_s[i])
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


def _grad_norm_rows(params: dict, groups: dict[str, list[str]], writers: list[TrialWriter], step: int) -> None:
    """Each row's per-group gradient norms (before clipping), as solo's ``group_norms`` rows; ``writers``: the
    rows' writers, in stack order."""
    names, norms = [], []
    for g, ps in groups.items():
        grads = [params[n].grad for n in ps if n in params and params[n].grad is not None]
        if grads:
            names.append(g)
            norms.append(torch.linalg.vector_norm(
                torch.stack([torch.linalg.vector_norm(x.flatten(1), dim=1) for x in grads]), dim=0))
    if not norms:
        return
    table = torch.stack(norms).T.tolist()  # (S, groups)
    for w, norms_i in zip(writers, table):
        w.extend("grad_norms", {"step": [step] * len(names), "group": names, "norm": norms_i})


__all__ = ["bundle_supported", "run_bundle"]
