"""Launch and resume: a sweep's driver runs every trial of its spec with one Ray Tune Tuner (``SweepSearcher``
issues them), writes sweep.json before and after, and leaves an interrupted sweep resumable."""
from __future__ import annotations

import datetime as dt
import logging
import os
import sys

import ray
from ray import tune

from layout import paths
from layout.location import canonical_location, local_root, tune_storage
from layout.schemas import FINAL

from .axes import varying
from .cluster_check import check_gpus, watch_cluster
from .gave_up import GiveUp, errored_in
from .lease import driver_lease
from .loggers import callbacks as logger_callbacks
from .no_space import NoSpace, is_no_space
from .plan import bundled
from .progress import Progress
from .result_file import ResultFile
from .searcher import SweepSearcher, members
from .spec import SweepSpec
from .stop import StopWatch, clear_stop
from .sweep_file import check_sweep_id, spec_of
from .sweep_store import check_writable, new_sweep_id, read_sweep_file, read_trials, state_file, write_sweep_file
from .worker import trainable

EXPERIMENT = "sweep"  # the Tuner's experiment under <sweep>/_tune


def _dirname(trial) -> str:
    """Tune's folder for a trial: our trial id (Tune's default spells out the whole config)."""
    return f"{trial.config['trial']['trial_id']}-{trial.trial_id}"


def _finished_before(results: str, sweep_id: str, searcher: SweepSearcher) -> dict[str, int]:
    """What an interrupted run finished, by stage and by status: the final ``trials`` rows, less the trials
    the searcher issues again (a bundle issued again reports all its seeds)."""
    again = {m["trial_id"] for entry in searcher.queue for m in members(entry["trial"])}
    out: dict[str, int] = {}
    for r in read_trials(results, sweep_id):
        if r["status"] in FINAL and r["trial_id"] not in again:
            out[r["stage"]] = out.get(r["stage"], 0) + 1
            out[r["status"]] = out.get(r["status"], 0) + 1
    return out


def run_sweep(spec: SweepSpec, sweep_id: str, results: str, meta: dict) -> None:
    """Run a sweep, or what an interrupted run of it left, to the end with one Tuner (``SweepSearcher`` issues
    every trial); then record the chosen rates and the status in sweep.json."""
    import optuna  # with the searcher: the driver's import

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    res = meta["resources"]
    searcher = SweepSearcher.load(spec, sweep_id, results, threads=max(1, int(res["cpus_per_trial"])))
    if searcher.remaining():
        resourced = tune.with_resources(trainable, {"cpu": res["cpus_per_trial"], "gpu": res["gpus_per_trial"]})
        os.environ["RAY_AIR_NEW_OUTPUT"] = "0"  # the legacy reporter honours verbose=0; ours is the Progress line
        # No CSV/JSON/TensorBoard result loggers: every row is in our Parquet tables, and the TensorBoard one alone
        # costs the driver ~1.3 s of imports at the start plus a file write per trial report.
        os.environ["TUNE_DISABLE_AUTO_CALLBACK_LOGGERS"] = "1"
        # With a searcher Tune keeps one trial pending at a time, which serialises short trials: allow as many
        # pending trials as the cluster has CPUs for.
        os.environ["TUNE_MAX_PENDING_TRIALS_PG"] = str(max(2, int(ray.cluster_resources().get("CPU", 2))))
        storage_path, storage_fs = tune_storage(results, sweep_id)
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
            tune.Tuner(resourced, tune_config=tune.TuneConfig(
                search_alg=searcher, num_samples=searcher.remaining(), reuse_actors=True,
                max_concurrent_trials=res.get("max_concurrent"), trial_dirname_creator=_dirname),
                run_config=tune.RunConfig(
                    name=EXPERIMENT, storage_path=storage_path, storage_filesystem=storage_fs, verbose=0,
                    callbacks=[progress, ResultFile(), StopWatch(results, sweep_id), give_up,
                               *logger_callbacks(tuple(meta.get("log_to", ())), local_root(results),
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
    # the fixed rate of each group that has one (none); grid and tpe choose in the rows (``trials.selected``)
    meta["lrs"] = {k: v[0] for k, v in sorted(searcher.lrs.items()) if len(v) == 1}
    meta["status"] = "interrupted" if searcher.remaining() else "completed"
    now = read_sweep_file(results, sweep_id)  # tags and a note set by `sweep tag` while it ran
    meta.update({k: now[k] for k in ("tags", "note") if k in now})
    write_sweep_file(results, sweep_id, meta)


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
                axes=varying(spec.grid()), bundled_cells=sorted({g["cell"] for g in spec.grid() if bundled(spec, g)}),
                **extra)


def resume(sweep_id: str, results: str, *, address: str | None = None) -> dict:
    """Finish an interrupted sweep from its results location; returns its sweep.json after the run.

    A new Tuner takes over from the searcher's saved state: finished trials stay finished, unfinished ones
    continue from their last checkpoint, and what was never issued is issued."""
    results = canonical_location(results)
    check_sweep_id(sweep_id)  # never read outside --results
    meta = read_sweep_file(results, sweep_id)
    if meta.get("status") == "completed" and not errored_in(*state_file(results, sweep_id)):  # gave-ups: retry
        return meta
    spec = spec_of(meta, f"{sweep_id}/{paths.SWEEP_FILE}")
    with driver_lease(results, sweep_id):  # a second driver of this sweep stops here, naming the first
        meta["status"] = "running"
        write_sweep_file(results, sweep_id, meta)
        drive(spec, sweep_id, results, meta, address)
    return meta
