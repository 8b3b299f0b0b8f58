"""``--out FILE``: checked before any work (its folder must exist, it must not be a folder), written whole or not
at all (a temporary beside it, renamed at the end)."""
from __future__ import annotations

import os
import sys

from .spec import UserError


def check_out_file(out: str) -> None:
    if os.path.isdir(out):
        raise UserError(f"--out {out}: is a directory; give a file name (e.g. {os.path.join(out, 'out.csv')})")
    parent = os.path.dirname(os.path.abspath(out))
    if not os.path.isdir(parent):
        raise UserError(f"--out {out}: no such folder {parent}; create it first")


def write_streamed(out: str, pieces) -> None:
    """Write the text ``pieces`` to ``out`` as they come; ``out`` appears only once all of them are written."""
    tmp = f"{out}.{os.getpid()}.tmp"
    last = ""
    try:
        with open(tmp, "w") as f:
            for piece in pieces:
                f.write(piece)
                last = piece or last
            if not last.endswith("\n"):
                f.write("\n")
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def emit(pieces, out: str | None) -> None:
    """The text ``pieces`` to standard output (then an empty line), or to ``out`` (then ``wrote <out>``)."""
    if out:
        write_streamed(out, pieces)
        print(f"wrote {out}")
        return
    for piece in pieces:
        sys.stdout.write(piece)
    print()
