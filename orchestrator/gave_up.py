"""Trials Tune gives up on end final: ``failed``, with the error, in ``trials``; ``sweep resume`` retries them.

A trial whose process dies (``max_failures`` times: a lost node, a crash in Ray, an I/O error from the results
location) never writes its final ``trials`` row itself. ``GiveUp`` writes it from the driver when Tune gives
up (``status`` failed, ``error`` Tune's first line), for every member the trial runs that has no final row
yet. ``reopen`` undoes that before a resume issues the trial again: its row reads ``running`` again, so the
trial continues from its own checkpoint (``run_trial`` skips only trials whose row is final).
"""
from __future__ import annotations

import datetime as dt
import errno

from ray import tune

from layout.schemas import FINAL
from trainers.config import TrialConfig
from trainers.record import TrialWriter
from trainers.trial import trial_row

GAVE_UP = "gave up"  # the error of a trial Tune gave up on starts with this
NO_SPACE = "No space left on device"


def members(trial: dict) -> list[dict]:
    return trial.get("members", [trial])


def error_line(trial) -> str:
    """Tune's reason for a trial it gave up on, one line (its last line names the exception)."""
    err = None
    try:
        err = trial.get_error()
    except Exception:  # older Ray: no get_error; the error file below
        pass
    text = str(err) if err else ""
    if not text and getattr(trial, "error_file", None):
        try:
            with open(trial.error_file) as f:
                text = f.read()
        except OSError:
            text = ""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    named = [ln for ln in lines if "Error" in ln.split(":")[0] or NO_SPACE in ln]
    return (named[-1] if named else lines[-1] if lines else "the trial's process failed")[:400]


def mark_failed(trial: dict, error: str) -> None:
    """Write ``failed`` with ``error`` for each member of ``trial`` (a config dict) whose row is not final."""
    for m in members(trial):
        cfg = TrialConfig.from_dict(m)
        writer = TrialWriter(cfg.results, cfg.sweep_id, cfg.trial_id)
        row = writer.read_trial() or {}
        if row.get("status") in FINAL:
            continue
        now = dt.datetime.now(dt.timezone.utc)
        writer.write_trial(trial_row(cfg, status="failed", error=f"{GAVE_UP}: {error}",
                                     steps_done=row.get("steps_done") or 0, started_at=row.get("started_at") or now,
                                     ended_at=now, node=row.get("node"), wall_s=row.get("wall_s")))


def reopen(trial: dict) -> None:
    """Make the rows ``mark_failed`` wrote read ``running`` again (before a resume issues ``trial`` again)."""
    for m in members(trial):
        cfg = TrialConfig.from_dict(m)
        writer = TrialWriter(cfg.results, cfg.sweep_id, cfg.trial_id)
        row = writer.read_trial()
        if row and row["status"] == "failed" and str(row.get("error") or "").startswith(GAVE_UP):
            writer.write_trial(dict(row, status="running", error=None, ended_at=None))


class GiveUp(tune.Callback):
    """On a trial Tune gives up on: its rows read ``failed`` with the error; ``no_space`` is set when the
    error was the results location running out of space (the driver then says so, in one line)."""

    def __init__(self):
        self.no_space = False

    def on_trial_error(self, iteration, trials, trial, **info):
        error = error_line(trial)
        self.no_space = self.no_space or NO_SPACE in error or f"[Errno {errno.ENOSPC}]" in error
        try:
            mark_failed(trial.config["trial"], error)
        except OSError:  # the results location itself failed (no space): the row stays running, resumable
            self.no_space = True


def errored_in(fs, path: str) -> int:
    """How many trials Tune gave up on, per the searcher's saved state at ``path`` (0 when there is none)."""
    import pickle

    import pyarrow.fs as pafs

    if fs.get_file_info(path).type == pafs.FileType.NotFound:
        return 0
    with fs.open_input_stream(path) as f:
        return len(pickle.loads(f.read()).get("errored", []))  # our own file (SweepSearcher._persist)
