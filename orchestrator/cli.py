"""`sweep`: the command-line face of the library. Each command's docstring is its help text."""
from __future__ import annotations

import dataclasses
import functools
import os
from typing import List, Optional

import typer

from trainers.registry import UnknownName

from .spec import UserError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="RNN training-dynamics sweeps: launch on Ray Tune, query with SQL, redraw the papers' figures.")

ResultsOpt = typer.Option(None, "--results",
                          help="Results location (path or URI); default $SWEEP_RESULTS, else ./results.")


def results_location(results: str | None) -> str:
    return results or os.environ.get("SWEEP_RESULTS") or "results"


def quiet_local_ray(address: str | None) -> None:
    """Before Ray is imported: a new local Ray gets Ray's own default, token authentication, said explicitly
    (``RAY_AUTH_MODE=token``), so Ray does not warn that it chose it. Ray reads the mode when it is imported."""
    if not address:
        os.environ.setdefault("RAY_AUTH_MODE", "token")


def user_errors(fn):
    """Turn the library's user-facing errors into `error: <one line>` and exit status 2."""
    from analysis.errors import AnalysisError

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except Exception as error:  # ours, or a damaged file met while reading the layout (`error: <file>: <what>`)
            if not isinstance(error, (UserError, UnknownName, AnalysisError)):
                from layout.damage import named_damage  # imports pyarrow: not for `sweep --help`

                error = named_damage(error)  # a damaged file's one line; None: a bug, whose traceback shows
                if error is None:
                    raise
            typer.echo(f"error: {str(error).splitlines()[0] if str(error) else type(error).__name__}", err=True)
            raise typer.Exit(2)

    return wrapper


ScaleOpt = typer.Option(None, help="smoke | quick | paper; default quick, or a spec file's own scale.")
CpusOpt = typer.Option(None, help="CPUs reserved per trial (also torch's thread count); default 1, or the file's.")
GpusOpt = typer.Option(None, help="GPUs per trial; fractions share a GPU (e.g. 0.25); default 0, or the file's.")
ConcurrentOpt = typer.Option(None, help="At most this many trials at once (default: as many as fit).")
SeedsOpt = typer.Option(None, help="Seeds per (cell, depth, nu0); shortcut for --set seeds=N.")
SetOpt = typer.Option([], "--set", help="Override a spec field: key=value (repeatable); wins over a spec file.")
TargetArg = typer.Argument(..., help="A named sweep (e.g. curse-of-memory) or a spec file (.toml, .yaml, .yml).")


def _target(name: str, scale: str | None, seeds: int | None, sets: list[str], **flags):
    """The resolved named sweep or spec file, and its resources: the flags given, else the file's."""
    from .specfile import load_target

    target = load_target(name, scale, list(sets) + ([f"seeds={seeds}"] if seeds is not None else []))
    given = {k: v for k, v in flags.items() if v is not None}
    return target, dataclasses.replace(target.resources, **given).validate()


@app.command()
@user_errors
def launch(
    name: str = TargetArg,
    scale: Optional[str] = ScaleOpt,
    results: Optional[str] = ResultsOpt,
    address: Optional[str] = typer.Option(None, help="Ray cluster address (e.g. auto); default: a local Ray."),
    cpus_per_trial: Optional[float] = CpusOpt,
    gpus_per_trial: Optional[float] = GpusOpt,
    max_concurrent: Optional[int] = ConcurrentOpt,
    seeds: Optional[int] = SeedsOpt,
    set_: List[str] = SetOpt,
    tag: List[str] = typer.Option([], "--tag", help="A tag for `sweep ls` and the report (repeatable)."),
    note: Optional[str] = typer.Option(None, "--note", help="A note on the sweep, for `sweep ls` and the report."),
    log_to: Optional[str] = typer.Option(None, "--log-to", metavar="LOGGERS",
                                         help="Also log the trials' losses to tensorboard, mlflow and/or wandb "
                                              "(comma-separated): Ray Tune's logger callbacks (docs/trackers.md)."),
    submit: bool = typer.Option(False, "--submit", help="Run the driver on the cluster at --address "
                                "http://HEAD:8265 as a Ray Job; print the job id and return (docs/cluster.md)."),
):
    """Launch a sweep: every (cell, depth, nu0) gets an Optuna-chosen learning rate, then every seed runs.
    NAME is a named sweep or your own spec file (README: "Your own sweep"), validated before anything runs.
    It ends with a summary per group; Ctrl-C (or `sweep stop ID` from another terminal) stops it, exit status
    130, and `sweep resume ID` continues it.

    Example: sweep launch curse-of-memory --scale smoke --set cells=rnn,lru --set nus=0.9,0.99 --tag first
    """
    import sys
    import time

    from .loggers import parse
    from .provenance import provenance
    from .submit import check_address, from_env
    from .tags import check_tags

    loggers = parse(log_to)
    if submit:
        check_address(address)
    quiet_local_ray(address)
    from .launch import launch as launch_sweep

    t0 = time.monotonic()
    sets = list(set_) + ([f"seeds={seeds}"] if seeds is not None else [])
    target, res = _target(name, scale, None, sets, cpus_per_trial=cpus_per_trial, gpus_per_trial=gpus_per_trial,
                          max_concurrent=max_concurrent)
    loc = results_location(results)
    extra = {"base": target.base, **({"spec_file": target.source} if target.source else {}),
             "tags": check_tags(list(tag)), "note": note,
             **provenance(sys.argv[1:], name, target.spec.scale, sets, target.source)}
    if submit:
        from layout.location import canonical_location

        from .submit import submit as send

        loc = canonical_location(loc)
        flags = [f for k, v in (("--scale", scale), ("--seeds", seeds), ("--cpus-per-trial", cpus_per_trial),
                                ("--gpus-per-trial", gpus_per_trial), ("--max-concurrent", max_concurrent),
                                ("--log-to", log_to), ("--note", note)) if v is not None for f in (k, str(v))]
        flags += [f for s in set_ for f in ("--set", s)] + [f for t in tag for f in ("--tag", t)] + ["--results", loc]
        sweep_id, job = send(target, name, flags, loc, address, dataclasses.asdict(res), extra)
        typer.echo(f"submitted: job {job}, sweep {sweep_id} (driver on the cluster at {address})")
        typer.echo(f"  sweep status {sweep_id} --results {loc}")
        typer.echo(f"  ray job logs {job} --address {address} --follow")
        return
    job = from_env()  # the driver of a submitted sweep: the submitter's sweep id, the job in sweep.json
    if job:
        extra["job"] = {k: job[k] for k in ("submission_id", "address")}
    sweep_id = launch_sweep(target.spec, loc, address=address, cpus_per_trial=res.cpus_per_trial,
                          gpus_per_trial=res.gpus_per_trial, max_concurrent=res.max_concurrent, extra=extra,
                          log_to=loggers, sweep_id=job["sweep_id"] if job else None)
    _finish(loc, sweep_id, time.monotonic() - t0)


def _finish(loc: str, sweep_id: str, wall_s: float) -> None:
    """The summary of a launch or resume; exit status 130 and how to continue when it was interrupted."""
    from .summary import finish

    if finish(loc, sweep_id, wall_s) == "interrupted":
        where = "" if loc == "results" else f" --results {loc}"
        typer.echo(f"interrupted: sweep resume {sweep_id}{where}", err=True)
        raise typer.Exit(130)


@app.command("show")
@user_errors
def show_sweep(
    name: str = TargetArg,
    scale: Optional[str] = ScaleOpt,
    cpus_per_trial: Optional[float] = CpusOpt,
    gpus_per_trial: Optional[float] = GpusOpt,
    max_concurrent: Optional[int] = ConcurrentOpt,
    seeds: Optional[int] = SeedsOpt,
    set_: List[str] = SetOpt,
    results: Optional[str] = ResultsOpt,
):
    """Show a sweep before running it: its resolved grid, trial counts per stage and an estimated cost on this
    machine's cores, from the measured step rates in orchestrator/step_rates.json. Runs nothing.
    Given a past sweep's id instead, show how it was run: its resolved spec, command, git commit and versions.

    Example: sweep show examples/my_sweep.toml --set steps=2000
    """
    from .show import describe
    from .specfile import is_spec_file
    from .sweeps import SWEEPS

    if not is_spec_file(name) and name not in SWEEPS:
        from .past import past

        typer.echo(past(results_location(results), name))
        return
    target, res = _target(name, scale, seeds, set_, cpus_per_trial=cpus_per_trial, gpus_per_trial=gpus_per_trial,
                          max_concurrent=max_concurrent)
    typer.echo(describe(target, res))


@app.command()
@user_errors
def resume(sweep_id: str = typer.Argument(..., help="The id of an interrupted sweep."),
           results: Optional[str] = ResultsOpt,
           address: Optional[str] = typer.Option(None, help="Ray cluster address; default: a local Ray.")):
    """Finish an interrupted sweep: finished trials stay, unfinished ones continue from their last checkpoint.

    Example: sweep resume curse-of-memory-20261122-101500-ab12
    """
    import time

    quiet_local_ray(address)
    from .launch import resume as resume_sweep

    t0 = time.monotonic()
    loc = results_location(results)
    resume_sweep(sweep_id, loc, address=address)
    _finish(loc, sweep_id, time.monotonic() - t0)


@app.command()
@user_errors
def stop(target: str = typer.Argument(..., help="A sweep id or name (latest of that name)."),
         results: Optional[str] = ResultsOpt):
    """Stop a running sweep from any terminal: its driver notices within seconds (a request file in the
    results location, so this works against s3:// too), its trials stop at their last checkpoint, and the
    sweep reads `interrupted`. `sweep resume ID` continues it with every row exactly once. A sweep launched
    with --submit is stopped through its Ray Job (the job server stops the driver the same way).

    Example: sweep stop curse-of-memory
    """
    from analysis.db import resolve_sweep

    from .stop import stop_sweep

    loc = results_location(results)
    sweep = resolve_sweep(loc, target)
    done = stop_sweep(loc, sweep)  # a sweep launched with --submit: its Ray Job, through the job server
    where = f" --results {loc}" if results else ""
    typer.echo(f"{done}; then `sweep resume {sweep['sweep_id']}{where}` continues it")


@app.command()
@user_errors
def tag(target: str = typer.Argument(..., help="A sweep id or name (latest of that name)."),
        tags: List[str] = typer.Argument(None, help="Tags to add."),
        remove: List[str] = typer.Option([], "--remove", help="A tag to remove (repeatable)."),
        note: Optional[str] = typer.Option(None, "--note", help="Set the sweep's note (\"\" clears it)."),
        results: Optional[str] = ResultsOpt):
    """Tag a sweep, or set its note; `sweep ls`, the report and analysis.sweeps show them.

    Example: sweep tag curse-of-memory baseline --note "before the init change"
    """
    from .tags import retag

    meta = retag(results_location(results), target, list(tags or []), list(remove), note)
    typer.echo(f"{meta['sweep_id']}: tags {','.join(meta['tags']) or '-'}"
               + (f"; note: {meta['note']}" if meta.get("note") else ""))


@app.command("ls")
@user_errors
def ls(results: Optional[str] = ResultsOpt):
    """List the sweeps under the results location, newest last, with trial counts by status.

    Example: sweep ls --results ./results
    """
    from analysis.db import sweeps

    rows = sweeps(results_location(results))
    for s in rows:
        c = s.get("counts", {})
        tags = f"  tags={','.join(s['tags'])}" if s.get("tags") else ""
        note = f"  note={s['note']!r}" if s.get("note") else ""
        typer.echo(f"{s['sweep_id']}  {s.get('name') or '?'}  {s.get('scale') or '?'}  {s['status']}  "
                   f"{s.get('created_at') or '?'}  trials={s.get('n_trials', 0)} completed={c.get('completed', 0)} "
                   f"diverged={c.get('diverged', 0)} failed={c.get('failed', 0)} running={c.get('running', 0)}"
                   + tags + note + (f"  job={s['job']['submission_id']}" if s.get("job") else ""))


@app.command()
@user_errors
def status(sweep_id: str = typer.Argument(..., help="A sweep id or name (latest of that name)."),
           results: Optional[str] = ResultsOpt,
           watch: Optional[float] = typer.Option(None, "--watch", metavar="SECONDS",
                                                 help="Redraw every SECONDS until the sweep ends (Ctrl-C stops)."),
           trials: int = typer.Option(20, "--trials", metavar="N", help="Show at most N trials (running first).")):
    """A sweep's live state, read from its results location only (works from any terminal and against shared
    storage such as s3://): elapsed time and ETA, trial counts per stage and status (pending = not started
    yet), running trials first with their progress, steps, loss so far and step rate, the best and worst
    trials by loss so far, and every failure with its reason.

    Example: sweep status curse-of-memory --watch 5
    """
    from analysis.live import find_sweep, read_meta

    from .status import print_status
    from .submit import job_status

    loc = results_location(results)
    meta = read_meta(loc, find_sweep(loc, sweep_id))
    if meta.get("job"):  # a submitted sweep (--submit): its Ray Job, as the job server reports it
        typer.echo(f"Ray Job {meta['job']['submission_id']} at {meta['job']['address']}: {job_status(meta)}")
    print_status(loc, sweep_id, watch=watch, limit=trials)


@app.command()
@user_errors
def query(
    sql: str = typer.Argument(..., help="DuckDB SQL over the views trials, steps, grad_norms, ..."),
    format: str = typer.Option("table", "--format", "-f", help="table | csv | json | parquet."),
    out: Optional[str] = typer.Option(None, help="Write to this file instead of standard output."),
    results: Optional[str] = ResultsOpt,
    sweep: Optional[str] = typer.Option(None, "--sweep", metavar="ID|NAME",
                                        help="Only this sweep's rows (a name: its latest sweep)."),
):
    """Run SQL over the sweeps' tables (one view per table, every row tagged with sweep_id and trial_id): every
    sweep under the results location, or one with --sweep.

    Example:
    sweep query --sweep curse-of-memory "SELECT cell, nu, avg(final_loss) FROM trials WHERE stage='seed' GROUP BY ALL"
    """
    from analysis import db
    from analysis.stream import render

    from .out_path import check_out_file, emit

    loc = results_location(results)
    if out:
        check_out_file(out)  # before the query runs: nothing half-written
    scope = db.resolve_sweep(loc, sweep)["sweep_id"] if sweep is not None else None
    if format == "parquet":
        if not out:
            raise UserError("--format parquet needs --out FILE")
        import pyarrow.parquet as pq

        pq.write_table(db.query_arrow(loc, sql, scope), out)
        typer.echo(f"wrote {out}")
        return
    emit(render(loc, sql, format, scope), out)  # streamed: memory stays bounded (analysis.stream)


@app.command()
@user_errors
def compact(target: str = typer.Argument(..., help="A sweep id or name (latest of that name)."),
            results: Optional[str] = ResultsOpt):
    """Merge the small part files of a sweep's finished trials into large files: atomic, crash-safe (run it
    again after a kill), idempotent; every query answers the same. Running and resumable trials are left alone.

    Example: sweep compact curse-of-memory
    """
    from analysis.db import resolve_sweep
    from trainers.compact import compact as compact_sweep

    loc = results_location(results)
    typer.echo(compact_sweep(loc, resolve_sweep(loc, target)["sweep_id"]).summary())


@app.command()
@user_errors
def report(target: str = typer.Argument(..., help="A sweep name (its latest run) or a sweep id."),
           out: Optional[str] = typer.Option(None, help="Output folder; default <results>/<sweep_id>/report."),
           results: Optional[str] = ResultsOpt):
    """Redraw the paper's figures and tables from a sweep's results: PNGs, index.md, and report.html, one
    self-contained page (figures embedded, tables, per-trial index, spec, versions) that opens offline.
    A sweep whose figures cannot be drawn yet still gets both indexes, and a note on stderr says why.

    Example: sweep report curse-of-memory
    """
    from analysis.report import report as draw

    from .sweeps.claims import CLAIMS
    done = draw(results_location(results), target, out, claims=CLAIMS)
    for path in done.paths:
        typer.echo(path)
    if done.note:
        typer.echo(f"note: no figures: {done.note}", err=True)


def _version(value: bool) -> None:
    if value:
        from .provenance import PROJECT, version

        typer.echo(f"sweep ({PROJECT}) {version(PROJECT) or 'unknown'}")
        raise typer.Exit()


@app.callback()
def _options(_: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                    help="Print the version and exit.")) -> None:
    pass


from . import listings, verify  # noqa: E402,F401  `sweep verify`, `sweep cells` ...: their own modules (small files)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
