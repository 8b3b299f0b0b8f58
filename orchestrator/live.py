"""The live view: `sweep status` (from the results location: ``analysis.live``) and the extra fields of the
launch terminal's progress line (from the reports Ray Tune hands the driver)."""
from __future__ import annotations

import math
import sys
import time

from analysis.live import Planned, clock, eta_s, find_sweep, live_state, read_meta, render

from .spec import AXES, SweepSpec, UserError


def plan(spec: SweepSpec) -> list[Planned]:
    """The trials ``spec`` runs, per stage and grid group: its search trials (``stage_trials``) and its rates x
    seeds seed trials, and one trial per analysis (no training steps). A group's trials carry its axes
    as ``trials`` columns (clipping off is a null ``clip``, as ``tune.trial_config`` records it)."""
    out = []
    for g in spec.grid():
        match = tuple((a, (g[a] or None) if a == "clip" else g[a]) for a in AXES)
        search = spec.stage_trials()["lr_search"] // len(spec.grid())
        steps = g.get("steps", spec.steps)  # steps may be an axis (orchestrator.axes)
        if search:
            out.append(Planned("lr_search", match, search, steps, g["cell"]))
        out.append(Planned("seed", match, spec.seeds * len(spec.rates(g)), steps, g["cell"]))
    if spec.analyses:
        out.append(Planned("analysis", (), len(spec.analyses), 0))
    return out


def plan_of(meta: dict) -> list[Planned]:
    """The plan of a sweep from its sweep.json (empty when it has no readable spec)."""
    try:
        return plan(SweepSpec.from_dict(meta["spec"]))
    except (KeyError, TypeError, UserError):
        return []


def show(results: str, target: str, *, watch: float | None = None, limit: int = 20, out=None) -> None:
    """Print the status screen of sweep ``target``; with ``watch``, redraw every ``watch`` seconds until the sweep
    is no longer running (clearing the screen on a terminal, else one block after another). Ctrl-C stops."""
    out = out or sys.stdout
    if watch is not None and not (watch > 0 and math.isfinite(watch)):
        raise UserError(f"invalid --watch {watch!r}; valid: a number of seconds > 0")
    if limit < 0:
        raise UserError(f"invalid --trials {limit!r}; valid: an integer >= 0")
    sweep_id = find_sweep(results, target)
    tty, cache = out.isatty(), {}
    try:
        while True:
            state = live_state(results, sweep_id, plan_of(read_meta(results, sweep_id)), cache=cache)
            text = render(state, limit)
            if watch and tty:
                out.write("\033[H\033[2J")
            out.write(text if not watch or tty else text + "\n")
            out.flush()
            if not watch or state.status != "running":
                return
            time.sleep(watch)
    except KeyboardInterrupt:
        out.write("\n")


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
    return int(c.get("steps") or 0) if c.get("kind", "train") == "train" else 0
