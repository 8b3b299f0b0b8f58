"""The buffered, atomic Parquet writer of one trial's rows (``TrialWriter``), and its checkpoint.

Where its files go and how they are named, written and read is the results layout's (``layout``: the tables'
schemas in ``layout.schemas``, the names in ``layout.paths``, the readers in ``layout.tables``). Part numbers
are consecutive per (trial, table), so a checkpoint that stores the next part numbers (``TrialWriter.state``)
can drop exactly the parts written after it (``TrialWriter.restore``): rows are written once by construction,
not deduplicated at query time. The trial's checkpoint lives beside its rows (``<sweep_id>/_checkpoints/
<trial_id>.pt``, replaced atomically after a flush), so rows and checkpoint can never disagree, whatever the
scheduler (Ray Tune) remembers. Repeating strings (ids, status, group names) are dictionary-encoded, floats
byte-stream-split, all zstd (``layout.files.parquet_options``).
"""
from __future__ import annotations

import time
from functools import cache
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs

from layout import checkpoints, paths, pruning
from layout.files import write_atomic
from layout.location import open_sweep
from layout.schemas import SCHEMAS
from layout.tables import compacted_files, read_rows


class CompactedTrialError(RuntimeError):
    """Raised on restarting a trial whose rows ``sweep compact`` merged: they are final (see ``restore``)."""


class TrialWriter:
    """Buffers one trial's rows per table and flushes them as numbered part files.

    ``append`` takes one row (a dict), ``extend`` a dict of equal-length columns (lists, numpy arrays or
    Arrow arrays; converted to Arrow at once: the fast path, millions of rows/s, ``bench/results_scale.py``).
    Missing columns are null, unknown keys ignored.
    Buffers flush when they reach ``flush_rows`` rows, when ``flush_s`` seconds have passed since the table's
    last flush (checked as rows arrive; 0: never by time), and on ``flush()``; ``sweep_id`` and ``trial_id`` are
    filled in here. A flush by time is one more numbered part like a flush by size, so ``restore`` drops it
    exactly the same way when it came after the checkpoint: it only makes a running trial visible sooner.
    A table registered after the writer was made (``register_table``, when a probe is built) is taken on at its
    first row, as if it had been there from the start (``restore`` applies to it then).
    """

    def __init__(self, results: str, sweep_id: str, trial_id: str, flush_rows: int = 65536, flush_s: float = 0.0):
        self.fs, self.base = open_sweep(results, sweep_id)
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
        return paths.trial_dir(self.base, table, self.trial_id)

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
            write_atomic(self.fs, f"{self.trial_dir(t)}/{paths.part_name(self.next_part[t])}", data)
            self.next_part[t] += 1
            self._flushed_at[t], self._last[t] = time.monotonic(), rows.slice(n - 1)
            self._clear(t)

    def write_trial(self, row: dict[str, Any]) -> None:
        """Write (or replace) this trial's one ``trials`` row."""
        row = dict(row, sweep_id=self.sweep_id, trial_id=self.trial_id)
        data = pa.Table.from_pylist([row], schema=SCHEMAS["trials"])
        write_atomic(self.fs, f"{self.trial_dir('trials')}/{paths.TRIAL_ROW_FILE}", data)

    def read_trial(self) -> dict | None:
        """This trial's ``trials`` row if one was written, else None: from its own file or, once compacted,
        from the merged file that holds it (the own file is looked at first, as in ``table_files``)."""
        path = f"{self.trial_dir('trials')}/{paths.TRIAL_ROW_FILE}"
        own = self.fs.get_file_info(path).type != pafs.FileType.NotFound
        holder = self.merged_holders("trials").get(path)
        if holder:
            rows = read_rows(self.fs, [holder], "trials", pc.field("trial_id") == self.trial_id).to_pylist()
        else:
            rows = read_rows(self.fs, [path], "trials").to_pylist() if own else []
        return rows[0] if rows else None

    def merged_holders(self, table: str) -> dict[str, str]:
        """{path of one of this trial's files of ``table``: the merged file that holds its rows}."""
        _, claimed, _, _ = compacted_files(self.fs, paths.table_dir(self.base, table))
        return {path: m for path, m in claimed.items() if path.startswith(f"{self.trial_dir(table)}/")}

    def checkpoint_path(self) -> str:
        return paths.checkpoint_file(self.base, self.trial_id)

    def save_checkpoint(self, data: bytes) -> None:
        """Replace this trial's checkpoint, atomically. Flush first: the checkpoint must name only parts on disk."""
        checkpoints.save(self.fs, self.base, self.trial_id, data)

    def load_checkpoint(self) -> bytes | None:
        return checkpoints.load(self.fs, self.base, self.trial_id)

    def drop_checkpoint(self) -> None:
        checkpoints.drop(self.fs, self.base, self.trial_id)

    def prune_requested(self) -> bool:
        """Whether the sweep's driver has asked this trial to stop as ``pruned`` (``layout.pruning``)."""
        return pruning.requested(self.fs, self.base, self.trial_id)

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
            n = paths.part_number(name)
            if n is not None and n >= keep:  # not a stray
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
