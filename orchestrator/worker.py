"""The Ray worker entry: one trial (or one seed bundle) inside a Ray Tune trial process.

This is the only orchestrator module a trial worker imports, so it imports only ``trainers`` (and Ray, torch):
no spec, no searcher, no ``analysis`` (DuckDB) and no Optuna (tests/test_worker.py checks this).
"""
from __future__ import annotations

import ray
from ray import tune

from layout.schemas import FINAL
from trainers.bundle import run_bundle
from trainers.config import TrialConfig
from trainers.train import run_trial


def with_step(report):
    """``report`` (``tune.report``) with the optimiser step as Tune's ``timesteps_total``, the x axis the logger
    callbacks (``orchestrator.loggers``) plot against (else they plot against the report's index)."""
    return lambda r: report({**r, "timesteps_total": r["step"]} if "step" in r else r)


def trainable(config: dict) -> None:
    """One trial inside Ray. A restarted trial (resume, retry) continues from its own checkpoint, which
    ``run_trial`` keeps beside its rows; Tune's checkpoints are not used, because Tune's experiment state
    can lag behind them (it may name a checkpoint it has since deleted)."""
    import torch

    torch.set_num_threads(max(1, int(config.get("threads", 1))))
    node = ray.get_runtime_context().get_node_id()
    if "members" in config["trial"]:  # a seed bundle: one report for its seeds, counted per seed by Progress
        cfgs = [TrialConfig.from_dict(m) for m in config["trial"]["members"]]
        summaries = run_bundle(config["trial"]["trial_id"], cfgs, on_progress=with_step(tune.report), node=node)
        statuses = [s["status"] for s in summaries]
        tune.report({"status": "bundle", **{f"seeds_{k}": statuses.count(k) for k in FINAL},
                     **{f"final_loss_seed{c.seed}": s["final_loss"] for c, s in zip(cfgs, summaries)
                        if s.get("final_loss") is not None}})
        return
    cfg = TrialConfig.from_dict(config["trial"])
    summary = run_trial(cfg, on_progress=with_step(tune.report), node=node)
    tune.report({k: v for k, v in summary.items() if v is not None})
