"""Damaged files of the results layout, named instead of crashing: a copy of a real part saved under another part
number (never read twice: named and dropped by readers, refused by ``sweep compact``), and any error from
reading the layout that names its file, as one line ``<file>: <what is wrong>``. (A damaged checkpoint is the
trainer's to judge: ``trainers.damage``.)
"""
from __future__ import annotations

import logging
import re
from collections import defaultdict

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from .paths import TRIAL_DIR_PREFIX, part_number

log = logging.getLogger("layout")


class DamagedFile(RuntimeError):
    """A file of the results layout that cannot be used as it is: ``str`` is ``<file>: <what is wrong>``."""

    def __init__(self, path: str, what: str):
        super().__init__(f"{path}: {what}")
        self.path, self.what = path, what


def copied_parts(fs: pafs.FileSystem, parts: list[tuple[str, str, int]]) -> dict[str, str]:
    """{path of a part: the earlier part of the same trial it copies}, from ``(path, trial_id, size)`` as a
    listing gives them: a copy of a real part saved under another part number (same size, and the same rows by
    its footer: row count and every column chunk's statistics). Only parts of one trial with equal sizes are
    opened, so the usual case costs nothing beyond the listing. Each copy is named in a warning; readers and
    ``sweep compact`` then never read it (``layout.tables.table_files`` lists it as foreign)."""
    groups: dict[tuple, list[str]] = defaultdict(list)
    for path, trial, size in parts:
        groups[(trial, size)].append(path)
    out = {}
    for paths in groups.values():
        if len(paths) < 2:
            continue
        seen: dict[tuple, str] = {}
        for path in sorted(paths):
            key = _fingerprint(fs, path)
            if key in seen:
                out[path] = seen[key]
                log.warning("skipping %s: a copy of %s (same trial, same rows)", path, seen[key])
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


def refuse_copies(foreign: tuple[str, ...]) -> None:
    """Raise DamagedFile naming a copied part among a table's foreign files (``layout.tables.table_files``): a file
    named like a part that is not read can only be one. ``sweep compact`` refuses to run while one is there:
    once the part it copies is merged away, it would read as new rows."""
    for path in foreign:
        if f"/{TRIAL_DIR_PREFIX}" in path and part_number(path.rsplit("/", 1)[-1]) is not None:
            raise DamagedFile(path, "a copy of another part of its trial (the same rows); remove it, then run "
                                    "`sweep compact` again")


_SOURCE = re.compile(r"(?:input source|Parquet file|file) '([^']+)':\s*(.*)", re.S)


def named_damage(e: BaseException) -> DamagedFile | None:
    """The DamagedFile an error from reading the layout (pyarrow, DuckDB over pyarrow) stands for, when its
    message names the file: ``<file>: <what is wrong>`` in one line; None for any other error."""
    if isinstance(e, DamagedFile):
        return e
    m = _SOURCE.search(str(e))
    if not m:
        return None
    what = m.group(2).strip().splitlines()[0] if m.group(2).strip() else type(e).__name__
    if "magic bytes not found" in what:
        what = "not a readable Parquet file (truncated or corrupted: no Parquet footer)"
    return DamagedFile(m.group(1), what.split(". ")[0].rstrip("."))
