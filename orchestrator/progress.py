"""The launch terminal's progress display, a Ray Tune callback drawn with rich.

On a terminal: one bar per stage (rows of the ``trials`` table done of its total), then a line with what runs
now (Ray trials, and the ``trials`` rows they run: a seed bundle runs several seeds in one Ray trial), failed
and diverged counts, the elapsed time, the ETA (``LiveLine``; it counts down between Tune's reports)
and the best and worst loss so far. Off a terminal (a log file, CI): the same facts as one line every
``every`` seconds, and once at the end. A trial that fails or diverges gets a line of its own, with its reason.
"""
from __future__ import annotations

import math
import os
import time

from ray import tune
from rich.console import Console, Group
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from analysis.live import clock, eta_s
from layout.schemas import FINAL


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
        pruned = self.done.get("pruned", 0)
        line = (f"{running} · {self.done.get('failed', 0)} failed · {self.done.get('diverged', 0)} diverged · "
                + (f"{pruned} pruned · " if pruned else "") + f"elapsed {clock(now - self.t0)} · ETA {eta}")
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


class LiveLine:
    """ETA and best / worst loss so far for the launch terminal's progress line, from Tune's trial list and
    the progress reports (``{"step", "loss"}``, see ``run_trial``'s ``on_progress``) each trial sends.
    The same ETA rule as ``sweep status`` (``analysis.live.eta_s``), with rates measured between reports."""

    def __init__(self):
        self.first: dict[str, tuple[int, float]] = {}  # Tune trial id -> (step, time) of its first report
        self.last: dict[str, tuple[int, float, float | None]] = {}  # -> (step, time, loss) of its last report

    def report(self, trial, result: dict, now: float | None = None) -> None:
        """Note a trial's progress report (``now``: its time, ``time.monotonic()`` by default)."""
        if "step" not in result:
            return
        now = time.monotonic() if now is None else now
        self.first.setdefault(trial.trial_id, (result["step"], now))
        self.last[trial.trial_id] = (result["step"], now, result.get("loss"))

    def rate(self, trial_id: str) -> float | None:
        if trial_id not in self.last:
            return None
        (s0, t0), (s1, t1, _) = self.first[trial_id], self.last[trial_id]
        return (s1 - s0) / (t1 - t0) if s1 > s0 and t1 > t0 else None

    def fields(self, trials, total: int) -> str:
        """`` · ETA mm:ss · loss best x worst y`` (``?`` until rates are measured)."""
        eta, losses = self.eta(trials, total), self.losses(trials)
        out = f" · ETA {clock(eta)}"
        if losses:
            out += f" · loss best {min(losses):.2e} worst {max(losses):.2e}"
        return out

    def eta(self, trials, total: int) -> float | None:
        """Seconds until the sweep ends (``analysis.live.eta_s``); None until rates are measured. ``total``: the
        trials (rows of ``trials``) this Tuner runs in all, issued or not."""
        rates = [r for r in (self.rate(t.trial_id) for t in trials) if r]
        mean = sum(rates) / len(rates) if rates else None
        running_s, pending_s, unknown, counted = [], [], False, 0

        def seconds(steps: float, rate: float | None) -> float:
            nonlocal unknown
            unknown |= steps > 0 and not rate
            return steps / rate if steps > 0 and rate else 0.0

        for t in trials:
            n = len(t.config["trial"].get("members", [None]))
            counted += n
            if t.status == "RUNNING":
                left = _steps(t.config) - self.last.get(t.trial_id, (0,))[0]
                running_s += [seconds(left, self.rate(t.trial_id) or mean)] * n
            elif t.status == "PENDING":
                pending_s += [seconds(_steps(t.config), mean)] * n
        if total > counted:  # trials a searcher has not issued yet: as long as the mean one
            seen = [_steps(t.config) for t in trials] or [0]
            pending_s += [seconds(sum(seen) / len(seen), mean)] * (total - counted)
        return None if unknown else eta_s(running_s, pending_s)

    def losses(self, trials) -> list[float]:
        """The finite losses so far of the trials that trained (``_loss``)."""
        out = [self._loss(t) for t in trials]
        return [x for x in out if x is not None and math.isfinite(x)]

    @staticmethod
    def failure(trial) -> str | None:
        """A line for a Tune trial that just ended badly: a solo trial's one-line reason, a bundle's count
        (its seeds' reasons are in `sweep status`), a Ray-level error; None when it went well."""
        r, tid = trial.last_result or {}, trial.config["trial"]["trial_id"]
        if trial.status == "ERROR":
            return f"{tid}: failed in Ray (process or node lost; retried up to max_failures); see `sweep status`"
        if r.get("status") in ("failed", "diverged"):
            return f"{tid}: {r['status']}: {r.get('error') or '(no reason recorded)'}"
        bad = {k: int(r.get(f"seeds_{k}", 0)) for k in ("failed", "diverged")}
        if r.get("status") == "bundle" and any(bad.values()):
            return f"{tid}: " + ", ".join(f"{n} seeds {k}" for k, n in bad.items() if n) + "; see `sweep status`"
        return None

    def _loss(self, trial) -> float | None:
        """A finished trial's final loss, else (a running trial, a bundle) its last reported loss; none for an
        analysis trial (no training: its numbers are not a trained loss)."""
        if trial.status not in ("TERMINATED", "RUNNING") or not _steps(trial.config):
            return None
        reported = self.last.get(trial.trial_id, (0, 0, None))[2]
        return (trial.last_result or {}).get("final_loss", reported) if trial.status == "TERMINATED" else reported


def _steps(config: dict) -> int:
    """Planned training steps of a Tune trial's config (a bundle: of each member); an analysis has none."""
    c = config["trial"]["members"][0] if "members" in config["trial"] else config["trial"]
    return 0 if c.get("stage") == "analysis" else int(c.get("steps") or 0)
