"""The launch terminal's progress display, a Ray Tune callback drawn with rich.

On a terminal: one bar per stage (rows of the ``trials`` table done of its total), then a line with what runs
now (Ray trials, and the ``trials`` rows they run: a seed bundle runs several seeds in one Ray trial), failed
and diverged counts, the elapsed time, the ETA (``live.LiveLine``; it counts down between Tune's reports)
and the best and worst loss so far. Off a terminal (a log file, CI): the same facts as one line every
``every`` seconds, and once at the end. A trial that fails or diverges gets a line of its own, with its reason.
"""
from __future__ import annotations

import os
import time

from ray import tune
from rich.console import Console, Group
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from analysis.live import clock
from trainers.trial import FINAL

from .live import LiveLine

EVERY_S = 30.0  # a non-terminal log: one progress line every EVERY_S seconds ($SWEEP_PROGRESS_EVERY overrides)
REFRESH_S = 0.5  # a terminal: the counts are recomputed at most this often (the clock redraws twice a second)


def rows_of(trial) -> list[dict]:
    """The ``trials`` rows a Tune trial runs: a seed bundle's members, else its own config."""
    return trial.config["trial"].get("members", [trial.config["trial"]])


def outcomes(trial) -> dict[str, int]:
    """A finished Tune trial's outcomes per status, counted per row (a bundle reports ``seeds_<status>``)."""
    r = trial.last_result or {}
    if trial.status == "ERROR":
        return {"failed": len(rows_of(trial))}
    if r.get("status") == "bundle":
        return {k: int(r.get(f"seeds_{k}", 0)) for k in FINAL}
    return {r.get("status"): 1}


class Progress(tune.Callback):
    """The live display of one Tuner run. ``totals``: rows per stage in the whole sweep; ``before``: what an
    interrupted run had finished (counts by stage and by status); Tune's trial list gives the rest."""

    def __init__(self, totals: dict[str, int], before: dict[str, int] | None = None, *,
                 console: Console | None = None, every: float | None = None):
        self.totals, self.before = totals, before or {}
        self.console = console or Console(stderr=True)
        self.every = every if every is not None else float(os.environ.get("SWEEP_PROGRESS_EVERY", EVERY_S))
        self.live = LiveLine()
        self.t0 = time.monotonic()
        self._counted = 0.0  # when the counts below were last recomputed
        self._logged = 0.0  # when the last non-terminal line was written
        self.done: dict[str, int] = dict(self.before)
        self.running: dict[str, int] = {}  # stage -> rows running now
        self.ray_running = 0  # Ray trials running now
        self.eta: tuple[float, float] | None = None  # (ETA in seconds, when it was measured)
        self.losses: list[float] = []
        self._screen: Live | None = None

    def __getstate__(self) -> dict:
        """Tune pickles its callbacks with the experiment state: the console and the screen stay behind."""
        return {k: v for k, v in self.__dict__.items() if k not in ("console", "_screen")}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state, console=Console(stderr=True), _screen=None)

    # ------------------------------------------------------------------------------------------ counting
    def _count(self, trials, force: bool = False) -> bool:
        now = time.monotonic()
        if not force and now - self._counted < REFRESH_S:
            return False
        self._counted = now
        done = {"failed": 0, "diverged": 0, **self.before}
        running: dict[str, int] = {}
        for t in trials:
            stage = rows_of(t)[0]["stage"]
            ended = outcomes(t) if t.status in ("TERMINATED", "ERROR") else {}
            if any(k in FINAL for k in ended):  # a trial stopped by an interrupt ended with no final status
                done[stage] = done.get(stage, 0) + len(rows_of(t))
                for k, n in ended.items():
                    done[k] = done.get(k, 0) + n
            elif t.status == "RUNNING":
                running[stage] = running.get(stage, 0) + len(rows_of(t))
        self.done, self.running = done, running
        self.ray_running = sum(t.status == "RUNNING" for t in trials)
        left = sum(self.totals.values()) - sum(self.before.get(s, 0) for s in self.totals)  # this Tuner's rows
        eta = self.live.eta(trials, left)
        self.eta = None if eta is None else (eta, now)
        self.losses = self.live.losses(trials)
        return True

    def _status(self) -> str:
        """The facts after the bars, as one line (also the whole line of a non-terminal log, with the stages)."""
        now = time.monotonic()
        rows = sum(self.running.values())
        per_stage = ", ".join(f"{n} {s}" for s, n in self.running.items())
        running = f"running {self.ray_running} Ray trials" + (f" ({rows} runs: {per_stage})" if rows else "")
        eta = "?" if self.eta is None else clock(max(0.0, self.eta[0] - (now - self.eta[1])))
        line = (f"{running} · {self.done.get('failed', 0)} failed · {self.done.get('diverged', 0)} diverged · "
                f"elapsed {clock(now - self.t0)} · ETA {eta}")
        if self.losses:
            line += f" · loss best {min(self.losses):.2e} worst {max(self.losses):.2e}"
        return line

    def line(self) -> str:
        """One line for a log: per stage rows done of its total, then ``_status``."""
        stages = " · ".join(f"{s} {self.done.get(s, 0)}/{n}" for s, n in self.totals.items() if n)
        return f"{stages} done · {self._status()}"

    def __rich__(self):
        """The terminal display, drawn at every refresh (so the clock and the ETA tick between reports)."""
        bars = Table.grid(padding=(0, 1))
        for stage, n in self.totals.items():
            if n:
                k = self.done.get(stage, 0)
                bars.add_row(Text(stage, style="bold"), ProgressBar(total=n, completed=k, width=40),
                             Text(f"{k}/{n}"))
        return Group(bars, Text(self._status()))

    # -------------------------------------------------------------------------------------- Tune's hooks
    def setup(self, **info) -> None:
        self.t0 = time.monotonic()
        if self.console.is_terminal:
            self._screen = Live(self, console=self.console, refresh_per_second=2, transient=False)
            self._screen.start()

    def _log(self, force: bool = False) -> None:
        now = time.monotonic()
        if self._screen is None and (force or now - self._logged >= self.every):
            self._logged = now
            self.console.print(self.line(), soft_wrap=True, highlight=False)

    def on_step_end(self, iteration, trials, **info):
        if self._count(trials):
            self._log()

    def on_trial_result(self, iteration, trials, trial, result, **info):
        self.live.report(trial, result)

    def on_trial_complete(self, iteration, trials, trial, **info):
        self._failure(trial)

    def on_trial_error(self, iteration, trials, trial, **info):
        self._failure(trial)

    def _failure(self, trial) -> None:
        note = self.live.failure(trial)
        if note:
            self.console.print(note, soft_wrap=True, highlight=False, markup=False)

    def on_experiment_end(self, trials, **info):
        self._count(trials, force=True)
        self._log(force=True)
        self.close()

    def close(self) -> None:
        """Stop the terminal display (its last frame stays on screen); safe to call twice."""
        if self._screen is not None:
            self._screen.refresh()
            self._screen.stop()
            self._screen = None
