"""`sweep launch --log-to`: Ray Tune's own logger callbacks see the trials' losses. A real sweep on the session's
Ray (a search trial and a seed bundle of two seeds), then the TensorBoard event files are read back with a
TFRecord reader written here over tensorboardX's own protobuf (no TensorBoard needed) and compared with the
``steps`` table; the MLflow file store is read back with MLflow's client."""
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


@pytest.mark.slow
def test_tensorboard_and_mlflow_hold_the_losses(ray_session, tmp_path):
    mlflow = pytest.importorskip("mlflow")  # an optional extra: pip install 'rnn-dynamics-sweeps[mlflow]'
    results = tmp_path / "results"
    r = runner.invoke(app, ["launch", "curse-of-memory", "--scale", "smoke", "--results", str(results),
                            "--log-to", "tensorboard,mlflow", *SETS])
    assert r.exit_code == 0, r.output
    sid = r.output.split()[1]
    meta = json.loads((results / sid / "sweep.json").read_text())
    assert meta["log_to"] == ["tensorboard", "mlflow"]
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

    client = mlflow.tracking.MlflowClient(tracking_uri="file:" + str(results / sid / "mlruns"))
    exp = client.get_experiment_by_name(sid)
    runs = client.search_runs([exp.experiment_id])
    assert len(runs) == 3
    hist = {}
    for run in runs:
        for key in ("loss", "loss_seed0"):
            hist[(run.info.run_name, key)] = {m.step: m.value for m in client.get_metric_history(run.info.run_id, key)}
    some = next(v for (name, key), v in hist.items() if key == "loss_seed0" and v)
    assert len(some) >= 3 and all(v == pytest.approx(loss[("rnn-d1-nu0.9-s0", k)], rel=1e-6)
                                  for k, v in some.items() if k in (10, 20, 30))
