"""A sweep id and its sweep.json as `sweep resume` takes them: the id names a folder under --results (never a
path out of it), and a damaged sweep.json is named in one line (`error: <file>: <what is wrong>`,
``layout.sweep_json.read(..., need_spec=True)``)."""
from __future__ import annotations

from .spec import SweepSpec, UserError


def check_sweep_id(sweep_id: str) -> None:
    if "/" in sweep_id or "\\" in sweep_id or sweep_id in ("", ".", ".."):
        raise UserError(f"invalid sweep id {sweep_id!r}: the name of a folder under --results (no '/' or '..'); "
                        "`sweep ls` lists them")


def spec_of(meta: dict, where: str) -> SweepSpec:
    """The validated spec of a sweep.json (``where`` names the file in the error)."""
    try:
        return SweepSpec.from_dict(meta["spec"]).validate()
    except (TypeError, ValueError) as e:
        raise UserError(f"{where}: invalid spec ({str(e).splitlines()[0]})") from None
