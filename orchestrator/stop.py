"""`sweep stop ID`: end a running sweep from any terminal, on any machine that sees its results location.

The request is a file, ``<results>/<sweep_id>/_stop`` (so it works on a local path, NFS and ``s3://`` alike).
The driver's ``StopWatch`` polls for it and, when it appears, stops the run the way Ctrl-C does: it sends its
own process SIGUSR1, on which Ray Tune ends the run gracefully (its trials stop, the experiment state is saved).
Every trial's rows up to its last checkpoint are in Parquet, and `sweep resume ID` continues from there.

A sweep launched with ``--submit`` (its sweep.json names its Ray Job) is stopped through its job server instead
(``orchestrator.submit.stop_job``): the job server sends the driver SIGINT, the same graceful stop, and the job
reads STOPPED. `sweep stop` waits for the job to end; a sweep whose driver never started (the job was still
pending), or was killed, is then marked ``interrupted``.
"""
from __future__ import annotations

import datetime as dt
import os
import signal
import time
import urllib.error

import pyarrow.fs as pafs
from ray import tune

from layout.location import is_remote, open_sweep
from layout.paths import stop_file

from .spec import UserError
from .sweep_store import read_sweep_file, write_sweep_file

POLL_S = 2.0  # the driver looks for the request this often (a local path); object stores: every REMOTE_POLL_S
REMOTE_POLL_S = 10.0


def _path(results: str, sweep_id: str) -> tuple[pafs.FileSystem, str]:
    fs, sweep_dir = open_sweep(results, sweep_id)
    return fs, stop_file(sweep_dir)


def request_stop(results: str, sweep_id: str) -> None:
    """Ask the driver of ``sweep_id`` to stop (it notices within ``POLL_S`` seconds, ``REMOTE_POLL_S`` on S3)."""
    fs, path = _path(results, sweep_id)
    with fs.open_output_stream(path) as f:
        f.write(dt.datetime.now(dt.timezone.utc).isoformat().encode())


def stop_requested(results: str, sweep_id: str) -> bool:
    fs, path = _path(results, sweep_id)
    return fs.get_file_info(path).type != pafs.FileType.NotFound


def clear_stop(results: str, sweep_id: str) -> None:
    """Remove a stop request (a finished run's, before a resume)."""
    fs, path = _path(results, sweep_id)
    if fs.get_file_info(path).type != pafs.FileType.NotFound:
        fs.delete_file(path)


JOB_LIVE = ("PENDING", "RUNNING")


def stop_sweep(results: str, meta: dict) -> str:
    """Stop the sweep of ``meta`` (its sweep.json): a submitted sweep's Ray Job through its job server, else
    by the request file. Returns what was done, in one line; raises UserError when nothing runs."""
    from . import submit

    sweep_id = meta["sweep_id"]
    state = submit.job_status(meta)
    if state in JOB_LIVE:
        try:
            submit.stop_job(meta)
        except (urllib.error.URLError, OSError, ValueError) as e:
            raise UserError(f"the job server at {meta['job']['address']} did not stop job "
                            f"{meta['job']['submission_id']}: {getattr(e, 'reason', None) or e}") from None
        deadline = time.monotonic() + submit.STOP_WAIT_S + 30
        while (state := submit.job_status(meta)) in JOB_LIVE and time.monotonic() < deadline:
            time.sleep(1)
        if state in JOB_LIVE:
            raise UserError(f"job {meta['job']['submission_id']} still {state} {submit.STOP_WAIT_S + 30} s after "
                            "the stop request; `ray job status` says more")
        _mark_interrupted(results, sweep_id)
        return f"stopped: Ray Job {meta['job']['submission_id']} {state}; sweep {sweep_id}"
    if meta.get("status") != "running":
        raise UserError(f"sweep {sweep_id} is {meta.get('status')}, not running; nothing to stop"
                        + (f" (its Ray Job: {state})" if state else ""))
    request_stop(results, sweep_id)
    return f"stop requested: {sweep_id} ends within seconds"


def _mark_interrupted(results: str, sweep_id: str) -> None:
    """After its job ended: a sweep.json still ``submitted`` or ``running`` has no driver left to say so."""
    meta = read_sweep_file(results, sweep_id)
    if meta.get("status") in ("submitted", "running"):
        write_sweep_file(results, sweep_id, dict(meta, status="interrupted"))


class StopWatch(tune.Callback):
    """Polls for the stop request between Tune's steps; on it, SIGUSR1 to this process (Tune's graceful stop)."""

    def __init__(self, results: str, sweep_id: str):
        self.results, self.sweep_id = results, sweep_id
        self.every = REMOTE_POLL_S if is_remote(results) else POLL_S
        self.last = time.monotonic()
        self.sent = False

    def on_step_begin(self, iteration, trials, **info):
        now = time.monotonic()
        if self.sent or now - self.last < self.every:
            return
        self.last = now
        if stop_requested(self.results, self.sweep_id):
            self.sent = True
            os.kill(os.getpid(), signal.SIGUSR1)
