"""``SweepSearcher``: issues every trial of a sweep to one Ray Tune Tuner, and keeps its state beside the sweep.

A sweep is two kinds of trial, all issued by ``SweepSearcher`` to one Tuner (so its actors, reused, live for the
whole sweep and no stage waits on another): ``seed`` and ``analysis`` (the spec's analyses, trainers.analyses,
one trial each). Under the grid protocol (``SweepSpec.lr_search``) a group's seed trials are every rate of its
grid x every seed, one bundle where the cell allows; under tpe one Optuna TPE study per grid group (cell, depth,
nu0, ...; OptunaSearch itself rejects grid_search in its space) suggests ``lr_search_trials`` rates, and each
Optuna trial trains every seed at its rate (one bundle where the cell allows, else one Ray trial per seed) and
is told the mean of their final losses (``orchestrator.tpe_score``) once all of them have their final rows.
Along the way the study's pruner (``orchestrator.pruners``, ``lr_search_pruner``) is fed the mean of the seeds'
reported losses at each step they report; when it prunes, the driver asks the Optuna trial's runs to stop
(``layout.pruning``), they end as ``pruned`` with their own final rows, and the study is told so.
Either way nothing is re-run: the chosen rate, the lowest mean over seeds, is derived from the rows
(``trials.selected``, analysis.selection). Every trial lands in ``trials`` with its ``stage``.
"""
from __future__ import annotations

import pickle

import optuna
import pyarrow.fs as pafs
from optuna.trial import TrialState
from ray.tune.search import Searcher

from trainers.config import TrialConfig
from trainers.relocate import relocate
from layout import pruning
from layout.files import write_atomic
from layout.location import open_sweep
from trainers.record import TrialWriter
from trainers.trial import open_trial

from .gave_up import reopen
from .spec import SweepSpec
from .sweep_store import state_file
from .plan import plan, ray_trials
from .pruners import make_pruner
from .tpe_score import BAD, mean_score, seed_loss
from .trial_configs import planned_config, ray_trial_config


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
    interrupted run (the same configs: they continue from their checkpoints), every group's seed trials (grid,
    none: their rates are in the plan), the Optuna trials of the tpe protocol group by group, round robin (one
    Optuna TPE study per group; an Optuna trial's seeds that run as separate Ray trials are handed out one after
    another), and the analyses once no Optuna trial is left to hand out. Returns FINISHED once everything is
    issued. An Optuna trial is told the mean final loss of its seeds (``orchestrator.tpe_score``, read from their
    ``trials`` rows, the source of truth) when its last seed finishes; a diverged, failed or lost seed makes it
    ``BAD``, so TPE learns that the rate was too high.

    Its state is written to ``_tune/searcher.pkl`` of the sweep before each trial is handed to Tune, so a driver
    killed at any moment leaves a state that names every trial it started; ``load`` reads it back and checks each
    trial it had out against ``trials`` (the source of truth: a finished trial's final rows; so the state need not
    be written again when a trial finishes, only when one errors). Tune's own experiment snapshots are not used
    for this: they lag behind, and are uploaded file by file."""

    STATE = ("issued", "told", "scored", "lrs", "seeds_issued", "analyses_issued", "live", "queue", "errored",
             "studies", "asked", "reports", "fed", "pruned")

    def __init__(self, spec: SweepSpec, sweep_id: str, results: str, threads: int):
        super().__init__()  # no metric: progress reports carry none; the final report has final_loss
        self.spec, self.sweep_id, self.results, self.threads = spec, sweep_id, results, threads
        self.groups = spec.grid()
        keys = [spec.group_key(g) for g in self.groups]
        by_group: dict[tuple[str, int | None], list] = {}  # (group key, Optuna trial) -> its planned trials
        planned = plan(spec)
        for t in planned:
            if t.stage == "seed":
                by_group.setdefault((t.group_key, t.tpe), []).append(t)
        self.budget = budget = spec.lr_search_trials if spec.lr_search == "tpe" else 0  # Optuna trials per group
        # per group: each Optuna trial's Ray trials (a bundle is one); the seed stage's Ray trials (grid, none)
        self.search = [[ray_trials(by_group[(k, n)]) for n in range(budget)] for k in keys]
        self.seed_stage = [ray_trials(by_group.get((k, None), [])) for k in keys]
        self.analyses = [t for t in planned if t.stage == "analysis"]
        self.studies = [
            optuna.create_study(direction="minimize", sampler=optuna.samplers.TPESampler(
                seed=i, n_startup_trials=max(1, budget // 2)),
                pruner=make_pruner(spec.lr_search_pruner, spec.steps, TrialConfig.report_every))
            for i in range(len(self.groups))]
        self.asked: dict[tuple[int, int], optuna.trial.Trial] = {}  # (group, Optuna trial number) -> its trial
        # (group, number) -> step -> trials-row id -> the loss it reported at that step (told once all have)
        self.reports: dict[tuple[int, int], dict[int, dict[str, float]]] = {}
        self.fed: dict[tuple[int, int], int] = {}  # (group, number) -> the last step its mean was reported at
        self.pruned: set[tuple[int, int]] = set()  # (group, number) of every Optuna trial the pruner stopped
        self.issued = [0] * len(self.groups)  # Optuna trials asked for (their Ray trials issued or queued)
        self.told = [0] * len(self.groups)  # Optuna trials scored and told to the study, per group
        self.scored: set[tuple[int, int]] = set()  # (group, Optuna trial number) of every trial told
        # group key -> the rates its seed stage trains (grid, none); tpe: none here, the rows say (``selected``)
        self.lrs: dict[str, tuple[float, ...]] = {} if budget else {
            k: spec.rates(g) for k, g in zip(keys, self.groups)}
        self.seeds_issued = [0] * len(self.groups)  # seed trials (bundles count once) handed out, per group
        self.analyses_issued = 0
        self.live: dict[str, dict] = {}  # Tune trial id -> {"trial": config; tpe: "study", "number", "k"}
        self.queue: list[dict] = []  # entries to issue first: an interrupted run's unfinished ones, and the
        #                              rest of an Optuna trial whose seeds are separate Ray trials
        self.errored: list[dict] = []  # entries of trials Tune gave up on (process lost max_failures times)
        self.n_seeds = [len(s) for s in self.seed_stage]  # seed Ray trials per group

    def remaining(self) -> int:
        """How many trials are still to be handed out (the Tuner's ``num_samples``)."""
        per = [len(s[0]) if s else 0 for s in self.search]  # Ray trials per Optuna trial, per group
        return (len(self.queue) + sum((self.budget - n) * p for n, p in zip(self.issued, per))
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
        for i in range(len(self.groups)):
            if self.seeds_issued[i] < self.n_seeds[i]:
                self.seeds_issued[i] += 1
                return {"trial": ray_trial_config(self.spec, self.sweep_id, self.results,
                                                  self.seed_stage[i][self.seeds_issued[i] - 1])}
        open_ = [i for i, n in enumerate(self.issued) if n < self.budget]
        if open_:
            i = min(open_, key=lambda j: (self.issued[j], j))
            optuna_trial = self.studies[i].ask()
            lo, hi = self.spec.lr_range_for(self.groups[i]["cell"])
            lr = optuna_trial.suggest_float("lr", lo, hi, log=True)
            k, self.issued[i] = self.issued[i], self.issued[i] + 1
            self.asked[(i, optuna_trial.number)] = optuna_trial
            entries = [{"study": i, "number": optuna_trial.number, "k": k,
                        "trial": ray_trial_config(self.spec, self.sweep_id, self.results, ray, lr=lr)}
                       for ray in self.search[i][k]]
            self.queue += entries[1:]  # its other seeds, when they are Ray trials of their own
            return entries[0]
        if self.analyses_issued < len(self.analyses):
            self.analyses_issued += 1
            return {"trial": planned_config(self.spec, self.sweep_id, self.results,
                                            self.analyses[self.analyses_issued - 1])}
        return None

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        """A progress report of a Ray trial: for an Optuna trial whose pruner may stop it, the seeds' losses at
        the reported step; once every seed of the Optuna trial has reported that step (at once for a bundle),
        their mean is reported to the study, and if its pruner says so, the Optuna trial's runs are asked to
        stop."""
        entry = self.live.get(trial_id)
        if entry is None or "study" not in entry or "step" not in result or not self._prunable(entry):
            return
        key = (entry["study"], entry["number"])
        if key in self.pruned or key in self.scored:
            return
        step = int(result["step"])
        if step <= self.fed.get(key, 0):
            return  # a restarted run reports again from its checkpoint: each step is told once
        at = self.reports.setdefault(key, {}).setdefault(step, {})
        at.update(self._step_losses(entry, result))
        rows = self._rows(entry)
        if len(at) < len(rows):
            return  # seeds of it that are Ray trials of their own have not reported this step yet
        self.reports[key] = {s: v for s, v in self.reports[key].items() if s > step}
        self.fed[key] = step
        trial = self.asked[key]
        trial.report(mean_score([at[r] for r in rows]), step)
        if trial.should_prune():
            pruning.request(*open_sweep(self.results, self.sweep_id), rows)
            self.pruned.add(key)
            self.reports.pop(key, None)
            self._persist()

    def _prunable(self, entry: dict) -> bool:
        return bool(members(entry["trial"])[0].get("pruning"))

    def _rows(self, entry: dict) -> list[str]:
        """The trials-row ids of the Optuna trial of ``entry``: every seed of it."""
        return [t.trial_id for ray in self.search[entry["study"]][entry["k"]] for t in ray]

    def _step_losses(self, entry: dict, result: dict) -> dict[str, float]:
        """Trials-row id -> loss at the reported step, from one Ray trial's report: a solo seed's ``loss``; a
        bundle's ``loss_seed<seed>`` per seed still training, and for a seed that has ended (it left the bundle)
        its ``tpe_score.seed_loss`` from its final row (``BAD`` when it diverged)."""
        if "members" not in entry["trial"]:
            return {entry["trial"]["trial_id"]: float(result.get("loss", BAD))}
        out = {}
        for m in entry["trial"]["members"]:
            loss = result.get(f"loss_seed{m['seed']}")
            if loss is None:
                loss = seed_loss(TrialWriter(self.results, self.sweep_id, m["trial_id"]).read_trial())
            if loss is not None:  # None: no final row yet (then the step is never told: no mean without it)
                out[m["trial_id"]] = float(loss)
        return out

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        entry = self.live.pop(trial_id, None)
        if entry is None:
            return
        if "study" in entry:
            self._tell(entry, lost=error)
        if error:  # a trial that finished has its final rows, which ``load`` reads; one that errored has none
            self.errored.append({"trial": entry["trial"]})  # told already: retried by a resume, not told again
            self._persist()

    def _tell(self, entry: dict, lost: bool = False) -> None:
        """Tell an Optuna trial its score once every one of its seeds has its final row (``lost``: one of its
        Ray trials was given up on by Tune: ``BAD`` at once). Each Optuna trial is told once."""
        i, number = entry["study"], entry["number"]
        if (i, number) in self.scored:
            return
        rows = [TrialWriter(self.results, self.sweep_id, t).read_trial() for t in self._rows(entry)]
        losses = [seed_loss(r) for r in rows]
        if not lost and any(x is None for x in losses):
            return  # seeds of it still running (separate Ray trials): told when the last one finishes
        if any(r is not None and r["status"] == "pruned" for r in rows):
            self.studies[i].tell(number, state=TrialState.PRUNED)  # its value: the last mean it was fed
        else:
            self.studies[i].tell(number, BAD if lost else mean_score(losses))
        self.scored.add((i, number))
        self.told[i] += 1

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
            if k in state:  # a state written before ``scored`` existed keeps the fresh (empty) one
                setattr(self, k, state[k])

    def _persist(self) -> None:
        write_atomic(*state_file(self.results, self.sweep_id), self._state())

    @classmethod
    def load(cls, spec: SweepSpec, sweep_id: str, results: str, threads: int,
             retry_errored: bool = True) -> "SweepSearcher":
        """The searcher of a sweep as its last driver left it (a new one if none had started): each trial it
        had out that has finished since (its final rows are in ``trials``) is done, its Optuna trial told its score;
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
            if finished_summary(entry["trial"]) is None:
                self.queue.append(entry)
            elif "study" in entry:
                self._tell(entry)
        self._persist()
        return self


