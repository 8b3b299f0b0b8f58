"""The last word of `sweep launch` / `sweep resume`: a table with one row per grid group, then the wall time,
the results path and the commands that read this sweep (scoped to it with ``--sweep``).

Per group: the chosen learning rate, the mean ± standard error (sample standard deviation / sqrt(n)) of the
final evaluation loss over its completed seed trials, and how many seed trials diverged or failed.
"""
from __future__ import annotations

import json
import sys

from rich.console import Console
from rich.table import Table

from analysis.db import connect, run_arrow
from analysis.live import clock
from layout import sweep_json
from layout.location import canonical_location, open_sweep

from .spec import AXES, SweepSpec

# The seed trials of each group at its chosen rate (``selected``: analysis.selection), the rate from the rows.
GROUP_SQL = """
SELECT {axes}, any_value(group_key) AS group_key, any_value(lr) AS lr, count(*) AS seeds,
       avg(final_loss) FILTER (status = 'completed' AND isfinite(final_loss)) AS mean,
       stddev_samp(final_loss) FILTER (status = 'completed' AND isfinite(final_loss))
         / sqrt(count(*) FILTER (status = 'completed' AND isfinite(final_loss))) AS se,
       count(*) FILTER (status = 'diverged') AS diverged, count(*) FILTER (status = 'failed') AS failed
FROM trials WHERE selected GROUP BY ALL ORDER BY ALL
"""
OTHER_SQL = "SELECT stage, status, count(*) AS n FROM trials WHERE stage <> 'seed' GROUP BY ALL ORDER BY ALL"
PRUNED_SQL = "SELECT count(*) AS n, count(DISTINCT lr) AS rates FROM trials WHERE status = 'pruned'"
FAILED_SQL = "SELECT trial_id, error FROM trials WHERE status = 'failed' ORDER BY trial_id"  # each with its reason


def group_rows(con, meta: dict) -> list[dict]:
    """One dict per group of the sweep of ``meta`` (its sweep.json), read through ``con`` (``connect`` to that
    sweep): ``group`` (its key), ``lr``, ``seeds``, ``mean``, ``se``, ``diverged``, ``failed``."""
    spec = SweepSpec.from_dict(meta["spec"])
    extra = [f for f, _ in spec.extra_axes()]  # e.g. --set hidden=32,64: each trial's value is in its config
    axes = ", ".join([*AXES, *(f"json_extract(config_json, '$.{f}') AS \"{f}\"" for f in extra)])
    rows = run_arrow(con, GROUP_SQL.format(axes=axes)).to_pylist()
    for r in rows:
        group = {a: (r[a] if r[a] is not None else 0.0) for a in AXES}  # clipping off is a null ``clip``
        group.update({f: json.loads(r[f]) for f in extra})
        r["group"] = r["group_key"] or spec.group_key(group)
    return rows


def _loss(r: dict) -> str:
    if r["mean"] is None:
        return "-"
    return f"{r['mean']:.3e} ± {r['se']:.1e}" if r["se"] is not None else f"{r['mean']:.3e}"


def render(results: str, display: str, meta: dict, wall_s: float, console: Console) -> None:
    """Print the summary of the sweep of ``meta`` under ``results`` (``display``: the location as the user
    gave it, for the commands), ``wall_s`` seconds after the command started."""
    sid = meta["sweep_id"]
    console.print(f"sweep {sid}: {meta.get('status')}; seed trials per group:", highlight=False, soft_wrap=True)
    table = Table()
    for name, justify in (("group", "left"), ("lr", "right"), ("final loss mean ± se", "right"),
                          ("seeds", "right"), ("diverged", "right"), ("failed", "right")):
        table.add_column(name, justify=justify)
    con = connect(results, sid)  # one listing of the sweep's files for every query below
    rows = group_rows(con, meta)
    for r in rows:
        table.add_row(r["group"], "-" if r["lr"] is None else f"{r['lr']:.2e}", _loss(r), str(r["seeds"]),
                      str(r["diverged"]), str(r["failed"]))
    console.print(table if rows else "  (no seed trial has finished yet)", highlight=False)
    other = run_arrow(con, OTHER_SQL).to_pylist()
    stages: dict[str, list[str]] = {}
    for r in other:
        stages.setdefault(r["stage"], []).append(f"{r['n']} {r['status']}")
    for stage, parts in stages.items():
        console.print(f"{stage}: {', '.join(parts)}", highlight=False)
    pruned = run_arrow(con, PRUNED_SQL).to_pylist()[0]
    if pruned["n"]:
        console.print(f"pruned: {pruned['n']} seed runs at {pruned['rates']} rates stopped early by the tpe pruner "
                      "(never selected; status 'pruned')", highlight=False, soft_wrap=True)
    for r in run_arrow(con, FAILED_SQL).to_pylist():
        console.print(f"failed: {r['trial_id']}: {r['error'] or '(no reason recorded)'}", highlight=False,
                      soft_wrap=True, markup=False)
    where = "" if display == "results" else f" --results {display}"
    base, _, options = results.partition("?")
    console.print(f"wall time {clock(wall_s)} · results: {base.rstrip('/')}/{sid}" + (f"?{options}" if options else ""),
                  highlight=False,
                  soft_wrap=True)
    console.print("try:", highlight=False)
    console.print(f"  sweep query --sweep {sid} \"SELECT cell, nu, lr, count(*) AS seeds, avg(final_loss) AS loss "
                  f"FROM trials WHERE selected GROUP BY ALL ORDER BY ALL\"{where}", highlight=False,
                  soft_wrap=True, markup=False)
    console.print(f"  sweep report {sid}{where}", highlight=False, soft_wrap=True, markup=False)


def finish(loc: str, sweep_id: str, wall_s: float) -> str:
    """Print the summary of sweep ``sweep_id`` under ``loc`` (as the user gave it) to standard output (120
    columns off a terminal); returns its state (``interrupted``: the caller says how to resume)."""
    results = canonical_location(loc)
    meta = sweep_json.read(*open_sweep(results, sweep_id))
    render(results, loc, meta, wall_s, Console(highlight=False, width=None if sys.stdout.isatty() else 120))
    return meta.get("status")
