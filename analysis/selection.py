"""The grid protocol's choice, derived in DuckDB: ``trials.selected`` and the ``lr_landscape`` view.

A group's seed-stage runs (``stage = 'seed'``, one ``group_key``) may span several learning rates (protocol
``grid``). Per rate: the mean final loss over its completed seeds, how many seeds diverged or failed (a
non-finite final loss counts as diverged). The chosen rate is the one with the lowest mean, where a rate with a
diverged or failed seed ranks after every rate without one (its mean counts as +inf), unless every rate has one:
then the fewest such seeds, then the lowest mean. Ties go to the lower rate. A rate the tpe protocol's pruner
stopped (a seed ``pruned``: it did not train to the end, so its loss is not comparable) ranks after all of them.
Running seeds are neither: a live sweep's choice can still change. The rows of the chosen rate are ``selected``:
exactly one rate per group.
Rows of older sweeps without ``group_key`` are grouped by their grid axes. Lr-search and analysis rows are never
selected.

Both are views over the trial files, never written: a resumed or merged sweep, or a trial re-run, cannot leave
a stale choice behind, and no file needs rewriting when the last seed of a group lands.
"""
from __future__ import annotations

import duckdb

DERIVED = {"trials": ("selected",)}  # columns a view adds after its table's schema (analysis.db.connect)

# the group a row belongs to: its key, or (older rows) its grid axes
_GROUP = ("coalesce(group_key, concat_ws('|', task, cell, depth, nu, seq_len, coalesce(clip, 0), layer_norm))")
_BAD = "(status IN ('diverged', 'failed') OR (status = 'completed' AND NOT isfinite(final_loss)))"
_OK = "(status = 'completed' AND isfinite(final_loss))"

RATES_SQL = f"""
WITH rates AS (
  SELECT sweep_id, {_GROUP} AS grp, lr, count(*) AS seeds,
         count(*) FILTER ({_BAD}) AS diverged, count(*) FILTER (status = 'pruned') AS pruned,
         avg(final_loss) FILTER ({_OK}) AS mean,
         stddev_samp(final_loss) FILTER ({_OK}) / sqrt(count(*) FILTER ({_OK})) AS se
  FROM raw WHERE stage = 'seed' GROUP BY ALL
), floor AS (
  SELECT *, min(diverged) OVER (PARTITION BY sweep_id, grp) AS least FROM rates
)
SELECT *, row_number() OVER (PARTITION BY sweep_id, grp ORDER BY pruned > 0,
            CASE WHEN least = 0 THEN (diverged > 0)::INT ELSE diverged END, mean NULLS LAST, lr) = 1 AS selected
FROM floor
"""

TRIALS_SQL = f"""
SELECT raw.*, coalesce(raw.stage = 'seed' AND r.selected, false) AS selected
FROM raw LEFT JOIN ({RATES_SQL}) r
  ON raw.sweep_id = r.sweep_id AND {_GROUP} = r.grp AND raw.lr = r.lr
"""

LANDSCAPE_SQL = """
SELECT sweep_id, group_key, any_value(task) AS task, any_value(cell) AS cell, any_value(depth) AS depth,
       any_value(nu) AS nu, any_value(seq_len) AS seq_len, any_value(clip) AS clip,
       any_value(layer_norm) AS layer_norm, lr,
       avg(final_loss) FILTER (status = 'completed' AND isfinite(final_loss)) AS mean,
       stddev_samp(final_loss) FILTER (status = 'completed' AND isfinite(final_loss))
         / sqrt(count(*) FILTER (status = 'completed' AND isfinite(final_loss))) AS se,
       count(*) AS seeds,
       count(*) FILTER (status IN ('diverged', 'failed') OR (status = 'completed' AND NOT isfinite(final_loss)))
         AS diverged,
       count(*) FILTER (status = 'pruned') AS pruned,
       bool_or(selected) AS selected
FROM trials WHERE stage = 'seed' GROUP BY sweep_id, group_key, lr
"""


def trials_view(rel: duckdb.DuckDBPyRelation) -> duckdb.DuckDBPyRelation:
    """The ``trials`` rows ``rel`` with the ``selected`` column added."""
    return rel.query("raw", TRIALS_SQL)


def add_landscape(con: duckdb.DuckDBPyConnection) -> None:
    """The ``lr_landscape`` view (over the ``trials`` view): per sweep, group and rate, the mean final loss
    over completed seeds and its standard error, the seeds, how many diverged or failed, how many the tpe
    protocol's pruner stopped, and whether it is the group's chosen rate."""
    con.sql(LANDSCAPE_SQL).create_view("lr_landscape")
