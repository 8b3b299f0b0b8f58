"""``--out FILE`` checked before any work: its folder must exist and it must not be a folder itself."""
from __future__ import annotations

import os

from .spec import UserError


def check_out_file(out: str) -> None:
    if os.path.isdir(out):
        raise UserError(f"--out {out}: is a directory; give a file name (e.g. {os.path.join(out, 'out.csv')})")
    parent = os.path.dirname(os.path.abspath(out))
    if not os.path.isdir(parent):
        raise UserError(f"--out {out}: no such folder {parent}; create it first")
