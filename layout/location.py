"""A results location: a local path (relative allowed) or a pyarrow filesystem URI (``s3://bucket/x``), opened
as (pyarrow filesystem, root path). Every reader and writer of the layout opens its location here."""
from __future__ import annotations

import os

import pyarrow.fs as pafs

from . import paths


def is_remote(results: str) -> bool:
    """Whether ``results`` is a URI (an object store, ...) rather than a local path."""
    return "://" in results


def canonical_location(results: str) -> str:
    """A results location that means the same in every process: local paths made absolute (Ray Tune runs
    each trial in its own working folder, so a relative path would land there); URIs unchanged."""
    return results if is_remote(results) else os.path.abspath(os.path.expanduser(results))


def open_location(results: str) -> tuple[pafs.FileSystem, str]:
    """(filesystem, root path) of a results location."""
    return pafs.FileSystem.from_uri(canonical_location(results))


def open_sweep(results: str, sweep_id: str) -> tuple[pafs.FileSystem, str]:
    """(filesystem, the sweep's folder) of sweep ``sweep_id`` under ``results``."""
    fs, root = open_location(results)
    return fs, paths.sweep_dir(root, sweep_id)


def local_root(results: str) -> str | None:
    """The local folder of ``results``; None for a remote location (``s3://...``)."""
    return None if is_remote(results) else canonical_location(results)


def tune_storage(results: str, sweep_id: str) -> tuple[str, pafs.FileSystem | None]:
    """Ray Tune's ``storage_path`` and ``storage_filesystem`` for the sweep's ``_tune`` folder: a local path
    and None (Tune's own local filesystem), else the path on the location's filesystem."""
    if not is_remote(results):
        return os.path.join(canonical_location(results), sweep_id, paths.TUNE_DIR), None
    fs, sweep_dir = open_sweep(results, sweep_id)
    return paths.tune_dir(sweep_dir), fs
