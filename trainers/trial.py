"""A trial's life in the results location, the same for a solo run and for each seed of a bundle: open it (a
trial whose ``trials`` row is already final for its exact config is not trained again), start or resume it
(the rows written since its checkpoint dropped, a ``running`` row), and close it (its rows flushed, its final
``trials`` row). A trial that raised is ``failed`` with the one-line reason.
"""
from __future__ import annotations

import datetime as dt
import functools
import json
import platform
import socket
import time

import torch

from layout.schemas import FINAL

from .config import TrialConfig
from .damage import read_checkpoint
from .relocate import same_config
from .record import TrialWriter

SUMMARY = ("status", "error", "steps_done", "final_loss", "best_loss", "final_metric", "solved_step", "device",
           "wall_s", "probe_s")


@functools.cache  # once per process: importlib.metadata parses each package's METADATA (~2 ms a call)
def versions() -> str:
    import numpy
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version(), "torch": torch.__version__, "numpy": numpy.__version__}
    for pkg in ("ray", "rnn-dynamics-sweeps"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            pass
    return json.dumps(out, sort_keys=True)


def now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def trial_row(cfg: TrialConfig, **fields) -> dict:
    """The ``trials`` row: config columns plus the given outcome fields."""
    return dict(
        sweep=cfg.sweep, stage=cfg.stage, task=cfg.task, cell=cfg.cell, depth=cfg.depth, hidden=cfg.hidden,
        batch=cfg.batch, nu=cfg.nu, seq_len=cfg.seq_len, layer_norm=cfg.layer_norm, seed=cfg.seed, lr=cfg.lr,
        clip=cfg.clip, group_key=cfg.group_key or None,
        host=socket.gethostname(), versions=versions(), config_json=cfg.to_json(), **fields)


def open_trial(cfg: TrialConfig) -> tuple[TrialWriter, dict | None]:
    """The trial's writer, and its summary when its ``trials`` row is already final for this exact config
    (then it is not trained again)."""
    writer = TrialWriter(cfg.results, cfg.sweep_id, cfg.trial_id, cfg.flush_rows, cfg.flush_s)
    done = writer.read_trial()
    if done and done["status"] in FINAL and same_config(done["config_json"], cfg):  # wherever the sweep is now
        return writer, {k: done[k] for k in SUMMARY}
    return writer, None


def saved_state(store: TrialWriter) -> dict | None:
    """The checkpoint ``store`` holds (tensors and plain data only); None when there is none or it is damaged
    (then the run starts again). The caller checks that it is of its config."""
    data = store.load_checkpoint()
    return None if data is None else read_checkpoint(data, store.checkpoint_path())


def of_config(saved: dict | None, cfg: TrialConfig) -> bool:
    """Whether a checkpoint's state for one trial (``config_json`` among its keys) is of this exact config."""
    return bool(saved) and same_config(saved.get("config_json"), cfg)


def clock(resume: dict | None) -> tuple[dt.datetime, float]:
    """(started_at, t0): when the run first started, and the ``perf_counter`` origin of its wall time (which
    counts the time before its checkpoint)."""
    started = dt.datetime.fromisoformat(resume["started_at"]) if resume else now()
    return started, time.perf_counter() - (resume["wall_s"] if resume else 0.0)


def start_trial(cfg: TrialConfig, writer: TrialWriter, saved: dict | None, step: int, started: dt.datetime,
                node: str | None) -> None:
    """Drop the rows written after the checkpoint state ``saved`` (all of them when None), then write the
    ``running`` row at ``step``."""
    writer.restore(saved["writer"] if saved else None)
    writer.write_trial(trial_row(cfg, status="running", steps_done=step, started_at=started, node=node))


def close_trial(cfg: TrialConfig, writer: TrialWriter, outcome: dict, started: dt.datetime, wall_s: float,
                node: str | None) -> dict:
    """Flush the trial's rows, write its final ``trials`` row; returns its summary."""
    writer.flush()
    outcome = dict(outcome, wall_s=wall_s)
    writer.write_trial(trial_row(cfg, started_at=started, ended_at=now(), node=node, **outcome))
    return {k: outcome.get(k) for k in SUMMARY}


def failed(e: Exception, **fields) -> dict:
    """The outcome of a trial that raised: ``failed`` with the one-line reason."""
    return dict(status="failed", error=f"{type(e).__name__}: {e}".splitlines()[0][:500], **fields)
