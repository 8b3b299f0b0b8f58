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


def copied_parts(fs: pafs.FileSystem, parts: list[tuple[str, str, int]]) -> dict[str, str]:
    """{path of a part: the earlier part of the same trial it copies}, from ``(path, trial_id, size)`` as a
    listing gives them: a copy of a real part saved under another part number (same size, and the same rows by
    its footer: row count and every column chunk's statistics). Only parts of one trial with equal sizes are
    opened, so the usual case costs nothing beyond the listing. Each copy is named in a warning; readers and
    ``sweep compact`` then never read it (``record.table_files`` lists it as foreign)."""
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
    """Raise DamagedFile naming a copied part among a table's foreign files (``record.table_files``): a file
    named like a part that is not read can only be one. ``sweep compact`` refuses to run while one is there:
    once the part it copies is merged away, it would read as new rows."""
    for path in foreign:
        if "/trial_id=" in path and part_number(path.rsplit("/", 1)[-1]) is not None:
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
