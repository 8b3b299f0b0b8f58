"""The explorable part of ``report.html``: Vega-Lite charts built with altair, drawn by the Vega bundle that
vl-convert ships (altair's own way to save a chart offline), inlined once in the page: no network, no JavaScript
of ours beyond one ``vegaEmbed(...)`` call per chart.

- ``curves``: loss and gradient norm against step, one line per training trial, with a drop-down filter per grid
  axis that varies (sweep.json's ``axes``: cell, nu, ..., and extra axes such as hidden or batch) and per stage;
  hovering a line shows its trial id, stage, seed and learning rate. Each curve keeps at most ``POINTS`` of its
  steps (evenly spaced, the last always), so the page stays a few hundred kB per hundred trials.
- one panel per other table the sweep wrote (``grad_norms`` and the probes' tables: hessian, attractors, signal,
  lattice, ...): its value column against step (or its first numeric column), a filter per text column, at most
  ``ROWS`` rows (a fixed-seed sample beyond that, said in the title).

    >>> charts = build(con, sweep)            # [Chart(anchor, title, spec), ...]
    >>> script()                              # the Vega/Vega-Lite/vega-embed bundle, for one <script> tag
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass

from analysis.db import run_arrow

POINTS = 150  # steps kept per curve
ROWS = 5000  # rows kept per probe panel
EMBED = {"actions": False, "renderer": "svg"}  # no export menu (its links leave the page); SVG: one path per line
TABLE_Y = {"hessian": "value", "signal": "value", "attractors": "x", "attractor_summary": "lyapunov",
           "lattice": "grad_norm", "grad_norms": "norm", "surface": "loss"}  # the column a panel plots
SKIP = ("trials", "steps", "lr_landscape")  # lr_landscape: a view over trials, drawn as its own figure
# trials columns that can be grid axes: the filters of a sweep whose sweep.json predates its ``axes`` record
# drawn by the curves chart (steps) or the trial index (trials)
AXIS_COLUMNS = ("task", "cell", "depth", "nu", "seq_len", "clip", "layer_norm", "hidden", "batch")


@dataclass(frozen=True)
class Chart:
    anchor: str  # the element id on the page
    title: str
    spec: dict  # the Vega-Lite spec


def script() -> str:
    """The Vega, Vega-Lite and vega-embed bundle for the Vega-Lite version altair writes."""
    import altair as alt
    import vl_convert as vlc

    major, minor = alt.SCHEMA_VERSION.lstrip("v").split(".")[:2]
    return vlc.javascript_bundle(vl_version=f"{major}.{minor}")


def embed_call(chart: Chart) -> str:
    """The one line that draws ``chart`` into its element (JSON inside a script: ``</`` escaped)."""
    spec = json.dumps(chart.spec, allow_nan=False).replace("</", "<\\/")
    return f"vegaEmbed({json.dumps('#' + chart.anchor)}, {spec}, {json.dumps(EMBED)});"


def build(con, sweep: dict) -> list[Chart]:
    """The curves chart (when any trial has steps) and one panel per other table with rows of this sweep."""
    out = []
    curves = _curves(con, sweep)
    if curves is not None:
        out.append(curves)
    tables = [r["view_name"] for r in run_arrow(con, "SELECT view_name FROM duckdb_views() WHERE NOT internal "
                                                     "ORDER BY view_name").to_pylist()]
    for table in tables:
        if table not in SKIP and not table.startswith("_"):
            panel = _panel(con, sweep["sweep_id"], table)
            if panel is not None:
                out.append(panel)
    return out


def axis_sql(name: str, columns: set[str]) -> str:
    """SQL for an axis's value as text: the trials column of that name, else the field in config_json."""
    if name in columns:
        return f'CAST(t."{name}" AS VARCHAR)'
    return f"json_extract_string(t.config_json, '$.{name}')"


def _curves(con, sweep: dict) -> Chart | None:
    import altair as alt

    sid = sweep["sweep_id"]
    columns = {r["column_name"] for r in run_arrow(con, "SELECT column_name FROM (DESCRIBE trials)").to_pylist()}
    axes = list(sweep.get("axes") or {}) or _varying_columns(con, sid)
    if "cell" not in axes:
        axes.insert(0, "cell")  # the colour, and a filter worth having even when only one cell ran
    names = [f"axis_{a}" for a in axes]
    sel = ", ".join(f"{axis_sql(a, columns)} AS {n}" for a, n in zip(axes, names))
    trials = run_arrow(con, f"""SELECT t.trial_id, t.stage, t.seed, t.lr, {sel} FROM trials t
        WHERE t.sweep_id = ? AND t.trial_id IN (SELECT DISTINCT trial_id FROM steps WHERE sweep_id = ?)
        ORDER BY t.stage, t.trial_id""", [sid, sid]).to_pylist()
    if not trials:
        return None
    points = run_arrow(con, f"""WITH s AS (SELECT trial_id, step, loss, grad_norm,
            max(step) OVER (PARTITION BY trial_id) AS last FROM steps WHERE sweep_id = ?)
        SELECT trial_id, step, loss, grad_norm FROM s
        WHERE step = last OR step % greatest(1, CAST(ceil(last / {POINTS}) AS INTEGER)) = 0
        ORDER BY trial_id, step""", [sid]).to_pylist()
    rows = [{"trial_id": p["trial_id"], "step": p["step"], "loss": _num(p["loss"]), "grad_norm": _num(p["grad_norm"])}
            for p in points]
    info = [{**t, "lr": _num(t["lr"])} for t in trials]
    filters = [("stage", "stage")] + list(zip(axes, names))
    params, keep = [], []
    for i, (label, field) in enumerate(filters):
        values = sorted({str(t[field]) for t in info if t[field] is not None}, key=_order)
        if len(values) < 2:
            continue
        p = alt.param(name=f"filter_{i}", value="all",
                      bind=alt.binding_select(options=["all", *values], name=f"{label} "))
        params.append(p)
        keep.append(f"(filter_{i} == 'all' || datum.{field} == filter_{i})")
    lookup = alt.LookupData(alt.Data(values=info), "trial_id", ["stage", "seed", "lr", *names])
    base = alt.Chart(alt.Data(values=rows)).transform_lookup(lookup="trial_id", from_=lookup)
    if keep:
        base = base.transform_filter(" && ".join(keep))
    tooltip = [alt.Tooltip("trial_id:N", title="trial"), alt.Tooltip("lr:Q", title="lr", format=".3g"),
               alt.Tooltip("stage:N"), alt.Tooltip("seed:Q"),
               *[alt.Tooltip(f"{n}:N", title=a) for a, n in zip(axes, names)]]

    def panel(y: str, title: str):
        return base.transform_filter(f"isFinite(datum.{y}) && datum.{y} > 0").mark_line(
            strokeWidth=1.2, opacity=0.8).encode(
            x=alt.X("step:Q", title="step"), y=alt.Y(f"{y}:Q", title=title, scale=alt.Scale(type="log")),
            color=alt.Color(f"{names[0]}:N", title=axes[0]), detail="trial_id:N", tooltip=tooltip,
        ).properties(width=480, height=300, title=title)

    chart = alt.hconcat(panel("loss", "training loss"), panel("grad_norm", "gradient norm")).add_params(*params)
    return Chart("chart-curves", f"Training curves ({len(info)} trials, at most {POINTS} points each)",
                 chart.to_dict())


def _varying_columns(con, sid: str) -> list[str]:
    counts = run_arrow(con, "SELECT " + ", ".join(f'count(DISTINCT "{c}") AS "{c}"' for c in AXIS_COLUMNS)
                       + " FROM trials WHERE sweep_id = ?", [sid]).to_pylist()[0]
    return [c for c in AXIS_COLUMNS if counts[c] > 1]


def _panel(con, sid: str, table: str) -> Chart | None:
    import altair as alt

    n = run_arrow(con, f'SELECT count(*) AS n FROM "{table}" WHERE sweep_id = ?', [sid]).to_pylist()[0]["n"]
    if not n:
        return None
    sample = f" USING SAMPLE {ROWS} ROWS (reservoir, 7)" if n > ROWS else ""
    tbl = run_arrow(con, f'SELECT * EXCLUDE (sweep_id) FROM (SELECT * FROM "{table}" WHERE sweep_id = ?){sample}',
                    [sid])
    numeric = [f.name for f in tbl.schema if _is_number(f.type)]
    text = [f.name for f in tbl.schema if f.name != "trial_id" and not _is_number(f.type)]
    x = "step" if "step" in numeric else (numeric[0] if numeric else None)
    y = TABLE_Y.get(table) if TABLE_Y.get(table) in numeric else next((c for c in reversed(numeric) if c != x), None)
    if x is None or y is None:
        return None
    rows = [{k: _num(v) if isinstance(v, float) else (v if v is None or isinstance(v, (int, bool)) else str(v))
             for k, v in r.items()} for r in tbl.to_pylist()]
    params, keep = [], []
    for i, c in enumerate(text):
        values = sorted({str(r[c]) for r in rows if r[c] is not None})
        if 2 <= len(values) <= 40:
            params.append(alt.param(name=f"{table}_{i}", value="all",
                                    bind=alt.binding_select(options=["all", *values], name=f"{c} ")))
            keep.append(f"({table}_{i} == 'all' || datum['{c}'] == {table}_{i})")
    ints = [c for c in numeric if c not in (x, y) and all(isinstance(r[c], int) for r in rows[:50] if r[c] is not None)]
    chart = alt.Chart(alt.Data(values=rows))
    if keep:
        chart = chart.transform_filter(" && ".join(keep))
    color = alt.Color(f"{text[0]}:N") if text else alt.Color("trial_id:N", legend=None)
    chart = chart.mark_line(point=True, strokeWidth=1, opacity=0.8).encode(
        x=alt.X(f"{x}:Q"), y=alt.Y(f"{y}:Q"), color=color,
        detail=[alt.Detail("trial_id:N"), *[alt.Detail(f"{c}:N") for c in text[1:] + ints]],
        tooltip=[alt.Tooltip("trial_id:N", title="trial"),
                 *[alt.Tooltip(f"{c}:{'Q' if c in numeric else 'N'}") for c in tbl.schema.names if c != "trial_id"]],
    ).properties(width=720, height=320).add_params(*params)
    shown = f"{ROWS} of {n} rows, sampled" if n > ROWS else f"{n} rows"
    return Chart(f"chart-{table}", f"Table {table}: {y} against {x} ({shown})", chart.to_dict())


def _num(v):
    """A JSON-safe number: 4 significant digits (the page's size), None for nan/inf."""
    if v is None or not math.isfinite(v):
        return None
    return float(f"{v:.4g}")


def _is_number(t) -> bool:
    import pyarrow as pa

    return pa.types.is_integer(t) or pa.types.is_floating(t)


def _order(v: str):
    try:
        return (0, float(v), v)
    except ValueError:
        return (1, 0.0, v)
