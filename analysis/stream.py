"""`sweep query` output streamed: the result is read from DuckDB in batches and written as it comes, to the
terminal or to ``--out``, so memory stays bounded whatever the result's size (``SELECT * FROM range(10^7)``
held 4.7 GB when rendered whole). ``table`` aligns each batch of ``BATCH_ROWS`` rows on its own (the header once);
``csv`` and ``json`` are byte for byte what ``analysis.db.query`` renders whole.
"""
from __future__ import annotations

from typing import Iterator

import duckdb
import pyarrow as pa

from .db import FORMATS, connect, to_csv, to_json, to_text
from .errors import AnalysisError

BATCH_ROWS = 65536


def batches(results: str, sql: str, sweep: str | None = None) -> Iterator[pa.Table]:
    """The result of ``sql`` (one statement) over the views, as tables of up to BATCH_ROWS rows; none for a
    statement that returns nothing."""
    con = connect(results, sweep)
    try:
        if len(con.extract_statements(sql)) > 1:
            raise AnalysisError("several SQL statements in one query; run them one at a time")
        rel = con.sql(sql)
        if rel is None:
            return
        reader = rel.fetch_record_batch(BATCH_ROWS)
        schema = reader.schema
        empty = True
        for batch in reader:
            empty = False
            yield pa.Table.from_batches([batch], schema)
        if empty:
            yield schema.empty_table()
    except duckdb.Error as e:
        lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
        raise AnalysisError(f"query failed: {lines[0] if lines else type(e).__name__}") from None


def render(results: str, sql: str, fmt: str = "table", sweep: str | None = None) -> Iterator[str]:
    """The rendered result in pieces, in ``fmt`` (``analysis.db.FORMATS``)."""
    if fmt not in FORMATS:
        raise AnalysisError(f"unknown format {fmt!r}; valid formats: {', '.join(FORMATS)}")
    n, first = 0, True
    for tbl in batches(results, sql, sweep):
        if fmt == "csv":
            text = to_csv(tbl)
            yield text if first else text.split("\n", 1)[1]
        elif fmt == "json":
            body = to_json(tbl)
            if tbl.num_rows:
                rows = body[2:-3]  # between "[\n" and "\n]\n"
                yield ("[\n" if n == 0 else ",\n") + rows
        else:
            text = to_text(tbl).rsplit("\n", 2)[0] + "\n"  # less the row-count line
            yield text if first else text.split("\n", 2)[2]
        n += tbl.num_rows
        first = False
    if first:  # a statement with no result
        yield "OK\n" if fmt == "table" else ""
    elif fmt == "json":
        yield "\n]\n" if n else "[]\n"
    elif fmt == "table":
        yield f"({n} row{'s' if n != 1 else ''})\n"
