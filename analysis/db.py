"""DuckDB views over a results location, and the queries the CLI runs on them.

``connect(results)`` opens an in-memory DuckDB connection with one view per table of
``layout.schemas.SCHEMAS`` (same names: ``trials``, ``steps``, ``grad_norms``, ...), each over every sweep
under the results location. Every view has exactly the schema's columns and types, also when no file
exists yet (zero rows) and when older files lack a column added to the schema later (nulls). A table on disk
that SCHEMAS does not know in this process (a probe's own table, ``Probe.schemas``, while only ``analysis`` is
imported) gets a view too, with the schema its files carry.

    >>> con = connect("results")
    >>> con.sql("SELECT cell, nu, avg(final_loss) FROM trials GROUP BY ALL").show()

Layout read here (``layout``: written by ``trainers.record`` and the orchestrator):
``<results>/<sweep_id>/<table>/trial_id=<id>/*.parquet`` plus ``<results>/<sweep_id>/sweep.json``. The
``trial_id`` column is in the rows, so hive partitioning is off. Temporaries (dot-prefixed, ``.tmp``) are never
read; files merged by ``sweep compact`` (``<table>/compacted/merged-*.parquet``) are read instead of the part
files they hold (``layout.tables.table_files``).
"""
from __future__ import annotations

import csv
import datetime as dt
import decimal
import io
import json
import logging
import math
import weakref
from typing import TYPE_CHECKING, Any

import duckdb
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from layout import paths, sweep_json
from layout.location import open_location
from layout.schemas import SCHEMAS, STATUSES
from layout.sweeps import latest, order, sweep_ids
from layout.tables import read_rows, table_files

from . import selection
from .errors import AnalysisError
from .state import read_lease, sweep_state

if TYPE_CHECKING:
    import pyarrow.compute as pc

FORMATS = ("table", "csv", "json")
log = logging.getLogger("analysis")
_OPENED: "weakref.WeakKeyDictionary[duckdb.DuckDBPyConnection, str]" = weakref.WeakKeyDictionary()  # con -> results


# --------------------------------------------------------------------------------------------- connect
def connect(results: str, sweep: str | None = None) -> duckdb.DuckDBPyConnection:
    """In-memory DuckDB connection with one view per table in SCHEMAS over all sweeps under ``results``, or
    over sweep ``sweep`` alone (a sweep id: its directory name). The views are the only tables it lists.

    The connection is read-only by construction: the tables are pyarrow datasets (local paths and
    object stores alike), and once they are registered DuckDB's own file access is switched off and the
    configuration locked, so no statement (COPY, ATTACH, read_csv, ...) can touch a file.
    Raises AnalysisError when the location holds no sweep directory (missing or empty).
    """
    fs, root = open_results(results)
    _some_sweep(results, fs, root)
    if sweep is not None and sweep not in _sweep_dirs(fs, root):
        raise AnalysisError(f"no sweep {sweep!r} under {results!r}; `sweep ls` lists them")
    con = duckdb.connect()
    try:
        con.sql("SET TimeZone = 'UTC'")
    except duckdb.Error:  # ICU not available: timestamps still read, printed in local time
        pass
    try:
        tables = {**SCHEMAS, **_declared_elsewhere(fs, root, sweep)}
    except (pa.ArrowException, OSError) as e:
        raise AnalysisError(f"cannot read the tables under {results!r}: {_first_line(e)}") from None
    for table, schema in tables.items():
        try:
            rel = _relation(con, fs, root, table, schema, sweep)
            (selection.trials_view(rel) if table == "trials" else rel).create_view(table)
        except (duckdb.Error, pa.ArrowException, OSError) as e:
            raise AnalysisError(f"cannot read table {table!r} under {results!r}: {_first_line(e)}") from None
    selection.add_landscape(con)
    con.sql("SET temp_directory = ''")  # no spill folder (DuckDB's default is <cwd>/.tmp, then readable by queries)
    con.sql("SET enable_external_access = false")
    con.sql("SET lock_configuration = true")
    _OPENED[con] = results
    return con


def _some_sweep(results: str, fs: pafs.FileSystem, root: str) -> list[str]:
    """The sweep ids under the location; AnalysisError when there is none."""
    ids = _sweep_dirs(fs, root)
    if not ids:
        raise AnalysisError(f"no sweeps under {results!r}: run `sweep launch NAME` first "
                            f"(e.g. `sweep launch curse-of-memory --scale smoke`)")
    return ids


def location_of(con: duckdb.DuckDBPyConnection) -> str:
    """The results location a connection from ``connect`` reads."""
    try:
        return _OPENED[con]
    except (KeyError, TypeError):
        raise AnalysisError("not a connection from analysis.connect: pass one, or a results location") from None


def _relation(con: duckdb.DuckDBPyConnection, fs: pafs.FileSystem, root: str, table: str, schema: pa.Schema,
              only: str | None = None) -> duckdb.DuckDBPyRelation:
    """``table``'s rows with exactly the schema's columns and DuckDB types: a UNION ALL with one branch per
    sweep (or sweep ``only``), over a pyarrow dataset of that sweep's files (older files lacking a later column
    read it as null). The datasets are relations, not registered names, so the views are the only tables a
    user sees (``SHOW TABLES``). A sweep's rows all carry its directory name as ``sweep_id`` (the writer
    puts them there), so the branch gives it as a constant: no file is read for it (decoding 10 M id strings
    took 0.4 s of a full scan), and a filter on ``sweep_id`` drops the other branches before any file opens.
    (``pyarrow.dataset`` is imported here, by the commands that query: it imports pandas.)"""
    import pyarrow.dataset as pads

    types = [str(t) for t in con.from_arrow(schema.empty_table()).types]
    out = None
    for sweep, files in _list_files(fs, root, table, only):
        data = pads.FileSystemDataset.from_paths(
            [path for path, _ in files], schema=schema, format=pads.ParquetFileFormat(), filesystem=fs,
            partitions=[guarantee for _, guarantee in files])
        cols = ", ".join(f"CAST({_literal(sweep) if f.name == 'sweep_id' else ident(f.name)} AS {t}) AS "
                         f"{ident(f.name)}" for f, t in zip(schema, types))
        branch = con.from_arrow(data).project(cols)
        out = branch if out is None else out.union(branch)
    if out is None:
        return con.sql(f"SELECT {', '.join(f'CAST(NULL AS {t}) AS {ident(f.name)}' for f, t in zip(schema, types))} "
                       "LIMIT 0")
    return out


def _declared_elsewhere(fs: pafs.FileSystem, root: str, only: str | None = None) -> dict[str, pa.Schema]:
    """{table: schema} of the table directories under any sweep that SCHEMAS lacks and that hold files written
    by trials: the schema their files carry (unified over one file per sweep)."""
    found: dict[str, list[pa.Schema]] = {}
    for sweep in _sweep_dirs(fs, root, only):
        base = paths.sweep_dir(root, sweep)
        for d in fs.get_file_info(pafs.FileSelector(base, allow_not_found=True)):
            name = d.base_name
            if d.type != pafs.FileType.Directory or name in SCHEMAS or paths.is_hidden(name):
                continue
            files = table_files(fs, base, name)
            readable = [p for p, _ in files.parts] + list(files.merged)
            if readable:
                found.setdefault(name, []).append(pq.read_schema(readable[0], filesystem=fs))
    return {t: pa.unify_schemas(s) for t, s in sorted(found.items())}


def open_results(results: str) -> tuple[pafs.FileSystem, str]:
    """(filesystem, root) of a results location (``layout.location``); AnalysisError naming it when it cannot
    be opened."""
    try:
        return open_location(results)
    except (pa.ArrowException, ValueError, OSError) as e:
        raise AnalysisError(f"cannot open results location {results!r}: {_first_line(e)}") from None


def _list_files(fs: pafs.FileSystem, root: str, table: str,
                only: str | None = None) -> list[tuple[str, list[tuple[str, pc.Expression]]]]:
    """Per sweep holding files of ``table``: (sweep_id, [(path, guarantee)]), on any pyarrow filesystem:
    trial files and compacted files as ``layout.tables.table_files`` sorts them (superseded and temporary
    files left out, foreign files named in a warning). The guarantee (a trial file's trial_id) lets a query on
    one trial skip the other trials' files without opening them."""
    import pyarrow.compute as pc

    out = []
    for sweep in _sweep_dirs(fs, root, only):
        files = _table_files(fs, root, sweep, table)
        listed = [(path, pc.field("trial_id") == trial) for path, trial in files.parts]
        listed += [(path, pc.scalar(True)) for path in files.merged]
        if listed:
            out.append((sweep, listed))
    return out


def _table_files(fs: pafs.FileSystem, root: str, sweep: str, table: str):
    """``layout.tables.table_files`` of one sweep's table, its foreign files named in a warning."""
    files = table_files(fs, paths.sweep_dir(root, sweep), table)
    for path in files.foreign:
        log.warning("skipping foreign file %s (not written by a trial)", path)
    return files


def _sweep_dirs(fs: pafs.FileSystem, root: str, only: str | None = None) -> list[str]:
    """``layout.sweeps.sweep_ids``, an unreadable root named in an AnalysisError."""
    try:
        return sweep_ids(fs, root, only)
    except (pa.ArrowException, OSError) as e:  # root is a file, unreadable, or its server unreachable: say so
        raise AnalysisError(f"cannot read results location {root!r}: {_first_line(e)}") from None


def ident(name: str) -> str:
    """``name`` as a quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def _literal(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def _first_line(e: BaseException) -> str:
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    return lines[0] if lines else type(e).__name__


# ---------------------------------------------------------------------------------------------- sweeps
def sweeps(results: str, con: duckdb.DuckDBPyConnection | None = None) -> list[dict]:
    """Every sweep under ``results``, oldest first (``layout.sweeps.order``): the sweep.json fields (sweep_id,
    name, scale, created_at, spec, tags, note; ``status`` as ``analysis.state.sweep_state`` reads it) plus
    ``counts`` ({status: n}, running/completed/diverged/failed always present)
    and ``n_trials``, from the trials view. A sweep directory without a readable sweep.json still
    appears, with name taken from its trials' ``sweep`` column (or None) and created_at None. ``con``: an open
    connection to ``results`` to count with (else the ``trials`` files are read directly, without the views:
    `sweep ls` and `status` then start without ``pyarrow.dataset``, see ``_relation``)."""
    fs, root = open_results(results)
    counts: dict[str, dict[str, int]] = {}
    names: dict[str, str] = {}
    rows = con.sql("SELECT sweep_id, status, sweep FROM trials").fetchall() if con is not None else \
        _trial_rows(results, fs, root)
    for sid, status, sweep in rows:
        c, key = counts.setdefault(sid, {}), status if status is not None else "unknown"
        c[key] = c.get(key, 0) + 1
        if sweep is not None:
            names.setdefault(sid, sweep)
    out = []
    for sid in _sweep_dirs(fs, root):
        meta = sweep_json.read_or_none(fs, paths.sweep_dir(root, sid))
        info = {"sweep_id": sid, "name": names.get(sid), "scale": None, "created_at": None, "spec": {}, "tags": [],
                "note": None}
        info.update(meta or {})
        info["status"] = sweep_state(meta or {}, bool(counts.get(sid, {}).get("running")),
                                     read_lease(fs, paths.sweep_dir(root, sid)))
        info["sweep_id"] = sid  # the directory name is what rows carry
        c = dict.fromkeys(STATUSES, 0)
        c.update(counts.get(sid, {}))
        info["counts"], info["n_trials"] = c, sum(c.values())
        out.append(info)
    return sorted(out, key=order)


def _trial_rows(results: str, fs: pafs.FileSystem, root: str) -> list[tuple]:
    """(sweep_id, status, sweep) of every ``trials`` row, read from the files the view reads (each sweep's
    ``table_files``) without building it; AnalysisError as ``connect`` raises it when the location holds no sweep."""
    out = []
    for sid in _some_sweep(results, fs, root):
        files = _table_files(fs, root, sid, "trials")
        rows = read_rows(fs, [p for p, _ in files.parts] + list(files.merged), "trials", columns=["status", "sweep"])
        out += [(sid, status, sweep) for status, sweep in zip(*(rows.column(c).to_pylist() for c in rows.column_names))]
    return out


def resolve_sweep(results: str, name_or_id: str, con: duckdb.DuckDBPyConnection | None = None) -> dict:
    """The sweep (as in ``sweeps``) whose sweep_id is ``name_or_id``, else the latest whose name is
    (``layout.sweeps.latest``: by sweep.json's ``created_at``)."""
    all_ = sweeps(results, con)
    found = latest(all_, name_or_id)
    if found is not None:
        return found
    listing = ", ".join(f"{s['sweep_id']} ({s.get('name')})" for s in all_[-20:])
    more = f" and {len(all_) - 20} older" if len(all_) > 20 else ""
    raise AnalysisError(f"no sweep with id or name {name_or_id!r}; available: {listing}{more}")


# ----------------------------------------------------------------------------------------------- query
def query_arrow(results: str, sql: str, sweep: str | None = None) -> pa.Table:
    """Run ``sql`` over the views (of sweep id ``sweep`` alone, if given); the result as a pyarrow Table (empty,
    no columns, for statements that return nothing). Malformed SQL or unknown names raise AnalysisError with
    DuckDB's first line."""
    return run_arrow(connect(results, sweep), sql)


def run_arrow(con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None) -> pa.Table:
    """``query_arrow`` on an open connection (optionally with ``?`` parameters)."""
    try:
        if len(con.extract_statements(sql)) > 1:  # DuckDB would run them all and show only the last result
            raise AnalysisError("several SQL statements in one query; run them one at a time")
        rel = con.sql(sql, params=params) if params else con.sql(sql)
        return rel.to_arrow_table() if rel is not None else pa.table({})
    except duckdb.Error as e:
        raise AnalysisError(f"query failed: {_first_line(e)}") from None


def query(results: str, sql: str, fmt: str = "table", sweep: str | None = None) -> str:
    """Run ``sql`` and render the result as ``table`` (aligned plain text), ``csv`` (with header) or
    ``json`` (an array of row objects; NaN and ±inf become null, timestamps ISO-8601 strings)."""
    if fmt not in FORMATS:
        raise AnalysisError(f"unknown format {fmt!r}; valid formats: {', '.join(FORMATS)}")
    return {"table": to_text, "csv": to_csv, "json": to_json}[fmt](query_arrow(results, sql, sweep))


def to_text(tbl: pa.Table) -> str:
    """An aligned plain-text table: header, dashes, rows (numbers right-aligned), then the row count."""
    if tbl.num_columns == 0:
        return "OK"
    rows = tbl.to_pylist()
    cols = tbl.column_names
    cells = [[_text_cell(r[c]) for c in cols] for r in rows]
    numeric = [pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t)
               for t in tbl.schema.types]
    widths = [max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(cols)]
    fmt = lambda vals: "  ".join(  # noqa: E731
        (v.rjust(w) if num else v.ljust(w)) for v, w, num in zip(vals, widths, numeric)).rstrip()
    lines = [fmt(cols), "  ".join("-" * w for w in widths)] + [fmt(r) for r in cells]
    lines.append(f"({len(rows)} row{'s' if len(rows) != 1 else ''})")
    return "\n".join(lines) + "\n"


def _text_cell(v: Any) -> str:
    if v is None:
        return "NULL"
    if isinstance(v, float):
        return f"{v:.6g}"
    if isinstance(v, dt.datetime):
        return v.isoformat(sep=" ")
    if isinstance(v, (dict, list)):
        return json.dumps(_jsonable(v))
    return str(v)


def to_csv(tbl: pa.Table) -> str:
    """CSV with a header row; NULL is an empty field, floats at full precision (nan, inf as written)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(tbl.column_names)
    for r in tbl.to_pylist():
        w.writerow(["" if v is None else
                    v.isoformat() if isinstance(v, (dt.date, dt.time)) else
                    json.dumps(_jsonable(v)) if isinstance(v, (dict, list)) else v
                    for v in r.values()])
    return buf.getvalue()


def to_json(tbl: pa.Table) -> str:
    """A JSON array of row objects, one row per line; always valid JSON (NaN/±inf → null)."""
    rows = [json.dumps(_jsonable(r), allow_nan=False) for r in tbl.to_pylist()]
    return "[\n" + ",\n".join(rows) + "\n]\n" if rows else "[]\n"


def _jsonable(v: Any) -> Any:
    if isinstance(v, float):
        return v if math.isfinite(v) else None
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, (dt.date, dt.time)):
        return v.isoformat()
    if isinstance(v, dt.timedelta):
        return v.total_seconds()
    if isinstance(v, decimal.Decimal):
        return _jsonable(float(v))
    if isinstance(v, bytes):
        return v.hex()
    if v is None or isinstance(v, (str, int, bool)):
        return v
    return str(v)
