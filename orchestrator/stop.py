"""`sweep stop ID`: end a running sweep from any terminal, on any machine that sees its results location.

The request is a file, ``<results>/<sweep_id>/_stop`` (so it works on a local path, NFS and ``s3://`` alike).
The driver's ``StopWatch`` polls for it and, when it appears, stops the run the way Ctrl-C does: it sends its
own process SIGUSR1, on which Ray Tune ends the run gracefully (its trials stop, the experiment state is saved).
Every trial's rows up to its last checkpoint are in Parquet, and `sweep resume ID` continues from there.
"""
from __future__ import annotations

import datetime as dt
import os
import signal
import time

import pyarrow.fs as pafs
from ray import tune

from layout.location import is_remote, open_sweep
from layout.paths import stop_file

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
