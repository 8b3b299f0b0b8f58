"""A sweep's ``sweep.json`` (``<sweep>/sweep.json``): the sweep's spec, status, resources, provenance, tags and
note, as one JSON object. Written whole and atomically (``write``); read strictly where the file must be
sound (a damaged one is named in one line, ``<file>: <what is wrong>``: ``read``), or leniently where a
listing only shows what it can (``read_or_none``)."""
from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.fs as pafs

from . import paths
from .damage import DamagedFile
from .files import write_atomic


def exists(fs: pafs.FileSystem, sweep_dir: str) -> bool:
    return fs.get_file_info(paths.sweep_file(sweep_dir)).type == pafs.FileType.File


def parse(path: str, data: bytes, need_spec: bool = False) -> dict:
    """The JSON object of a sweep.json's bytes (data only: a spec is rebuilt field by field by its reader);
    DamagedFile naming ``path`` when it is not one, or (``need_spec``) when it has no spec object."""
    try:
        meta = json.loads(data.decode())
    except ValueError as e:
        raise DamagedFile(path, f"not valid JSON ({e})") from None
    if need_spec and not (isinstance(meta, dict) and isinstance(meta.get("spec"), dict)):
        raise DamagedFile(path, "not a sweep file (no spec object)")
    if not isinstance(meta, dict):
        raise DamagedFile(path, "not a sweep file (not a JSON object)")
    return meta


def read(fs: pafs.FileSystem, sweep_dir: str, need_spec: bool = False) -> dict:
    """The sweep's sweep.json (``parse``); FileNotFoundError when it has none."""
    path = paths.sweep_file(sweep_dir)
    if not exists(fs, sweep_dir):
        raise FileNotFoundError(path)
    with fs.open_input_stream(path) as f:
        return parse(path, f.read(), need_spec)


def read_or_none(fs: pafs.FileSystem, sweep_dir: str) -> dict | None:
    """The sweep's sweep.json, or None when it has none or it cannot be read as a JSON object."""
    try:
        with fs.open_input_stream(paths.sweep_file(sweep_dir)) as f:
            return parse("", f.read())
    except (pa.ArrowException, OSError, DamagedFile):
        return None


def write(fs: pafs.FileSystem, sweep_dir: str, meta: dict) -> None:
    """Write (or replace) the sweep's sweep.json, atomically."""
    write_atomic(fs, paths.sweep_file(sweep_dir), json.dumps(meta, indent=2, sort_keys=True).encode())
