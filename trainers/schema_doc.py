"""docs/schemas.md, generated from the table schemas so that it cannot drift from them.

    python -m trainers.schema_doc > docs/schemas.md

Renders every table of ``layout.schemas.SCHEMAS``, with the tables registered probes declare
(``Probe.schemas``; importing the probe registry adds them): its description, then per column the Arrow type
the files hold, the DuckDB type the views give and the column's description (``layout.schemas.col``).
tests/test_docs.py checks that the committed page equals this output. It lives in ``trainers``, not beside the
schemas in ``layout``: the probes' tables come from the probe registry.
"""
from __future__ import annotations

import duckdb
import pyarrow as pa

from . import probes  # noqa: F401  (importing the registry adds the probes' own tables to SCHEMAS)
from layout.schemas import DESCRIPTION, SCHEMAS

HEADER = """# Table schemas

Generated from the pyarrow schemas in `layout/schemas.py` (and the tables probes declare) by
`python -m trainers.schema_doc > docs/schemas.md`; do not edit by hand (`tests/test_docs.py` fails when this page
and the schemas differ).

Layout: `<results>/<sweep_id>/<table>/trial_id=<trial_id>/part-<n>.parquet` (the `trials` row:
`trial.parquet`). Each table is a DuckDB view of the same name (`sweep query`, `analysis.connect`) over every
sweep under the results location; every row carries `sweep_id` and `trial_id`, and per-step tables carry `step`.
Arrow types are what the Parquet files hold, DuckDB types what SQL sees.
"""


def description(obj: pa.Field | pa.Schema) -> str:
    """The description stored in a column's or a table's metadata ("" when there is none)."""
    return ((obj.metadata or {}).get(DESCRIPTION) or b"").decode()


def render(schemas: dict[str, pa.Schema] | None = None) -> str:
    """The Markdown page for ``schemas`` (default: every registered table, in SCHEMAS order)."""
    schemas = SCHEMAS if schemas is None else schemas
    con = duckdb.connect()
    out = [HEADER]
    out.append("Tables: " + ", ".join(f"[`{t}`](#{t.replace('_', '-')})" for t in schemas) + ".\n")
    for table, schema in schemas.items():
        out += [f"## {table}", "", description(schema), "",
                "| column | Arrow type | DuckDB type | description |", "| --- | --- | --- | --- |"]
        types = con.from_arrow(schema.empty_table()).types
        for field, duck in zip(schema, types):
            text = description(field).replace("|", "\\|")
            out.append(f"| `{field.name}` | {field.type} | {duck} | {text} |")
        out.append("")
    return "\n".join(out)


if __name__ == "__main__":
    print(render(), end="")
