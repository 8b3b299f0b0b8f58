"""Grid axes: the seven built-in ones (a plural field each: ``cells``, ``nus``, ...) and any per-trial field given
several values (``--set hidden=32,64``, ``--set batch=16,32``, a list in a spec file), kept in the spec's ``vary``
field as ``"field=v1,v2"`` entries. Every combination of the axes is one group; an axis that varies names the
group (``rnn-d1-nu0.9-hidden32``), and its value reaches each trial's config (and so the ``trials`` table: its
own column where there is one, e.g. ``hidden``, else ``config_json``). sweep.json records the axes that vary
(``axes``) for the report.

No torch and no Ray here.
"""
from __future__ import annotations

AXES = ("task", "cell", "depth", "nu", "seq_len", "clip", "layer_norm")  # built-in grid axes; field = axis + "s"

# Per-trial fields that can be an axis: each reaches TrialConfig under the same name. Not the learning-rate
# protocol's fields (lr, lr_*: the search picks rates), nor where or how often rows are written.
VARIABLE = ("hidden", "d_model", "block", "init", "teacher_hidden", "steps", "batch", "eval_batch", "optimizer",
            "schedule", "lr_min", "solve_every", "grad_norm_every", "probe_batch")


def entry(field: str, values: tuple) -> str:
    """The ``vary`` entry for ``field`` over ``values`` (already of the field's type)."""
    return f"{field}=" + ",".join(_text(v) for v in values)


def parse_entry(text: str, scalar) -> tuple[str, tuple]:
    """``"field=v1,v2"`` -> (field, typed values); ``scalar(field, text)`` parses one value."""
    field, _, values = text.partition("=")
    return field, tuple(scalar(field, v) for v in values.split(",") if v.strip())


def varied(vary: tuple[str, ...], scalar) -> list[tuple[str, tuple]]:
    """The extra axes of a spec, in the order given: [(field, values), ...]."""
    return [parse_entry(e, scalar) for e in vary]


def key_suffix(field: str, value) -> str:
    """How an extra axis names a group: ``-hidden32``, ``-lr_min1e-06``, ``-optimizersgd``."""
    return f"-{field}{_text(value)}"


def _text(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return f"{v:g}" if isinstance(v, float) else str(v)


def varying(grid: list[dict]) -> dict[str, list]:
    """The axes that vary over a spec's ``grid()`` groups, each with its values in grid order: recorded in
    sweep.json as ``axes`` for the report's filters (``analysis`` reads data, not this module)."""
    out: dict[str, list] = {}
    for g in grid:
        for k, v in g.items():
            if v not in out.setdefault(k, []):
                out[k].append(v)
    return {k: v for k, v in out.items() if len(v) > 1}
