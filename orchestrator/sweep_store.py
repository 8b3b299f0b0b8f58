"""Where a sweep's files live and sweep.json read and written: the sweep's folder, sweep.json, the searcher's
state file, Tune's storage, its ``trials`` rows; a new sweep id; a check that the results location is writable.

Kept together, unchanged from ``orchestrator/tune.py``, for the results-layout package (issue 13 item 3) to take
over in one place.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import secrets

import pyarrow.fs as pafs

from trainers.record import canonical_location, open_location, sweep_rows

from .spec import UserError
from .sweep_file import parse_sweep_json

SWEEP_FILE = "sweep.json"
SEARCH_STATE = "searcher.pkl"  # SweepSearcher's state under <sweep>/_tune


def state_file(results: str, sweep_id: str) -> tuple[pafs.FileSystem, str]:
    """The searcher's state file of a sweep (``orchestrator.searcher``)."""
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


def read_sweep_file(results: str, sweep_id: str) -> dict:
    fs, root = open_location(results)
    path = f"{root}/{sweep_id}/{SWEEP_FILE}"
    if fs.get_file_info(path).type == pafs.FileType.NotFound:
        raise UserError(f"no sweep {sweep_id!r} under {results!r} (no {SWEEP_FILE}); `sweep ls` lists them")
    with fs.open_input_stream(path) as f:
        return parse_sweep_json(path, f.read())


def read_trials(results: str, sweep_id: str) -> list[dict]:
    """This sweep's ``trials`` rows, read straight from its Parquet files (trial files and merged files)."""
    fs, root = open_location(results)
    return sweep_rows(fs, f"{root}/{sweep_id}", "trials").to_pylist()


def tune_storage(results: str, sweep_id: str) -> tuple[str, pafs.FileSystem | None]:
    """Ray Tune's storage path (and filesystem, for a remote location) of a sweep: ``<sweep>/_tune``."""
    if "://" not in results:
        return os.path.join(canonical_location(results), sweep_id, "_tune"), None
    fs, root = open_location(results)
    return f"{root}/{sweep_id}/_tune", fs


def storage_root(results: str) -> str | None:
    """The local folder of ``results``; None for a remote location (s3://...)."""
    return None if "://" in results else canonical_location(results)
