"""A damaged checkpoint a trial meets, named instead of crashing: the trial then starts again from step 0, its
later rows dropped. (The layout's own damaged files, copied parts and unreadable Parquet: ``layout.damage``.)
"""
from __future__ import annotations

import io
import logging

log = logging.getLogger("trainers")


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
