"""``sweep verify NAME|SWEEP_ID``: the paper's claims judged on a sweep's rows, printed as the "Paper vs this
run" table; the exit status is 1 when a claim expected to hold at the sweep's scale does not, else 0 (so a
cluster's paper-scale run is checked with one command; the bench/check_*.py scripts call this)."""
from __future__ import annotations

from typing import Optional

import typer

from .cli import ResultsOpt, app, results_location, user_errors


@app.command("verify")
@user_errors
def command(target: str = typer.Argument(..., help="A sweep name (its latest run) or a sweep id."),
            results: Optional[str] = ResultsOpt, why: bool = typer.Option(False, help="Show each tolerance's reason.")):
    """The paper's claims beside a sweep's results: the "Paper vs this run" table (claim, the paper's value, this
    run's mean ± standard error over seeds, verdict). Exits 1 when a claim expected to hold at the sweep's scale
    does not (claims of quick-scale shape or paper-scale numbers; smoke expects none).

    Example: sweep verify signal-propagation
    """
    raise typer.Exit(verify(results_location(results), target, why))


def verify(results: str, target: str, why: bool = False, console=None) -> int:
    """Print the table of sweep ``target`` (an id, or a name: its latest sweep), with each claim's tolerance
    and its reason when ``why``, and return the exit status."""
    from rich.console import Console

    from analysis.claims import verdicts
    from analysis.claims_table import TITLE, rich_table, summary
    from analysis.db import connect, resolve_sweep

    from .sweeps.claims import CLAIMS

    console = console or Console(width=160)
    con = connect(results)  # the location is listed once: the views, then the sweep resolved on them
    sweep = resolve_sweep(results, target, con)
    judged = verdicts(con, sweep, CLAIMS)
    scale = sweep.get("scale")
    console.print(rich_table(judged, f"{TITLE}: {sweep['sweep_id']} (scale {scale})", why))
    failed = [i for i, v in enumerate(judged, 1) if v.failed]
    console.print(summary(judged, scale) + (f"; expected here but not holding: #{', #'.join(map(str, failed))}"
                                            if failed else ""), highlight=False)
    return 1 if failed else 0
