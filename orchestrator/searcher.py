"""``SweepSearcher``: issues every trial of a sweep to one Ray Tune Tuner, and keeps its state beside the sweep.

A sweep is three kinds of trial, all issued by ``SweepSearcher`` to one Tuner (so its actors, reused, live for
the whole sweep and no stage waits on another): ``seed`` (under the grid protocol, ``SweepSpec.lr_search``, every
rate of the group's grid x every seed, one bundle where the cell allows; the chosen rate is derived from the rows,
analysis.selection; under tpe every seed at the best searched rate, read back from the ``trials`` table, the
source of truth, as soon as that group's search is over), ``lr_search`` (tpe only: one Optuna TPE study per grid
group: cell, depth, nu0, ...; OptunaSearch itself rejects grid_search in its space) and
``analysis`` (the spec's analyses, trainers.analyses, one trial each; they need no search). Every trial lands
in ``trials`` with its ``stage``.
"""
from __future__ import annotations

import math
import pickle

import optuna
import pyarrow.fs as pafs
from ray.tune.search import Searcher

from trainers.config import TrialConfig
from trainers.relocate import relocate
from layout.files import write_atomic
from trainers.record import TrialWriter
from trainers.trial import open_trial

from .gave_up import reopen
from .spec import SweepSpec
from .sweep_store import state_file
from .plan import plan, ray_trials
from .trial_configs import planned_config, ray_trial_config


def best_lr(spec: SweepSpec, rows: list[dict]) -> float:
    """A group's rate from its search trials' ``trials`` rows: the lowest finite final loss; if every one
    diverged (or failed), the lowest rate tried; with no search, the spec's fixed ``lr``."""
    ok = [r for r in rows if r["final_loss"] is not None and math.isfinite(r["final_loss"])]
    if ok:
        return min(ok, key=lambda r: r["final_loss"])["lr"]
    return min(r["lr"] for r in rows) if rows else spec.lr


def members(trial: dict) -> list[dict]:
    """The ``trials`` rows a Ray trial's config runs: a seed bundle's members, else itself."""
    return trial.get("members", [trial])


def finished_summary(trial: dict) -> dict | None:
    """The summary of a Ray trial's config if every trial it runs has its final ``trials`` row for this exact
    config (it would not be trained again: see ``run_trial``), else None."""
    summaries = [open_trial(TrialConfig.from_dict(m))[1] for m in members(trial)]
    return None if any(s is None for s in summaries) else summaries[0]


class SweepSearcher(Searcher):
    """Issues every trial of a sweep to one Tuner, what can start first first: the unfinished trials of an
    interrupted run (the same configs: they continue from their checkpoints), the seeds of every group whose
    search is over (at its best rate, read back from ``trials``), search trials group by group, round robin (one
    Optuna TPE study per group), and the analyses once no search trial is left to hand out. Returns None while
    nothing can be issued yet (searches still running), FINISHED once everything is issued. A diverged or failed
    search trial is told a very large loss, so TPE learns that the rate was too high.

    Its state is written to ``_tune/searcher.pkl`` of the sweep before each trial is handed to Tune, so a driver
    killed at any moment leaves a state that names every trial it started; ``load`` reads it back and checks each
    trial it had out against ``trials`` (the source of truth: a finished trial's final rows; so the state need not
    be written again when a trial finishes, only when one errors). Tune's own experiment snapshots are not used
    for this: they lag behind, and are uploaded file by file."""

    BAD = 1e30
    STATE = ("issued", "told", "lrs", "seeds_issued", "analyses_issued", "live", "queue", "errored", "studies")

    def __init__(self, spec: SweepSpec, sweep_id: str, results: str, threads: int):
        super().__init__()  # no metric: progress reports carry none; the final report has final_loss
        self.spec, self.sweep_id, self.results, self.threads = spec, sweep_id, results, threads
        self.groups = spec.grid()
        keys = [spec.group_key(g) for g in self.groups]
        by_stage: dict[tuple[str, str], list] = {}  # (stage, group key) -> its planned trials, in plan order
        for t in plan(spec):
            by_stage.setdefault((t.stage, t.group_key), []).append(t)
        # per group: its search trials, and its seed stage's Ray trials (a bundle is one); then the analyses
        self.search = [by_stage.get(("lr_search", k), []) for k in keys]
        self.seed_stage = [ray_trials(by_stage.get(("seed", k), [])) for k in keys]
        self.analyses = by_stage.get(("analysis", ""), [])
        self.budget = budget = len(self.search[0]) if self.search else 0  # search trials per group
        self.studies = [
            optuna.create_study(direction="minimize", sampler=optuna.samplers.TPESampler(
                seed=i, n_startup_trials=max(1, budget // 2)))
            for i in range(len(self.groups))]
        self.issued = [0] * len(self.groups)  # search trials handed out, per group
        self.told = [0] * len(self.groups)  # search trials finished and told to the study, per group
        self.lrs: dict[str, tuple[float, ...]] = {}  # group key -> its seed stage's rates (tpe: once searched)
        self.seeds_issued = [0] * len(self.groups)  # seed trials (bundles count once) handed out, per group
        self.analyses_issued = 0
        self.live: dict[str, dict] = {}  # Tune trial id -> {"trial": config, search trials: "study", "number"}
        self.queue: list[dict] = []  # entries of ``live`` left unfinished by an interrupted run: issued first
        self.errored: list[dict] = []  # entries of trials Tune gave up on (process lost max_failures times)
        self.n_seeds = [len(s) for s in self.seed_stage]  # seed Ray trials per group
        if not budget:
            self.lrs = {spec.group_key(g): spec.rates(g) for g in self.groups}

    def remaining(self) -> int:
        """How many trials are still to be handed out (the Tuner's ``num_samples``)."""
        return (len(self.queue) + len(self.groups) * self.budget - sum(self.issued)
                + sum(self.n_seeds) - sum(self.seeds_issued) + len(self.analyses) - self.analyses_issued)

    def suggest(self, trial_id: str):
        entry = self._next()
        if entry is None:
            return Searcher.FINISHED if self.remaining() == 0 else None
        self.live[trial_id] = entry
        self._persist()  # before Tune has the trial: a killed driver's state names every trial that ran
        return {"threads": self.threads, "trial": entry["trial"]}

    def _next(self) -> dict | None:
        if self.queue:
            return self.queue.pop(0)
        for i, g in enumerate(self.groups):
            if self.spec.group_key(g) in self.lrs and self.seeds_issued[i] < self.n_seeds[i]:
                self.seeds_issued[i] += 1
                chosen = self.lrs[self.spec.group_key(g)][0]  # the searched rate (tpe); a grid's are in the plan
                return {"trial": ray_trial_config(self.spec, self.sweep_id, self.results,
                                                  self.seed_stage[i][self.seeds_issued[i] - 1], lr=chosen)}
        open_ = [i for i, n in enumerate(self.issued) if n < self.budget]
        if open_:
            i = min(open_, key=lambda j: (self.issued[j], j))
            optuna_trial = self.studies[i].ask()
            lo, hi = self.spec.lr_range_for(self.groups[i]["cell"])
            lr = optuna_trial.suggest_float("lr", lo, hi, log=True)
            planned = self.search[i][self.issued[i]]
            self.issued[i] += 1
            return {"study": i, "number": optuna_trial.number,
                    "trial": planned_config(self.spec, self.sweep_id, self.results, planned, lr=lr)}
        if self.analyses_issued < len(self.analyses):
            self.analyses_issued += 1
            return {"trial": planned_config(self.spec, self.sweep_id, self.results,
                                            self.analyses[self.analyses_issued - 1])}
        return None

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        entry = self.live.pop(trial_id, None)
        if entry is None:
            return
        if "study" in entry:
            self._tell(entry, None if error else (result or {}).get("final_loss"))
        if error:  # a trial that finished has its final rows, which ``load`` reads; one that errored has none
            self.errored.append({"trial": entry["trial"]})  # told already: retried by a resume, not told again
            self._persist()

    def _tell(self, entry: dict, value: float | None) -> None:
        """Tell a search trial's final loss to its study; fix the group's rate once all its trials are told."""
        i = entry["study"]
        value = self.BAD if value is None or not math.isfinite(value) else min(float(value), self.BAD)
        self.studies[i].tell(entry["number"], value)
        self.told[i] += 1
        if self.told[i] == self.budget:
            self._choose([i])

    def _choose(self, groups) -> None:
        """Fix the rate of each of ``groups`` from its search trials' rows in ``trials``."""
        for i in groups:
            rows = [TrialWriter(self.results, self.sweep_id, t.trial_id).read_trial() for t in self.search[i]]
            self.lrs[self.spec.group_key(self.groups[i])] = (best_lr(self.spec, [r for r in rows if r is not None]),)

    def save(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "wb") as f:
            f.write(self._state())

    def restore(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "rb") as f:
            self._set_state(f.read())

    def _state(self) -> bytes:
        return pickle.dumps({k: getattr(self, k) for k in self.STATE})

    def _set_state(self, data: bytes) -> None:
        state = pickle.loads(data)  # our own file, written by _persist or save above
        for k in self.STATE:
            setattr(self, k, state[k])

    def _persist(self) -> None:
        write_atomic(*state_file(self.results, self.sweep_id), self._state())

    @classmethod
    def load(cls, spec: SweepSpec, sweep_id: str, results: str, threads: int,
             retry_errored: bool = True) -> "SweepSearcher":
        """The searcher of a sweep as its last driver left it (a new one if none had started): each trial it
        had out that has finished since (its final rows are in ``trials``) is done, a search trial told its loss;
        every other one is queued to be issued again, with the trials Tune gave up on if ``retry_errored``."""
        self = cls(spec, sweep_id, results, threads)
        fs, path = state_file(results, sweep_id)
        if fs.get_file_info(path).type == pafs.FileType.NotFound:
            return self
        with fs.open_input_stream(path) as f:
            self._set_state(f.read())
        out, self.queue, self.live = self.queue + list(self.live.values()), [], {}
        # the location given now, never the stored one
        out = [dict(entry, trial=relocate(entry["trial"], results)) for entry in out]
        if retry_errored:  # trials Tune gave up on read `failed`: running again, then issued again
            errored = [dict(entry, trial=relocate(entry["trial"], results)) for entry in self.errored]
            for entry in errored:
                reopen(entry["trial"])
            out, self.errored = out + errored, []
        for entry in out:
            summary = finished_summary(entry["trial"])
            if summary is None:
                self.queue.append(entry)
            elif "study" in entry:
                self._tell(entry, summary["final_loss"])
        self._persist()
        return self


