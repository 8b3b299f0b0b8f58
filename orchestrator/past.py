"""`sweep show SWEEP_ID`: how a past sweep was run, from its sweep.json: its state, tags and note, the command
as typed and the one that reproduces it, the git commit, the versions, then its resolved spec as `sweep show`
prints it before a run (``orchestrator.show``)."""
from __future__ import annotations

import json

from analysis.db import resolve_sweep

from .show import describe
from .spec import Resources, SpecError, SweepSpec
from .specfile import Target


def past(results: str, target: str) -> str:
    """The text for sweep ``target`` (an id, or a name with no named sweep of that name: its latest)."""
    meta = resolve_sweep(results, target)
    git = meta.get("git")
    lines = [f"sweep {meta['sweep_id']} ({meta.get('status')}), created {meta.get('created_at')}",
             f"tags: {', '.join(meta.get('tags') or []) or '-'}" + (f"; note: {meta['note']}" if meta.get("note")
                                                                     else ""),
             f"command: {meta.get('command') or '(not recorded)'}" + (f"  (in {meta['cwd']})" if meta.get("cwd")
                                                                      else ""),
             f"reproduce: {meta.get('reproduce') or '(not recorded)'}",
             "git: " + (f"{git['commit']}{' (with uncommitted changes)' if git['dirty'] else ''}" if git
                        else "(not run from a checkout, or not recorded)"),
             "versions: " + (", ".join(f"{k} {v}" for k, v in (meta.get("versions") or {}).items())
                             or "(not recorded)")]
    if meta.get("spec_file"):
        lines.append(f"spec file: {meta['spec_file'].get('path')} (sha256 {meta.get('spec_file_sha256', '?')})")
    if meta.get("lrs"):
        lines.append("chosen rates: " + json.dumps(meta["lrs"]))
    try:
        spec = SweepSpec.from_dict(meta["spec"])
    except (KeyError, TypeError, SpecError):
        return "\n".join(lines + ["spec: (no readable spec in its sweep.json)"])
    res = meta.get("resources") or {}
    resources = Resources(**{k: v for k, v in res.items() if k in Resources.__dataclass_fields__})
    source = meta.get("spec_file")
    lines.append("")
    # the cells that bundled, as the sweep recorded them (no torch); an older sweep.json: as the cells are now
    lines.append(describe(Target(spec, resources, meta.get("base"), source), resources,
                          bundled_cells=meta.get("bundled_cells")))
    return "\n".join(lines)
