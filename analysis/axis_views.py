"""The papers' figures of a sweep with extra grid axes (``--set hidden=32,64``: the spec's ``vary``), drawn once
per combination of those axes' values. The figure modules group by the paper's own axes (cell, nu, depth, ...)
and know nothing of the extra ones, so each combination gets a DuckDB schema whose views (``trials``, ``steps``,
every table) hold only that combination's trials, first on the search path: the figure modules' SQL runs
unchanged and sees one combination at a time.

    >>> for label, folder in combinations(con, sweep, out):   # e.g. ("hidden=32", "<out>/hidden32")
    ...     draw(con, sweep, folder)                          # with the scoped views in force
"""
from __future__ import annotations

import itertools
from contextlib import contextmanager

from analysis.db import run_arrow
from analysis.report_charts import axis_sql


def extra_axes(sweep: dict) -> list[tuple[str, list[str]]]:
    """The axes of ``vary`` (not the built-in ones, which the figures group by themselves)."""
    out = []
    for entry in (sweep.get("spec") or {}).get("vary") or []:  # "field=v1,v2", values as the group keys spell them
        field, _, values = entry.partition("=")
        out.append((field, [v for v in values.split(",") if v]))
    return out


@contextmanager
def scoped(con, sid: str, values: dict[str, str]):
    """``con`` with views of only the trials whose extra axes take ``values``, first on the search path."""
    columns = {r["column_name"] for r in run_arrow(con, "SELECT column_name FROM (DESCRIBE main.trials)").to_pylist()}
    tables = [r["view_name"] for r in run_arrow(con, "SELECT view_name FROM duckdb_views() WHERE NOT internal "
                                                     "AND schema_name = 'main'").to_pylist()]
    where = " AND ".join(f"{axis_sql(a, columns)} = ?" for a in values)
    con.execute("CREATE OR REPLACE SCHEMA axis_scope")
    try:
        con.execute(f'CREATE VIEW axis_scope.trials AS SELECT * FROM main.trials t WHERE t.sweep_id = {_lit(sid)} '
                    f'AND {_inline(where, list(values.values()))}')
        for t in tables:
            if t == "trials":
                continue
            cols = {r["column_name"] for r in run_arrow(con, f'SELECT column_name FROM (DESCRIBE main."{t}")')
                    .to_pylist()}
            key = "trial_id" if "trial_id" in cols else "group_key"  # lr_landscape: one row per (group, lr)
            con.execute(f'CREATE VIEW axis_scope."{t}" AS SELECT * FROM main."{t}" WHERE {key} IN '
                        f'(SELECT {key} FROM axis_scope.trials)')
        con.execute("SET search_path = 'axis_scope,main'")
        yield con
    finally:
        con.execute("SET search_path = 'main'")
        con.execute("DROP SCHEMA IF EXISTS axis_scope CASCADE")


def combinations(sweep: dict) -> list[tuple[dict[str, str], str]]:
    """Each combination of the extra axes' values, and its folder name (``hidden32-batch16``)."""
    axes = extra_axes(sweep)
    if not axes:
        return []
    out = []
    for combo in itertools.product(*(v for _, v in axes)):
        values = dict(zip((a for a, _ in axes), combo))
        out.append((values, "-".join(f"{a}{v}" for a, v in values.items())))
    return out


def _lit(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def _inline(sql: str, params: list[str]) -> str:
    """A view cannot take parameters: the values inlined as string literals, in order."""
    parts = sql.split("?")
    return "".join(p + (_lit(v) if i < len(params) else "") for i, (p, v) in
                   enumerate(itertools.zip_longest(parts, params, fillvalue="")))
