"""The notebook API: pandas (or Arrow) frames straight from a results location. docs/api.md shows it at work.

Every helper takes a *source*: a results location (a path or a pyarrow URI such as ``s3://bucket/results``,
opened with ``connect``) or a connection ``connect`` returned. Opening lists every file under the location, so
pass one connection to many queries. Values go into the SQL as DuckDB parameters (``?`` or ``$name``), never
by string formatting; table and column names are checked against the views and quoted.

    >>> import analysis
    >>> con = analysis.connect("results")
    >>> analysis.trials(con, sweep="curse-of-memory", stage="seed")            # a pandas DataFrame
    >>> analysis.frame(con, "SELECT cell, avg(final_loss) AS loss FROM trials WHERE nu = ? GROUP BY cell", [0.99])
    >>> analysis.curve(con, trial_id, "norm", table="grad_norms", by="group")   # step, group, norm
"""
from __future__ import annotations

import os
from typing import TYPE_CHECKING, Union

import duckdb
import pyarrow as pa

from analysis.db import AnalysisError, connect, ident, location_of, resolve_sweep, run_arrow

if TYPE_CHECKING:
    import pandas as pd

Source = Union[str, "os.PathLike[str]", duckdb.DuckDBPyConnection]

TRIALS_SQL = """
SELECT * FROM trials WHERE ($sweep IS NULL OR sweep_id = $sweep) AND ($stage IS NULL OR stage = $stage)
ORDER BY sweep_id, trial_id
"""
OWNERS_SQL = """
SELECT DISTINCT sweep_id FROM trials WHERE trial_id = $t AND ($s IS NULL OR sweep_id = $s) ORDER BY sweep_id
"""


def open_source(source: Source) -> duckdb.DuckDBPyConnection:
    """``source`` itself if it is a connection, else ``connect(source)``."""
    if isinstance(source, duckdb.DuckDBPyConnection):
        return source
    if isinstance(source, (str, os.PathLike)):
        return connect(os.fspath(source))
    raise TypeError(f"source must be a results location or a connection from analysis.connect, not "
                    f"{type(source).__name__}")


def frame(source: Source, sql: str, params: list | dict | None = None, *,
          arrow: bool = False) -> "pd.DataFrame | pa.Table":
    """The result of ``sql`` over the views, as a pandas DataFrame (or a pyarrow Table with ``arrow=True``).

    ``params`` fill the placeholders: a list for ``?``, a dict for ``$name``.

    >>> frame("results", "SELECT step, loss FROM steps WHERE trial_id = ? ORDER BY step", [tid])
    """
    tbl = run_arrow(open_source(source), sql, params)
    return tbl if arrow else tbl.to_pandas()


def sweep_id(source: Source, sweep: str) -> str:
    """The id of sweep ``sweep``: itself if it is an id, else the id of the latest sweep of that name (by its
    sweep.json's ``created_at``, as every command takes it: ``analysis.db.resolve_sweep``); AnalysisError naming
    the sweeps there are when none matches."""
    con = open_source(source)
    return resolve_sweep(location_of(con), sweep, con)["sweep_id"]


def trials(source: Source, sweep: str | None = None, stage: str | None = None, *,
           arrow: bool = False) -> "pd.DataFrame | pa.Table":
    """The ``trials`` rows, all columns (docs/schemas.md), of one sweep (an id, or a name: its latest sweep)
    or of all, optionally of one stage (``lr_search``, ``seed``, ``analysis``); ordered by sweep and trial.

    >>> trials("results", "exploding-gradients", stage="seed")[["seq_len", "clip", "solved_step"]]
    """
    con = open_source(source)
    sid = sweep_id(con, sweep) if sweep is not None else None
    return frame(con, TRIALS_SQL, {"sweep": sid, "stage": stage}, arrow=arrow)


def curve(source: Source, trial_id: str, column: str = "loss", table: str = "steps", by: str | None = None, *,
          sweep: str | None = None, arrow: bool = False) -> "pd.DataFrame | pa.Table":
    """One trial's ``column`` over its steps: columns ``step``, ``by`` (when given: one curve per value, e.g.
    the parameter group of ``grad_norms``) and ``column``, ordered by ``by`` then step. Any table with a
    ``step`` column works (``steps``, ``grad_norms``, ``hessian``, ``lattice``, a probe's own table).

    Trial ids repeat across sweeps (``rnn-d1-nu0.99-s0`` in every run of a sweep): ``sweep`` (an id, or a name:
    its latest sweep) says whose. AnalysisError when the trial is in no sweep (or not in ``sweep``), or when
    ``sweep`` is not given and several sweeps have it (the message names them).

    >>> curve("results", tid, sweep="curse-of-memory")                 # the training loss
    >>> curve("results", tid, "norm", table="grad_norms", by="group", sweep=sid)  # per-group gradient norms
    """
    con = open_source(source)
    views = run_arrow(con, "SELECT DISTINCT table_name FROM information_schema.columns "
                           "WHERE column_name = 'step' ORDER BY 1").column(0).to_pylist()
    if table not in views:
        raise AnalysisError(f"unknown table {table!r} for a curve; valid: {', '.join(views)}")
    columns = con.table(table).columns
    for name in (column, by):
        if name is not None and name not in columns:
            raise AnalysisError(f"table {table!r} has no column {name!r}; valid: {', '.join(columns)}")
    sid = sweep_id(con, sweep) if sweep is not None else None
    owners = run_arrow(con, OWNERS_SQL, {"t": trial_id, "s": sid}).column(0).to_pylist()
    if not owners:
        where = f"sweep {sid!r}" if sid else "any sweep"
        raise AnalysisError(f"unknown trial {trial_id!r} in {where}; the trials table lists the trial ids")
    if len(owners) > 1:
        raise AnalysisError(f"trial {trial_id!r} is in {len(owners)} sweeps ({', '.join(owners)}); pass sweep=ID "
                            "or sweep=NAME (its latest)")
    sid = owners[0]
    keys = [ident(by)] if by else []
    sql = (f"SELECT {', '.join(['step', *keys, ident(column)])} FROM {ident(table)} WHERE sweep_id = ? AND "
           f"trial_id = ? ORDER BY {', '.join([*keys, 'step'])}")
    return frame(con, sql, [sid, trial_id], arrow=arrow)
