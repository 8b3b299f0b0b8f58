"""A trial's checkpoint: ``<sweep>/_checkpoints/<trial_id>.pt``, beside its rows, replaced atomically (its
contents are the trainer's: ``trainers.trial``). One exists while the trial is unfinished."""
from __future__ import annotations

import pyarrow.fs as pafs

from . import paths
from .files import delete_file, read_file, write_atomic


def save(fs: pafs.FileSystem, sweep_dir: str, trial_id: str, data: bytes) -> None:
    write_atomic(fs, paths.checkpoint_file(sweep_dir, trial_id), data)


def load(fs: pafs.FileSystem, sweep_dir: str, trial_id: str) -> bytes | None:
    """The checkpoint's bytes, or None when the trial has none."""
    return read_file(fs, paths.checkpoint_file(sweep_dir, trial_id))


def drop(fs: pafs.FileSystem, sweep_dir: str, trial_id: str) -> None:
    delete_file(fs, paths.checkpoint_file(sweep_dir, trial_id))


def checkpointed(fs: pafs.FileSystem, sweep_dir: str) -> set[str]:
    """The ids of the sweep's trials that have a checkpoint."""
    infos = fs.get_file_info(pafs.FileSelector(paths.checkpoint_dir(sweep_dir), allow_not_found=True))
    return {f.base_name.removesuffix(".pt") for f in infos}
