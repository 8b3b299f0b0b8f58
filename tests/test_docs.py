"""The docs really work: docs/schemas.md is what the schemas generate; every example of docs/extending.md
(a cell, a task, a probe: one file plus its registry lines each) imports as the module it names, passes the
checks the built-in cells pass and runs in a real trial writing Parquet; every code block of docs/api.md runs,
in order, against real smoke-scale sweeps, and gives the frames and figures it describes."""
from __future__ import annotations

import math
import re
import sys
from pathlib import Path

import matplotlib
import pyarrow as pa
import pytest
import torch
from test_cells import check_fast_equals_stepwise, check_groups_partition, make_cell, make_stack

import analysis
import trainers.cells
import trainers.probes
import trainers.tasks
from orchestrator.sweeps import resolve
from trainers.build import build_model, fixed_batches
from trainers.bundle import run_bundle
from trainers.config import TrialConfig
from layout.schemas import DESCRIPTION, SCHEMAS, col, register_table, table_schema
from layout.tables import sweep_rows
from trainers.record import TrialWriter
from trainers.schema_doc import render
from trainers.train import run_trial

DOCS = Path(__file__).resolve().parent.parent / "docs"
REGISTRIES = {"trainers.cells": trainers.cells.CELLS, "trainers.tasks": trainers.tasks.TASKS,
              "trainers.probes": trainers.probes.PROBES}


def python_blocks(page: str) -> list[str]:
    """The ```python code blocks of a docs page, in order."""
    return re.findall(r"^```python\n(.*?)^```$", (DOCS / page).read_text(), flags=re.S | re.M)


# ---------------------------------------------------------------------------------------------- schemas.md
def test_schemas_doc_is_generated_from_the_schemas():
    assert (DOCS / "schemas.md").read_text() == render(), \
        "docs/schemas.md is stale: run `python -m trainers.schema_doc > docs/schemas.md`"


def test_every_table_and_column_has_a_description():
    for table, schema in SCHEMAS.items():
        assert (schema.metadata or {}).get(DESCRIPTION), f"table {table} has no description"
        missing = [f.name for f in schema if not (f.metadata or {}).get(DESCRIPTION)]
        assert not missing, f"{table}: columns without a description: {missing}"
        page = render({table: schema})
        assert all(f"| `{f.name}` |" in page for f in schema)


# -------------------------------------------------------------------------------------------- extending.md
@pytest.fixture(scope="module")
def extensions(tmp_path_factory):
    """The page's modules imported as the package modules their first line names (their file placed on the
    package's path), and the registry lines run: imports as written, ``"name": value,`` entries into the dict."""
    blocks = python_blocks("extending.md")
    registry_blocks = [b for b in blocks if b.split("\n", 1)[0].endswith("/__init__.py")]
    files = [b for b in blocks if b not in registry_blocks]
    assert len(files) == 3 and len(registry_blocks) == 3, "a cell, a task and a probe, each with its registry lines"
    root = tmp_path_factory.mktemp("extensions")
    added_modules = []
    with pytest.MonkeyPatch.context() as mp:
        for block in files:
            path = block.split("\n", 1)[0].removeprefix("# ").strip()  # trainers/cells/igrnn.py
            package, module = path.removesuffix(".py").rsplit("/", 1)
            target = root / package / f"{module}.py"
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(block)
            pkg = sys.modules[package.replace("/", ".")]
            mp.setattr(pkg, "__path__", [*pkg.__path__, str(target.parent)])
            added_modules.append(f"{pkg.__name__}.{module}")
        for block in registry_blocks:
            package = block.split("\n", 1)[0].removeprefix("# ").strip().removesuffix("/__init__.py").replace("/", ".")
            scope = {"__name__": package, "__package__": package}
            for line in block.splitlines()[1:]:
                code = line.split("  #")[0].strip()
                if code.startswith(("from ", "import ")):
                    exec(code, scope)  # noqa: S102 (the page's own import line, as the registry runs it)
                else:
                    for name, value in eval("{" + code + "}", scope).items():  # noqa: S307 (the page's entry)
                        mp.setitem(REGISTRIES[package], name, value)
        yield {name: REGISTRIES[p][name] for p, name in
               (("trainers.cells", "igrnn"), ("trainers.tasks", "adding"), ("trainers.probes", "state_norm"))}
    SCHEMAS.pop("state_norm", None)
    for m in added_modules:
        sys.modules.pop(m, None)


def test_example_cell_passes_the_built_in_cells_checks(extensions, one_thread):
    for d_in, d_out in [(1, 1), (2, 3)]:
        check_fast_equals_stepwise(make_cell("igrnn", d_in=d_in, d_out=d_out), d_in, d_out)
    for depth, layer_norm in [(1, False), (3, True)]:
        check_fast_equals_stepwise(make_stack("igrnn", depth, layer_norm), 2, 3)
    groups = check_groups_partition(make_cell("igrnn"))
    assert set(groups) == {"input", "recurrent", "output"}
    # one step against the docstring's equation, written out from the parameters
    cell = make_cell("igrnn", d_in=2, hidden=6, d_out=3)
    g = torch.Generator().manual_seed(5)
    h, x = torch.randn(4, 6, generator=g, dtype=torch.float64), torch.randn(4, 2, generator=g, dtype=torch.float64)
    W_in, b_in = cell.input.weight, cell.input.bias
    z = torch.sigmoid(x @ W_in[6:].T + b_in[6:])
    h_ref = z * h + (1 - z) * torch.tanh(x @ W_in[:6].T + b_in[:6] + h @ cell.recurrent.weight.T)
    h_new, y = cell.step(h, x)
    torch.testing.assert_close(h_new, h_ref, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(y, h_ref @ cell.readout.weight.T, rtol=1e-12, atol=1e-12)
    # the ring init: zero input keeps the fraction u ~ U[r_min, r_max] = U[0.9, 1] (clamped to 0.99) per step
    keep = torch.sigmoid(b_in[6:])
    assert torch.all((keep >= 0.9 - 1e-9) & (keep <= 0.99 + 1e-9))
    resolve("curse-of-memory", "smoke", ["cells=igrnn,lru"])  # the spec validation knows it


def test_example_task_samples_the_adding_problem(extensions):
    task = trainers.tasks.task_class("adding")(20)
    x, y = task.sample(5000, torch.Generator().manual_seed(0))
    assert x.shape == (5000, 20, 2) and y.shape == (5000, 1)
    marks = x[..., 1]
    assert torch.all(marks.sum(1) == 2) and torch.all(marks[:, :10].sum(1) == 1)  # one mark in each half
    first = [float(x[i, marks[i] == 1, 0].sum()) for i in range(50)]  # the target, by another route
    torch.testing.assert_close(y[:50, 0], torch.tensor(first))
    # answering the mean 1 scores 0.5 Var(u1 + u2) = 0.5 * 2/12 = 1/12 (sd of the estimate ~ 0.0013 here)
    const = torch.ones(5000, 20, 1)
    assert abs(task.loss(const, y).item() - 1 / 12) < 0.006
    with pytest.raises(ValueError, match="seq_len >= 2"):
        trainers.tasks.task_class("adding")(1)


def test_example_task_cell_and_probe_run_in_a_trial(extensions, tmp_path, one_thread):
    cfg = TrialConfig(sweep="docs", sweep_id="docs-ext", trial_id="t0", results=str(tmp_path), task="adding",
                      cell="igrnn", hidden=8, nu=0.5, seq_len=20, steps=6, batch=8, eval_batch=32,
                      grad_norm_every=2, probes=("state_norm:every=3:every_t=2",), probe_batch=4, device="cpu",
                      lr=1e-2)
    summary = run_trial(cfg)
    assert summary["status"] == "completed" and summary["steps_done"] == 6, summary
    con = analysis.connect(str(tmp_path))
    steps = analysis.curve(con, "t0")
    assert list(steps["step"]) == [1, 2, 3, 4, 5, 6] and steps["loss"].notna().all()
    assert set(analysis.curve(con, "t0", "norm", table="grad_norms", by="group")["group"]) == {
        "layer1.input", "layer1.recurrent", "layer1.output"}
    rows = analysis.frame(con, "SELECT step, layer, t, rms FROM state_norm ORDER BY step, layer, t")
    assert sorted(set(rows["step"])) == [0, 3, 6] and set(rows["layer"]) == {1}
    assert list(rows[rows.step == 0]["t"]) == list(range(1, 21, 2))  # every_t = 2 from t = 1
    # step 0's rows against the hidden states of the same init, stepped by hand on the same probe batch
    task = trainers.tasks.task_class("adding").from_config(cfg)
    model = build_model(cfg, task, torch.device("cpu"))
    _, _, px, _ = fixed_batches(task, cfg, torch.device("cpu"), probing=True)
    cell, h, ref = model.layers[0], model.layers[0].init_state(4), []
    with torch.no_grad():
        for t in range(20):
            h, _ = cell.step(h, px[:, t])
            ref.append(math.sqrt(h.square().mean().item()))
    torch.testing.assert_close(torch.tensor(list(rows[rows.step == 0]["rms"])), torch.tensor(ref[::2]),
                               rtol=1e-5, atol=1e-7)
    # a notebook that never imported the probes: the table's view comes from the schema its files carry
    schema = SCHEMAS.pop("state_norm")
    try:
        again = analysis.frame(str(tmp_path), "SELECT step, layer, t, rms FROM state_norm ORDER BY step, layer, t")
        assert again.equals(rows)
    finally:
        SCHEMAS["state_norm"] = schema


def test_example_cell_trains_in_a_seed_bundle_as_solo(extensions, tmp_path, one_thread):
    """Its seeds train as one bundle (BATCHABLE by default): each seed's losses and probe rows equal its solo run."""
    base = dict(sweep="docs", sweep_id="docs-bundle", results=str(tmp_path), task="adding", cell="igrnn", hidden=8,
                nu=0.5, seq_len=12, steps=4, batch=8, eval_batch=16, probes=("state_norm:every=2",), probe_batch=4,
                device="cpu", lr=1e-2)
    seeds = [TrialConfig(trial_id=f"b{s}", seed=s, **base) for s in (0, 1)]
    assert [r["status"] for r in run_bundle("bundle", seeds)] == ["completed"] * 2
    for s in (0, 1):
        run_trial(TrialConfig(trial_id=f"solo{s}", seed=s, **base))
    con = analysis.connect(str(tmp_path))
    for s in (0, 1):
        for value, sql in (("loss", "SELECT loss FROM steps WHERE trial_id = ? ORDER BY step"),
                           ("rms", "SELECT rms FROM state_norm WHERE trial_id = ? ORDER BY step, layer, t")):
            bundled, solo = (analysis.frame(con, sql, [tid])[value] for tid in (f"b{s}", f"solo{s}"))
            assert len(bundled) == len(solo) > 0
            torch.testing.assert_close(torch.tensor(bundled.values), torch.tensor(solo.values), rtol=1e-4, atol=1e-6)


def test_a_table_registered_after_the_writer_opened_restores_like_the_others(tmp_path):
    """A probe's table joins SCHEMAS when the probe is built, after the trial's writer exists: its first row
    applies the restored checkpoint to it (parts written after the checkpoint go), as for the other tables."""
    schema = table_schema("a test table", col("step", pa.int32(), "the step"))
    register_table("late", schema)
    try:
        first = TrialWriter(str(tmp_path), "s", "t0", flush_rows=10**6)
        for step in (1, 2, 3):  # parts 0, 1, 2
            first.extend("late", {"step": [step]})
            first.flush()
        SCHEMAS.pop("late")  # a fresh process: the probe not built yet
        again = TrialWriter(str(tmp_path), "s", "t0", flush_rows=10**6)
        again.restore({"late": 1})  # the checkpoint was taken after part 0
        register_table("late", schema)
        register_table("late", schema)  # the same schema again: a no-op
        again.extend("late", {"step": [20]})
        again.flush()
        assert sweep_rows(again.fs, again.base, "late").column("step").to_pylist() == [1, 20]
        with pytest.raises(ValueError, match="already declared with another schema"):
            register_table("late", table_schema("other", col("step", pa.int64(), "the step")))
        with pytest.raises(ValueError, match="table_schema"):
            register_table("bare", pa.schema([pa.field("step", pa.int32())]))
        with pytest.raises(KeyError, match="unknown table 'nope'"):
            again.extend("nope", {"step": [1]})
    finally:
        SCHEMAS.pop("late", None)


# --------------------------------------------------------------------------------------------------- api.md
@pytest.fixture(scope="module")
def api_results(smoke_sweep):
    """A curse-of-memory and an exploding-gradients sweep at smoke scale, made smaller still, in one folder."""
    smoke_sweep("curse-of-memory", "lr_search=none", "lr=0.001", "steps=12", "grad_norm_every=3", "checkpoint_every=0",
                into="api-results")
    return str(smoke_sweep("exploding-gradients", "seq_lens=10", "clips=1", "steps=20", "analyses=bifurcation",
                           into="api-results").results)


@pytest.mark.slow
def test_api_page_runs_against_real_sweeps(api_results, tmp_path, monkeypatch):
    matplotlib.use("Agg")
    monkeypatch.setenv("SWEEP_RESULTS", api_results)
    monkeypatch.chdir(tmp_path)
    scope: dict = {}
    for block in python_blocks("api.md"):
        exec(compile(block, "docs/api.md", "exec"), scope)  # noqa: S102
    import matplotlib.pyplot as plt
    plt.close("all")

    fig3a = scope["fig3a"]
    assert list(fig3a.columns) == ["cell", "nu", "final_loss", "seeds", "lr"]
    assert {(r.cell, r.nu) for r in fig3a.itertuples()} == {("rnn", 0.68), ("rnn", 0.99), ("lru", 0.68), ("lru", 0.99)}
    assert (fig3a["seeds"] == 2).all() and (fig3a["final_loss"] > 0).all()
    assert scope["fig3a"].pivot(index="nu", columns="cell", values="final_loss").shape == (2, 2)

    norms = scope["norms"]
    assert list(norms.columns) == ["step", "group", "norm"]
    assert set(norms["group"]) == {"layer1.recurrent", "layer1.input", "layer1.output"}
    assert sorted(set(norms["step"])) == [3, 6, 9, 12] and (norms["norm"] > 0).all()

    points, band = scope["points"], scope["band"]
    assert list(points.columns) == ["b", "init_id", "x"] and len(points) == 12 * 8 * 10  # b values x inits x kept
    assert band["n_b"][0] == 2 and -2.66 < band["b_low"][0] < band["b_high"][0] < -2.34  # inside the exact band
    for png in ("grad_norms.png", "bifurcation.png"):
        assert (tmp_path / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_api_helpers_reject_bad_names(api_results):
    con = analysis.connect(api_results)
    with pytest.raises(analysis.AnalysisError, match="no sweep with id or name 'nope'; available: "):
        analysis.trials(con, "nope")
    with pytest.raises(analysis.AnalysisError, match="unknown table 'trials' for a curve; valid: .*grad_norms"):
        analysis.curve(con, "x", table="trials")
    with pytest.raises(analysis.AnalysisError, match="no column 'lossy'; valid: .*loss"):
        analysis.curve(con, "x", "lossy")
    seed = analysis.trials(con, "exploding-gradients", stage="seed", arrow=True)
    assert seed.num_rows == 1 and seed.column("stage").to_pylist() == ["seed"]
    assert len(analysis.trials(api_results)) == 8 + 2  # every sweep: 2 cells x 2 nu x 2 seeds, 1 + 1 analysis
    quoted = analysis.frame(con, "SELECT count(*) AS n FROM trials WHERE sweep = ?", ["x' OR 1=1 --"])
    assert quoted["n"][0] == 0  # a value is a parameter, never SQL
