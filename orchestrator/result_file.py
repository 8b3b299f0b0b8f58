"""Each Tune trial's ``result.json``, written once, with the trial's last result.

Tune's result loggers (CSV, JSON, TensorBoard) are off (``TUNE_DISABLE_AUTO_CALLBACK_LOGGERS``): every row is
in our Parquet tables, and they cost a file write per report. But at the end of ``Tuner.fit`` Tune builds its
ResultGrid from each trial's ``result.json`` or ``progress.csv``, and logs a FileNotFoundError per trial that
reported anything and has neither. ``ResultFile`` writes that file once per trial, when the trial ends (and,
for a run that was interrupted, at the end for the trials still out), holding only its last result.
"""
from __future__ import annotations

import json

from ray import tune
from ray.air.constants import EXPR_RESULT_FILE


class ResultFile(tune.Callback):
    def __init__(self):
        self.written: set[str] = set()

    def _write(self, trial) -> None:
        if trial.trial_id in self.written or trial.last_result is None:
            return
        fs, path = trial.storage.storage_filesystem, trial.storage.trial_fs_path
        fs.create_dir(path, recursive=True)
        with fs.open_output_stream(f"{path}/{EXPR_RESULT_FILE}") as f:
            f.write((json.dumps(trial.last_result, default=repr) + "\n").encode())
        self.written.add(trial.trial_id)

    def on_trial_complete(self, iteration, trials, trial, **info):
        self._write(trial)

    def on_trial_error(self, iteration, trials, trial, **info):
        self._write(trial)

    def on_experiment_end(self, trials, **info):
        for t in trials:
            self._write(t)
