"""A trial's results location is where the sweep is now, never where it was: a sweep folder can be moved or
copied (``mv``, ``cp -a``) and resumed with ``--results NEW``.

A trial config carries ``results`` (the workers need it), so every stored config (the searcher's state, a
checkpoint's ``config_json``, a ``trials`` row's ``config_json``) may name an old location. ``relocate`` puts
the location given now into a config before a trial runs; ``same_config`` compares two configs as trials,
without their location, so a trial finished (or checkpointed) in the old folder counts as the same trial.
"""
from __future__ import annotations

import json

from .config import TrialConfig

LOCATION_FIELD = "results"


def relocate(trial: dict, results: str) -> dict:
    """A trial config (or a seed bundle ``{"trial_id", "members"}``) with ``results`` as its location."""
    if "members" in trial:
        return dict(trial, members=[relocate(m, results) for m in trial["members"]])
    return dict(trial, **{LOCATION_FIELD: results})


def same_config(stored_json: str | None, cfg: TrialConfig) -> bool:
    """Whether ``stored_json`` (a stored ``config_json``) is ``cfg``'s config, wherever either was stored."""
    if not stored_json:
        return False
    try:
        stored = json.loads(stored_json)
    except ValueError:
        return False
    now = json.loads(cfg.to_json())
    try:  # as a config now reads it (a config stored before a field was renamed is the same trial)
        stored = json.loads(TrialConfig.from_dict(stored).to_json())
    except (TypeError, ValueError, AttributeError):  # not a config (another version's fields, or not an object)
        return False
    stored.pop(LOCATION_FIELD, None)
    now.pop(LOCATION_FIELD, None)
    return stored == now
