"""A sweep's live state, read from its results location alone (no Ray connection): so `sweep status` works from
any terminal, on any machine that sees the results (a local path, NFS, ``s3://...``), while the sweep runs.

What another process can see of a running trial is its ``trials`` row (status ``running`` from its start) and
its last flushed ``steps`` part (``TrialWriter`` flushes at every checkpoint and at least every ``flush_s``
seconds). Reads are proportional to the number of trials, not rows: every trial's one ``trials`` row (a few
columns), and for each running trial only its last ``steps`` part (step, loss, wall_s).

Per trial: status (pending = planned by the spec but not started yet), steps done / planned, the loss so far
and the step rate. The loss so far is the final evaluation loss of a finished trial and, for a running one,
the mean training loss of its last ``RECENT`` flushed steps. The rate of a running trial is measured over its
last part (steps per second of ``wall_s``), else over its whole run (which includes its start-up).

ETA (``eta_s``): every unfinished trial's remaining seconds are estimated (a running trial: its steps left at
its own rate; a pending one: its planned steps at its cell's measured rate, else the sweep's), and the sweep
is assumed to keep running as many trials at once as it runs now (at least one): ETA = max(the longest running
trial's remaining time, total remaining seconds / trials running now). A cell's rate is steps / seconds summed
over its measured trials (finished ones: ``steps_done / wall_s``, start-up and evaluation included).
Trials without training steps (analyses, ``steps = 0``) count as the mean wall time of the finished ones.
"""
from __future__ import annotations

import datetime as dt
import json
import math
from dataclasses import dataclass, field
from typing import Any

import pyarrow.fs as pafs
import pyarrow.parquet as pq

from layout import paths, sweep_json
from layout.schemas import FINAL, STATUSES
from layout.sweeps import created
from layout.tables import read_rows, table_files, trial_parts

from .db import open_results, resolve_sweep
from .state import read_lease, sweep_state

RECENT = 10  # a running trial's loss so far: the mean training loss of its last RECENT flushed steps
STATES = ("pending", *STATUSES)
COLUMNS = ["trial_id", "stage", "task", "cell", "depth", "nu", "seq_len", "clip", "layer_norm", "status",
           "final_loss", "steps_done", "wall_s", "error", "config_json", "started_at", "ended_at"]


@dataclass(frozen=True)
class Planned:
    """Trials the sweep's spec plans (the orchestrator's ``live.plan``): whatever has not started is pending."""

    stage: str  # lr_search | seed | analysis
    match: tuple[tuple[str, Any], ...]  # (trials column, value) pairs its trials have; () = any trial of the stage
    trials: int  # how many trials
    steps: int  # optimiser steps each (0: an analysis, no training steps)
    cell: str | None = None  # the cell, whose measured step rate estimates a pending trial's time


@dataclass(frozen=True)
class TrialState:
    trial_id: str | None  # None for a pending trial (its id is made when it is issued)
    stage: str
    cell: str | None
    nu: float | None
    status: str  # pending | running | completed | diverged | failed | pruned
    steps_done: int
    steps_planned: int
    loss: float | None  # loss so far (see the module docstring); None when none is known yet
    rate: float | None  # steps per second, measured
    error: str | None = None  # one-line reason of a failed or diverged trial
    wall_s: float | None = None  # seconds run so far (running: at its last flushed step)
    started_at: dt.datetime | None = None

    @property
    def fraction(self) -> float:
        if self.status == "completed":  # also one that stopped early, solved
            return 1.0
        return min(1.0, self.steps_done / self.steps_planned) if self.steps_planned else 0.0


@dataclass(frozen=True)
class LiveState:
    sweep_id: str
    name: str | None
    scale: str | None
    status: str  # analysis.state.sweep_state: running | completed | interrupted
    elapsed_s: float | None  # since created_at; a finished sweep: to its last trial's end
    eta_s: float | None  # None: no rate measured yet
    trials: tuple[TrialState, ...]  # started trials, then one entry per pending trial
    counts: dict[str, dict[str, int]] = field(default_factory=dict)  # stage -> status -> trials (all STATES)

    @property
    def running(self) -> list[TrialState]:
        return [t for t in self.trials if t.status == "running"]

    @property
    def failures(self) -> list[TrialState]:
        return [t for t in self.trials if t.status in ("failed", "diverged")]

    def ranked(self) -> list[TrialState]:
        """Started training trials with a finite loss so far, lowest first (an analysis trial trains nothing)."""
        return sorted((t for t in self.trials if t.loss is not None and math.isfinite(t.loss) and t.trial_id
                       and t.stage != "analysis"),
                      key=lambda t: t.loss)


# ------------------------------------------------------------------------------------------- arithmetic
def eta_s(running_s: list[float], pending_s: list[float]) -> float:
    """Seconds until every trial is done: ``running_s`` the remaining seconds of each running trial,
    ``pending_s`` the estimated seconds of each trial not started; as many trials at once as run now (>= 1)."""
    total = sum(running_s) + sum(pending_s)
    if total <= 0:
        return 0.0
    return max(max(running_s, default=0.0), total / max(1, len(running_s)))


def rate_of(steps: list[tuple[int, float]]) -> float | None:
    """Steps per second from (step, wall_s) points of one trial: over the points when they span time, else
    the last step over its wall time (start-up included); None without a usable point."""
    if not steps:
        return None
    (s0, w0), (s1, w1) = min(steps), max(steps)
    if s1 > s0 and w1 > w0:
        return (s1 - s0) / (w1 - w0)
    return s1 / w1 if s1 > 0 and w1 > 0 else None


def cell_rates(trials: list[TrialState]) -> dict[str | None, float]:
    """Per cell (and None: the whole sweep) steps / seconds summed over trials that measured both."""
    sums: dict[str | None, list[float]] = {}
    for t in trials:
        if t.status in ("completed", "running") and t.steps_done > 0 and t.wall_s and t.wall_s > 0:
            for key in (t.cell, None):
                acc = sums.setdefault(key, [0.0, 0.0])
                acc[0] += t.steps_done
                acc[1] += t.wall_s
    return {k: s / w for k, (s, w) in sums.items()}


def remaining(trials: list[TrialState], now: dt.datetime) -> tuple[list[float], list[float]] | None:
    """(remaining seconds of each running trial, estimated seconds of each pending one) for ``eta_s``; None
    when a trial with steps left has no rate to go by (nothing measured yet)."""
    rates = cell_rates(trials)
    walls0 = [t.wall_s for t in trials if t.status == "completed" and not t.steps_planned and t.wall_s]
    wall0 = sum(walls0) / len(walls0) if walls0 else 0.0
    running, pending = [], []
    for t in trials:
        if t.status not in ("running", "pending"):
            continue
        if not t.steps_planned:  # an analysis: as long as the finished ones took
            ran = (now - t.started_at).total_seconds() if t.status == "running" and t.started_at else 0.0
            (running if t.status == "running" else pending).append(max(0.0, wall0 - ran))
            continue
        rate = (t.rate if t.status == "running" else None) or rates.get(t.cell) or rates.get(None)
        left = max(0, t.steps_planned - t.steps_done)
        if left and not rate:
            return None
        (running if t.status == "running" else pending).append(left / rate if left else 0.0)
    return running, pending


# ---------------------------------------------------------------------------------------------- reading
def find_sweep(results: str, name_or_id: str) -> str:
    """The sweep id of ``name_or_id``: a sweep directory of that name at once, else as ``resolve_sweep``."""
    fs, root = open_results(results)
    if sweep_json.exists(fs, paths.sweep_dir(root, name_or_id)):
        return name_or_id
    return resolve_sweep(results, name_or_id)["sweep_id"]


def read_meta(results: str, sweep_id: str) -> dict:
    fs, root = open_results(results)
    return sweep_json.read_or_none(fs, paths.sweep_dir(root, sweep_id)) or {}


def live_state(results: str, sweep_id: str, plan: list[Planned], now: dt.datetime | None = None,
               cache: dict | None = None) -> LiveState:
    """The live state of one sweep (see the module docstring); ``plan`` from the sweep's spec (may be empty:
    then nothing is pending). ``cache``: a dict kept between calls (``sweep status --watch``) so that the
    ``trials`` files already read with a final row (and merged files) are not read again."""
    now = now or dt.datetime.now(dt.timezone.utc)
    fs, root = open_results(results)
    sweep_dir = paths.sweep_dir(root, sweep_id)
    meta = sweep_json.read_or_none(fs, sweep_dir) or {}
    rows = _trial_rows(fs, sweep_dir, {} if cache is None else cache)
    started = [_started(fs, sweep_dir, r) for r in sorted(rows, key=lambda r: r["trial_id"])]
    trials = started + _pending(plan, rows)
    status = sweep_state(meta, any(t.status == "running" for t in trials), read_lease(fs, sweep_dir))
    rem = remaining(trials, now)
    eta = 0.0 if status != "running" else (eta_s(*rem) if rem is not None else None)
    stages = dict.fromkeys([p.stage for p in plan] + [t.stage for t in trials])
    counts = {stage: dict.fromkeys(STATES, 0) for stage in stages}
    for t in trials:
        counts[t.stage][t.status] = counts[t.stage].get(t.status, 0) + 1
    return LiveState(sweep_id=sweep_id, name=meta.get("name"), scale=meta.get("scale"), status=status,
                     elapsed_s=_elapsed(meta, rows, status, now), eta_s=eta, trials=tuple(trials), counts=counts)


def _trial_rows(fs: pafs.FileSystem, sweep_dir: str, cache: dict[str, list[dict]]) -> list[dict]:
    """The sweep's ``trials`` rows (``COLUMNS``), each once (``table_files``). A trial file whose row is final and
    a merged file (final rows only) go into ``cache`` by path: a final row is not rewritten (a trial is only
    rerun under a changed config, which a resumed sweep does not have), and a trial file that compaction
    merged leaves the listing. Running trials' files are read every time."""
    files = table_files(fs, sweep_dir, "trials")
    todo = [p for p, _ in files.parts if p not in cache]
    fresh = {r["trial_id"]: r for r in read_rows(fs, todo, "trials", columns=COLUMNS).to_pylist()}
    rows = []
    for path, trial in files.parts:
        got = cache.get(path) or ([fresh[trial]] if trial in fresh else [])
        if got and got[0]["status"] in FINAL:
            cache[path] = got
        rows += got
    for path in files.merged:
        if path not in cache:
            cache[path] = read_rows(fs, [path], "trials", columns=COLUMNS).to_pylist()
        rows += cache[path]
    return rows


def _started(fs: pafs.FileSystem, sweep_dir: str, r: dict) -> TrialState:
    cfg = json.loads(r["config_json"]) if r["config_json"] else {}
    planned = 0 if cfg.get("stage") == "analysis" else int(cfg.get("steps") or 0)
    done, loss, rate, wall = int(r["steps_done"] or 0), r["final_loss"], None, r["wall_s"]
    if r["status"] == "running":
        loss = None
        last = _last_part(fs, paths.trial_dir(sweep_dir, "steps", r["trial_id"]))
        if last:
            done = max(done, max(s for s, _, _ in last))
            recent = [x for s, x, _ in last if s > done - RECENT and x is not None]
            loss = sum(recent) / len(recent) if recent else None
            rate = rate_of([(s, w) for s, _, w in last if w is not None])
            wall = max(w for _, _, w in last if w is not None) if any(w is not None for _, _, w in last) else None
    elif r["status"] in ("completed", "pruned"):  # pruned: its loss where the pruner stopped it
        rate = done / wall if done and wall else None  # over its whole run, start-up and evaluation included
    else:
        loss = None  # a failed or diverged trial has no loss to rank
    return TrialState(trial_id=r["trial_id"], stage=r["stage"] or "-", cell=r["cell"], nu=r["nu"],
                      status=r["status"] if r["status"] in STATES else "unknown",
                      steps_done=done, steps_planned=planned, loss=loss, rate=rate, error=r["error"], wall_s=wall,
                      started_at=r["started_at"])


def _last_part(fs: pafs.FileSystem, trial_dir: str) -> list[tuple[int, float | None, float | None]]:
    """(step, loss, wall_s) of the rows of a running trial's last ``steps`` part ([] when none is on disk, or
    it was just dropped by a restarting trial)."""
    try:
        parts = trial_parts(fs, trial_dir)
        if not parts:
            return []
        with pq.ParquetFile(parts[-1], filesystem=fs) as f:  # not pq.read_table: it imports pyarrow.dataset (pandas)
            t = f.read(columns=["step", "loss", "wall_s"])
    except (OSError, ValueError):
        return []
    return list(zip(*(t.column(c).to_pylist() for c in ("step", "loss", "wall_s"))))


def _pending(plan: list[Planned], rows: list[dict]) -> list[TrialState]:
    """One entry per planned trial that has no ``trials`` row yet: each row counts against the first plan
    entry of its stage whose columns it matches."""
    left = [p.trials for p in plan]
    for r in rows:
        for i, p in enumerate(plan):
            if p.stage == r["stage"] and left[i] > 0 and all(r.get(k) == v for k, v in p.match):
                left[i] -= 1
                break
    return [TrialState(trial_id=None, stage=p.stage, cell=p.cell, nu=dict(p.match).get("nu"), status="pending",
                       steps_done=0, steps_planned=p.steps, loss=None, rate=None)
            for p, n in zip(plan, left) for _ in range(n)]


def _elapsed(meta: dict, rows: list[dict], status: str, now: dt.datetime) -> float | None:
    t0 = created(meta.get("created_at"))
    if t0 is None:
        return None
    if status != "running":
        ends = [r.get("ended_at") for r in rows if r.get("ended_at")]
        now = max(ends) if ends else now
    return max(0.0, (now - t0).total_seconds())


# -------------------------------------------------------------------------------------------- rendering
def clock(seconds: float | None) -> str:
    """``h:mm:ss`` (``mm:ss`` under an hour); ``?`` when unknown."""
    if seconds is None or not math.isfinite(seconds):
        return "?"
    s = int(round(seconds))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60:02d}:{s % 60:02d}"


def bar(fraction: float, width: int = 12) -> str:
    n = int(round(max(0.0, min(1.0, fraction)) * width))
    return "[" + "#" * n + "." * (width - n) + "]"


def _num(x: float | None, fmt: str = ".3e") -> str:
    return "-" if x is None else format(x, fmt)


def _who(t: TrialState) -> str:
    nu = f", nu {t.nu:g}" if t.nu is not None else ""
    return f"{t.trial_id} ({t.stage}, {t.cell}{nu})"


def render(state: LiveState, limit: int = 20, extremes: int = 3) -> str:
    """The `sweep status` screen: header, per-stage counts, up to ``limit`` trials (running first, with a
    progress bar), the ``extremes`` best and worst trials by loss so far, and every failure's reason."""
    lines = [f"sweep {state.sweep_id}  ({state.name or '?'}, scale {state.scale or '?'}, {state.status})",
             f"elapsed {clock(state.elapsed_s)} · ETA {clock(state.eta_s)}"
             + (f" ({len(state.running)} running; remaining steps at the measured rates)" if state.status == "running"
                else "")]
    width = max([5] + [len(s) for s in state.counts])
    lines.append("  ".join([f"{'stage':<{width}}", *(f"{s:>9}" for s in STATES), f"{'total':>6}"]))
    for stage, c in state.counts.items():
        lines.append("  ".join([f"{stage:<{width}}", *(f"{c.get(s, 0):>9}" for s in STATES),
                                f"{sum(c.values()):>6}"]))
    order = {"running": 0, "failed": 1, "diverged": 2, "pruned": 3, "completed": 4, "pending": 5}
    shown = sorted(state.trials, key=lambda t: (order.get(t.status, 6), -t.fraction, t.trial_id or ""))
    pending = sum(t.status == "pending" for t in state.trials)
    started = [t for t in shown if t.status != "pending"][:limit]
    lines.append("")
    lines.append(f"trials ({len(started)} of {len(state.trials) - pending} started shown; --trials N for more)"
                 + (f", {pending} pending" if pending else ""))
    if started:
        idw = max(len("trial"), *(len(t.trial_id) for t in started))
        lines.append(f"  {'trial':<{idw}}  {'stage':<9}  {'status':<9}  {'progress':<19}  {'steps':>11}  "
                     f"{'loss':>9}  {'steps/s':>7}")
        for t in started:
            steps = f"{t.steps_done}/{t.steps_planned}" if t.steps_planned else "-"
            lines.append(f"  {t.trial_id:<{idw}}  {t.stage:<9}  {t.status:<9}  {bar(t.fraction)} "
                         f"{t.fraction:>5.0%}  {steps:>11}  {_num(t.loss):>9}  {_num(t.rate, '.1f'):>7}")
    ranked = state.ranked()
    if ranked:
        lines.append("")
        k = min(extremes, max(1, len(ranked) // 2))  # best and worst never share a trial
        best, worst = ranked[:k], ranked[::-1][:min(k, len(ranked) - k)]
        for label, group in (("best", best), ("worst", worst)):
            for t in group:
                lines.append(f"{label:<5}  {_num(t.loss)}  {_who(t)}  {t.status}")
    if state.failures:
        lines.append("")
        lines.append(f"failures ({len(state.failures)}):")
        for t in state.failures:
            lines.append(f"  {t.trial_id}  {t.status}: {t.error or '(no reason recorded)'}")
    return "\n".join(lines) + "\n"

