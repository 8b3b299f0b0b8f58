"""Environment faults of the results location (a full disk, an I/O error) said in one line by the driver.

They are not a trial's fault: a trial that meets one raises (``run_trial`` does not record it as ``failed``),
Tune retries it and then gives up (``gave_up``), and the sweep stays resumable: ``sweep resume`` retries
every trial that did not complete once space is freed.
"""
from __future__ import annotations

import errno

from .spec import UserError


class NoSpace(UserError):
    def __init__(self, results: str):
        super().__init__(f"no space left on {results}; free some space, then `sweep resume` retries every "
                         "trial that did not complete")


def is_no_space(e: BaseException) -> bool:
    """Whether ``e`` says a disk is full (an OSError with ENOSPC, or pyarrow's message for it)."""
    return (isinstance(e, OSError) and e.errno == errno.ENOSPC) or "No space left on device" in str(e)
