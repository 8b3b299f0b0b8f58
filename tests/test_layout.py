"""The results layout's one owner, ``layout``: below ``trainers`` and ``analysis`` (it imports neither, nor
the orchestrator, torch or DuckDB), sweep.json read and written once, the names on disk, and one rule for "the
latest sweep of a name" that the CLI's resolver and the notebook API share. Real Parquet in tmp_path, real DuckDB."""
from __future__ import annotations

import ast
import datetime as dt
import json
import pathlib
import subprocess
import sys

import pyarrow.fs as pafs
import pytest

import analysis
from analysis.db import resolve_sweep
from layout import paths, sweep_json
from layout.damage import DamagedFile
from layout.location import open_location, open_sweep
from layout.sweeps import latest, order
from trainers.record import TrialWriter

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "layout"
FORBIDDEN = ("trainers", "analysis", "orchestrator", "torch", "duckdb", "ray", "optuna")


def test_layout_imports_only_pyarrow_and_the_standard_library():
    for path in PACKAGE.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                mods = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                mods = [node.module or ""] if node.level == 0 else []  # relative: layout's own modules
            else:
                continue
            for m in mods:
                top = m.split(".")[0]
                assert top == "pyarrow" or top == "__future__" or top == "layout" or top in sys.stdlib_module_names, \
                    (path.name, m)


@pytest.mark.slow
def test_importing_every_layout_module_loads_no_trainers_analysis_orchestrator_torch_or_duckdb():
    """In a fresh interpreter: import every module of ``layout``, then look at ``sys.modules``."""
    modules = sorted(p.stem for p in PACKAGE.glob("*.py") if p.stem != "__init__")
    assert {"location", "paths", "sweep_json", "tables", "schemas", "sweeps"} <= set(modules)
    code = (f"import importlib, sys\nfor m in {modules!r}:\n    importlib.import_module('layout.' + m)\n"
            f"print(sorted(m for m in sys.modules if m.split('.')[0] in {FORBIDDEN!r}))\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]", r.stdout


def test_sweep_json_round_trip_atomic_and_damage_named(tmp_path):
    fs, sweep_dir = open_sweep(str(tmp_path), "S")
    assert not sweep_json.exists(fs, sweep_dir) and sweep_json.read_or_none(fs, sweep_dir) is None
    with pytest.raises(FileNotFoundError):
        sweep_json.read(fs, sweep_dir)
    meta = {"sweep_id": "S", "name": "n", "spec": {"name": "n"}, "tags": ["b", "a"]}
    sweep_json.write(fs, sweep_dir, meta)
    path = tmp_path / "S" / "sweep.json"
    assert path.read_text() == json.dumps(meta, indent=2, sort_keys=True)
    assert sweep_json.read(fs, sweep_dir, need_spec=True) == meta == sweep_json.read_or_none(fs, sweep_dir)
    assert [p.name for p in (tmp_path / "S").iterdir()] == ["sweep.json"]  # no temporary left behind

    path.write_text("{bad")
    with pytest.raises(DamagedFile, match=r"sweep\.json: not valid JSON \(") as e:
        sweep_json.read(fs, sweep_dir)
    assert e.value.path == f"{sweep_dir}/sweep.json" and "\n" not in str(e.value)
    assert sweep_json.read_or_none(fs, sweep_dir) is None  # a listing shows what it can
    path.write_text(json.dumps({"name": "n"}))  # an object without a spec: enough for a listing, not for resume
    assert sweep_json.read(fs, sweep_dir) == {"name": "n"}
    with pytest.raises(DamagedFile, match="not a sweep file \\(no spec object\\)"):
        sweep_json.read(fs, sweep_dir, need_spec=True)
    path.write_text("[1, 2]")
    with pytest.raises(DamagedFile, match="not a JSON object"):
        sweep_json.read(fs, sweep_dir)
    assert sweep_json.read_or_none(fs, sweep_dir) is None


def test_the_writer_puts_its_files_where_paths_names_them(tmp_path):
    w = TrialWriter(str(tmp_path), "S", "t0", flush_rows=2)
    w.extend("steps", {"step": [1, 2], "loss": [1.0, 0.5]})  # a part per 2 rows
    w.extend("steps", {"step": [3, 4], "loss": [0.25, 0.125]})
    w.write_trial({"status": "running"})
    w.save_checkpoint(b"state")
    fs, root = open_location(str(tmp_path))
    sweep_dir = paths.sweep_dir(root, "S")
    steps = paths.trial_dir(sweep_dir, "steps", "t0")
    assert sorted(f.base_name for f in fs.get_file_info(pafs.FileSelector(steps))) == [paths.part_name(0),
                                                                                      paths.part_name(1)]
    assert paths.part_number(paths.part_name(1)) == 1 and paths.trial_of(f"{steps}/{paths.part_name(1)}") == "t0"
    assert (tmp_path / "S" / "trials" / "trial_id=t0" / paths.TRIAL_ROW_FILE).is_file()
    assert w.checkpoint_path() == paths.checkpoint_file(sweep_dir, "t0")
    assert (tmp_path / "S" / "_checkpoints" / "t0.pt").read_bytes() == b"state"
    assert paths.searcher_file(sweep_dir) == f"{sweep_dir}/_tune/searcher.pkl"
    assert paths.lease_file(sweep_dir) == f"{sweep_dir}/_lease" and paths.stop_file(sweep_dir) == f"{sweep_dir}/_stop"


def test_latest_is_by_created_at_then_id():
    sweeps = [{"sweep_id": "b", "name": "n", "created_at": "2026-01-02T00:00:00+00:00"},
              {"sweep_id": "c", "name": "n", "created_at": "2026-01-01T00:00:00"},  # no zone: UTC
              {"sweep_id": "a", "name": "n", "created_at": "2026-01-02T00:00:00+00:00"},
              {"sweep_id": "z", "name": "n", "created_at": None},  # unreadable: before all others
              {"sweep_id": "n", "name": "other", "created_at": None}]
    assert latest(sweeps, "n")["sweep_id"] == "n"  # an id first, whatever the names say
    assert latest(sweeps, "other")["sweep_id"] == "n"
    assert latest([s for s in sweeps if s["sweep_id"] != "n"], "n")["sweep_id"] == "b"  # ties: the larger id
    assert latest(sweeps, "nope") is None
    assert [s["sweep_id"] for s in sorted(sweeps, key=order)] == ["n", "z", "c", "a", "b"]


def test_the_cli_resolver_and_the_api_agree_on_the_latest_sweep(tmp_path):
    """Two sweeps of one name whose trials started in the other order than the sweeps were created (a resumed
    old sweep): both resolvers take the sweep created last (they used to disagree: the API went by
    ``min(started_at)``)."""
    t0 = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    for sid, created, started in (("old", t0, t0 + dt.timedelta(days=5)), ("new", t0 + dt.timedelta(days=1), t0)):
        fs, sweep_dir = open_sweep(str(tmp_path), sid)
        sweep_json.write(fs, sweep_dir, {"sweep_id": sid, "name": "hand", "created_at": created.isoformat()})
        TrialWriter(str(tmp_path), sid, "t0").write_trial(dict(sweep="hand", stage="seed", status="completed",
                                                               started_at=started))
    assert resolve_sweep(str(tmp_path), "hand")["sweep_id"] == "new"
    con = analysis.connect(str(tmp_path))
    assert analysis.sweep_id(con, "hand") == "new" == analysis.sweep_id(str(tmp_path), "hand")
    assert analysis.sweep_id(con, "old") == "old"
    assert list(analysis.trials(con, sweep="hand")["sweep_id"]) == ["new"]
    with pytest.raises(analysis.AnalysisError, match="no sweep with id or name 'nope'; available: .*old"):
        analysis.sweep_id(con, "nope")


def test_sweep_report_lists_the_results_location_once(tmp_path, monkeypatch):
    """`sweep report` opens the views once (each opening lists every file under the location) and resolves the
    sweep on them; it used to list the location twice."""
    import analysis.db
    import analysis.report

    fs, sweep_dir = open_sweep(str(tmp_path), "S")
    sweep_json.write(fs, sweep_dir, {"sweep_id": "S", "name": "hand", "created_at": "2026-01-01T00:00:00+00:00"})
    TrialWriter(str(tmp_path), "S", "t0").write_trial(dict(sweep="hand", stage="seed", status="completed"))
    opened = []
    real = analysis.db.connect

    def counted(*args, **kwargs):
        opened.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(analysis.db, "connect", counted)
    monkeypatch.setattr(analysis.report, "connect", counted)
    done = analysis.report.report(str(tmp_path), "hand", out=str(tmp_path / "out"))
    assert [pathlib.Path(p).name for p in done.paths] == ["index.md", "report.html"]
    assert opened == [(str(tmp_path),)]


def test_read_rows_reads_each_file_as_a_dataset_with_the_schema_would(tmp_path):
    """``layout.tables.read_rows`` (one ``pq.ParquetFile`` per file, no pandas) against its reference, a
    ``pyarrow.dataset`` with the table's schema: a file written before a column existed (null there), one whose
    column has a narrower type (cast), one with a column the schema lacks (dropped); every column, a subset, a
    filter. A file that is not Parquet is named in a DamagedFile; a missing one stays pyarrow's own error."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.dataset as pads
    import pyarrow.parquet as pq

    from layout.schemas import SCHEMAS
    from layout.tables import read_rows

    fs = pafs.LocalFileSystem()
    schema = SCHEMAS["steps"]
    full = {"sweep_id": ["S"] * 3, "trial_id": ["a", "a", "b"], "step": [1, 2, 3], "loss": [0.5, None, 0.25],
            "metric": [0.1, 0.2, 0.3], "lr": [1e-3] * 3, "grad_norm": [1.0, 2.0, float("inf")],
            "clipped": [False, True, None], "wall_s": [0.1, 0.2, 0.3]}
    files = [str(tmp_path / f"{name}.parquet") for name in ("full", "old", "narrow", "extra")]
    pq.write_table(pa.table(full, schema=schema), files[0])
    pq.write_table(pa.table({k: v for k, v in full.items() if k not in ("grad_norm", "clipped")}), files[1])
    pq.write_table(pa.table(dict(full, step=pa.array([4, 5, 6], pa.int16()), loss=pa.array([1.0, 2.0, 3.0],
                                                                                           pa.float32()))), files[2])
    pq.write_table(pa.table(dict(full, note=["x", "y", "z"])), files[3])
    reference = pads.dataset(files, schema=schema, format="parquet", filesystem=fs)

    got = read_rows(fs, files, "steps")
    assert got.schema.equals(schema) and got.num_rows == 12
    assert got.equals(reference.to_table())
    assert got.column("grad_norm").to_pylist()[3:6] == [None] * 3  # the old file: null where it had no column
    assert read_rows(fs, files, "steps", columns=["loss", "trial_id"]).equals(
        reference.to_table(columns=["loss", "trial_id"]))
    only_b = pc.field("trial_id") == "b"
    assert read_rows(fs, files, "steps", filter=only_b).equals(reference.to_table(filter=only_b))
    assert read_rows(fs, [], "steps").equals(schema.empty_table())

    junk = tmp_path / "junk.parquet"
    junk.write_bytes(b"junk junk junk")
    with pytest.raises(DamagedFile, match=f"^{junk}: not a readable Parquet file"):
        read_rows(fs, [files[0], str(junk)], "steps")
    with pytest.raises(FileNotFoundError):
        read_rows(fs, [str(tmp_path / "gone.parquet")], "steps")
