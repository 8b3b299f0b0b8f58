"""Prune requests: how the sweep's driver tells a running trial of the tpe protocol to stop early.

The driver's pruner (``orchestrator.searcher``) decides from the losses the trials report to Ray Tune; it
then writes an empty ``_prune/<trial_id>`` file per trial. A trial run with ``TrialConfig.pruning`` looks for
its file each time it drains its rows (``trainers.cadence``) and, when it is there, ends as ``pruned`` with its
final rows written by itself, like any other ending. So the trial's rows are written by the trial alone (the
driver never races a live writer), and a request survives a killed driver or trial: a resumed trial sees it
at its first drain.
"""
from __future__ import annotations

import pyarrow.fs as pafs

from . import paths
from .files import write_atomic


def request(fs: pafs.FileSystem, sweep_dir: str, trial_ids: list[str]) -> None:
    """Ask the trials ``trial_ids`` of the sweep in ``sweep_dir`` to stop as ``pruned``."""
    for trial_id in trial_ids:
        write_atomic(fs, paths.prune_file(sweep_dir, trial_id), b"")


def requested(fs: pafs.FileSystem, sweep_dir: str, trial_id: str) -> bool:
    """Whether trial ``trial_id`` has been asked to stop as ``pruned``."""
    return fs.get_file_info(paths.prune_file(sweep_dir, trial_id)).type != pafs.FileType.NotFound
