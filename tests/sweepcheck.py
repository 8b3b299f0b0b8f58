"""Exact row-count checks of a sweep, straight from its Parquet through the read-only DuckDB views."""
from __future__ import annotations

import csv
import io

from typer.testing import CliRunner

from analysis.db import query_arrow
from orchestrator.cli import app


def cli_rows(results, sql: str) -> list[dict]:
    """`sweep query SQL --format csv` through the CLI, parsed: every value a string, as a user would see it."""
    r = CliRunner().invoke(app, ["query", sql, "--format", "csv", "--results", str(results)])
    assert r.exit_code == 0, r.output
    return list(csv.DictReader(io.StringIO(r.output)))


def counts(results: str, sweep_id: str) -> dict:
    """Rows, distinct (trial, step) pairs, steps done per the trials table, and trials by status."""
    one = lambda sql: query_arrow(results, sql).to_pylist()[0]  # noqa: E731
    w = f"WHERE sweep_id = '{sweep_id}'"
    out = one(f"SELECT count(*) AS rows, count(DISTINCT (trial_id, step)) AS uniq FROM steps {w}")
    out.update(one(f"SELECT count(*) AS trials, count(DISTINCT trial_id) AS trial_ids, "
                   f"coalesce(sum(steps_done), 0) AS steps_done FROM trials {w}"))
    out["status"] = {r["status"]: r["n"] for r in query_arrow(
        results, f"SELECT status, count(*) AS n FROM trials {w} GROUP BY ALL").to_pylist()}
    out.update(one(f"SELECT count(*) AS grad_rows, count(DISTINCT (trial_id, step, \"group\")) AS grad_uniq "
                   f"FROM grad_norms {w}"))
    return out


def assert_exact(results: str, sweep_id: str, n_trials: int, steps: int) -> dict:
    """Every trial completed once, exactly ``steps`` rows each, no duplicate rows anywhere."""
    c = counts(results, sweep_id)
    assert c["trials"] == c["trial_ids"] == n_trials, c
    assert c["status"] == {"completed": n_trials}, c
    assert c["rows"] == c["uniq"] == c["steps_done"] == n_trials * steps, c
    assert c["grad_rows"] == c["grad_uniq"], c
    return c
