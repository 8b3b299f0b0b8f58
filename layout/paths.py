"""The names of the results layout, each written once. Under a results location's root:

    <root>/<sweep_id>/                                      a sweep (its id is its folder's name)
        sweep.json                                          the sweep's spec, status, tags, ... (``sweep_json``)
        _checkpoints/<trial_id>.pt                          an unfinished trial's checkpoint, beside its rows
        _tune/sweep/                                        Ray Tune's experiment (``TUNE_EXPERIMENT``) ...
        _tune/searcher.pkl                                  ... and the sweep searcher's state
        _lease                                              the driver's lease (one driver per sweep)
        _stop                                               a stop request (`sweep stop`)
        _prune/<trial_id>                                   a prune request for a tpe trial (``pruning``)
        report/                                             `sweep report`'s figures and pages (local results)
        mlruns/                                             MLflow's file store (`--log-to mlflow`, local results)
        <table>/trial_id=<trial_id>/part-<n>.parquet        per-step tables, n = 0, 1, ... (5 digits)
        trials/trial_id=<trial_id>/trial.parquet            the trial's one row, replaced whole
        <table>/compacted/merged-<uuid>.parquet             finished trials' files of a table, merged

Folders of a sweep that start with ``_`` or ``.`` are never tables; files that start with ``.`` are
temporaries, never read.
"""
from __future__ import annotations

import re
import uuid

SWEEP_FILE = "sweep.json"
CHECKPOINT_DIR = "_checkpoints"
TUNE_DIR = "_tune"
TUNE_EXPERIMENT = "sweep"  # the Tuner's experiment name: its folder under _tune/
SEARCHER_FILE = "searcher.pkl"
LEASE_FILE = "_lease"
STOP_FILE = "_stop"
PRUNE_DIR = "_prune"
REPORT_DIR = "report"
MLFLOW_DIR = "mlruns"
COMPACTED_DIR = "compacted"
TRIAL_ROW_FILE = "trial.parquet"  # the trials table's one file per trial
TRIAL_DIR_PREFIX = "trial_id="
PART_FILE = re.compile(r"part-(\d{5})\.parquet")  # a trial's part files: part-<n>.parquet, n = 0, 1, ...
MERGED_FILE = re.compile(r"merged-[0-9a-f]{32}\.parquet")


def sweep_dir(root: str, sweep_id: str) -> str:
    return f"{root.rstrip('/')}/{sweep_id}"


def sweep_file(sweep_dir: str) -> str:
    return f"{sweep_dir}/{SWEEP_FILE}"


def checkpoint_dir(sweep_dir: str) -> str:
    return f"{sweep_dir}/{CHECKPOINT_DIR}"


def checkpoint_file(sweep_dir: str, trial_id: str) -> str:
    return f"{checkpoint_dir(sweep_dir)}/{trial_id}.pt"


def tune_dir(sweep_dir: str) -> str:
    return f"{sweep_dir}/{TUNE_DIR}"


def searcher_file(sweep_dir: str) -> str:
    return f"{tune_dir(sweep_dir)}/{SEARCHER_FILE}"


def lease_file(sweep_dir: str) -> str:
    return f"{sweep_dir}/{LEASE_FILE}"


def stop_file(sweep_dir: str) -> str:
    return f"{sweep_dir}/{STOP_FILE}"


def prune_file(sweep_dir: str, trial_id: str) -> str:
    return f"{sweep_dir}/{PRUNE_DIR}/{trial_id}"


def report_dir(sweep_dir: str) -> str:
    return f"{sweep_dir}/{REPORT_DIR}"


def mlflow_dir(sweep_dir: str) -> str:
    return f"{sweep_dir}/{MLFLOW_DIR}"


def table_dir(sweep_dir: str, table: str) -> str:
    return f"{sweep_dir}/{table}"


def trial_dir(sweep_dir: str, table: str, trial_id: str) -> str:
    return f"{table_dir(sweep_dir, table)}/{TRIAL_DIR_PREFIX}{trial_id}"


def part_name(n: int) -> str:
    return f"part-{n:05d}.parquet"


def part_number(name: str) -> int | None:
    """The number of a part file's base name, None for any other name (a stray file)."""
    m = PART_FILE.fullmatch(name)
    return int(m.group(1)) if m else None


def is_trial_file(name: str) -> bool:
    """Whether a base name is one a trial writes in its ``trial_id=<id>/`` folder: a part, or its trials row."""
    return part_number(name) is not None or name == TRIAL_ROW_FILE


def trial_of(path: str) -> str:
    """The trial id of a trial file's path (``.../trial_id=<id>/<file>``)."""
    return path.rsplit("/", 2)[-2][len(TRIAL_DIR_PREFIX):]


def compacted_dir(table_dir: str) -> str:
    return f"{table_dir}/{COMPACTED_DIR}"


def new_merged_name() -> str:
    """A fresh merged file's base name (``MERGED_FILE``)."""
    return f"merged-{uuid.uuid4().hex}.parquet"


def is_hidden(name: str) -> bool:
    """A temporary (``.``) or a sweep's own folder (``_checkpoints``, ``_tune``, ...): never a sweep or table."""
    return name.startswith((".", "_"))
