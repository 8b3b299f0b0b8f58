"""``sweep report NAME|SWEEP_ID``: a sweep's paper figures and tables redrawn from its results, plus an
``index.md`` that shows the PNGs and includes the Markdown tables.

    >>> report("results", "curse-of-memory")        # the latest sweep of that name
    ['results/<id>/report/fig3a.png', ..., 'results/<id>/report/index.md']
"""
from __future__ import annotations

import os

from analysis.db import AnalysisError, connect, resolve_sweep
from analysis.figures import FIGURES
from trainers.record import open_location

INDEX = "index.md"


def report(results: str, target: str, out: str | None = None) -> list[str]:
    """Draw the figures of sweep ``target`` (a sweep id, or a name: its latest sweep) into ``out``
    (default ``<results>/<sweep_id>/report/``, local results only) and an index.md; return all paths."""
    sweep = resolve_sweep(results, target)
    sid, name = sweep["sweep_id"], sweep.get("name")
    draw = FIGURES.get(name) or FIGURES.get(sweep.get("base"))  # a spec file's sweep: its base's figures
    if draw is None:
        raise AnalysisError(f"no figures for sweep {sid} (name {name!r}, base {sweep.get('base')!r}); sweeps with "
                            f"figures: {', '.join(sorted(FIGURES))}")
    if out is None:
        fs, root = open_location(results)
        if fs.type_name != "local":
            raise AnalysisError(f"results {results!r} are not on a local path: pass --out DIR for the report")
        out = os.path.join(root, sid, "report")
    os.makedirs(out, exist_ok=True)
    paths = draw(connect(results), sweep, out)
    index = os.path.join(out, INDEX)
    with open(index, "w") as f:
        f.write(_index(sweep, paths, out))
    return paths + [index]


def _index(sweep: dict, paths: list[str], out: str) -> str:
    sid, name = sweep["sweep_id"], sweep.get("name")
    lines = [f"# Report: {name} — sweep `{sid}`", "",
             f"Scale `{sweep.get('scale')}`, created {sweep.get('created_at')}. "
             f"Redraw with `sweep report {sid}`.", ""]
    pngs = [p for p in paths if p.endswith(".png")]
    if pngs:
        lines += ["## Figures", ""]
        for p in pngs:
            rel = os.path.relpath(p, out)
            stem = os.path.splitext(os.path.basename(p))[0]
            lines += [f"### {stem}", "", f"[![{stem}]({rel})]({rel})", ""]
    tables = [p for p in paths if p.endswith(".md") and os.path.basename(p) != INDEX]
    if tables:
        lines += ["## Tables", ""]
        for p in tables:
            lines += [f"From [{os.path.basename(p)}]({os.path.relpath(p, out)}):", ""]
            with open(p) as f:  # the table file's own headings, one level down
                lines += ["#" * 2 + ln if ln.startswith("#") else ln for ln in f.read().splitlines()]
            lines.append("")
    return "\n".join(lines).rstrip() + "\n"
