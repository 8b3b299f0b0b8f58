"""What a sweep's probes cost, for ``sweep show``'s estimate: calls per trial x one call's cost in training steps of
the same trial (measured by ``bench/probes.py --write`` into ``orchestrator/probe_rates.json``) x the group's
seconds per step (``orchestrator.cost``).

A probe runs in the seed stage only (search trials run without probes), at step 0 when ``at_init``, every
``every`` steps and after the last step when ``at_end`` (``trainers.probes.base.Probe.due``; every probe keeps
the base defaults every=0, at_init=true, at_end=true). A (probe, cell, depth) never measured takes the same
probe's nearest measured depth of the same cell, else its largest ratio over the cells measured (a
conservative guess: gated cells' Hessians are the slow ones), and says so. Parsed here from the spec strings,
without importing the probe registry (no torch: `sweep show` stays light).
"""
from __future__ import annotations

import json
from pathlib import Path

from trainers.probe_spec import ProbeSpec

PROBE_RATES = Path(__file__).with_name("probe_rates.json")
DEFAULTS = {"every": 0, "at_init": True, "at_end": True}


def read(path: Path | str = PROBE_RATES) -> dict:
    """{"measured": [how], "ratios": [{"probe", "cell", "depth", "ratio"}]}; empty when never measured."""
    path = Path(path)
    return json.loads(path.read_text()) if path.exists() else {"measured": [], "ratios": []}


def write(ratios: list[dict], how: dict, path: Path | str = PROBE_RATES) -> None:
    """Merge measured ``ratios`` into the file (the same probe, cell and depth is replaced)."""
    old = read(path)
    key = lambda r: (r["probe"], r["cell"], r["depth"])  # noqa: E731
    new = {key(r): r for r in ratios}
    merged = sorted([r for r in old["ratios"] if key(r) not in new] + list(new.values()), key=key)
    lines = ",\n".join("  " + json.dumps(r) for r in merged)
    measured = json.dumps([*old["measured"], how], indent=1)
    Path(path).write_text(f'{{"measured": {measured},\n "ratios": [\n{lines}\n]}}\n')


def calls(entry: ProbeSpec | str, steps: int) -> int:
    """How many times the probe ``entry`` (a record, or its text "name[:key=value...]") runs in a trial of
    ``steps`` steps."""
    opts = dict(DEFAULTS)
    for k, v in ProbeSpec.from_native(entry).options:
        if k in opts and v is not None:
            opts[k] = int(v) if k == "every" else v.strip().lower() in ("1", "true", "yes", "on")
    n = int(opts["at_init"])
    if steps > 0:
        every = opts["every"]
        n += steps // every if every else 0
        n += int(opts["at_end"] and not (every and steps % every == 0))
    return n


def ratio(ratios: list[dict], probe: str, cell: str, depth: int) -> tuple[float, str]:
    """One call of ``probe`` in training steps of a (cell, depth) trial, and how it was found."""
    same = [r for r in ratios if r["probe"] == probe]
    mine = [r for r in same if r["cell"] == cell]
    if mine:
        best = min(mine, key=lambda r: abs(r["depth"] - depth))
        return best["ratio"], "measured" if best["depth"] == depth else "other depth"
    if same:
        return max(r["ratio"] for r in same), "other cell"
    return 0.0, "never measured"


def trial_probe_s(probes: tuple[ProbeSpec, ...], steps: int, cell: str, depth: int, step_s: float,
                  ratios: list[dict]) -> tuple[float, set[str]]:
    """Seconds a seed trial spends in its probes, and the probes whose ratio was not measured for its cell."""
    total, guessed = 0.0, set()
    for entry in probes:
        name = entry.name
        r, how = ratio(ratios, name, cell, depth)
        total += calls(entry, steps) * r * step_s
        if how in ("other cell", "never measured"):
            guessed.add(f"{name}:{cell}" + (" (never measured)" if how == "never measured" else ""))
    return total, guessed
