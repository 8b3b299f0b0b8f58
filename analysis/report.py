"""``sweep report NAME|SWEEP_ID``: a sweep's paper figures and tables redrawn from its results, an ``index.md``
that shows the PNGs and includes the Markdown tables, and ``report.html``: one self-contained page with the
figures embedded, the tables, the per-trial index, the spec and the versions (``analysis.report_html``).

    >>> report("results", "curse-of-memory").paths        # the latest sweep of that name
    ['results/<id>/report/fig3a.png', ..., 'results/<id>/report/index.md', 'results/<id>/report/report.html']

A sweep whose figures cannot be drawn (a name with no figure module, no finished trials yet) still gets its
index.md and report.html, with the reason as ``Report.note`` and on the page.

Both open with the "Paper vs this run" table when ``claims`` (sweep name -> its ``analysis.claims.Claim``s;
the CLI passes ``orchestrator.sweeps.CLAIMS``) has claims for the sweep's name or its base.
"""
from __future__ import annotations

import json
import os
import platform
from dataclasses import dataclass
from importlib import metadata

from analysis import report_charts
from analysis.axis_views import combinations, scoped
from analysis import claims_table
from analysis.claims import Claim, verdicts
from analysis.db import AnalysisError, connect, resolve_sweep, run_arrow
from analysis.figures import FIGURES
from analysis.report_html import INDEX_COLUMNS, demote, page
from layout.location import open_location
from layout.paths import report_dir, sweep_dir

INDEX = "index.md"
HTML = "report.html"
# Versions the page lists for the process that draws it (the trials' own come from their `versions` column)
DRIVER_PACKAGES = ("torch", "ray", "duckdb", "pyarrow", "numpy", "matplotlib", "rnn-dynamics-sweeps")


@dataclass(frozen=True)
class Report:
    paths: list[str]  # every file written: the figure modules' PNG and .md files, then index.md and report.html
    note: str | None  # why there are no figures (the index and the page are still written); None when drawn


def report(results: str, target: str, out: str | None = None,
           claims: dict[str, tuple[Claim, ...]] | None = None) -> Report:
    """Draw the figures of sweep ``target`` (a sweep id, or a name: its latest sweep) into ``out``
    (default ``<results>/<sweep_id>/report/``, local results only), then index.md and report.html, each opening
    with the verdicts of the sweep's ``claims`` (by name, else by base)."""
    con = connect(results)  # the location is listed once: the views, then the sweep resolved on them
    sweep = resolve_sweep(results, target, con)
    sid, name = sweep["sweep_id"], sweep.get("name")
    if out is None:
        fs, root = open_location(results)
        if fs.type_name != "local":
            raise AnalysisError(f"results {results!r} are not on a local path: pass --out DIR for the report")
        out = report_dir(sweep_dir(root, sid))
    os.makedirs(out, exist_ok=True)
    draw = FIGURES.get(name) or FIGURES.get(sweep.get("base"))  # a spec file's sweep: its base's figures
    note, paths = None, []
    try:
        if draw is None:
            base = f", base {sweep['base']!r}" if sweep.get("base") else ""
            raise AnalysisError(f"no figures for sweep {sid} (name {name!r}{base}); sweeps with figures: "
                                f"{', '.join(sorted(FIGURES))}")
        paths = []
        for values, folder in combinations(sweep):  # extra grid axes: the figures once per combination
            with scoped(con, sid, values):
                paths += draw(con, sweep, os.path.join(out, folder))
        if not paths:
            paths = draw(con, sweep, out)
    except AnalysisError as e:
        note = str(e)
    pngs = [p for p in paths if p.endswith(".png")]
    tables = [p for p in paths if p.endswith(".md") and os.path.basename(p) not in (INDEX, HTML)]
    index, html = os.path.join(out, INDEX), os.path.join(out, HTML)
    judged, scale = verdicts(con, sweep, claims or {}), sweep.get("scale")
    paper_md = claims_table.markdown(judged, scale) if judged else ""
    paper_html = claims_table.html(judged, scale) if judged else ""
    _write(index, _index(sweep, pngs, tables, out, note, paper_md))
    charts = report_charts.build(con, sweep)
    _write(html, page(sweep, pngs, tables, _trials(con, sid), _versions(con, sid), note, charts,
                      report_charts.script() if charts else "", paper_html))
    return Report(paths + [index, html], note)


def _write(path: str, text: str) -> None:
    """Write ``text`` under a temporary name, then rename: a reader never sees half a page."""
    tmp = os.path.join(os.path.dirname(path), f".{os.path.basename(path)}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


def _trials(con, sid: str) -> list[dict]:
    cols = ", ".join(c for c, _, _ in INDEX_COLUMNS)
    return run_arrow(con, f"SELECT {cols} FROM trials WHERE sweep_id = ? ORDER BY stage, trial_id", [sid]).to_pylist()


def _versions(con, sid: str) -> list[tuple[str, str, str]]:
    """(package, versions the trials recorded, with counts when they differ, version in this process)."""
    seen: dict[str, dict[str, int]] = {}
    for r in run_arrow(con, "SELECT versions, count(*) AS n FROM trials WHERE sweep_id = ? GROUP BY ALL",
                       [sid]).to_pylist():
        try:
            vers = json.loads(r["versions"]) if r["versions"] else {}
        except ValueError:
            vers = {"versions": r["versions"]}  # not JSON: shown as recorded
        for pkg, v in (vers.items() if isinstance(vers, dict) else []):
            seen.setdefault(pkg, {}).setdefault(str(v), 0)
            seen[pkg][str(v)] += r["n"]
    here = {"python": platform.python_version()}
    for pkg in DRIVER_PACKAGES:
        try:
            here[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            here[pkg] = "not installed"
    rows = []
    for pkg in list(here) + sorted(set(seen) - set(here)):
        got = seen.get(pkg, {})
        ran = next(iter(got)) if len(got) == 1 else ", ".join(f"{v} ({n} trials)" for v, n in sorted(got.items()))
        rows.append((pkg, ran or "—", here.get(pkg, "—")))
    return rows


def _index(sweep: dict, pngs: list[str], tables: list[str], out: str, note: str | None, paper: str) -> str:
    sid, name = sweep["sweep_id"], sweep.get("name")
    lines = [f"# Report: {name} — sweep `{sid}`", "",
             f"Scale `{sweep.get('scale')}`, created {sweep.get('created_at')}. "
             f"Redraw with `sweep report {sid}`. The whole report in one page: [{HTML}]({HTML}).", ""]
    if sweep.get("reproduce"):
        lines += [f"Reproduce: `{sweep['reproduce']}`", ""]
    if sweep.get("tags") or sweep.get("note"):
        lines += [f"Tags: {', '.join(sweep.get('tags') or []) or '—'}. Note: {sweep.get('note') or '—'}", ""]
    if paper:
        lines += paper.splitlines() + [""]
    if note:
        lines += [f"**No figures:** {note}", ""]
    if pngs:
        lines += ["## Figures", ""]
        for p in pngs:
            rel = os.path.relpath(p, out)
            stem = os.path.splitext(os.path.basename(p))[0]
            lines += [f"### {stem}", "", f"[![{stem}]({rel})]({rel})", ""]
    if tables:
        lines += ["## Tables", ""]
        for p in tables:
            lines += [f"From [{os.path.basename(p)}]({os.path.relpath(p, out)}):", ""]
            with open(p, encoding="utf-8") as f:  # the table file's own headings, one level down
                lines += demote(f.read(), 2).splitlines()
            lines.append("")
    return "\n".join(lines).rstrip() + "\n"
