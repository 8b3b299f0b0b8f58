"""`sweep cells`, `sweep tasks`, `sweep probes`, `sweep analyses`: the registries' names, one line each, for
--set and spec files."""
from __future__ import annotations

import typer

from .cli import app


def _listing(registry: dict) -> None:
    from trainers.registry import summary

    width = max(map(len, registry))
    for name in sorted(registry):
        typer.echo(f"{name:<{width}}  {summary(registry[name])}")


@app.command()
def cells():
    """List the cells, one line each: the names for --set cells=... and a spec file's grid.cells.

    Example: sweep cells
    """
    from trainers.cells import CELLS

    _listing(CELLS)


@app.command()
def tasks():
    """List the tasks, one line each: the names for --set tasks=... and a spec file's grid.tasks.

    Example: sweep tasks
    """
    from trainers.tasks import TASKS

    _listing(TASKS)


@app.command()
def probes():
    """List the probes, one line each: the names for --set probes=NAME[:key=value...] and a spec file's probes section.

    Example: sweep probes
    """
    from trainers.probes import PROBES

    _listing(PROBES)


@app.command()
def analyses():
    """List the analyses, one line each: the names for --set analyses=NAME[:cell] (trials of stage analysis).

    Example: sweep analyses
    """
    from trainers.analyses import ANALYSES

    _listing(ANALYSES)
