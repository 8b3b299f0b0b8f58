"""`sweep launch --log-to`: Ray Tune's own logger callbacks see the trials' losses. A real sweep on the session's
Ray (a search trial and a seed bundle of two seeds), then the TensorBoard event files are read back with a
TFRecord reader written here over tensorboardX's own protobuf (no TensorBoard needed) and compared with the
``steps`` table; the MLflow file store is read back with MLflow's client, and W&B's offline run files with a
reader written here over wandb's own protobuf (``wandb sync`` would upload them; no network here)."""
from __future__ import annotations

import glob
import json
import struct

import pytest
from typer.testing import CliRunner

from analysis.db import query_arrow
from orchestrator.cli import app
from orchestrator.loggers import LOGGERS, parse
from orchestrator.spec import UserError

runner = CliRunner()
SETS = ["--set", "cells=rnn,lstm", "--set", "nus=0.9", "--set", "seeds=2", "--set", "lr_search=none",
        "--set", "steps=30", "--set", "checkpoint_every=10"]


def events(path: str) -> list:
    """Every Event of a TFRecord event file: length (u64), its crc, the record, its crc."""
    from tensorboardX.proto.event_pb2 import Event

    out, data = [], open(path, "rb").read()
    pos = 0
    while pos < len(data):
        (n,) = struct.unpack("<Q", data[pos:pos + 8])
        out.append(Event.FromString(data[pos + 12:pos + 12 + n]))
        pos += 12 + n + 4
    return out


def scalars(path: str) -> dict[str, dict[int, float]]:
    out: dict[str, dict[int, float]] = {}
    for e in events(path):
        for v in e.summary.value:
            out.setdefault(v.tag, {})[e.step] = v.simple_value
    return out


def test_bad_logger_names_and_missing_packages_are_one_line_errors(monkeypatch):
    assert parse("tensorboard, tensorboard") == ("tensorboard",) and parse(None) == ()
    with pytest.raises(UserError, match=r"^invalid --log-to 'tb'; valid: tensorboard, mlflow, wandb"):
        parse("tensorboard,tb")
    monkeypatch.setitem(LOGGERS, "wandb", ("no_such_module_here", "rnn-dynamics-sweeps[wandb]"))
    with pytest.raises(UserError, match=r"^--log-to wandb needs the no_such_module_here package, which is not "
                                        r"installed: pip install 'rnn-dynamics-sweeps\[wandb\]'$"):
        parse("wandb")
    r = runner.invoke(app, ["launch", "curse-of-memory", "--log-to", "nope"])
    assert r.exit_code == 2 and r.stderr.strip() == "error: invalid --log-to 'nope'; valid: tensorboard, mlflow, " \
                                                    "wandb (comma-separated)"


def wandb_records(path: str) -> list:
    """Every Record of a W&B run file (``run-<id>.wandb``, what ``wandb sync`` uploads): a 7-byte header
    (``:W&B``, magic, version), then LevelDB-log records in 32 KiB blocks, each a 7-byte header (crc, length,
    type: 1 full, 2 first, 3 middle, 4 last; 0 pads a block's tail) and a piece of a Record, wandb's own protobuf."""
    from wandb.proto.wandb_internal_pb2 import Record

    data = open(path, "rb").read()
    assert data[:4] == b":W&B", data[:7]
    out, piece, pos = [], b"", 7
    while pos + 7 <= len(data):
        left = 32768 - pos % 32768
        _, n, kind = struct.unpack("<IHB", data[pos:pos + 7])
        if left < 7 or kind == 0:
            pos += left
            continue
        piece += data[pos + 7:pos + 7 + n]
        pos += 7 + n
        if kind in (1, 4):
            out.append(Record.FromString(piece))
            piece = b""
    return out


def wandb_history(path: str) -> tuple[dict, dict[str, dict[int, float]]]:
    """({project, group, trial_id}, {key: {step: value}}) of a W&B run file: its run record (the Tune trial's
    config holds our trial's id) and its history records, by the optimiser step each reports (``step``; a
    trial's last report, its outcome, has none: the row's own index ``_step`` then)."""
    config, out = {}, {}
    for r in wandb_records(path):
        if r.WhichOneof("record_type") == "run":
            trial = json.loads({i.key: i.value_json for i in r.run.config.update}["trial"])
            config = {"project": r.run.project, "group": r.run.run_group, "trial_id": trial["trial_id"]}
        elif r.WhichOneof("record_type") == "history":
            row = {"/".join(i.nested_key) or i.key: json.loads(i.value_json) for i in r.history.item}
            for key, value in row.items():
                out.setdefault(key, {})[row.get("step", row["_step"])] = value
    return config, out


@pytest.mark.slow
def test_tensorboard_mlflow_and_wandb_hold_the_losses(ray_session, tmp_path, monkeypatch):
    """One sweep logs to all three; each tracker's copy of the losses is read back and equals the ``steps``
    table: TensorBoard's event files, MLflow's file store (its client), W&B's offline run files (wandb's protobuf)."""
    import mlflow

    monkeypatch.setenv("WANDB_MODE", "offline")  # no network here: `wandb sync` would upload the runs later
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    monkeypatch.setenv("WANDB_SILENT", "true")
    results = tmp_path / "results"
    r = runner.invoke(app, ["launch", "curse-of-memory", "--scale", "smoke", "--results", str(results),
                            "--log-to", "tensorboard,mlflow,wandb", *SETS])
    assert r.exit_code == 0, r.output
    sid = r.output.split()[1]
    meta = json.loads((results / sid / "sweep.json").read_text())
    assert meta["log_to"] == ["tensorboard", "mlflow", "wandb"]
    files = glob.glob(str(results / sid / "_tune" / "sweep" / "*" / "events.out.tfevents.*"))
    by_trial = {f.split("/")[-2].rsplit("-", 1)[0]: scalars(f) for f in files}
    # lstm (never bundled) trains its seeds solo, rnn as a bundle of 2 seeds
    assert sorted(by_trial) == ["lstm-d1-nu0.9-s0", "lstm-d1-nu0.9-s1", "rnn-d1-nu0.9-seeds"]
    steps = query_arrow(str(results), f"SELECT trial_id, step, loss FROM steps WHERE sweep_id = '{sid}'").to_pylist()
    loss = {(s["trial_id"], s["step"]): s["loss"] for s in steps}
    solo = by_trial["lstm-d1-nu0.9-s0"]["ray/tune/loss"]
    assert sorted(solo) == [10, 20, 30]  # the optimiser step is the x axis
    assert all(v == pytest.approx(loss[("lstm-d1-nu0.9-s0", k)], rel=1e-6) for k, v in solo.items())
    bundle = by_trial["rnn-d1-nu0.9-seeds"]
    for seed in (0, 1):  # each seed of the bundle, on its own
        per_seed = bundle[f"ray/tune/loss_seed{seed}"]
        assert sorted(per_seed) == [10, 20, 30]
        assert all(v == pytest.approx(loss[(f"rnn-d1-nu0.9-s{seed}", k)], rel=1e-6) for k, v in per_seed.items())
    finals = query_arrow(str(results), f"SELECT trial_id, final_loss FROM trials WHERE sweep_id = '{sid}' "
                                       "AND cell = 'rnn' ORDER BY trial_id").to_pylist()
    for seed, row in enumerate(finals):
        assert list(bundle[f"ray/tune/final_loss_seed{seed}"].values())[-1] == pytest.approx(row["final_loss"],
                                                                                             rel=1e-6)

    # every trial's curve (steps 10, 20, 30) and final loss, as each tracker holds them, against the tables
    rows = query_arrow(str(results), f"SELECT trial_id, final_loss FROM trials WHERE sweep_id = '{sid}'").to_pylist()
    expected = {r["trial_id"]: ({k: loss[(r["trial_id"], k)] for k in (10, 20, 30)}, r["final_loss"]) for r in rows}
    assert len(expected) == 4

    client = mlflow.tracking.MlflowClient(tracking_uri="file:" + str(results / sid / "mlruns"))
    runs = client.search_runs([client.get_experiment_by_name(sid).experiment_id])
    assert len(runs) == 3  # one MLflow run per Ray trial
    held = {}
    for run in runs:
        metrics = {key: {m.step: m.value for m in client.get_metric_history(run.info.run_id, key)}
                   for key in run.data.metrics}
        held.update(per_trial(run.data.params["trial/trial_id"], metrics))
    assert_same(held, expected)

    runs = glob.glob(str(tmp_path / "wandb" / "offline-run-*" / "run-*.wandb"))
    assert len(runs) == 3  # one W&B run per Ray trial, offline: under WANDB_DIR
    held = {}
    for path in runs:
        config, metrics = wandb_history(path)
        assert config["project"] == "curse-of-memory" and config["group"] == sid
        held.update(per_trial(config["trial_id"], metrics))
    assert_same(held, expected)


def per_trial(trial_id: str, metrics: dict[str, dict[int, float]]) -> dict[str, tuple[dict[int, float], float]]:
    """{trial id: (its loss at each step, its final loss)} from one tracker run's metrics ({key: {step: value}}):
    a solo trial's ``loss`` and ``final_loss``, or each seed's ``loss_seed<N>`` and ``final_loss_seed<N>`` of a
    seed bundle (its trial id ends in ``-seeds``; the seeds' own ids end in ``-s<N>``)."""
    if not trial_id.endswith("-seeds"):
        return {trial_id: (metrics["loss"], list(metrics["final_loss"].values())[-1])}
    seeds = sorted(int(k.removeprefix("loss_seed")) for k in metrics if k.startswith("loss_seed"))
    return {f"{trial_id.removesuffix('-seeds')}-s{n}": (metrics[f"loss_seed{n}"],
                                                        list(metrics[f"final_loss_seed{n}"].values())[-1])
            for n in seeds}


def assert_same(held: dict, expected: dict) -> None:
    assert sorted(held) == sorted(expected)
    for trial, (curve, final) in expected.items():
        assert sorted(held[trial][0]) == [10, 20, 30], (trial, held[trial])  # the optimiser step is the x axis
        assert held[trial][0] == pytest.approx(curve, rel=1e-6), trial
        assert held[trial][1] == pytest.approx(final, rel=1e-6), trial
