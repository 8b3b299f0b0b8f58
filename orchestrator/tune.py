"""Ray Tune glue: the trainable, the sweep's searcher, progress, and the one Tuner that runs a whole sweep.

A sweep is three kinds of trial, all issued by ``SweepSearcher`` to one Tuner (so its actors, reused, live for
the whole sweep and no stage waits on another): ``seed`` (under the grid protocol, ``SweepSpec.lr_search``, every
rate of the group's grid x every seed, one bundle where the cell allows; the chosen rate is derived from the rows,
analysis.selection; under tpe every seed at the best searched rate, read back from the ``trials`` table, the
source of truth, as soon as that group's search is over), ``lr_search`` (tpe only: one Optuna TPE study per grid
group: cell, depth, nu0, ...; OptunaSearch itself rejects grid_search in its space) and
``analysis`` (the spec's analyses, trainers.analyses, one trial each; they need no search). Every trial lands
in ``trials`` with its ``stage``.
"""
from __future__ import annotations

import datetime as dt
import json
import math
import os
import pickle
import secrets
import logging
import sys
import time

import pyarrow.fs as pafs
import ray
from ray import tune
from ray.tune.search import Searcher

from trainers.config import TrialConfig
from trainers.bundle import run_bundle
from trainers.record import TrialWriter, canonical_location, open_location, sweep_rows, write_atomic
from trainers.location import relocate
from trainers.train import FINAL, open_trial, run_trial

from .lease import driver_lease
from .cluster_check import check_gpus, watch_cluster
from .gave_up import GiveUp, errored_in, reopen
from .no_space import NoSpace, is_no_space
from .progress import Progress
from .result_file import ResultFile
from .sweep_file import check_sweep_id, parse_sweep_json, spec_of
from .stop import StopWatch, clear_stop
from .axes import varying
from .loggers import callbacks as logger_callbacks, with_step
from .spec import SweepSpec, UserError

SWEEP_FILE = "sweep.json"
EXPERIMENT = "sweep"  # the Tuner's experiment under <sweep>/_tune
SEARCH_STATE = "searcher.pkl"  # SweepSearcher's state under <sweep>/_tune


def _trainable(config: dict) -> None:
    """One trial inside Ray. A restarted trial (resume, retry) continues from its own checkpoint, which
    ``run_trial`` keeps beside its rows; Tune's checkpoints are not used, because Tune's experiment state
    can lag behind them (it may name a checkpoint it has since deleted)."""
    import torch

    torch.set_num_threads(max(1, int(config.get("threads", 1))))
    node = ray.get_runtime_context().get_node_id()
    if "members" in config["trial"]:  # a seed bundle: one report for its seeds, counted per seed by Progress
        cfgs = [TrialConfig.from_dict(m) for m in config["trial"]["members"]]
        summaries = run_bundle(config["trial"]["trial_id"], cfgs, on_progress=with_step(tune.report), node=node)
        statuses = [s["status"] for s in summaries]
        tune.report({"status": "bundle", **{f"seeds_{k}": statuses.count(k) for k in FINAL},
                     **{f"final_loss_seed{c.seed}": s["final_loss"] for c, s in zip(cfgs, summaries)
                        if s.get("final_loss") is not None}})
        return
    cfg = TrialConfig.from_dict(config["trial"])
    summary = run_trial(cfg, on_progress=with_step(tune.report), node=node)
    tune.report({k: v for k, v in summary.items() if v is not None})


def trial_config(spec: SweepSpec, sweep_id: str, results: str, group: dict, **fields) -> dict:
    """A trial's config as JSON-ready data: the spec's shared fields, then the group's, then ``fields``."""
    shared = dict(
        sweep=spec.name, sweep_id=sweep_id, results=results, hidden=spec.hidden, d_model=spec.d_model,
        block=spec.block, init=spec.init_for(group["cell"]), teacher_hidden=spec.teacher_hidden, steps=spec.steps,
        batch=spec.batch,
        eval_batch=spec.eval_batch, optimizer=spec.optimizer, schedule=spec.schedule, lr_min=spec.lr_min,
        solve_every=spec.solve_every, data_dir=spec.data_dir, grad_norm_every=spec.grad_norm_every,
        device=spec.device, checkpoint_every=spec.checkpoint_every, probes=spec.probes,
        probe_batch=spec.probe_batch)
    group = dict(group, clip=group.get("clip") or None, nu_max=spec.nu_max(group["nu"]),
                 **spec.step_schedule(group["task"]))
    return json.loads(TrialConfig(**{**shared, **group, **fields}).to_json())


def seed_configs(spec: SweepSpec, sweep_id: str, results: str, group: dict, lrs: tuple[float, ...]) -> list[dict]:
    """A group's seed-stage runs, every rate of ``lrs`` x every seed (trial id ``<group>-s<seed>``, with
    ``-lr<rate>`` before the seed where the group has several rates): all as one bundle ``{"trial_id",
    "members"}`` (one Ray trial) where ``spec.bundles``, else one trial per run."""
    key = spec.group_key(group)
    runs = [trial_config(spec, sweep_id, results, group, stage="seed", seed=s, lr=lr, group_key=key,
                         trial_id=f"{key}-lr{lr:g}-s{s}" if len(lrs) > 1 else f"{key}-s{s}")
            for lr in lrs for s in range(spec.seeds)]
    return [{"trial_id": f"{key}-seeds", "members": runs}] if spec.bundles(group) else runs


def analysis_configs(spec: SweepSpec, sweep_id: str, results: str) -> list[dict]:
    """One trial per entry of ``spec.analyses``, on the first group's settings at the largest nu, the longest
    memory; ``name:cell`` sets the cell."""
    out = []
    for entry in spec.analyses:
        name, _, cell = entry.partition(":")
        group = dict(spec.grid()[0], nu=max(spec.nus), cell=cell or name)
        out.append(trial_config(spec, sweep_id, results, group, stage="analysis", kind=name, probes=(), lr=spec.lr,
                                trial_id=entry.replace(":", "-")))
    return out


def search_trial_id(spec: SweepSpec, group: dict, k: int) -> str:
    return f"lr-{spec.group_key(group)}-{k}"


def best_lr(spec: SweepSpec, rows: list[dict]) -> float:
    """A group's rate from its search trials' ``trials`` rows: the lowest finite final loss; if every one
    diverged (or failed), the lowest rate tried; with no search, the spec's fixed ``lr``."""
    ok = [r for r in rows if r["final_loss"] is not None and math.isfinite(r["final_loss"])]
    if ok:
        return min(ok, key=lambda r: r["final_loss"])["lr"]
    return min(r["lr"] for r in rows) if rows else spec.lr


def members(trial: dict) -> list[dict]:
    """The ``trials`` rows a Ray trial's config runs: a seed bundle's members, else itself."""
    return trial.get("members", [trial])


def _summary(trial: dict) -> dict | None:
    """The summary of a Ray trial's config if every trial it runs has its final ``trials`` row for this exact
    config (it would not be trained again: see ``run_trial``), else None."""
    summaries = [open_trial(TrialConfig.from_dict(m))[1] for m in members(trial)]
    return None if any(s is None for s in summaries) else summaries[0]


class SweepSearcher(Searcher):
    """Issues every trial of a sweep to one Tuner, what can start first first: the unfinished trials of an
    interrupted run (the same configs: they continue from their checkpoints), the seeds of every group whose
    search is over (at its best rate, read back from ``trials``), search trials group by group, round robin (one
    Optuna TPE study per group), and the analyses once no search trial is left to hand out. Returns None while
    nothing can be issued yet (searches still running), FINISHED once everything is issued. A diverged or failed
    search trial is told a very large loss, so TPE learns that the rate was too high.

    Its state is written to ``_tune/searcher.pkl`` of the sweep before each trial is handed to Tune, so a driver
    killed at any moment leaves a state that names every trial it started; ``load`` reads it back and checks each
    trial it had out against ``trials`` (the source of truth: a finished trial's final rows; so the state need not
    be written again when a trial finishes, only when one errors). Tune's own experiment snapshots are not used
    for this: they lag behind, and are uploaded file by file."""

    BAD = 1e30
    STATE = ("issued", "told", "lrs", "seeds_issued", "analyses_issued", "live", "queue", "errored", "studies")

    def __init__(self, spec: SweepSpec, sweep_id: str, results: str, threads: int):
        import optuna  # here, not at the top: the trial actors import this module for _trainable, and need no optuna

        super().__init__()  # no metric: progress reports carry none; the final report has final_loss
        self.spec, self.sweep_id, self.results, self.threads = spec, sweep_id, results, threads
        self.groups = spec.grid()
        self.budget = budget = spec.lr_search_trials if spec.lr_search == "tpe" else 0  # search trials per group
        self.studies = [
            optuna.create_study(direction="minimize", sampler=optuna.samplers.TPESampler(
                seed=i, n_startup_trials=max(1, budget // 2)))
            for i in range(len(self.groups))]
        self.issued = [0] * len(self.groups)  # search trials handed out, per group
        self.told = [0] * len(self.groups)  # search trials finished and told to the study, per group
        self.lrs: dict[str, tuple[float, ...]] = {}  # group key -> its seed stage's rates (tpe: once searched)
        self.seeds_issued = [0] * len(self.groups)  # seed trials (bundles count once) handed out, per group
        self.analyses_issued = 0
        self.live: dict[str, dict] = {}  # Tune trial id -> {"trial": config, search trials: "study", "number"}
        self.queue: list[dict] = []  # entries of ``live`` left unfinished by an interrupted run: issued first
        self.errored: list[dict] = []  # entries of trials Tune gave up on (process lost max_failures times)
        self.n_seeds = [1 if spec.bundles(g) else spec.seeds * len(spec.rates(g)) for g in self.groups]
        if not budget:
            self.lrs = {spec.group_key(g): spec.rates(g) for g in self.groups}

    def remaining(self) -> int:
        """How many trials are still to be handed out (the Tuner's ``num_samples``)."""
        return (len(self.queue) + len(self.groups) * self.budget - sum(self.issued)
                + sum(self.n_seeds) - sum(self.seeds_issued) + len(self.spec.analyses) - self.analyses_issued)

    def suggest(self, trial_id: str):
        entry = self._next()
        if entry is None:
            return Searcher.FINISHED if self.remaining() == 0 else None
        self.live[trial_id] = entry
        self._persist()  # before Tune has the trial: a killed driver's state names every trial that ran
        return {"threads": self.threads, "trial": entry["trial"]}

    def _next(self) -> dict | None:
        if self.queue:
            return self.queue.pop(0)
        for i, g in enumerate(self.groups):
            if self.spec.group_key(g) in self.lrs and self.seeds_issued[i] < self.n_seeds[i]:
                self.seeds_issued[i] += 1
                lr = self.lrs[self.spec.group_key(g)]
                return {"trial": seed_configs(self.spec, self.sweep_id, self.results, g, lr)[self.seeds_issued[i] - 1]}
        open_ = [i for i, n in enumerate(self.issued) if n < self.budget]
        if open_:
            i = min(open_, key=lambda j: (self.issued[j], j))
            g = self.groups[i]
            ot = self.studies[i].ask()
            lo, hi = self.spec.lr_range_for(g["cell"])
            lr = ot.suggest_float("lr", lo, hi, log=True)
            tid = search_trial_id(self.spec, g, self.issued[i])
            self.issued[i] += 1
            return {"study": i, "number": ot.number,  # search trials only pick a rate: no probes
                    "trial": trial_config(self.spec, self.sweep_id, self.results, g, trial_id=tid, probes=(),
                                          stage="lr_search", seed=self.spec.lr_search_seed, lr=lr,
                                          group_key=self.spec.group_key(g))}
        if self.analyses_issued < len(self.spec.analyses):
            self.analyses_issued += 1
            return {"trial": analysis_configs(self.spec, self.sweep_id, self.results)[self.analyses_issued - 1]}
        return None

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        entry = self.live.pop(trial_id, None)
        if entry is None:
            return
        if "study" in entry:
            self._tell(entry, None if error else (result or {}).get("final_loss"))
        if error:  # a trial that finished has its final rows, which ``load`` reads; one that errored has none
            self.errored.append({"trial": entry["trial"]})  # told already: retried by a resume, not told again
            self._persist()

    def _tell(self, entry: dict, value: float | None) -> None:
        """Tell a search trial's final loss to its study; fix the group's rate once all its trials are told."""
        i = entry["study"]
        value = self.BAD if value is None or not math.isfinite(value) else min(float(value), self.BAD)
        self.studies[i].tell(entry["number"], value)
        self.told[i] += 1
        if self.told[i] == self.budget:
            self._choose([i])

    def _choose(self, groups) -> None:
        """Fix the rate of each of ``groups`` from its search trials' rows in ``trials``."""
        for i in groups:
            g = self.groups[i]
            rows = [TrialWriter(self.results, self.sweep_id, search_trial_id(self.spec, g, k)).read_trial()
                    for k in range(self.budget)]
            self.lrs[self.spec.group_key(g)] = (best_lr(self.spec, [r for r in rows if r is not None]),)

    def save(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "wb") as f:
            f.write(self._state())

    def restore(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "rb") as f:
            self._set_state(f.read())

    def _state(self) -> bytes:
        return pickle.dumps({k: getattr(self, k) for k in self.STATE})

    def _set_state(self, data: bytes) -> None:
        state = pickle.loads(data)  # our own file, written by _persist or save above
        for k in self.STATE:
            setattr(self, k, state[k])

    def _persist(self) -> None:
        write_atomic(*_state_file(self.results, self.sweep_id), self._state())

    @classmethod
    def load(cls, spec: SweepSpec, sweep_id: str, results: str, threads: int,
             retry_errored: bool = True) -> "SweepSearcher":
        """The searcher of a sweep as its last driver left it (a new one if none had started): each trial it
        had out that has finished since (its final rows are in ``trials``) is done, a search trial told its loss;
        every other one is queued to be issued again, with the trials Tune gave up on if ``retry_errored``."""
        self = cls(spec, sweep_id, results, threads)
        fs, path = _state_file(results, sweep_id)
        if fs.get_file_info(path).type == pafs.FileType.NotFound:
            return self
        with fs.open_input_stream(path) as f:
            self._set_state(f.read())
        out, self.queue, self.live = self.queue + list(self.live.values()), [], {}
        out = [dict(e, trial=relocate(e["trial"], results)) for e in out]  # the location given now, never the stored one
        if retry_errored:  # trials Tune gave up on read `failed`: running again, then issued again
            errored = [dict(e, trial=relocate(e["trial"], results)) for e in self.errored]
            for e in errored:
                reopen(e["trial"])
            out, self.errored = out + errored, []
        for entry in out:
            summary = _summary(entry["trial"])
            if summary is None:
                self.queue.append(entry)
            elif "study" in entry:
                self._tell(entry, summary["final_loss"])
        self._persist()
        return self


def _state_file(results: str, sweep_id: str) -> tuple[pafs.FileSystem, str]:
    fs, root = open_location(results)
    return fs, f"{root}/{sweep_id}/_tune/{SEARCH_STATE}"


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


def _storage(results: str, sweep_id: str) -> tuple[str, pafs.FileSystem | None]:
    if "://" not in results:
        return os.path.join(canonical_location(results), sweep_id, "_tune"), None
    fs, root = open_location(results)
    return f"{root}/{sweep_id}/_tune", fs


def _dirname(trial) -> str:
    """Tune's folder for a trial: our trial id (Tune's default spells out the whole config)."""
    return f"{trial.config['trial']['trial_id']}-{trial.trial_id}"


def _finished_before(results: str, sweep_id: str, searcher: SweepSearcher) -> dict[str, int]:
    """What an interrupted run finished, by stage and by status: the final ``trials`` rows, less the trials
    the searcher issues again (a bundle issued again reports all its seeds)."""
    again = {m["trial_id"] for e in searcher.queue for m in members(e["trial"])}
    out: dict[str, int] = {}
    for r in read_trials(results, sweep_id):
        if r["status"] in FINAL and r["trial_id"] not in again:
            out[r["stage"]] = out.get(r["stage"], 0) + 1
            out[r["status"]] = out.get(r["status"], 0) + 1
    return out


def run_sweep(spec: SweepSpec, sweep_id: str, results: str, meta: dict) -> None:
    """Run a sweep, or what an interrupted run of it left, to the end with one Tuner (``SweepSearcher`` issues
    every trial); then record the chosen rates and the status in sweep.json."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    res = meta["resources"]
    searcher = SweepSearcher.load(spec, sweep_id, results, threads=max(1, int(res["cpus_per_trial"])))
    if searcher.remaining():
        trainable = tune.with_resources(_trainable, {"cpu": res["cpus_per_trial"], "gpu": res["gpus_per_trial"]})
        os.environ["RAY_AIR_NEW_OUTPUT"] = "0"  # the legacy reporter honours verbose=0; ours is the Progress line
        # No CSV/JSON/TensorBoard result loggers: every row is in our Parquet tables, and the TensorBoard one alone
        # costs the driver ~1.3 s of imports at the start plus a file write per trial report.
        os.environ["TUNE_DISABLE_AUTO_CALLBACK_LOGGERS"] = "1"
        # With a searcher Tune keeps one trial pending at a time, which serialises short trials: allow as many
        # pending trials as the cluster has CPUs for.
        os.environ["TUNE_MAX_PENDING_TRIALS_PG"] = str(max(2, int(ray.cluster_resources().get("CPU", 2))))
        storage_path, storage_fs = _storage(results, sweep_id)
        progress = Progress(spec.stage_trials(), _finished_before(results, sweep_id, searcher))
        clear_stop(results, sweep_id)
        give_up = GiveUp()
        # Tune's own words at the end (a stop, an interrupt: "resume with Tuner.restore"; "Trials did not
        # complete") are ours to say: `sweep resume`, and each failed trial's line from Progress.
        # Trial failures too: each one's reason is in `trials` and Progress's line, not a traceback (issue 14).
        quiet = [logging.getLogger(n) for n in ("ray.tune.tune", "ray.tune.execution.tune_controller",
                                                "ray.train._internal.syncer")]
        levels = [q.level for q in quiet]
        for q in quiet:
            q.setLevel(logging.CRITICAL)
        try:
            tune.Tuner(trainable, tune_config=tune.TuneConfig(
                search_alg=searcher, num_samples=searcher.remaining(), reuse_actors=True,
                max_concurrent_trials=res.get("max_concurrent"), trial_dirname_creator=_dirname),
                run_config=tune.RunConfig(
                    name=EXPERIMENT, storage_path=storage_path, storage_filesystem=storage_fs, verbose=0,
                    callbacks=[progress, ResultFile(), StopWatch(results, sweep_id), give_up,
                               *logger_callbacks(tuple(meta.get("log_to", ())), storage_root(results),
                                                 sweep_id, spec.name)],
                    failure_config=tune.FailureConfig(max_failures=spec.max_failures))).fit()
        finally:
            progress.close()
            for q, level in zip(quiet, levels):
                q.setLevel(level)
            clear_stop(results, sweep_id)
        if give_up.no_space:
            raise NoSpace(results)
        # as the run left it: complete unless a trial is unfinished (an interrupt); errored trials are final here
        searcher = SweepSearcher.load(spec, sweep_id, results, threads=searcher.threads, retry_errored=False)
    # one rate per group (tpe, none); a grid's chosen rate is in the rows (``trials.selected``), not here
    meta["lrs"] = {k: v[0] for k, v in sorted(searcher.lrs.items()) if len(v) == 1}
    meta["status"] = "interrupted" if searcher.remaining() else "completed"
    now = read_sweep_file(results, sweep_id)  # tags and a note set by `sweep tag` while it ran
    meta.update({k: now[k] for k in ("tags", "note") if k in now})
    write_sweep_file(results, sweep_id, meta)


def storage_root(results: str) -> str | None:
    """The local folder of ``results``; None for a remote location (s3://...)."""
    return None if "://" in results else canonical_location(results)


def init_ray(address: str | None) -> None:
    """Join the cluster at ``address``, or start a private local Ray (``local``: never attach by accident to
    a cluster that `ray start` left running on this machine). An already initialised Ray is used as is."""
    if ray.is_initialized():
        return
    ray.init(address=address or "local", include_dashboard=False, log_to_driver=False, logging_level="WARNING")


def launch(spec: SweepSpec, results: str, *, address: str | None = None, cpus_per_trial: float = 1.0,
           gpus_per_trial: float = 0.0, max_concurrent: int | None = None, out=None,
           extra: dict | None = None, log_to: tuple[str, ...] = (), sweep_id: str | None = None) -> str:
    """Run every trial of ``spec``; returns the sweep id. Validation happens before anything is written.
    ``extra``: more fields for sweep.json (a spec file's ``base`` and ``spec_file``); ``log_to``: Tune logger
    callbacks (``orchestrator.loggers``), recorded in sweep.json so that a resume logs to them too; ``sweep_id``:
    the id a submitter chose (``orchestrator.submit``), else a new one."""
    results = canonical_location(results)
    if gpus_per_trial:  # before anything is written: a GPU trial on a cluster without one would wait forever
        init_ray(address)
        check_gpus(gpus_per_trial)
    check_writable(results)
    sweep_id = sweep_id or new_sweep_id(spec.name)
    print(f"sweep {sweep_id}", file=out or sys.stdout, flush=True)
    meta = new_meta(spec, sweep_id, dict(cpus_per_trial=cpus_per_trial, gpus_per_trial=gpus_per_trial,
                                         max_concurrent=max_concurrent),
                    dict(extra or {}, **({"log_to": list(log_to)} if log_to else {})))
    with driver_lease(results, sweep_id):  # one driver per sweep (orchestrator.lease)
        write_sweep_file(results, sweep_id, meta)
        drive(spec, sweep_id, results, meta, address)
    return sweep_id


def drive(spec: SweepSpec, sweep_id: str, results: str, meta: dict, address: str | None) -> None:
    """``run_sweep`` on Ray; a second Ctrl-C (or one before Tune took over SIGINT) leaves it ``interrupted``."""
    try:
        init_ray(address)
        watch = watch_cluster(sweep_id, f" --results {results}")  # a lost cluster ends the driver in one line
        try:
            run_sweep(spec, sweep_id, results, meta)
        finally:
            watch.set()
    except OSError as e:  # a full results location under the driver: one line, the sweep stays resumable
        if is_no_space(e):
            raise NoSpace(results) from None
        raise
    except KeyboardInterrupt:
        meta["status"] = "interrupted"
        write_sweep_file(results, sweep_id, meta)


def new_meta(spec: SweepSpec, sweep_id: str, resources: dict, extra: dict, status: str = "running") -> dict:
    """A new sweep's sweep.json."""
    return dict(sweep_id=sweep_id, name=spec.name, scale=spec.scale, spec=spec.to_dict(),
                created_at=dt.datetime.now(dt.timezone.utc).isoformat(), status=status, resources=resources,
                axes=varying(spec.grid()), bundled_cells=sorted({g["cell"] for g in spec.grid() if spec.bundles(g)}),
                **extra)


def read_sweep_file(results: str, sweep_id: str) -> dict:
    fs, root = open_location(results)
    path = f"{root}/{sweep_id}/{SWEEP_FILE}"
    if fs.get_file_info(path).type == pafs.FileType.NotFound:
        raise UserError(f"no sweep {sweep_id!r} under {results!r} (no {SWEEP_FILE}); `sweep ls` lists them")
    with fs.open_input_stream(path) as f:
        return parse_sweep_json(path, f.read())


def resume(sweep_id: str, results: str, *, address: str | None = None) -> dict:
    """Finish an interrupted sweep from its results location; returns its sweep.json after the run.

    A new Tuner takes over from the searcher's saved state: finished trials stay finished, unfinished ones
    continue from their last checkpoint, and what was never issued is issued."""
    results = canonical_location(results)
    check_sweep_id(sweep_id)  # never read outside --results
    meta = read_sweep_file(results, sweep_id)
    if meta.get("status") == "completed" and not errored_in(*_state_file(results, sweep_id)):  # gave-ups: retry
        return meta
    spec = spec_of(meta, f"{sweep_id}/{SWEEP_FILE}")
    with driver_lease(results, sweep_id):  # a second driver of this sweep stops here, naming the first
        meta["status"] = "running"
        write_sweep_file(results, sweep_id, meta)
        drive(spec, sweep_id, results, meta, address)
    return meta
