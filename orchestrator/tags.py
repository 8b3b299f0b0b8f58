"""Tags and a note on a sweep, in its sweep.json: `sweep launch --tag T --note TEXT`, `sweep tag ID T...`,
listed by `sweep ls`, shown in the report and returned by ``analysis.sweeps``.
"""
from __future__ import annotations

import re

from analysis.db import resolve_sweep
from layout import sweep_json
from layout.damage import DamagedFile
from layout.location import open_sweep
from layout.paths import SWEEP_FILE

from .spec import UserError

TAG_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:+-]*")


def check_tags(tags: list[str]) -> list[str]:
    """The tags, in order, each once; UserError naming a bad one (letters, digits and ``_ . : + -``)."""
    for t in tags:
        if not TAG_RE.fullmatch(t):
            raise UserError(f"invalid tag {t!r}; valid: letters, digits and _ . : + - (not first), e.g. baseline")
    return list(dict.fromkeys(tags))


def retag(results: str, target: str, add: list[str], remove: list[str], note: str | None) -> dict:
    """Add and remove tags of sweep ``target`` (an id, or a name: its latest), set its note when ``note`` is
    given ("" clears it); returns its sweep.json as written."""
    sid = resolve_sweep(results, target)["sweep_id"]
    fs, sweep_dir = open_sweep(results, sid)
    try:
        meta = sweep_json.read(fs, sweep_dir)
    except (OSError, DamagedFile) as e:
        raise UserError(f"sweep {sid!r} has no readable {SWEEP_FILE} ({e}); cannot tag it") from None
    drop = set(check_tags(remove))
    meta["tags"] = [t for t in check_tags(list(meta.get("tags") or []) + add) if t not in drop]
    if note is not None:
        meta["note"] = note or None
    sweep_json.write(fs, sweep_dir, meta)
    return meta
