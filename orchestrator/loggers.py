"""`sweep launch --log-to tensorboard,mlflow,wandb`: Ray Tune's own logger callbacks, so that the losses the trials
report along the way (``step``, ``loss``, a seed bundle's ``loss_seed<N>`` per seed, and at the end
``final_loss``, or a bundle's ``final_loss_seed<N>``) appear in the tracker the researcher already uses. The
Parquet tables stay the source of truth; these are views.

- ``tensorboard``: ``ray.tune.logger.TBXLoggerCallback`` (tensorboardX, a dependency of ``ray[tune]``): event
  files beside each Tune trial under ``<results>/<sweep_id>/_tune/sweep/``: ``tensorboard --logdir`` that folder.
  The x axis is the optimiser step (reported as Tune's ``timesteps_total``).
- ``mlflow``: ``ray.air.integrations.mlflow.MLflowLoggerCallback``; one MLflow run per Tune trial in experiment
  ``<sweep_id>``, at ``$MLFLOW_TRACKING_URI``, else a file store ``<results>/<sweep_id>/mlruns`` (local results;
  MLflow 3 keeps file stores in maintenance mode, so this sets ``MLFLOW_ALLOW_FILE_STORE=true``; ``mlflow ui
  --backend-store-uri <that folder>`` shows it).
  Needs ``pip install 'rnn-dynamics-sweeps[mlflow]'`` (mlflow-skinny, +70 MB).
- ``wandb``: ``ray.air.integrations.wandb.WandbLoggerCallback``, project = the sweep's name, group = its id.
  Needs ``pip install 'rnn-dynamics-sweeps[wandb]'`` and ``wandb login``, or ``WANDB_MODE=offline`` (runs are
  written under ``$WANDB_DIR/wandb/``, else each Tune trial's folder; ``wandb sync`` uploads them later).
"""
from __future__ import annotations

import importlib.util
import os

from layout import paths

from .spec import UserError

# name -> (the module it needs, the pip extra that installs it)
LOGGERS = {"tensorboard": ("tensorboardX", "ray[tune]"), "mlflow": ("mlflow", "rnn-dynamics-sweeps[mlflow]"),
           "wandb": ("wandb", "rnn-dynamics-sweeps[wandb]")}


def parse(text: str | None) -> tuple[str, ...]:
    """``--log-to`` as names, checked before anything runs: a clear one-line error for an unknown name or a
    missing package."""
    names = tuple(dict.fromkeys(n.strip() for n in (text or "").split(",") if n.strip()))
    for n in names:
        if n not in LOGGERS:
            raise UserError(f"invalid --log-to {n!r}; valid: {', '.join(LOGGERS)} (comma-separated)")
        module, extra = LOGGERS[n]
        if importlib.util.find_spec(module) is None:
            raise UserError(f"--log-to {n} needs the {module} package, which is not installed: "
                            f"pip install '{extra}'")
    return names


def callbacks(names: tuple[str, ...], results_root: str | None, sweep_id: str, name: str) -> list:
    """Tune callbacks for ``names``; ``results_root``: the local results folder (None: not local)."""
    out = []
    for n in names:
        if n == "tensorboard":
            from ray.tune.logger import TBXLoggerCallback

            out.append(TBXLoggerCallback())
        elif n == "mlflow":
            from ray.air.integrations.mlflow import MLflowLoggerCallback

            uri = os.environ.get("MLFLOW_TRACKING_URI")
            if not uri and results_root:
                uri = "file:" + paths.mlflow_dir(paths.sweep_dir(results_root, sweep_id))
                os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow 3 wants an explicit opt-in
            out.append(MLflowLoggerCallback(tracking_uri=uri, experiment_name=sweep_id, save_artifact=False,
                                            tags={"sweep": name}))
        elif n == "wandb":
            from ray.air.integrations.wandb import WandbLoggerCallback

            # Ray runs each trial's wandb.init in an actor whose environment is Ray's, not this shell's: the mode
            # and folder asked for here (WANDB_MODE=offline, WANDB_DIR) go to wandb.init themselves
            given = {arg: os.environ[var] for arg, var in (("mode", "WANDB_MODE"), ("dir", "WANDB_DIR"))
                     if os.environ.get(var)}
            out.append(WandbLoggerCallback(project=name, group=sweep_id, log_config=False, **given))
    return out

