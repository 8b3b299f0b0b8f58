"""A table's files in one sweep, sorted out the way every reader and ``sweep compact`` must take them, and
their rows read with exactly the schema's columns.

Part numbers are consecutive per (trial, table) (``trainers.record.TrialWriter``). A merged file
``<table>/compacted/merged-<uuid>.parquet`` names in its footer (``SUPERSEDES_KEY``) every file whose rows it
holds (``trainers.compact``); while it exists readers take those rows from it and skip the named files.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from . import paths
from .damage import DamagedFile, copied_parts
from .schemas import SCHEMAS

if TYPE_CHECKING:
    import pyarrow.compute as pc

# a merged file's footer: JSON list of the files it holds (relative to <table>/)
SUPERSEDES_KEY = b"rnn_sweeps.supersedes"


@dataclass(frozen=True)
class TableFiles:
    """One table's files in one sweep, sorted out the way every reader and ``sweep compact`` must take them."""

    parts: tuple[tuple[str, str], ...]  # (path, trial_id) of the trial files to read
    merged: tuple[str, ...]  # compacted files to read (each holds whole finished trials)
    superseded: tuple[str, ...]  # trial files a merged file already holds: never read (an interrupted compaction's)
    leftovers: tuple[str, ...]  # dot-prefixed temporaries of a killed compaction under compacted/
    foreign: tuple[str, ...]  # anything else (not written here): never read


def table_files(fs: pafs.FileSystem, sweep_dir: str, table: str) -> TableFiles:
    """The files of ``<sweep_dir>/<table>``. A part file listed in a present merged file's footer
    (``SUPERSEDES_KEY``) is superseded: its rows are read from the merged file only.

    The two listings run in this order on purpose: trial directories first, then ``compacted/``. A compaction
    makes its merged file visible before it deletes the inputs, so a part already gone from the first listing
    is held by a merged file that the second listing sees; a part still in the first listing is either
    claimed by a merged file seen in the second (skipped) or read. Every row is read exactly once, whatever
    step of a compaction runs meanwhile (a part deleted after both listings makes the read fail: read again).
    Temporaries of trial writers (dot-prefixed) are ignored; copies of a part under another number are foreign.
    """
    base = paths.table_dir(sweep_dir, table)
    parts, foreign = [], []
    for info in fs.get_file_info(pafs.FileSelector(base, recursive=True, allow_not_found=True)):
        rel = info.path[len(base) + 1:].split("/")
        if info.type != pafs.FileType.File or rel[0] == paths.COMPACTED_DIR or rel[-1].startswith("."):
            continue
        if len(rel) == 2 and rel[0].startswith(paths.TRIAL_DIR_PREFIX) and paths.is_trial_file(rel[1]):
            parts.append((info.path, rel[0][len(paths.TRIAL_DIR_PREFIX):], info.size))
        else:
            foreign.append(info.path)
    merged, claimed, leftovers, foreign_merged = compacted_files(fs, base)
    copies = copied_parts(fs, parts)  # never read, never merged (layout.damage)
    return TableFiles(parts=tuple(sorted(p[:2] for p in parts if p[0] not in claimed and p[0] not in copies)),
                      merged=merged, superseded=tuple(sorted(p[0] for p in parts if p[0] in claimed)),
                      leftovers=leftovers, foreign=tuple(sorted(foreign + list(foreign_merged) + list(copies))))


def compacted_files(fs: pafs.FileSystem, table_dir: str) -> tuple[tuple[str, ...], dict[str, str], tuple, tuple]:
    """What ``<table_dir>/compacted/`` holds: (merged files, {path of a trial file a merged file holds: that
    merged file}, dot-prefixed temporaries of a killed compaction, foreign entries), paths sorted."""
    merged, claimed, leftovers, foreign = [], {}, [], []
    for info in fs.get_file_info(pafs.FileSelector(paths.compacted_dir(table_dir), allow_not_found=True)):
        if info.type != pafs.FileType.File:
            foreign.append(info.path)
        elif info.base_name.startswith("."):
            leftovers.append(info.path)
        elif paths.MERGED_FILE.fullmatch(info.base_name):
            merged.append(info.path)
            claimed.update((f"{table_dir}/{rel}", info.path) for rel in supersedes(fs, info.path))
        else:
            foreign.append(info.path)
    return tuple(sorted(merged)), claimed, tuple(sorted(leftovers)), tuple(sorted(foreign))


def supersedes(fs: pafs.FileSystem, merged_path: str) -> list[str]:
    """The files (relative to the table directory) whose rows the merged file holds, from its footer."""
    meta = pq.read_metadata(merged_path, filesystem=fs).metadata or {}
    return json.loads(meta.get(SUPERSEDES_KEY, b"[]"))


def read_rows(fs: pafs.FileSystem, files: list[str] | tuple[str, ...], table: str,
              filter: pc.Expression | None = None, columns: list[str] | None = None) -> pa.Table:
    """The rows of ``table``'s files ``files`` (matching ``filter``) with exactly the schema's columns (or just
    ``columns``, read alone): a file written before a column existed reads it as null. Each file is read whole
    by ``pq.ParquetFile``, not through ``pyarrow.dataset``: that module imports pandas (0.2 s), which the CLI's
    listings (`sweep ls`, `status`) need not pay (bench/cli_start.py). An unreadable file raises DamagedFile."""
    schema = SCHEMAS[table]
    if columns:
        schema = pa.schema([schema.field(c) for c in columns])
    out = pa.concat_tables([_conformed(fs, path, schema) for path in files]) if files else _nulls(schema, 0)
    return out.filter(filter) if filter is not None else out


def _conformed(fs: pafs.FileSystem, path: str, schema: pa.Schema) -> pa.Table:
    """One file's rows as ``schema`` (its columns the file lacks: null; the rest cast), as a dataset reads it."""
    try:
        with pq.ParquetFile(path, filesystem=fs) as f:
            has = set(f.schema_arrow.names)  # a property: built anew at each access
            present = [c for c in schema.names if c in has]
            data = f.read(columns=present, use_threads=False)  # small files: threads cost more than they save
    except pa.ArrowInvalid as e:  # not Parquet (truncated, junk); a missing file stays pyarrow's OSError
        raise DamagedFile(path, f"not a readable Parquet file ({str(e).splitlines()[0]})") from None
    if data.schema == schema:
        return data
    cols = [data.column(f.name) if f.name in present else None for f in schema]
    return pa.table([pa.nulls(data.num_rows, f.type) if c is None else c if c.type == f.type else c.cast(f.type)
                     for c, f in zip(cols, schema)], schema=schema)


def _nulls(schema: pa.Schema, n: int) -> pa.Table:
    """``n`` rows of nulls with ``schema`` (not ``schema.empty_table()``: converting Python values imports pandas)."""
    return pa.table([pa.nulls(n, f.type) for f in schema], schema=schema)


def sweep_rows(fs: pafs.FileSystem, sweep_dir: str, table: str) -> pa.Table:
    """Every row of one sweep's ``table``, each once: its trial files and merged files as ``table_files``
    sorts them (what ``sweep resume`` and ``sweep compact`` read without DuckDB)."""
    files = table_files(fs, sweep_dir, table)
    return read_rows(fs, [p for p, _ in files.parts] + list(files.merged), table)


def trial_parts(fs: pafs.FileSystem, trial_dir: str) -> list[str]:
    """The part files in one trial's folder of a table, by part number (temporaries and strays left out)."""
    infos = fs.get_file_info(pafs.FileSelector(trial_dir, allow_not_found=True))
    return sorted(f.path for f in infos if paths.part_number(f.base_name) is not None)
