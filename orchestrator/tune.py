"""Ray Tune glue: the trainable, the per-group Optuna learning-rate search, progress, and the two stages.

Stage 1 (``lr_search``): one Optuna TPE study per (cell, depth, nu0) group, all driven by one Tuner through
``GridOptunaSearcher`` (OptunaSearch itself rejects grid_search in its space, and one Tuner per group
would run them one after another). Stage 2 (``seed``): every seed of every group at the group's best rate,
read back from the ``trials`` table, which is the source of truth. Both stages' trials land in ``trials``
with their ``stage``.
"""
from __future__ import annotations

import datetime as dt
import json
import math
import os
import pickle
import secrets
import sys
import time

import optuna
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import ray
from ray import tune
from ray.tune.search import Searcher

from trainers.config import TrialConfig
from trainers.record import open_location
from trainers.train import run_trial

from .spec import SweepSpec

SWEEP_FILE = "sweep.json"


def _trainable(config: dict) -> None:
    import torch

    torch.set_num_threads(max(1, int(config.get("threads", 1))))
    cfg = TrialConfig.from_dict(config["trial"])
    summary = run_trial(cfg, on_progress=lambda m: tune.report(m))
    tune.report({k: v for k, v in summary.items() if v is not None})


def group_key(cell: str, depth: int, nu: float) -> str:
    return f"{cell}-d{depth}-nu{nu:g}"


def trial_config(spec: SweepSpec, sweep_id: str, results: str, group: dict, **fields) -> dict:
    cfg = TrialConfig(
        sweep=spec.name, sweep_id=sweep_id, results=results, task=spec.task, hidden=spec.hidden,
        d_model=spec.d_model, layer_norm=spec.layer_norm, seq_len=spec.seq_len,
        teacher_hidden=spec.teacher_hidden, steps=spec.steps, batch=spec.batch, eval_batch=spec.eval_batch,
        lr_min=spec.lr_min, clip=spec.clip or None, grad_norm_every=spec.grad_norm_every, device=spec.device,
        **group, **fields)
    return json.loads(cfg.to_json())


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
        tid = f"lr-{group_key(**g)}-{k}"
        return {"threads": self.threads,
                "trial": trial_config(self.spec, self.sweep_id, self.results, g, trial_id=tid,
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


class Progress(tune.Callback):
    """One live line: trials done / running / failed / diverged and the elapsed time."""

    def __init__(self, stage: str, total: int):
        self.stage, self.total = stage, total  # no stream kept: Tune pickles its callbacks
        self.t0 = time.monotonic()
        self.running = self.done = self.failed = self.diverged = 0
        self.tty = sys.stderr.isatty()
        self._last = 0.0

    def _print(self, trials=None, force: bool = False) -> None:
        if trials is not None:
            self.running = sum(t.status == "RUNNING" for t in trials)
        now = time.monotonic()
        if not force and now - self._last < (0.5 if self.tty else 10.0):
            return
        self._last = now
        e = int(now - self.t0)
        line = (f"{self.stage}: {self.done}/{self.total} done · {self.running} running · "
                f"{self.failed} failed · {self.diverged} diverged · {e // 60:02d}:{e % 60:02d} elapsed")
        print(("\r" + line) if self.tty else line, end="" if self.tty else "\n", file=sys.stderr, flush=True)

    def on_step_end(self, iteration, trials, **info):
        self._print(trials)

    def on_trial_complete(self, iteration, trials, trial, **info):
        self.done += 1
        status = (trial.last_result or {}).get("status")
        self.failed += status == "failed"
        self.diverged += status == "diverged"
        self._print(trials, force=True)

    def on_trial_error(self, iteration, trials, trial, **info):
        self.done += 1
        self.failed += 1
        self._print(trials, force=True)

    def close(self) -> None:
        self.running = 0
        self._print(force=True)
        if self.tty:
            print(file=sys.stderr)


def new_sweep_id(name: str) -> str:
    return f"{name}-{dt.datetime.now().strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(2)}"


def check_writable(results: str) -> None:
    """Raise ValueError (one line) unless the results location can be created and written."""
    try:
        fs, path = open_location(results)
        fs.create_dir(path, recursive=True)
        probe = f"{path}/.write-probe-{secrets.token_hex(4)}"
        with fs.open_output_stream(probe) as f:
            f.write(b"ok")
        fs.delete_file(probe)
    except Exception as e:
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ValueError(f"results location {results!r} cannot be written ({reason}); pass --results DIR or "
                         "set SWEEP_RESULTS to a writable location") from None


def write_sweep_file(results: str, sweep_id: str, meta: dict) -> None:
    fs, root = open_location(results)
    fs.create_dir(f"{root}/{sweep_id}", recursive=True)
    with fs.open_output_stream(f"{root}/{sweep_id}/{SWEEP_FILE}") as f:
        f.write(json.dumps(meta, indent=2, sort_keys=True).encode())


def read_trials(results: str, sweep_id: str) -> list[dict]:
    """This sweep's ``trials`` rows, read straight from its Parquet files."""
    fs, root = open_location(results)
    sel = pafs.FileSelector(f"{root}/{sweep_id}/trials", recursive=True, allow_not_found=True)
    files = [f.path for f in fs.get_file_info(sel) if f.path.endswith(".parquet") and not f.base_name.startswith(".")]
    rows: list[dict] = []
    for path in files:
        rows.extend(pq.read_table(path, filesystem=fs).to_pylist())
    return rows


def best_lrs(spec: SweepSpec, rows: list[dict]) -> dict[str, float]:
    """Per group: the search trial with the lowest finite final loss; if every one diverged, the lowest
    rate tried; with no search, the spec's fixed ``lr``."""
    out = {}
    for g in spec.grid():
        key = group_key(**g)
        tried = [r for r in rows if r["stage"] == "lr_search" and group_key(r["cell"], r["depth"], r["nu"]) == key]
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
        return os.path.join(os.path.abspath(os.path.expanduser(results)), sweep_id, "_tune"), None
    fs, root = open_location(results)
    return f"{root}/{sweep_id}/_tune", fs


def run_stage(stage: str, spec: SweepSpec, sweep_id: str, results: str, *, resources: dict,
              max_concurrent: int | None, param_space: dict | None = None, searcher=None,
              num_samples: int = 1, total: int) -> None:
    storage_path, storage_fs = _storage(results, sweep_id)
    os.environ["RAY_AIR_NEW_OUTPUT"] = "0"  # the legacy reporter honours verbose=0; ours is the Progress line
    progress = Progress(stage, total)
    tuner = tune.Tuner(
        tune.with_resources(_trainable, resources),
        param_space=param_space,
        tune_config=tune.TuneConfig(search_alg=searcher, num_samples=num_samples, reuse_actors=True,
                                    max_concurrent_trials=max_concurrent),
        run_config=tune.RunConfig(name=stage, storage_path=storage_path, storage_filesystem=storage_fs,
                                  verbose=0, callbacks=[progress]),
    )
    tuner.fit()
    progress.close()


def init_ray(address: str | None) -> None:
    if ray.is_initialized():
        return
    ray.init(address=address, include_dashboard=False, log_to_driver=False, logging_level="WARNING")


def launch(spec: SweepSpec, results: str, *, address: str | None = None, cpus_per_trial: float = 1.0,
           gpus_per_trial: float = 0.0, max_concurrent: int | None = None, out=sys.stdout) -> str:
    """Run both stages of ``spec``; returns the sweep id. Validation happens before anything is written."""
    check_writable(results)
    sweep_id = new_sweep_id(spec.name)
    print(f"sweep {sweep_id}", file=out, flush=True)
    meta = dict(sweep_id=sweep_id, name=spec.name, scale=spec.scale, spec=spec.to_dict(),
                created_at=dt.datetime.now(dt.timezone.utc).isoformat(), status="running",
                resources=dict(cpus_per_trial=cpus_per_trial, gpus_per_trial=gpus_per_trial))
    write_sweep_file(results, sweep_id, meta)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    init_ray(address)
    resources = {"cpu": cpus_per_trial, "gpu": gpus_per_trial}
    threads = max(1, int(cpus_per_trial))
    kw = dict(resources=resources, max_concurrent=max_concurrent)
    if spec.lr_search_trials:
        n = len(spec.grid()) * spec.lr_search_trials
        run_stage("lr_search", spec, sweep_id, results, searcher=GridOptunaSearcher(spec, sweep_id, results, threads),
                  num_samples=n, total=n, **kw)
    lrs = best_lrs(spec, read_trials(results, sweep_id))
    configs = [trial_config(spec, sweep_id, results, g, stage="seed", seed=s, lr=lrs[group_key(**g)],
                            trial_id=f"{group_key(**g)}-s{s}")
               for g in spec.grid() for s in range(spec.seeds)]
    run_stage("seed", spec, sweep_id, results, param_space={"threads": threads, "trial": tune.grid_search(configs)},
              total=len(configs), **kw)
    write_sweep_file(results, sweep_id, dict(meta, status="completed", lrs=lrs))
    return sweep_id
