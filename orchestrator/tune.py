"""Ray Tune glue: the trainable, the per-group Optuna learning-rate search, progress, and the two stages.

Stage 1 (``lr_search``): one Optuna TPE study per grid group (cell, depth, nu0, ...), all driven by one Tuner through
``GridOptunaSearcher`` (OptunaSearch itself rejects grid_search in its space, and one Tuner per group
would run them one after another). Stage 2 (``seed``): every seed of every group at the group's best rate,
read back from the ``trials`` table, which is the source of truth. Both stages' trials land in ``trials``
with their ``stage``. Stage 3 (``analysis``): the spec's analyses (trainers.analyses), one trial each.
"""
from __future__ import annotations

import datetime as dt
import json
import math
import os
import pickle
import secrets
import shutil
import sys
import time

import optuna
import pyarrow.fs as pafs
import ray
from ray import tune
from ray.tune.search import Searcher

from trainers.config import TrialConfig
from trainers.bundle import run_bundle
from trainers.record import canonical_location, open_location, sweep_rows
from trainers.train import FINAL, run_trial

from .live import LiveLine
from .spec import AXES, SweepSpec, UserError

SWEEP_FILE = "sweep.json"
STAGES = ("lr_search", "seed", "analysis")


def _trainable(config: dict) -> None:
    """One trial inside Ray. A restarted trial (resume, retry) continues from its own checkpoint, which
    ``run_trial`` keeps beside its rows; Tune's checkpoints are not used, because Tune's experiment state
    can lag behind them (it may name a checkpoint it has since deleted)."""
    import torch

    torch.set_num_threads(max(1, int(config.get("threads", 1))))
    node = ray.get_runtime_context().get_node_id()
    if "members" in config["trial"]:  # a seed bundle: one report for its seeds, counted per seed by Progress
        members = [TrialConfig.from_dict(m) for m in config["trial"]["members"]]
        summaries = run_bundle(config["trial"]["trial_id"], members, on_progress=tune.report, node=node)
        statuses = [s["status"] for s in summaries]
        tune.report({"status": "bundle", **{f"seeds_{k}": statuses.count(k) for k in FINAL}})
        return
    cfg = TrialConfig.from_dict(config["trial"])
    summary = run_trial(cfg, on_progress=tune.report, node=node)
    tune.report({k: v for k, v in summary.items() if v is not None})


def trial_config(spec: SweepSpec, sweep_id: str, results: str, group: dict, **fields) -> dict:
    """A trial's config as JSON-ready data: the spec's shared fields, then the group's, then ``fields``."""
    shared = dict(
        sweep=spec.name, sweep_id=sweep_id, results=results, hidden=spec.hidden, d_model=spec.d_model,
        block=spec.block, init=spec.init, teacher_hidden=spec.teacher_hidden, steps=spec.steps, batch=spec.batch,
        eval_batch=spec.eval_batch, optimizer=spec.optimizer, schedule=spec.schedule, lr_min=spec.lr_min,
        solve_every=spec.solve_every, data_dir=spec.data_dir, grad_norm_every=spec.grad_norm_every,
        device=spec.device, checkpoint_every=spec.checkpoint_every, probes=spec.probes,
        probe_batch=spec.probe_batch)
    group = dict(group, clip=group.get("clip") or None, nu_max=spec.nu_max(group["nu"]))
    return json.loads(TrialConfig(**{**shared, **group, **fields}).to_json())


def _group_of(row: dict) -> dict:
    """The grid group of a ``trials`` row, from its config."""
    cfg = json.loads(row["config_json"])
    return {a: (cfg[a] or 0.0) if a == "clip" else cfg[a] for a in AXES}


class GridOptunaSearcher(Searcher):
    """One Optuna TPE study per grid group; suggests learning rates group by group (round robin) until each
    group has had ``budget`` trials. A diverged or failed trial is told a very large loss, so TPE learns
    that the rate was too high."""

    BAD = 1e30

    def __init__(self, spec: SweepSpec, sweep_id: str, results: str, threads: int):
        super().__init__()  # no metric: progress reports carry none; the final report has final_loss
        self.spec, self.sweep_id, self.results, self.threads = spec, sweep_id, results, threads
        self.groups = spec.grid()
        budget = spec.lr_search_trials
        self.studies = [
            optuna.create_study(direction="minimize", sampler=optuna.samplers.TPESampler(
                seed=i, n_startup_trials=max(1, budget // 2)))
            for i in range(len(self.groups))]
        self.issued = [0] * len(self.groups)
        self.live: dict[str, tuple[int, int]] = {}

    def suggest(self, trial_id: str):
        open_ = [i for i, n in enumerate(self.issued) if n < self.spec.lr_search_trials]
        if not open_:
            return Searcher.FINISHED
        i = min(open_, key=lambda j: (self.issued[j], j))
        g = self.groups[i]
        study = self.studies[i]
        ot = study.ask()
        lo, hi = self.spec.lr_range_for(g["cell"])
        lr = ot.suggest_float("lr", lo, hi, log=True)
        k = self.issued[i]
        self.issued[i] += 1
        self.live[trial_id] = (i, ot.number)
        tid = f"lr-{self.spec.group_key(g)}-{k}"
        return {"threads": self.threads,  # search trials only pick a rate: no probes
                "trial": trial_config(self.spec, self.sweep_id, self.results, g, trial_id=tid, probes=(),
                                      stage="lr_search", seed=self.spec.lr_search_seed, lr=lr)}

    def save(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "wb") as f:
            pickle.dump({"issued": self.issued, "live": self.live, "studies": self.studies}, f)

    def restore(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "rb") as f:
            state = pickle.load(f)  # our own file, written by save() above into the sweep's _tune folder
        self.issued, self.live, self.studies = state["issued"], state["live"], state["studies"]

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        if trial_id not in self.live:
            return
        i, number = self.live.pop(trial_id)
        value = (result or {}).get("final_loss")
        if error or value is None or not math.isfinite(value):
            value = self.BAD
        self.studies[i].tell(number, min(float(value), self.BAD))


def _seed_count(trial) -> int:
    """How many trials of the ``trials`` table a Tune trial runs: a seed bundle's members, else one."""
    return len(trial.config["trial"].get("members", [None]))


def _outcomes(trial) -> dict[str, int]:
    """A finished Tune trial's outcomes per status, counted per seed (a bundle reports ``seeds_<status>``)."""
    r = trial.last_result or {}
    if trial.status == "ERROR":
        return {"failed": _seed_count(trial)}
    if r.get("status") == "bundle":
        return {k: int(r.get(f"seeds_{k}", 0)) for k in FINAL}
    return {r.get("status"): 1}


class Progress(tune.Callback):
    """One live line: trials done / running / failed / diverged, the elapsed time, the ETA and the best and worst
    loss so far (``live.LiveLine``), counted per trial of the ``trials`` table (a seed bundle counts its seeds).
    Counts are read from Tune's trial list each time, so the line stays right after a restore (Tune pickles
    its callbacks)."""

    def __init__(self, stage: str, total: int):
        self.stage, self.total = stage, total
        self.t0 = time.monotonic()
        self._last = 0.0
        self._line = ""
        self.live = LiveLine()

    def setup(self, **info) -> None:
        self.t0 = time.monotonic()

    def _print(self, trials, force: bool = False) -> None:
        tty = sys.stderr.isatty()
        now = time.monotonic()
        if not force and now - self._last < (0.5 if tty else 10.0):
            return
        self._last = now
        done = {"failed": 0, "diverged": 0}
        finished = 0
        for t in trials:
            if t.status in ("TERMINATED", "ERROR"):
                finished += _seed_count(t)
                for k, n in _outcomes(t).items():
                    done[k] = done.get(k, 0) + n
        running = sum(_seed_count(t) for t in trials if t.status == "RUNNING")
        e = int(now - self.t0)
        line = (f"{self.stage}: {finished}/{self.total} done · {running} running · "
                f"{done['failed']} failed · {done['diverged']} diverged · "
                f"{e // 60:02d}:{e % 60:02d} elapsed" + self.live.fields(trials, self.total))
        if tty:  # a line longer than the terminal would wrap, and "\r" would not return to its start
            line = line[:shutil.get_terminal_size((200, 24)).columns - 1]
        if line != self._line or force:
            self._line = line
            print(("\r\033[K" + line) if tty else line, end="" if tty else "\n", file=sys.stderr, flush=True)

    def on_step_end(self, iteration, trials, **info):
        self._print(trials)

    def on_trial_result(self, iteration, trials, trial, result, **info):
        self.live.report(trial, result)

    def on_trial_complete(self, iteration, trials, trial, **info):
        self._failure(trial)
        self._print(trials, force=True)

    def on_trial_error(self, iteration, trials, trial, **info):
        self._failure(trial)
        self._print(trials, force=True)

    def _failure(self, trial) -> None:
        """A trial that failed or diverged gets a line of its own, with its reason, above the live line."""
        note = self.live.failure(trial)
        if note:
            print(("\r\033[K" if sys.stderr.isatty() else "") + note, file=sys.stderr, flush=True)

    def on_experiment_end(self, trials, **info):
        self._print(trials, force=True)
        if sys.stderr.isatty():
            print(file=sys.stderr)


def new_sweep_id(name: str) -> str:
    return f"{name}-{dt.datetime.now().strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(2)}"


def check_writable(results: str) -> None:
    """Raise UserError (one line) unless the results location can be created and written."""
    try:
        fs, path = open_location(results)
        fs.create_dir(path, recursive=True)
        probe = f"{path}/.write-probe-{secrets.token_hex(4)}"
        with fs.open_output_stream(probe) as f:
            f.write(b"ok")
        fs.delete_file(probe)
    except Exception as e:
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise UserError(f"results location {results!r} cannot be written ({reason}); pass --results DIR or "
                         "set SWEEP_RESULTS to a writable location") from None


def write_sweep_file(results: str, sweep_id: str, meta: dict) -> None:
    fs, root = open_location(results)
    fs.create_dir(f"{root}/{sweep_id}", recursive=True)
    with fs.open_output_stream(f"{root}/{sweep_id}/{SWEEP_FILE}") as f:
        f.write(json.dumps(meta, indent=2, sort_keys=True).encode())


def read_trials(results: str, sweep_id: str) -> list[dict]:
    """This sweep's ``trials`` rows, read straight from its Parquet files (trial files and merged files)."""
    fs, root = open_location(results)
    return sweep_rows(fs, f"{root}/{sweep_id}", "trials").to_pylist()


def best_lrs(spec: SweepSpec, rows: list[dict]) -> dict[str, float]:
    """Per group: the search trial with the lowest finite final loss; if every one diverged, the lowest
    rate tried; with no search, the spec's fixed ``lr``."""
    out = {}
    for g in spec.grid():
        key = spec.group_key(g)
        tried = [r for r in rows if r["stage"] == "lr_search" and spec.group_key(_group_of(r)) == key]
        ok = [r for r in tried if r["final_loss"] is not None and math.isfinite(r["final_loss"])]
        if ok:
            out[key] = min(ok, key=lambda r: r["final_loss"])["lr"]
        elif tried:
            out[key] = min(r["lr"] for r in tried)
        else:
            out[key] = spec.lr
    return out


def _storage(results: str, sweep_id: str) -> tuple[str, pafs.FileSystem | None]:
    if "://" not in results:
        return os.path.join(canonical_location(results), sweep_id, "_tune"), None
    fs, root = open_location(results)
    return f"{root}/{sweep_id}/_tune", fs


def stage_configs(stage: str, spec: SweepSpec, sweep_id: str, results: str, meta: dict) -> list[dict]:
    """The trial configs of a grid stage: ``seed`` (every seed at its group's chosen rate, which is
    recorded in ``meta``; a group's seeds as one bundle ``{"trial_id", "members"}`` where ``bundle_seeds`` is on
    and the cell allows) or ``analysis`` (one trial per entry of ``spec.analyses``, on the first group's
    settings at the largest nu, the longest memory; ``name:cell`` sets the cell)."""
    if stage == "seed":
        lrs = best_lrs(spec, read_trials(results, sweep_id))
        meta["lrs"] = lrs
        out = []
        for g in spec.grid():
            key = spec.group_key(g)
            seeds = [trial_config(spec, sweep_id, results, g, stage="seed", seed=s, lr=lrs[key],
                                  trial_id=f"{key}-s{s}") for s in range(spec.seeds)]
            if spec.bundles(g["cell"]):
                out.append({"trial_id": f"{key}-seeds", "members": seeds})  # one Ray trial: trainers.bundle
            else:
                out.extend(seeds)
        return out
    out = []
    for entry in spec.analyses:
        name, _, cell = entry.partition(":")
        out.append(trial_config(spec, sweep_id, results, dict(spec.grid()[0], nu=max(spec.nus), cell=cell or name), stage="analysis",
                                kind=name, probes=(), lr=spec.lr, trial_id=entry.replace(":", "-")))
    return out


def _dirname(trial) -> str:
    """Tune's folder for a trial: our trial id (Tune's default spells out the whole config)."""
    return f"{trial.config['trial']['trial_id']}-{trial.trial_id}"


def _tuner_kwargs(stage: str, results: str, sweep_id: str, spec: SweepSpec, total: int) -> dict:
    storage_path, storage_fs = _storage(results, sweep_id)
    return dict(run_config=tune.RunConfig(
        name=stage, storage_path=storage_path, storage_filesystem=storage_fs, verbose=0,
        callbacks=[Progress(stage, total)],
        failure_config=tune.FailureConfig(max_failures=spec.max_failures)))


def _has_experiment_state(path: str, fs: pafs.FileSystem | None) -> bool:
    """Whether an interrupted Tuner left state to restore. Tune's ``can_restore`` also says yes for a folder
    whose run was killed before its first experiment-state snapshot, and ``restore`` then fails; such a
    stage is simply started again (its finished trials are not rerun: see ``run_trial``)."""
    fs = fs or pafs.LocalFileSystem()
    infos = fs.get_file_info(pafs.FileSelector(path, allow_not_found=True))
    return any(f.base_name.startswith("experiment_state-") and f.base_name.endswith(".json") for f in infos)


def run_stage(stage: str, spec: SweepSpec, sweep_id: str, results: str, meta: dict) -> None:
    """Run one stage to the end: restore its Tuner when an interrupted run of it left state, else start it."""
    res = meta["resources"]
    threads = max(1, int(res["cpus_per_trial"]))
    trainable = tune.with_resources(_trainable, {"cpu": res["cpus_per_trial"], "gpu": res["gpus_per_trial"]})
    os.environ["RAY_AIR_NEW_OUTPUT"] = "0"  # the legacy reporter honours verbose=0; ours is the Progress line
    # With a searcher Tune keeps one trial pending at a time, which serialises short trials: allow as many
    # pending trials as the cluster has CPUs for.
    os.environ["TUNE_MAX_PENDING_TRIALS_PG"] = str(max(2, int(ray.cluster_resources().get("CPU", 2))))
    storage_path, storage_fs = _storage(results, sweep_id)
    path = f"{storage_path}/{stage}"
    if _has_experiment_state(path, storage_fs):
        tuner = tune.Tuner.restore(path, trainable, resume_unfinished=True, resume_errored=True,
                                   storage_filesystem=storage_fs)
    elif stage == "lr_search":
        n = len(spec.grid()) * spec.lr_search_trials
        tuner = tune.Tuner(trainable, tune_config=tune.TuneConfig(
            search_alg=GridOptunaSearcher(spec, sweep_id, results, threads), num_samples=n, reuse_actors=True,
            max_concurrent_trials=res.get("max_concurrent"), trial_dirname_creator=_dirname),
            **_tuner_kwargs(stage, results, sweep_id, spec, n))
    else:
        configs = stage_configs(stage, spec, sweep_id, results, meta)
        tuner = tune.Tuner(trainable, param_space={"threads": threads, "trial": tune.grid_search(configs)},
                           tune_config=tune.TuneConfig(reuse_actors=True, max_concurrent_trials=res.get("max_concurrent"),
                                                       trial_dirname_creator=_dirname),
                           **_tuner_kwargs(stage, results, sweep_id, spec,
                                           sum(len(c.get("members", [c])) for c in configs)))
    tuner.fit()
    meta["stages_done"] = sorted(set(meta.get("stages_done", [])) | {stage})
    write_sweep_file(results, sweep_id, meta)


def init_ray(address: str | None) -> None:
    """Join the cluster at ``address``, or start a private local Ray (``local``: never attach by accident to
    a cluster that `ray start` left running on this machine). An already initialised Ray is used as is."""
    if ray.is_initialized():
        return
    ray.init(address=address or "local", include_dashboard=False, log_to_driver=False, logging_level="WARNING")


def _run_stages(spec: SweepSpec, sweep_id: str, results: str, meta: dict) -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    for stage in STAGES:
        if (stage == "lr_search" and not spec.lr_search_trials) or (stage == "analysis" and not spec.analyses):
            continue
        if stage not in meta.get("stages_done", []):
            run_stage(stage, spec, sweep_id, results, meta)
    meta["status"] = "completed"
    write_sweep_file(results, sweep_id, meta)


def launch(spec: SweepSpec, results: str, *, address: str | None = None, cpus_per_trial: float = 1.0,
           gpus_per_trial: float = 0.0, max_concurrent: int | None = None, out=None,
           extra: dict | None = None) -> str:
    """Run every stage of ``spec``; returns the sweep id. Validation happens before anything is written.
    ``extra``: more fields for sweep.json (a spec file's ``base`` and ``spec_file``)."""
    results = canonical_location(results)
    check_writable(results)
    sweep_id = new_sweep_id(spec.name)
    print(f"sweep {sweep_id}", file=out or sys.stdout, flush=True)
    meta = dict(sweep_id=sweep_id, name=spec.name, scale=spec.scale, spec=spec.to_dict(),
                created_at=dt.datetime.now(dt.timezone.utc).isoformat(), status="running", stages_done=[],
                resources=dict(cpus_per_trial=cpus_per_trial, gpus_per_trial=gpus_per_trial,
                               max_concurrent=max_concurrent), **(extra or {}))
    write_sweep_file(results, sweep_id, meta)
    init_ray(address)
    _run_stages(spec, sweep_id, results, meta)
    return sweep_id


def read_sweep_file(results: str, sweep_id: str) -> dict:
    fs, root = open_location(results)
    path = f"{root}/{sweep_id}/{SWEEP_FILE}"
    if fs.get_file_info(path).type == pafs.FileType.NotFound:
        raise UserError(f"no sweep {sweep_id!r} under {results!r} (no {SWEEP_FILE}); `sweep ls` lists them")
    with fs.open_input_stream(path) as f:
        return json.loads(f.read().decode())  # data only: the spec is rebuilt field by field below


def resume(sweep_id: str, results: str, *, address: str | None = None) -> dict:
    """Finish an interrupted sweep from its results location; returns its sweep.json after the run.

    Finished stages are skipped, an interrupted stage's Tuner is restored (finished trials stay finished,
    unfinished ones continue from their last checkpoint), and a stage never started is started."""
    results = canonical_location(results)
    meta = read_sweep_file(results, sweep_id)
    if meta.get("status") == "completed":
        return meta
    spec = SweepSpec.from_dict(meta["spec"]).validate()
    init_ray(address)
    _run_stages(spec, sweep_id, results, meta)
    return meta
