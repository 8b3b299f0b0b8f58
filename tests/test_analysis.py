"""Analysis: DuckDB views over real Parquet written by ``trainers.record.TrialWriter`` into tmp_path,
queried by real DuckDB; the curse-of-memory report checked against hand-computed means and errors."""
from __future__ import annotations

import ast
import csv
import io
import json
import math
import pathlib

import duckdb
import matplotlib.image
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from analysis import AnalysisError, connect
from analysis import db
from analysis.selection import DERIVED
from analysis.db import query, query_arrow, resolve_sweep, sweeps
from analysis.figures import FIGURES
from analysis.report import report
from layout.schemas import SCHEMAS
from trainers.record import TrialWriter

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


# ------------------------------------------------------------------------------------------- helpers
def write_sweep_json(results: pathlib.Path, sweep_id: str, name: str, created_at: str, scale="smoke"):
    d = results / sweep_id
    d.mkdir(parents=True, exist_ok=True)
    (d / "sweep.json").write_text(json.dumps({"sweep_id": sweep_id, "name": name, "scale": scale,
                                              "created_at": created_at, "spec": {"name": name}}))


def write_trial(results: pathlib.Path, sweep_id: str, trial_id: str, steps: int = 0, grad_norms: int = 0,
                **row) -> None:
    """One trial: ``steps`` rows of steps, ``grad_norms`` rows of grad_norms, and its trials row."""
    w = TrialWriter(str(results), sweep_id, trial_id, flush_rows=2)  # flush_rows=2: several part files
    for s in range(1, steps + 1):
        w.append("steps", {"step": s, "loss": 1.0 / s, "lr": 1e-3, "grad_norm": 0.5, "clipped": False,
                           "wall_s": 0.1 * s})
    for s in range(1, grad_norms + 1):
        w.append("grad_norms", {"step": s, "group": "layer1.recurrent", "norm": 2.0})
    w.flush()
    base = {"sweep": "curse-of-memory", "stage": "seed", "task": "teacher_student", "cell": "rnn",
            "depth": 1, "hidden": 8, "nu": 0.9, "seed": 0, "lr": 1e-3, "status": "completed",
            "final_loss": 0.1, "steps_done": steps}
    w.write_trial(dict(base, **row))


@pytest.fixture
def two_sweeps(tmp_path: pathlib.Path) -> pathlib.Path:
    """Sweep A (curse-of-memory, 3 trials with 5 steps each, 2 with grad norms); sweep B (other, 1 trial)."""
    r = tmp_path / "results"
    write_sweep_json(r, "A", "curse-of-memory", "2026-01-01T10:00:00+00:00")
    write_sweep_json(r, "B", "other", "2026-01-02T10:00:00+00:00")
    write_trial(r, "A", "a0", steps=5, grad_norms=3, seed=0, final_loss=0.25)
    write_trial(r, "A", "a1", steps=5, grad_norms=3, seed=1, final_loss=0.5)
    write_trial(r, "A", "a2", steps=5, seed=2, status="diverged", final_loss=float("nan"))
    write_trial(r, "B", "b0", steps=2, sweep="other", cell="lru", final_loss=0.125)
    return r


# --------------------------------------------------------------------------------------------- views
def test_views_exist_with_row_counts(two_sweeps):
    con = connect(str(two_sweeps))
    views = {r[0] for r in con.sql("SELECT view_name FROM duckdb_views() WHERE NOT internal").fetchall()}
    assert set(SCHEMAS) <= views
    # trials: 3 in A + 1 in B; steps: 3 * 5 + 2; grad_norms: 2 * 3
    assert con.sql("SELECT count(*) FROM trials").fetchall()[0][0] == 4
    assert con.sql("SELECT count(*) FROM steps").fetchall()[0][0] == 17
    assert con.sql("SELECT count(*) FROM grad_norms").fetchall()[0][0] == 6
    # each view has exactly the schema's columns, in order, with the schema's DuckDB types
    for table, schema in SCHEMAS.items():
        described = con.sql(f"DESCRIBE {table}").fetchall()
        expected = [str(t) for t in duckdb.connect().from_arrow(schema.empty_table()).types]
        extra = DERIVED.get(table, ())  # the view's derived columns (trials.selected) follow the schema's
        assert [r[0] for r in described] == schema.names + list(extra)
        assert [r[1] for r in described] == expected + ["BOOLEAN"] * len(extra)


def test_empty_table_view_has_schema_and_no_rows(tmp_path):
    r = tmp_path / "results"
    write_trial(r, "S", "t0", steps=3)  # no grad_norms rows: that table has no files at all
    assert not (r / "S" / "grad_norms").exists()
    con = connect(str(r))
    assert con.sql("SELECT count(*) FROM grad_norms").fetchall()[0][0] == 0
    described = con.sql("DESCRIBE grad_norms").fetchall()
    assert [(c[0], c[1]) for c in described] == [("sweep_id", "VARCHAR"), ("trial_id", "VARCHAR"),
                                                 ("step", "INTEGER"), ("group", "VARCHAR"), ("norm", "FLOAT")]
    # joins against the empty view work
    assert con.sql("SELECT count(*) FROM steps JOIN grad_norms USING (trial_id, step)").fetchall()[0][0] == 0


def test_trial_id_comes_from_rows_not_paths(tmp_path):
    # With hive partitioning on, DuckDB would read trial_id=007 from the path as the integer 7.
    r = tmp_path / "results"
    write_trial(r, "S", "007", steps=2)
    con = connect(str(r))
    assert con.sql("SELECT DISTINCT trial_id FROM steps").fetchall() == [("007",)]
    assert con.sql("SELECT trial_id FROM trials").fetchall() == [("007",)]
    assert con.sql("SELECT typeof(trial_id) FROM steps LIMIT 1").fetchall()[0][0] == "VARCHAR"


def test_temporaries_and_old_files_without_new_columns(tmp_path):
    r = tmp_path / "results"
    write_trial(r, "S", "t0", steps=2)
    # a temporary left by a killed writer: never read
    (r / "S" / "steps" / "trial_id=t0" / ".part-00009.parquet.deadbeef.tmp").write_bytes(b"garbage")
    # a file written before the `stage` column existed: the view still has it, as NULL
    old = SCHEMAS["trials"].remove(SCHEMAS["trials"].get_field_index("stage"))
    d = r / "S" / "trials" / "trial_id=old"
    d.mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist([{"sweep_id": "S", "trial_id": "old", "status": "completed"}],
                                        schema=old), d / "trial.parquet")
    con = connect(str(r))
    assert con.sql("SELECT count(*) FROM steps").fetchall()[0][0] == 2
    assert con.sql("SELECT trial_id, stage FROM trials ORDER BY trial_id").fetchall() == [
        ("old", None), ("t0", "seed")]


def test_queries_cannot_write_or_read_other_files(two_sweeps, tmp_path):
    target = two_sweeps / "A" / "steps" / "trial_id=a0" / "part-00000.parquet"
    before = target.read_bytes()
    for sql in (f"COPY (SELECT 1 AS x) TO '{target}'", f"COPY (SELECT 1 AS x) TO '{tmp_path}/new.parquet'",
                "SELECT * FROM read_csv('/etc/hostname')", f"ATTACH '{tmp_path}/x.db'",
                "SET enable_external_access = true"):
        with pytest.raises(AnalysisError, match="query failed"):
            query(str(two_sweeps), sql)
    assert target.read_bytes() == before and not (tmp_path / "new.parquet").exists()


def test_foreign_file_is_named_and_skipped(two_sweeps, caplog):
    expected = query_arrow(str(two_sweeps), "SELECT count(*) AS n FROM steps").to_pylist()
    foreign = two_sweeps / "A" / "steps" / "trial_id=a0" / "notes.parquet"
    pq.write_table(pa.table({"x": [1, 2, 3]}), foreign)
    (two_sweeps / "A" / "steps" / "README.txt").write_text("hello")
    with caplog.at_level("WARNING", logger="analysis"):
        n = query_arrow(str(two_sweeps), "SELECT count(*) AS n FROM steps").to_pylist()
    assert n == expected  # the foreign rows are not counted
    assert str(foreign) in caplog.text


def test_truncated_part_fails_naming_the_file(two_sweeps):
    part = two_sweeps / "A" / "steps" / "trial_id=a1" / "part-00001.parquet"
    part.write_bytes(part.read_bytes()[:40])
    with pytest.raises(AnalysisError) as e:
        query(str(two_sweeps), "SELECT sum(loss) FROM steps")
    assert str(part) in str(e.value) and "\n" not in str(e.value)


def test_two_sweeps_visible_and_separable(two_sweeps):
    con = connect(str(two_sweeps))
    assert con.sql("SELECT sweep_id, count(*) FROM trials GROUP BY 1 ORDER BY 1").fetchall() == [
        ("A", 3), ("B", 1)]
    assert con.sql("SELECT sweep_id, count(*) FROM steps GROUP BY 1 ORDER BY 1").fetchall() == [
        ("A", 15), ("B", 2)]
    assert con.sql("SELECT cell FROM trials WHERE sweep_id = 'B'").fetchall() == [("lru",)]


def test_missing_or_empty_results_dir(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(AnalysisError, match="sweep launch") as e:
        connect(str(missing))
    assert str(missing) in str(e.value)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(AnalysisError, match="sweep launch") as e:
        query(str(empty), "SELECT 1")
    assert str(empty) in str(e.value)


def test_sweep_with_only_sweep_json_connects(tmp_path):
    r = tmp_path / "results"
    write_sweep_json(r, "S", "curse-of-memory", "2026-01-01T00:00:00+00:00")
    assert query_arrow(str(r), "SELECT count(*) AS n FROM trials").to_pylist() == [{"n": 0}]
    [s] = sweeps(str(r))
    assert s["counts"] == {"running": 0, "completed": 0, "diverged": 0, "failed": 0, "pruned": 0}
    assert s["n_trials"] == 0


# ------------------------------------------------------------------------------------------- queries
SQL = "SELECT trial_id, seed, final_loss FROM trials WHERE sweep_id = 'A' ORDER BY trial_id"


def test_query_csv(two_sweeps):
    rows = list(csv.reader(io.StringIO(query(str(two_sweeps), SQL, "csv"))))
    assert rows[0] == ["trial_id", "seed", "final_loss"]
    assert rows[1:3] == [["a0", "0", "0.25"], ["a1", "1", "0.5"]]
    assert rows[3][:2] == ["a2", "2"] and math.isnan(float(rows[3][2]))


def test_query_json(two_sweeps):
    out = json.loads(query(str(two_sweeps), SQL, "json"))
    assert out == [{"trial_id": "a0", "seed": 0, "final_loss": 0.25},
                   {"trial_id": "a1", "seed": 1, "final_loss": 0.5},
                   {"trial_id": "a2", "seed": 2, "final_loss": None}]  # NaN -> null: valid JSON
    stamps = json.loads(query(str(two_sweeps), "SELECT TIMESTAMPTZ '2026-01-01 00:00:00+00' AS t, "
                                               "'inf'::DOUBLE AS x", "json"))
    assert stamps == [{"t": "2026-01-01T00:00:00+00:00", "x": None}]
    assert json.loads(query(str(two_sweeps), "SELECT * FROM trials WHERE false", "json")) == []


def test_query_table(two_sweeps):
    text = query(str(two_sweeps), SQL)
    lines = text.splitlines()
    assert lines[0].split() == ["trial_id", "seed", "final_loss"]
    assert [ln.split() for ln in lines[2:5]] == [["a0", "0", "0.25"], ["a1", "1", "0.5"], ["a2", "2", "nan"]]
    assert lines[-1] == "(3 rows)"
    # columns aligned: every value of the right-aligned final_loss column ends at the header's end
    assert len({len(ln) for ln in lines[:5]}) == 1


def test_query_arrow_types(two_sweeps):
    t = query_arrow(str(two_sweeps), "SELECT nu, depth, started_at FROM trials LIMIT 1")
    assert t.schema.field("nu").type == pa.float64() and t.schema.field("depth").type == pa.int32()
    assert pa.types.is_timestamp(t.schema.field("started_at").type)


def test_malformed_sql(two_sweeps):
    with pytest.raises(AnalysisError) as e:
        query(str(two_sweeps), "SELEC 1")
    msg = str(e.value)
    assert 'Parser Error: syntax error at or near "SELEC"' in msg and "\n" not in msg
    with pytest.raises(AnalysisError, match="Binder Error.*nope"):
        query(str(two_sweeps), "SELECT nope FROM trials")
    with pytest.raises(AnalysisError, match="Catalog Error.*no_such_table"):
        query(str(two_sweeps), "SELECT * FROM no_such_table")


def test_unknown_format(two_sweeps):
    with pytest.raises(AnalysisError, match="table, csv, json"):
        query(str(two_sweeps), "SELECT 1", "xml")


# -------------------------------------------------------------------------------------------- sweeps
def test_sweeps_and_resolve(tmp_path):
    r = tmp_path / "results"
    # written out of date order on purpose: sweeps() sorts by created_at
    write_sweep_json(r, "s-new", "curse-of-memory", "2026-03-01T00:00:00+00:00")
    write_sweep_json(r, "s-old", "curse-of-memory", "2026-01-01T00:00:00+00:00")
    write_sweep_json(r, "s-mid", "other", "2026-02-01T00:00:00+00:00")
    write_trial(r, "s-old", "t0", status="completed")
    write_trial(r, "s-old", "t1", status="diverged", final_loss=float("inf"))
    write_trial(r, "s-old", "t2", status="completed")
    write_trial(r, "s-new", "t0", status="running", final_loss=None)
    all_ = sweeps(str(r))
    assert [s["sweep_id"] for s in all_] == ["s-old", "s-mid", "s-new"]
    assert all_[0]["counts"] == {"running": 0, "completed": 2, "diverged": 1, "failed": 0, "pruned": 0}
    assert all_[0]["n_trials"] == 3 and all_[0]["scale"] == "smoke" and all_[0]["spec"] == {
        "name": "curse-of-memory"}
    assert all_[1]["counts"] == {"running": 0, "completed": 0, "diverged": 0, "failed": 0, "pruned": 0}
    assert all_[2]["counts"]["running"] == 1

    assert resolve_sweep(str(r), "s-old")["sweep_id"] == "s-old"  # by id
    assert resolve_sweep(str(r), "curse-of-memory")["sweep_id"] == "s-new"  # by name: the latest
    assert resolve_sweep(str(r), "other")["sweep_id"] == "s-mid"
    with pytest.raises(AnalysisError) as e:
        resolve_sweep(str(r), "nope")
    assert "nope" in str(e.value) and all(s in str(e.value) for s in ("s-old", "s-mid", "s-new"))


# ------------------------------------------------------------------------------------- curse of memory
# Seed-stage final losses, 3 seeds per (cell, nu0) at lr 1e-3 (depth 1). Hand-computed mean and standard
# error se = s / sqrt(n), s the sample standard deviation (n - 1 in the denominator):
#   rnn 0.5 : 0.001 0.002 0.003 -> mean 0.002, s = sqrt((1e-6 + 0 + 1e-6) / 2) = 0.001, se = 0.001/sqrt(3)
#   rnn 0.9 : 0.1 0.2 0.6       -> mean 0.3,   s = sqrt((.04 + .01 + .09) / 2) = sqrt(.07), se = sqrt(.07/3)
#   rnn 0.99: 4 6 (NaN, diverged) -> n = 2, mean 5, s = sqrt((1 + 1) / 1) = sqrt(2), se = sqrt(2)/sqrt(2) = 1
#   lru 0.5 : 1e-5 x 3          -> mean 1e-5, se 0
#   lru 0.9 : 1e-4 2e-4 3e-4    -> mean 2e-4, s = 1e-4, se = 1e-4/sqrt(3)
#   lru 0.99: 0.01 0.03 0.05    -> mean 0.03, s = sqrt((4e-4 + 0 + 4e-4) / 2) = 0.02, se = 0.02/sqrt(3)
# Decoys that must not count: rnn 0.5 also ran at lr 1e-2 with a worse mean (0.6), and an lr_search
# trial at rnn 0.99 with a tiny loss.
LOSSES = {("rnn", 0.5): [0.001, 0.002, 0.003], ("rnn", 0.9): [0.1, 0.2, 0.6],
          ("rnn", 0.99): [4.0, 6.0, float("nan")], ("lru", 0.5): [1e-5, 1e-5, 1e-5],
          ("lru", 0.9): [1e-4, 2e-4, 3e-4], ("lru", 0.99): [0.01, 0.03, 0.05]}
EXPECTED = {("rnn", 0.5): (3, 0, 0.002, 0.001 / math.sqrt(3)),
            ("rnn", 0.9): (3, 0, 0.3, math.sqrt(0.07 / 3)),
            ("rnn", 0.99): (3, 1, 5.0, 1.0),
            ("lru", 0.5): (3, 0, 1e-5, 0.0),
            ("lru", 0.9): (3, 0, 2e-4, 1e-4 / math.sqrt(3)),
            ("lru", 0.99): (3, 0, 0.03, 0.02 / math.sqrt(3))}


@pytest.fixture
def com_sweep(tmp_path) -> pathlib.Path:
    r = tmp_path / "results"
    write_sweep_json(r, "com-1", "curse-of-memory", "2026-01-01T00:00:00+00:00", scale="quick")
    n = 0
    for (cell, nu), losses in LOSSES.items():
        for seed, loss in enumerate(losses):
            status = "diverged" if math.isnan(loss) else "completed"
            write_trial(r, "com-1", f"t{n}", cell=cell, nu=nu, seed=seed, final_loss=loss, status=status)
            n += 1
    for seed, loss in enumerate([0.5, 0.6, 0.7]):
        write_trial(r, "com-1", f"t{n}", cell="rnn", nu=0.5, seed=seed, lr=1e-2, final_loss=loss)
        n += 1
    write_trial(r, "com-1", f"t{n}", cell="rnn", nu=0.99, stage="lr_search", lr=0.1, final_loss=1e-9)
    return r


def markdown_rows(text: str) -> dict[tuple[str, float], list[str]]:
    rows = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 8 and cells[0] in ("rnn", "lru"):
            rows[(cells[0], float(cells[2]))] = cells
    return rows


def test_curse_of_memory_report(com_sweep, tmp_path):
    paths = report(str(com_sweep), "curse-of-memory").paths
    out = com_sweep / "com-1" / "report"
    names = sorted(pathlib.Path(p).name for p in paths)
    assert names == ["curse-of-memory.md", "fig3a.png", "fig3b.png", "index.md", "lr_landscape.png", "report.html"]
    assert all(pathlib.Path(p).parent == out for p in paths)

    for png in ("fig3a.png", "fig3b.png"):
        data = (out / png).read_bytes()
        assert data[:8] == PNG_SIGNATURE and len(data) > 10_000
        img = matplotlib.image.imread(out / png)
        assert img.ndim == 3 and img.shape[0] > 300 and img.shape[1] > 300
        assert img[..., :3].std() > 0.05  # not a blank canvas

    md = (out / "curse-of-memory.md").read_text()
    assert "sweep launch curse-of-memory --scale quick" in md
    assert "| cell | depth | nu0 | lr | seeds | diverged | mean final loss | std err |" in md
    rows = markdown_rows(md)
    assert set(rows) == set(EXPECTED)
    for key, (seeds, diverged, mean, se) in EXPECTED.items():
        cell, depth, nu, lr, s, d, m, e = rows[key]
        assert (depth, lr, int(s), int(d)) == ("1", "0.001", seeds, diverged), key
        assert m == f"{mean:.4g}" and e == f"{se:.4g}", (key, m, e)
    # rows in the ablation order: rnn before lru, nu0 ascending within a cell
    order = [(c[0], float(c[2])) for c in (ln.strip("|").split("|") for ln in md.splitlines())
             if len(c) == 8 and c[0].strip() in ("rnn", "lru")]
    assert [(c.strip(), n) for c, n in order] == list(EXPECTED)

    index = (out / "index.md").read_text()
    assert "(fig3a.png)" in index and "(fig3b.png)" in index
    assert markdown_rows(index) == rows  # the table is included

    # --out elsewhere, and by sweep id
    other = tmp_path / "elsewhere"
    paths = report(str(com_sweep), "com-1", out=str(other)).paths
    assert sorted(pathlib.Path(p).name for p in paths) == names
    assert all(pathlib.Path(p).parent == other for p in paths)


def test_report_errors(tmp_path):
    r = tmp_path / "results"
    write_sweep_json(r, "x", "no-figures-here", "2026-01-01T00:00:00+00:00")
    # no figures: the indexes are still written, the reason is the note (tests/test_report_html.py reads them)
    assert "curse-of-memory" in report(str(r), "x").note  # lists the sweeps that have figures
    write_sweep_json(r, "y", "curse-of-memory", "2026-01-02T00:00:00+00:00")
    write_trial(r, "y", "t0", stage="lr_search")
    done = report(str(r), "curse-of-memory")
    assert "no finished seed-stage trials" in done.note
    assert [pathlib.Path(p).name for p in done.paths] == ["index.md", "report.html"]
    with pytest.raises(AnalysisError, match="no sweep with id or name 'zzz'"):
        report(str(r), "zzz")
    assert "curse-of-memory" in FIGURES


def test_analysis_imports_neither_trainers_nor_the_orchestrator():
    """``analysis`` reads the results through ``layout`` alone."""
    pkg = pathlib.Path(db.__file__).parent
    for path in pkg.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            mods = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            for m in mods:
                assert not m.startswith(("orchestrator", "trainers")), (path, m)


def test_glob_characters_in_results_path(tmp_path):
    # DuckDB globs cannot escape: a root such as `runs[1]` is read through an explicit file list
    r = tmp_path / "runs[1]*"
    write_trial(r, "S", "t0", steps=3)
    assert query_arrow(str(r), "SELECT count(*) AS n FROM steps").to_pylist() == [{"n": 3}]
