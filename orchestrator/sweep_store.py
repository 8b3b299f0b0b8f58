"""The driver's side of a sweep's files, over the results layout (``layout``): a new sweep id, the check that a
results location can be written, sweep.json as `sweep resume` needs it (a missing one is a user's mistake, one
line), the searcher's state file and the ``trials`` rows. Where each file lives is ``layout.paths``' fact."""
from __future__ import annotations

import datetime as dt
import secrets

import pyarrow.fs as pafs

from layout import paths, sweep_json
from layout.location import open_location, open_sweep
from layout.tables import sweep_rows

from .spec import UserError


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
    except Exception as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise UserError(f"results location {results!r} cannot be written ({reason}); pass --results DIR or "
                        "set SWEEP_RESULTS to a writable location") from None


def write_sweep_file(results: str, sweep_id: str, meta: dict) -> None:
    sweep_json.write(*open_sweep(results, sweep_id), meta)


def read_sweep_file(results: str, sweep_id: str) -> dict:
    """The sweep's sweep.json with its spec (a damaged one raises ``layout.damage.DamagedFile``, one line)."""
    fs, sweep_dir = open_sweep(results, sweep_id)
    if not sweep_json.exists(fs, sweep_dir):
        raise UserError(f"no sweep {sweep_id!r} under {results!r} (no {paths.SWEEP_FILE}); `sweep ls` lists them")
    return sweep_json.read(fs, sweep_dir, need_spec=True)


def state_file(results: str, sweep_id: str) -> tuple[pafs.FileSystem, str]:
    """The searcher's state file of a sweep (``orchestrator.searcher``)."""
    fs, sweep_dir = open_sweep(results, sweep_id)
    return fs, paths.searcher_file(sweep_dir)


def read_trials(results: str, sweep_id: str) -> list[dict]:
    """This sweep's ``trials`` rows, read straight from its Parquet files (trial files and merged files)."""
    return sweep_rows(*open_sweep(results, sweep_id), "trials").to_pylist()
