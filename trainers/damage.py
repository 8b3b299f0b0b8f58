"""Damaged files a trial or a reader meets, named instead of crashing: a truncated checkpoint (the trial then
starts again from step 0, its later rows dropped), a stray file in a table folder (skipped, with a warning that
names it), a copy of a real part saved under another part number (never read twice: named and dropped by
readers, refused by ``sweep compact``).
"""
from __future__ import annotations

import io
import logging
import re
from collections import defaultdict

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

log = logging.getLogger("trainers")
PART_FILE = re.compile(r"part-(\d{5})\.parquet")  # TrialWriter's part files: part-<n>.parquet, n = 0, 1, ...


class DamagedFile(RuntimeError):
    """A file of the results layout that cannot be used as it is: ``str`` is ``<file>: <what is wrong>``."""

    def __init__(self, path: str, what: str):
        super().__init__(f"{path}: {what}")
        self.path, self.what = path, what


def part_number(name: str) -> int | None:
    """The number of a part file's base name, None for any other name (a stray file)."""
    m = PART_FILE.fullmatch(name)
    return int(m.group(1)) if m else None


def read_checkpoint(data: bytes, path: str) -> dict | None:
    """A checkpoint's state (tensors and plain data only), or None with a warning naming the file when it is
    damaged (truncated, junk): the trial then restarts from step 0 and drops the rows it wrote (``restore``)."""
    import torch

    try:
        state = torch.load(io.BytesIO(data), weights_only=True)
    except Exception as e:  # torch raises RuntimeError, pickle's errors, EOFError ... on a damaged file
        log.warning("%s: damaged checkpoint (%s); the trial starts again from step 0", path,
                    str(e).splitlines()[0] if str(e) else type(e).__name__)
        return None
    if not isinstance(state, dict):
        log.warning("%s: not a checkpoint; the trial starts again from step 0", path)
        return None
    return state


def duplicate_parts(fs: pafs.FileSystem, parts: tuple[tuple[str, str], ...] | list) -> dict[str, str]:
    """{path of a part: the earlier part of the same trial it copies}: a copy of a real part saved under
    another part number (same size, same rows by its footer's row count and column statistics). Only parts of
    one trial with equal sizes are opened, so the usual case costs one listing."""
    if len(parts) < 2:
        return {}
    sizes = {i.path: i.size for i in fs.get_file_info([p for p, _ in parts])}
    groups: dict[tuple, list[str]] = defaultdict(list)
    for path, trial in parts:
        groups[(trial, sizes.get(path))].append(path)
    out = {}
    for paths in groups.values():
        if len(paths) < 2:
            continue
        seen: dict[tuple, str] = {}
        for path in sorted(paths):
            key = _fingerprint(fs, path)
            if key in seen:
                out[path] = seen[key]
            else:
                seen[key] = path
    return out


def _fingerprint(fs: pafs.FileSystem, path: str) -> tuple:
    """A part's rows as its footer describes them: row count and each column chunk's statistics."""
    try:
        meta = pq.read_metadata(path, filesystem=fs)
    except (pa.ArrowException, OSError) as e:
        raise DamagedFile(path, f"not a readable Parquet file ({str(e).splitlines()[0]})") from None
    stats = []
    for g in range(meta.num_row_groups):
        rg = meta.row_group(g)
        for c in range(rg.num_columns):
            s = rg.column(c).statistics
            stats.append((rg.num_rows, s.min, s.max, s.null_count) if s is not None and s.has_min_max else
                         (rg.num_rows, rg.column(c).total_compressed_size))
    return meta.num_rows, tuple(stats)


def without_duplicates(fs: pafs.FileSystem, parts: tuple[tuple[str, str], ...]) -> tuple[tuple[str, str], ...]:
    """``parts`` less the copies (``duplicate_parts``), each named in a warning: what a query reads."""
    dups = duplicate_parts(fs, parts)
    for path, original in dups.items():
        log.warning("skipping %s: a copy of %s (same trial, same rows)", path, original)
    return tuple(p for p in parts if p[0] not in dups)


def refuse_duplicates(fs: pafs.FileSystem, parts: tuple[tuple[str, str], ...]) -> None:
    """Raise DamagedFile naming the first copy among ``parts`` (what ``sweep compact`` does: it makes rows final)."""
    for path, original in duplicate_parts(fs, parts).items():
        raise DamagedFile(path, f"a copy of {original} (same trial, same rows); remove it and compact again")
