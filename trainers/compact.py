"""``sweep compact``: merge the small part files of a sweep's finished trials into large files, atomically.

Why in ``trainers``, beside ``record.py``: compaction rewrites the rows the trials wrote, in the layout whose
reading rule (``layout.tables.table_files``) every reader shares; the query side (``analysis``) only reads.

The invariant, with ``layout.tables.table_files``: a merged file ``<table>/compacted/merged-<uuid>.parquet``
names in its footer (``SUPERSEDES_KEY``) every file whose rows it holds, and while it exists readers take those
rows from it and skip the named files. A compaction therefore
  1. writes the merged file under a dot-prefixed temporary name in ``compacted/`` (never read),
  2. moves it to its final name (a rename locally; on object stores a server-side copy, which appears whole),
  3. deletes its inputs, then their emptied trial directories.
Before step 2 a reader sees the rows in the parts, after it in the merged file: each row exactly once at every
moment. A kill leaves a temporary or superseded inputs; the next run deletes both before it merges anything, so
re-running completes the job, and a run with nothing new to merge changes nothing (idempotent).

Only finished trials are merged: status completed / diverged / failed in ``trials`` and no checkpoint, since a
running or resumable trial numbers its parts and drops those written after its checkpoint
(``TrialWriter.restore``). ``trials`` is merged too, last: a trial's row reaches a merged file only after all
its other rows did (a kill in between leaves it finished and unmerged for the next run). ``TrialWriter.read_trial``
finds a merged row, so ``run_trial`` still skips a finished trial; restarting a compacted trial (a changed
config) raises ``CompactedTrialError``: merged rows are final. Merged files are never merged again (so the
listing of ``compacted/`` only ever gains files while readers list it). Run one compaction of a sweep at a time.
"""
from __future__ import annotations

import json
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from layout import paths
from layout.checkpoints import checkpointed
from layout.damage import refuse_copies
from layout.files import ROW_GROUP_ROWS, parquet_options
from layout.location import open_sweep
from layout.schemas import FINAL, SCHEMAS
from layout.tables import SUPERSEDES_KEY, read_rows, sweep_rows, table_files

MAX_FILE_ROWS = 16 * ROW_GROUP_ROWS  # a merged file closes at the first input boundary past this many rows


@dataclass(frozen=True)
class CompactResult:
    sweep_id: str
    files_before: int  # Parquet files of all tables on disk
    files_after: int
    bytes_before: int
    bytes_after: int
    merged_trials: int  # finished trials whose parts this run merged
    skipped_trials: int  # trials left alone: running, or resumable from a checkpoint

    def summary(self) -> str:
        return (f"compacted {self.sweep_id}: {self.files_before} -> {self.files_after} files, "
                f"{self.bytes_before / 1e6:.1f} -> {self.bytes_after / 1e6:.1f} MB "
                f"({self.merged_trials} finished trials merged, {self.skipped_trials} unfinished left alone)")


def compact(results: str, sweep_id: str) -> CompactResult:
    """Merge the part files of the finished trials of ``sweep_id`` under ``results`` (any pyarrow filesystem)."""
    fs, sweep_dir = open_sweep(results, sweep_id)
    tables = [t for t in SCHEMAS if t != "trials"] + ["trials"]  # trials last: see the module docstring
    finished, unfinished = _trials(fs, sweep_dir)
    files_before, bytes_before = _usage(fs, sweep_dir, tables)
    merged = set()
    for table in tables:
        files = table_files(fs, sweep_dir, table)
        _delete(fs, files.leftovers + files.superseded)  # finish an interrupted run first
        refuse_copies(files.foreign)
        inputs = [(path, trial) for path, trial in files.parts if trial in finished]
        if inputs:
            _merge(fs, paths.table_dir(sweep_dir, table), table, [path for path, _ in inputs])
            merged.update(trial for _, trial in inputs)
        for trial in {trial for _, trial in inputs} | {paths.trial_of(p) for p in files.superseded}:
            _delete_if_empty(fs, paths.trial_dir(sweep_dir, table, trial))
    files_after, bytes_after = _usage(fs, sweep_dir, tables)
    return CompactResult(sweep_id, files_before, files_after, bytes_before, bytes_after, len(merged),
                         len(unfinished))


def _trials(fs: pafs.FileSystem, sweep_dir: str) -> tuple[set[str], set[str]]:
    """(finished, unfinished) trial ids: finished = a final status and no checkpoint (merged rows included)."""
    rows = sweep_rows(fs, sweep_dir, "trials").select(["trial_id", "status"]).to_pylist()
    checkpoints = checkpointed(fs, sweep_dir)
    finished = {r["trial_id"] for r in rows if r["status"] in FINAL and r["trial_id"] not in checkpoints}
    return finished, {r["trial_id"] for r in rows} - finished


def _merge(fs: pafs.FileSystem, table_dir: str, table: str, inputs: list[str]) -> None:
    """Merge ``inputs`` (in order: by trial, then part) into merged files of up to about MAX_FILE_ROWS rows."""
    schema = SCHEMAS[table]
    out = None
    try:
        for path in inputs:
            out = out or _MergedFile(fs, table_dir, schema)
            out.add(path, read_rows(fs, [path], table))
            if out.rows >= MAX_FILE_ROWS:
                out.commit()
                out = None
        if out:
            out.commit()
    finally:
        if out:
            out.abort()


class _MergedFile:
    """One merged file being written: row groups of ROW_GROUP_ROWS rows under a temporary name."""

    def __init__(self, fs: pafs.FileSystem, table_dir: str, schema: pa.Schema):
        name, folder = paths.new_merged_name(), paths.compacted_dir(table_dir)
        self.fs, self.table_dir = fs, table_dir
        self.final, self.tmp = f"{folder}/{name}", f"{folder}/.{name}.tmp"
        fs.create_dir(folder, recursive=True)
        self.writer = pq.ParquetWriter(self.tmp, schema, filesystem=fs, **parquet_options(schema))
        self.inputs: list[str] = []
        self.pending: list[pa.Table] = []
        self.rows = 0

    def add(self, path: str, rows: pa.Table) -> None:
        self.inputs.append(path)
        self.pending.append(rows)
        self.rows += rows.num_rows
        self._write(full_groups_only=True)

    def _write(self, full_groups_only: bool) -> None:
        data = pa.concat_tables(self.pending)
        n = data.num_rows - data.num_rows % ROW_GROUP_ROWS if full_groups_only else data.num_rows
        if n:
            self.writer.write_table(data.slice(0, n), row_group_size=ROW_GROUP_ROWS)
        self.pending = [data.slice(n)]

    def commit(self) -> None:
        """Close, make the merged file visible (the step that switches readers over), delete the inputs."""
        self._write(full_groups_only=False)
        held = [p[len(self.table_dir) + 1:] for p in self.inputs]
        self.writer.add_key_value_metadata({SUPERSEDES_KEY: json.dumps(held).encode()})
        self.writer.close()
        self.writer = None
        self.fs.move(self.tmp, self.final)
        _delete(self.fs, self.inputs)

    def abort(self) -> None:
        """After a failure: the temporary goes (a kill leaves it to the next run)."""
        if self.writer is not None:
            self.writer.close()
        _delete(self.fs, [self.tmp])


def _delete(fs: pafs.FileSystem, paths) -> None:
    for path in paths:
        try:
            fs.delete_file(path)
        except FileNotFoundError:
            pass


def _delete_if_empty(fs: pafs.FileSystem, directory: str) -> None:
    info = fs.get_file_info(directory)
    if info.type == pafs.FileType.Directory and not fs.get_file_info(pafs.FileSelector(directory)):
        fs.delete_dir(directory)


def _usage(fs: pafs.FileSystem, sweep_dir: str, tables: list[str]) -> tuple[int, int]:
    """(files, bytes) of the Parquet files under the given tables of a sweep, temporaries left out."""
    files = [f for t in tables for f in fs.get_file_info(
        pafs.FileSelector(paths.table_dir(sweep_dir, t), recursive=True, allow_not_found=True))
        if f.type == pafs.FileType.File and f.base_name.endswith(".parquet") and not f.base_name.startswith(".")]
    return len(files), sum(f.size for f in files)
