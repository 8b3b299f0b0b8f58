"""Table schemas (one pyarrow schema per table, defined once) and the buffered, atomic Parquet writer.

Layout under a results location (a local path or any pyarrow filesystem URI, e.g. ``s3://bucket/x``):

    <results>/<sweep_id>/<table>/trial_id=<trial_id>/part-<n>.parquet   per-step tables, n = 0, 1, ...
    <results>/<sweep_id>/trials/trial_id=<trial_id>/trial.parquet       the trial's one row, replaced whole
    <results>/<sweep_id>/<table>/compacted/merged-<uuid>.parquet        finished trials' files of any table, merged
                                                                        (``compact.py``)

A part file appears atomically: on a local or NFS path it is written under a dot-prefixed temporary name and
renamed; on object stores a single PUT is already atomic. Readers take the files as ``table_files`` sorts them
and never see temporaries. Part numbers are consecutive per (trial, table), so a checkpoint that stores the next
part numbers (``TrialWriter.state``) can drop exactly the parts written after it (``TrialWriter.restore``): rows
are written once by construction, not deduplicated at query time. The trial's checkpoint lives beside its rows
(``<sweep_id>/_checkpoints/<trial_id>.pt``, replaced atomically after a flush), so rows and checkpoint can never
disagree, whatever the scheduler (Ray Tune) remembers. Repeating strings (ids, status, group names) are
dictionary-encoded, floats byte-stream-split, all zstd (``parquet_options``).
"""
from __future__ import annotations

import json
import os
import re
import time
import uuid
from dataclasses import dataclass
from functools import cache
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pads
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from .damage import copied_parts
DESCRIPTION = b"description"  # metadata key of a table's or a column's description (docs/schemas.md shows them)


def col(name: str, type_: pa.DataType, description: str) -> pa.Field:
    """A table column with its one-line description (field metadata, so it travels with the schema)."""
    return pa.field(name, type_, metadata={DESCRIPTION: description})


def table_schema(description: str, *columns: pa.Field) -> pa.Schema:
    """A table's schema: the id columns every row carries, then ``columns``; ``description`` says what a row is
    and who writes it (schema metadata)."""
    return pa.schema([col("sweep_id", pa.string(), "the sweep run (its directory name under the results location)"),
                      col("trial_id", pa.string(), "the trial, unique within the sweep; stable across resumes"),
                      *columns], metadata={DESCRIPTION: description})


SCHEMAS: dict[str, pa.Schema] = {
    "trials": table_schema(
        "One row per trial: its settings and outcome (written as running at the start, replaced at the end).",
        col("sweep", pa.string(), "named sweep or spec file stem"),
        col("stage", pa.string(), "lr_search | seed | analysis"),
        col("task", pa.string(), "task registry name"),
        col("cell", pa.string(), "cell registry name (analysis trials: the analysis name or its cell)"),
        col("depth", pa.int32(), "stacked recurrent layers (1 = the bare cell)"),
        col("hidden", pa.int32(), "recurrent units per layer"),
        col("batch", pa.int32(), "sequences per training step (null in files written before this column)"),
        col("nu", pa.float64(), "memory parameter nu0 of the task"),
        col("seq_len", pa.int32(), "sequence length T"),
        col("layer_norm", pa.bool_(), "LayerNorm in the deep stack"),
        col("seed", pa.int32(), "seed of the student init and the data stream"),
        col("lr", pa.float64(), "peak learning rate"),
        col("group_key", pa.string(), "the grid group (cell, nu0, ...; orchestrator.spec.SweepSpec.group_key) the trial "
            "belongs to; its rates x seeds share it, and the view derives ``selected`` from it"),
        col("clip", pa.float64(), "global-norm clipping threshold; null = off"),
        col("status", pa.string(), "running | completed | diverged | failed"),
        col("final_loss", pa.float64(), "loss on the fixed evaluation batch at the end"),
        col("best_loss", pa.float64(), "lowest evaluation loss seen"),
        col("final_metric", pa.float64(), "accuracy where the task has one"),
        col("solved_step", pa.int64(),
            "first step with no error on fresh draws at a check (solve_every > 0), else null"),
        col("steps_done", pa.int64(), "optimiser steps taken"),
        col("wall_s", pa.float64(), "seconds the trial ran (resumed trials: summed over runs)"),
        col("probe_s", pa.float64(), "seconds of wall_s spent in probes"),
        col("device", pa.string(), "torch device the trial ran on (cpu, cuda, ...)"),
        col("host", pa.string(), "host name of the machine that ran the trial"),
        col("node", pa.string(), "Ray node id that ran the trial (null outside Ray)"),
        col("versions", pa.string(), "JSON: python, torch, ray, package"),
        col("config_json", pa.string(), "the full trial config (trainers.config.TrialConfig as JSON)"),
        col("error", pa.string(), "one-line reason for failed / diverged"),
        col("started_at", pa.timestamp("ms", tz="UTC"), "when the trial first started"),
        col("ended_at", pa.timestamp("ms", tz="UTC"), "when it ended (null while running)"),
    ),
    "steps": table_schema(
        "One row per optimiser step of a training trial.",
        col("step", pa.int32(), "1-based optimiser step"),
        col("loss", pa.float32(), "training loss of this step's batch"),
        col("metric", pa.float32(), "accuracy of this step's batch where the task has one"),
        col("lr", pa.float32(), "learning rate used by this step"),
        col("grad_norm", pa.float32(), "global gradient norm before clipping"),
        col("clipped", pa.bool_(), "whether clipping scaled this step's gradient"),
        col("wall_s", pa.float32(), "seconds since the trial started"),
    ),
    "grad_norms": table_schema(
        "Gradient norm per parameter group, every grad_norm_every steps of a training trial.",
        col("step", pa.int32(), "optimiser step (every grad_norm_every steps)"),
        col("group", pa.string(), "parameter group, e.g. layer1.recurrent"),
        col("norm", pa.float32(), "L2 norm of the group's gradient, before clipping"),
    ),
    "hessian": table_schema(
        "Hessian statistics of the loss: probe hessian (during training), analysis hessian_opt (at the optimum).",
        col("step", pa.int32(), "optimiser step (0 = at init)"),
        col("stat", pa.string(),
            "top | bottom (eigenvalues, idx = rank from the end), trace (Hutchinson), density (SLQ: value = node, "
            "weight = weight, idx runs over the runs' nodes concatenated), ipr | k90 (of the top-idx eigenvector: "
            "inverse participation ratio, coordinates holding 90% of its mass), sharpness_lr (top eigenvalue x lr), "
            "eig (a full spectrum, idx ascending)"),
        col("idx", pa.int32(), "index within the statistic (see stat)"),
        col("value", pa.float64(), "the statistic's value"),
        col("weight", pa.float64(), "quadrature weight of a density node; null for the other stats"),
    ),
    "attractors": table_schema(
        "Samples of the autonomous dynamics under constant inputs, after a burn-in: probe attractors, analyses "
        "bifurcation and chaotic_lstm.",
        col("step", pa.int32(), "optimiser step of the snapshot (0 = at init)"),
        col("input_id", pa.int32(), "which constant input"),
        col("input_value", pa.float32(), "its value (first input channel)"),
        col("init_id", pa.int32(), "which random initial state"),
        col("k", pa.int32(), "sample index after the burn-in"),
        col("x", pa.float32(), "the projected state or output"),
        col("dx", pa.float32(), "x_k - x_{k-1}"),
    ),
    "attractor_summary": table_schema(
        "Per snapshot, input and initial state: what the orbit settled on (same writers as attractors).",
        col("step", pa.int32(), "optimiser step of the snapshot (0 = at init)"),
        col("input_id", pa.int32(), "which constant input"),
        col("input_value", pa.float32(), "its value (first input channel)"),
        col("init_id", pa.int32(), "which random initial state; -1: over all initial states of this input"),
        col("lyapunov", pa.float64(), "largest Lyapunov exponent (per step; max over inits for -1)"),
        col("n_points", pa.int32(), "distinct points visited: 1 fixed point, p a p-cycle, many chaos"),
    ),
    "lattice": table_schema(
        "Gradient magnitude per (layer, time) cell of the unrolled network: probe lattice, analysis lattice_init.",
        col("step", pa.int32(), "optimiser step (0 = at init)"),
        col("loss", pa.string(), "last (loss on the last output) | all (on every output)"),
        col("wrt", pa.string(), "hidden (d loss / d h_t^l) | params (the cell's parameters at (l, t))"),
        col("layer", pa.int32(), "1-based layer l"),
        col("t", pa.int32(), "1-based time step"),
        col("grad_norm", pa.float32(), "norm of the gradient at (layer, t)"),
    ),
    "surface": table_schema(
        "A loss over a grid of parameter values: analyses error_surface (Pascanu Fig. 3: over (w, b)) and "
        "chaotic_lstm (Ribeiro Fig. 1: over s).",
        col("param_x", pa.string(), "name of the first swept parameter"),
        col("x", pa.float64(), "its value"),
        col("param_y", pa.string(), "name of the second, null for a 1-D sweep"),
        col("y", pa.float64(), "its value, null for a 1-D sweep"),
        col("loss", pa.float64(), "the loss at (x, y)"),
    ),
    "signal": table_schema(
        "Signal-propagation statistics per layer of a deep stack: probe signal.",
        col("step", pa.int32(), "optimiser step (0 = at init)"),
        col("layer", pa.int32(), "1-based layer"),
        col("quantity", pa.string(), "act_sq | grad_sq_recurrent | grad_sq_other | grad_sq_nu | grad_sq_theta "
            "(the last two: diagonal cells' lambda gradient split into magnitude and angle)"),
        col("value", pa.float64(), "the quantity's value at this layer"),
    ),
}


def register_table(name: str, schema: pa.Schema) -> None:
    """Add a table declared outside this file (a probe's ``schemas``) to SCHEMAS: the writer then writes it and
    the DuckDB views read it. Registering the same schema again is a no-op; a different one under a taken
    name is an error."""
    if not {"sweep_id", "trial_id"} <= set(schema.names):
        raise ValueError(f"table {name!r}: build its schema with table_schema(...) (sweep_id, trial_id first)")
    have = SCHEMAS.get(name)
    if have is None:
        SCHEMAS[name] = schema
    elif not have.equals(schema):
        raise ValueError(f"table {name!r} is already declared with another schema")

COMPACTED_DIR = "compacted"  # <sweep_id>/<table>/compacted/merged-<uuid>.parquet: finished trials' parts, merged
SUPERSEDES_KEY = b"rnn_sweeps.supersedes"  # a merged file's footer: JSON list of the files it holds (relative to <table>/)
TRIAL_FILE = re.compile(r"part-\d{5}\.parquet|trial\.parquet")  # the names TrialWriter writes in trial_id=<id>/
MERGED_FILE = re.compile(r"merged-[0-9a-f]{32}\.parquet")
ROW_GROUP_ROWS = 262144  # rows per Parquet row group, in part files and compacted files alike
TRIALS_FILE = "trial.parquet"
CHECKPOINT_DIR = "_checkpoints"  # <results>/<sweep_id>/_checkpoints/<trial_id>.pt: one per unfinished trial


def canonical_location(uri: str) -> str:
    """A results location that means the same in every process: local paths made absolute (Ray Tune runs
    each trial in its own working folder, so a relative path would land there); URIs unchanged."""
    return uri if "://" in uri else os.path.abspath(os.path.expanduser(uri))


def open_location(uri: str) -> tuple[pafs.FileSystem, str]:
    """(filesystem, path) for a local path (relative allowed) or a pyarrow filesystem URI."""
    return pafs.FileSystem.from_uri(canonical_location(uri))


def parquet_options(schema: pa.Schema) -> dict:
    """The Parquet writer settings of every file of the layout: zstd; dictionary encoding for the string
    columns only (ids, status, group names repeat; a float column's dictionary only fails and falls back,
    which tripled the write time); byte-stream-split for the float columns (smaller under zstd, and faster).
    Encodings only: the values and types are the schema's. Row groups: ``ROW_GROUP_ROWS``."""
    return dict(compression="zstd", use_dictionary=[f.name for f in schema if pa.types.is_string(f.type)],
                use_byte_stream_split=[f.name for f in schema if pa.types.is_floating(f.type)] or False)


def write_atomic(fs: pafs.FileSystem, path: str, data: pa.Table | bytes) -> None:
    """Write a table (as Parquet) or bytes to ``path`` so that readers see either nothing or the whole file."""
    parent, name = path.rsplit("/", 1)
    fs.create_dir(parent, recursive=True)

    def write(target: str) -> None:
        if isinstance(data, pa.Table):
            pq.write_table(data, target, filesystem=fs, row_group_size=ROW_GROUP_ROWS, **parquet_options(data.schema))
        else:
            with fs.open_output_stream(target) as f:
                f.write(data)

    if fs.type_name != "local":  # object stores: one PUT is atomic, and rename is a copy
        write(path)
        return
    tmp = f"{parent}/.{name}.{uuid.uuid4().hex}.tmp"
    try:
        write(tmp)
        fs.move(tmp, path)
    finally:
        if fs.get_file_info(tmp).type != pafs.FileType.NotFound:
            fs.delete_file(tmp)


@dataclass(frozen=True)
class TableFiles:
    """One table's files in one sweep, sorted out the way every reader and ``sweep compact`` must take them."""

    parts: tuple[tuple[str, str], ...]  # (path, trial_id) of the trial files to read
    merged: tuple[str, ...]  # compacted files to read (each holds whole finished trials)
    superseded: tuple[str, ...]  # trial files a merged file already holds: never read; left by an interrupted compaction
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
    base = f"{sweep_dir}/{table}"
    parts, foreign = [], []
    for info in fs.get_file_info(pafs.FileSelector(base, recursive=True, allow_not_found=True)):
        rel = info.path[len(base) + 1:].split("/")
        if info.type != pafs.FileType.File or rel[0] == COMPACTED_DIR or rel[-1].startswith("."):
            continue
        if len(rel) == 2 and rel[0].startswith("trial_id=") and TRIAL_FILE.fullmatch(rel[1]):
            parts.append((info.path, rel[0][len("trial_id="):], info.size))
        else:
            foreign.append(info.path)
    merged, claimed, leftovers, foreign_merged = compacted_files(fs, base)
    copies = copied_parts(fs, parts)  # never read, never merged (trainers.damage)
    return TableFiles(parts=tuple(sorted(p[:2] for p in parts if p[0] not in claimed and p[0] not in copies)),
                      merged=merged, superseded=tuple(sorted(p[0] for p in parts if p[0] in claimed)),
                      leftovers=leftovers, foreign=tuple(sorted(foreign + list(foreign_merged) + list(copies))))


def compacted_files(fs: pafs.FileSystem, table_dir: str) -> tuple[tuple[str, ...], dict[str, str], tuple, tuple]:
    """What ``<table_dir>/compacted/`` holds: (merged files, {path of a trial file a merged file holds: that
    merged file}, dot-prefixed temporaries of a killed compaction, foreign entries), paths sorted."""
    merged, claimed, leftovers, foreign = [], {}, [], []
    for info in fs.get_file_info(pafs.FileSelector(f"{table_dir}/{COMPACTED_DIR}", allow_not_found=True)):
        if info.type != pafs.FileType.File:
            foreign.append(info.path)
        elif info.base_name.startswith("."):
            leftovers.append(info.path)
        elif MERGED_FILE.fullmatch(info.base_name):
            merged.append(info.path)
            claimed.update((f"{table_dir}/{rel}", info.path) for rel in supersedes(fs, info.path))
        else:
            foreign.append(info.path)
    return tuple(sorted(merged)), claimed, tuple(sorted(leftovers)), tuple(sorted(foreign))


def supersedes(fs: pafs.FileSystem, merged_path: str) -> list[str]:
    """The files (relative to the table directory) whose rows the merged file holds, from its footer."""
    meta = pq.read_metadata(merged_path, filesystem=fs).metadata or {}
    return json.loads(meta.get(SUPERSEDES_KEY, b"[]"))


def read_rows(fs: pafs.FileSystem, paths: list[str] | tuple[str, ...], table: str,
              filter: pc.Expression | None = None, columns: list[str] | None = None) -> pa.Table:
    """The rows of ``table``'s files ``paths`` (matching ``filter``) with exactly the schema's columns (or just
    ``columns``, read alone): a file written before a column existed reads it as null."""
    if not paths:
        empty = SCHEMAS[table].empty_table()
        return empty.select(columns) if columns else empty
    return pads.dataset(list(paths), schema=SCHEMAS[table], format="parquet", filesystem=fs).to_table(
        columns=columns, filter=filter)


def sweep_rows(fs: pafs.FileSystem, sweep_dir: str, table: str) -> pa.Table:
    """Every row of one sweep's ``table``, each once: its trial files and merged files as ``table_files``
    sorts them (what ``sweep resume`` and ``sweep compact`` read without DuckDB)."""
    files = table_files(fs, sweep_dir, table)
    return read_rows(fs, [p for p, _ in files.parts] + list(files.merged), table)


class CompactedTrialError(RuntimeError):
    """Raised on restarting a trial whose rows ``sweep compact`` merged: they are final (see ``restore``)."""


class TrialWriter:
    """Buffers one trial's rows per table and flushes them as numbered part files.

    ``append`` takes one row (a dict), ``extend`` a dict of equal-length columns (lists, numpy arrays or
    Arrow arrays; converted to Arrow at once: the fast path, millions of rows/s, ``bench/results_scale.py``). Missing columns are null, unknown keys ignored.
    Buffers flush when they reach ``flush_rows`` rows, when ``flush_s`` seconds have passed since the table's
    last flush (checked as rows arrive; 0: never by time), and on ``flush()``; ``sweep_id`` and ``trial_id`` are
    filled in here. A flush by time is one more numbered part like a flush by size, so ``restore`` drops it
    exactly the same way when it came after the checkpoint: it only makes a running trial visible sooner.
    A table registered after the writer was made (``register_table``, when a probe is built) is taken on at its
    first row, as if it had been there from the start (``restore`` applies to it then).
    """

    def __init__(self, results: str, sweep_id: str, trial_id: str, flush_rows: int = 65536, flush_s: float = 0.0):
        self.fs, root = open_location(results)
        self.base = f"{root.rstrip('/')}/{sweep_id}"
        self.sweep_id, self.trial_id, self.flush_rows, self.flush_s = sweep_id, trial_id, flush_rows, flush_s
        self.tables = [t for t in SCHEMAS if t != "trials"]
        self.next_part = {t: 0 for t in self.tables}
        self._flushed_at = {t: time.monotonic() for t in self.tables}  # per table: when its last part was written
        self._last: dict[str, pa.Table] = {}  # per table: the last row of its last part
        self._batches: dict[str, list[pa.RecordBatch]] = {}  # per table: pending rows already in Arrow
        self._rows: dict[str, dict[str, list]] = {}  # per table: rows appended since the last batch, by column
        self._pending: dict[str, int] = {}  # per table: rows not yet flushed
        self._restored: dict[str, int] | None = None  # the checkpoint state ``restore`` applied, for late tables
        for t in self.tables:
            self._clear(t)

    def _open(self, table: str) -> None:
        """Take on a table registered since this writer was made (its parts after the restored checkpoint go)."""
        if table in self._rows:
            return
        if table not in SCHEMAS or table == "trials":
            raise KeyError(f"unknown table {table!r}; valid: {', '.join(t for t in SCHEMAS if t != 'trials')}")
        self.tables.append(table)
        self.next_part[table] = 0
        self._flushed_at[table] = time.monotonic()
        self._clear(table)
        if self._restored is not None:
            self._drop_after(table, self._restored.get(table, 0))

    def _clear(self, table: str) -> None:
        self._batches[table], self._pending[table] = [], 0
        self._rows[table] = {f.name: [] for f in _row_schema(table)}

    def trial_dir(self, table: str) -> str:
        return f"{self.base}/{table}/trial_id={self.trial_id}"

    def append(self, table: str, row: dict[str, Any]) -> None:
        self._open(table)
        for col, values in self._rows[table].items():
            values.append(row.get(col))
        self._pending[table] += 1
        if self._flush_due(table):
            self.flush(table)

    def extend(self, table: str, columns: dict[str, Any]) -> None:
        self._open(table)
        self._seal(table)
        n = len(next(iter(columns.values())))
        fields = _row_schema(table)
        self._batches[table].append(pa.RecordBatch.from_arrays(
            [_column(columns.get(f.name), n, f.type) for f in fields], schema=fields))
        self._pending[table] += n
        if self._flush_due(table):
            self.flush(table)

    def _flush_due(self, table: str) -> bool:
        return self._pending[table] >= self.flush_rows or (
            self.flush_s > 0 and time.monotonic() - self._flushed_at[table] >= self.flush_s)

    def _seal(self, table: str) -> None:
        """Turn the appended rows into one Arrow batch, after the batches before them."""
        rows = self._rows[table]
        if next(iter(rows.values())):
            self._batches[table].append(pa.RecordBatch.from_pydict(rows, schema=_row_schema(table)))
            self._rows[table] = {col: [] for col in rows}

    def pending(self, table: str) -> int:
        return self._pending[table]

    def last_value(self, table: str, column: str) -> Any:
        """``column`` of the last row appended (flushed or not), or None when there is none since the writer
        was made or restored."""
        rows = self._rows[table][column]
        if rows:
            return rows[-1]
        if self._pending[table]:
            return self._batches[table][-1].column(column)[-1].as_py()
        return self._last[table].column(column)[0].as_py() if table in self._last else None

    def flush(self, table: str | None = None) -> None:
        for t in [table] if table else self.tables:
            n = self._pending[t]
            if n == 0:
                continue
            self._seal(t)
            rows = pa.Table.from_batches(self._batches[t], _row_schema(t))
            ids = [pa.repeat(pa.scalar(v, pa.string()), n) for v in (self.sweep_id, self.trial_id)]
            data = pa.Table.from_arrays(ids + rows.columns, schema=SCHEMAS[t])
            write_atomic(self.fs, f"{self.trial_dir(t)}/part-{self.next_part[t]:05d}.parquet", data)
            self.next_part[t] += 1
            self._flushed_at[t], self._last[t] = time.monotonic(), rows.slice(n - 1)
            self._clear(t)

    def write_trial(self, row: dict[str, Any]) -> None:
        """Write (or replace) this trial's one ``trials`` row."""
        row = dict(row, sweep_id=self.sweep_id, trial_id=self.trial_id)
        data = pa.Table.from_pylist([row], schema=SCHEMAS["trials"])
        write_atomic(self.fs, f"{self.trial_dir('trials')}/{TRIALS_FILE}", data)

    def read_trial(self) -> dict | None:
        """This trial's ``trials`` row if one was written, else None: from its own file or, once compacted,
        from the merged file that holds it (the own file is looked at first, as in ``table_files``)."""
        path = f"{self.trial_dir('trials')}/{TRIALS_FILE}"
        own = self.fs.get_file_info(path).type != pafs.FileType.NotFound
        holder = self.merged_holders("trials").get(path)
        if holder:
            rows = read_rows(self.fs, [holder], "trials", pc.field("trial_id") == self.trial_id).to_pylist()
        else:
            rows = read_rows(self.fs, [path], "trials").to_pylist() if own else []
        return rows[0] if rows else None

    def merged_holders(self, table: str) -> dict[str, str]:
        """{path of one of this trial's files of ``table``: the merged file that holds its rows}."""
        _, claimed, _, _ = compacted_files(self.fs, f"{self.base}/{table}")
        return {path: m for path, m in claimed.items() if path.startswith(f"{self.trial_dir(table)}/")}

    def checkpoint_path(self) -> str:
        return f"{self.base}/{CHECKPOINT_DIR}/{self.trial_id}.pt"

    def save_checkpoint(self, data: bytes) -> None:
        """Replace this trial's checkpoint, atomically. Flush first: the checkpoint must name only parts on disk."""
        write_atomic(self.fs, self.checkpoint_path(), data)

    def load_checkpoint(self) -> bytes | None:
        path = self.checkpoint_path()
        if self.fs.get_file_info(path).type == pafs.FileType.NotFound:
            return None
        with self.fs.open_input_stream(path) as f:
            return f.read()

    def drop_checkpoint(self) -> None:
        path = self.checkpoint_path()
        if self.fs.get_file_info(path).type != pafs.FileType.NotFound:
            self.fs.delete_file(path)

    def state(self) -> dict[str, int]:
        """What a checkpoint must store: the next part number per table (flush first)."""
        return dict(self.next_part)

    def restore(self, state: dict[str, int] | None) -> None:
        """Drop every part written after the checkpoint ``state`` (all parts when None): a trial that
        restarts from a checkpoint, or from scratch, then writes each of its rows exactly once.

        Raises CompactedTrialError when ``sweep compact`` merged any of this trial's files: merged rows are
        final (a merged file names the part files it holds, so new parts under those names would never be
        read, and the merged rows cannot be dropped). ``run_trial`` gets here only to re-run a trial whose
        config changed; such a run belongs in a new trial id or sweep."""
        held = [t for t in SCHEMAS if self.merged_holders(t)]
        if held:
            raise CompactedTrialError(
                f"trial {self.trial_id} of sweep {self.sweep_id} was compacted (`sweep compact` merged its "
                f"{', '.join(held)} rows): its rows are final and are not rewritten; run the changed config "
                f"as a new sweep")
        self._restored = dict(state or {})
        for t in self.tables:
            self._drop_after(t, self._restored.get(t, 0))
            self._last.pop(t, None)
            self._clear(t)

    def _drop_after(self, table: str, keep: int) -> None:
        """Delete ``table``'s parts numbered ``keep`` and up (and temporaries); the next part is ``keep``."""
        for f in self.fs.get_file_info(pafs.FileSelector(self.trial_dir(table), allow_not_found=True)):
            name = f.base_name
            if TRIAL_FILE.fullmatch(name) and name != TRIALS_FILE and int(name[5:10]) >= keep:  # not a stray
                self.fs.delete_file(f.path)
            elif name.startswith("."):  # a temporary left by a killed writer
                self.fs.delete_file(f.path)
        self.next_part[table] = keep


@cache
def _row_schema(table: str) -> pa.Schema:
    """A table's schema without the id columns: what ``append`` / ``extend`` fill."""
    return pa.schema([f for f in SCHEMAS[table] if f.name not in ("sweep_id", "trial_id")])


def _column(values: Any, n: int, type_: pa.DataType) -> pa.Array:
    if values is None:
        return pa.nulls(n, type_)
    if isinstance(values, pa.Array):
        return values.cast(type_)
    return pa.array(values, type=type_)
