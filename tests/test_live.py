"""The live view: `sweep status` from another process while a real sweep runs, its ETA arithmetic on rows
written by the real TrialWriter, the same reads against an S3 server, and the writer's flush by time."""
from __future__ import annotations

import datetime as dt
import io
import json
import os
import signal
import threading
import time
from types import SimpleNamespace

import pytest
from typer.testing import CliRunner

from analysis.live import Planned, eta_s, live_state, rate_of, render
from conftest import start_cli
from orchestrator.cli import app
from orchestrator.progress import LiveLine
from orchestrator.status import print_status, status_plan
from orchestrator.spec import SweepSpec
from orchestrator.sweeps import resolve
from layout import sweep_json
from layout.location import open_location, open_sweep
from trainers.record import TrialWriter

runner = CliRunner()
NOW = dt.datetime(2026, 1, 1, 12, 0, 0, tzinfo=dt.timezone.utc)
LRU = (("cell", "lru"), ("nu", 0.9))
RNN = (("cell", "rnn"), ("nu", 0.9))


def test_eta_arithmetic():
    # max(longest running trial, total / trials running now)
    assert eta_s([12.0, 3.0], [10.0]) == pytest.approx(12.5)  # (12 + 3 + 10) / 2 = 12.5 > 12
    assert eta_s([30.0, 1.0], []) == pytest.approx(30.0)  # (31) / 2 = 15.5 < 30: the longest one
    assert eta_s([], [4.0, 6.0]) == pytest.approx(10.0)  # nothing running: one at a time
    assert eta_s([], []) == 0.0
    assert rate_of([(21, 6.2), (30, 8.0), (40, 10.0)]) == pytest.approx(19 / 3.8)  # (40-21)/(10-6.2) = 5
    assert rate_of([(10, 4.0)]) == pytest.approx(2.5)  # one point: step / wall (start-up included)
    assert rate_of([]) is None


def test_launch_line_eta_and_losses():
    """The launch line's fields from Tune-shaped trials (id, status, config, last_result) and timed reports."""
    def trial(tid, status, last_result=None):
        return SimpleNamespace(trial_id=tid, status=status, config={"trial": {"steps": 100, "trial_id": f"id-{tid}"}},
                               last_result=last_result)

    a, b, c = trial("a", "RUNNING"), trial("b", "PENDING"), trial("c", "TERMINATED", {"final_loss": 0.05})
    line = LiveLine()
    assert line.fields([a, b], total=2) == " · ETA ?"  # no rate measured yet
    line.report(a, {"step": 10, "loss": 0.3}, now=0.0)
    line.report(a, {"step": 50, "loss": 0.2}, now=4.0)  # 40 steps in 4 s: 10 steps/s
    # a: 50 steps left = 5 s; b: 100 steps at the mean rate = 10 s; one more not issued yet (total 4): 10 s.
    # One trial running: max(5, (5 + 10 + 10) / 1) = 25 s
    assert line.fields([a, b, c], total=4) == " · ETA 00:25 · loss best 5.00e-02 worst 2.00e-01"
    assert LiveLine.failure(c) is None
    assert LiveLine.failure(trial("d", "TERMINATED", {"status": "diverged", "error": "non-finite loss at step 7"})) \
        == "id-d: diverged: non-finite loss at step 7"
    assert LiveLine.failure(trial("e", "TERMINATED", {"status": "bundle", "seeds_completed": 1, "seeds_failed": 2})) \
        == "id-e: 2 seeds failed; see `sweep status`"


def write_sweep(results: str, sweep_id: str, status: str = "running") -> None:
    """Hand-made rows through the real writer: a completed lru trial (100 steps in 10 s, final loss 0.01), a
    running lru trial (40 of 100 steps flushed, wall_s = 2 + 0.2 step, loss = step / 1000), a failed rnn trial."""
    sweep_json.write(*open_sweep(results, sweep_id), {"sweep_id": sweep_id, "name": "hand", "scale": "smoke",
                                                      "status": status,
                                                      "created_at": (NOW - dt.timedelta(seconds=90)).isoformat()})
    common = dict(sweep="hand", stage="seed", task="teacher_student", depth=1, nu=0.9)
    done = TrialWriter(results, sweep_id, "lru-s0")
    done.write_trial(dict(common, cell="lru", status="completed", steps_done=100, wall_s=10.0, final_loss=0.01,
                          config_json=json.dumps({"steps": 100}), ended_at=NOW - dt.timedelta(seconds=5)))
    run = TrialWriter(results, sweep_id, "lru-s1", flush_rows=20)  # two parts: steps 1..20, 21..40
    run.write_trial(dict(common, cell="lru", status="running", steps_done=0, config_json=json.dumps({"steps": 100})))
    steps = list(range(1, 41))
    run.extend("steps", {"step": steps, "loss": [s / 1000 for s in steps], "wall_s": [2 + 0.2 * s for s in steps]})
    TrialWriter(results, sweep_id, "rnn-s0").write_trial(dict(
        common, cell="rnn", status="failed", steps_done=0, error="ValueError: boom",
        config_json=json.dumps({"steps": 100})))


def check_hand_state(results: str, sweep_id: str) -> None:
    write_sweep(results, sweep_id)
    plan = [Planned("seed", LRU, 3, 100, "lru"), Planned("seed", RNN, 2, 100, "rnn")]
    s = live_state(results, sweep_id, plan, now=NOW)
    by_id = {t.trial_id: t for t in s.trials}
    running = by_id["lru-s1"]
    assert (running.status, running.steps_done, running.steps_planned) == ("running", 40, 100)
    assert running.loss == pytest.approx(sum(range(31, 41)) / 10 / 1000, rel=1e-6)  # mean of its last 10 steps
    assert running.rate == pytest.approx(5.0, rel=1e-5)  # its last part: (40 - 21) / (10 - 6.2)
    assert by_id["rnn-s0"].error == "ValueError: boom"
    assert s.counts == {"seed": {"pending": 2, "running": 1, "completed": 1, "diverged": 0, "failed": 1, "pruned": 0}}
    # running: 60 steps left at 5/s = 12 s. lru rate = (100 + 40) / (10 + 10) = 7/s; rnn has none measured,
    # so the sweep's, also 7/s: each pending trial 100 / 7 s. One running: ETA = 12 + 2 * 100 / 7 = 40.57 s
    assert s.eta_s == pytest.approx(12 + 200 / 7, rel=1e-5)
    assert s.elapsed_s == pytest.approx(90.0)
    assert [t.trial_id for t in s.ranked()] == ["lru-s0", "lru-s1"]  # final 0.01 < running 0.0355
    text = render(s)
    assert "ETA 00:41" in text and "elapsed 01:30" in text
    assert "best   1.000e-02  lru-s0 (seed, lru, nu 0.9)" in text
    assert "worst  3.550e-02  lru-s1 (seed, lru, nu 0.9)" in text
    assert "rnn-s0  failed: ValueError: boom" in text
    assert "40/100" in text and "[#####.......]   40%" in text


def test_live_state_from_written_rows(tmp_path):
    check_hand_state(str(tmp_path / "results"), "hand-1")


@pytest.mark.slow
def test_live_state_against_s3(s3_uri):
    """The same reads through pyarrow's S3 filesystem (moto's real server on loopback), then a finished sweep
    through the CLI: nothing pending or running, ETA 0."""
    check_hand_state(s3_uri, "hand-s3")
    fs, root = open_location(s3_uri)
    spec = SweepSpec(name="hand", scale="smoke", tasks=("teacher_student",), cells=("lru",), depths=(1,), nus=(0.9,),
                     seq_lens=(30,), seeds=2, steps=10)
    sweep_json.write(*open_sweep(s3_uri, "done-s3"), {"sweep_id": "done-s3", "name": "hand", "scale": "smoke",
                                                      "status": "completed", "created_at": NOW.isoformat(),
                                                      "spec": spec.to_dict()})
    for s in range(2):
        w = TrialWriter(s3_uri, "done-s3", f"lru-d1-nu0.9-s{s}")
        w.extend("steps", {"step": list(range(1, 11)), "loss": [0.5] * 10, "wall_s": [0.1 * i for i in range(1, 11)]})
        w.flush()
        w.write_trial(dict(sweep="hand", stage="seed", task="teacher_student", cell="lru", depth=1, nu=0.9,
                           seq_len=30, layer_norm=False, status="completed", steps_done=10, wall_s=1.0,
                           final_loss=0.1 * (s + 1), config_json=json.dumps({"steps": 10}),
                           ended_at=NOW + dt.timedelta(seconds=7)))
    r = runner.invoke(app, ["status", "done-s3", "--results", s3_uri])
    assert r.exit_code == 0, r.output
    assert "ETA 00:00" in r.output and "elapsed 00:07" in r.output and "pending" not in r.output.split("trials (")[1]
    assert "best   1.000e-01  lru-d1-nu0.9-s0" in r.output and "worst  2.000e-01  lru-d1-nu0.9-s1" in r.output
    assert r.output.count("[############]  100%") == 2


def test_plan_counts_every_trial_of_the_spec():
    spec = resolve("curse-of-memory", "smoke", ["analyses=hessian_opt:rnn,hessian_opt:lru"])
    p = status_plan(spec)
    groups = len(spec.grid())
    assert not [e for e in p if e.stage == "lr_search"]  # the grid protocol searches nothing
    assert sum(e.trials for e in p if e.stage == "seed") == groups * 2 * spec.seeds  # 2 rates x seeds per group
    tpe = status_plan(resolve("curse-of-memory", "smoke", ["lr_search=tpe", "lr_search_trials=3"]))
    assert not [e for e in tpe if e.stage == "lr_search"]  # tpe: each Optuna trial is every seed, stage seed
    assert sum(e.trials for e in tpe if e.stage == "seed") == groups * 3 * spec.seeds
    assert [(e.trials, e.steps) for e in p if e.stage == "analysis"] == [(2, 0)]
    assert all(dict(e.match)["clip"] is None for e in p if e.match)  # clipping off is a null clip


def test_status_errors(tmp_path):
    write_sweep(str(tmp_path), "hand-2")
    for args, word in ((["--watch", "0"], "--watch 0.0"), (["--trials", "-1"], "--trials -1")):
        r = runner.invoke(app, ["status", "hand-2", "--results", str(tmp_path), *args])
        assert r.exit_code == 2 and word in r.output and "valid:" in r.output, r.output
    r = runner.invoke(app, ["status", "no-such-sweep", "--results", str(tmp_path)])
    assert r.exit_code == 2 and "no sweep with id or name 'no-such-sweep'" in r.output and "hand-2" in r.output
    TrialWriter(str(tmp_path), "bare", "t1").write_trial({})  # no sweep.json, no stage, no status
    r = runner.invoke(app, ["status", "bare", "--results", str(tmp_path)])
    assert r.exit_code == 0 and "t1     -          unknown" in r.output, r.output


def test_watch_redraws_until_the_sweep_ends(tmp_path):
    """Not a terminal: one plain block per redraw; it stops once sweep.json says the sweep is no longer running."""
    results = str(tmp_path)
    write_sweep(results, "hand-3")
    ended = threading.Timer(1.0, write_sweep, (results, "hand-3", "completed"))
    ended.start()
    out = io.StringIO()
    print_status(results, "hand-3", watch=0.3, out=out)
    ended.join()
    blocks = out.getvalue().split("sweep hand-3  ")[1:]
    assert len(blocks) >= 2 and "running)" in blocks[0] and "completed)" in blocks[-1]
    assert "ETA 00:00" in blocks[-1] and "\033[" not in out.getvalue()


@pytest.mark.slow
def test_watch_stops_cleanly_on_ctrl_c(tmp_path):
    write_sweep(str(tmp_path), "hand-4")  # running: --watch would redraw for ever
    proc = start_cli("status", "hand-4", "--results", str(tmp_path), "--watch", "0.5")
    try:
        first = proc.stdout.readline()
        assert first.startswith("sweep hand-4"), first
        time.sleep(1.0)
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 0 and "Traceback" not in out and out.count("sweep hand-4") >= 1, out


def test_writer_flushes_by_time_and_restore_drops_those_parts(tmp_path):
    w = TrialWriter(str(tmp_path), "S", "t", flush_s=0.3)
    w.append("steps", {"step": 1, "loss": 1.0})
    parts = lambda: sorted(p.name for p in (tmp_path / "S" / "steps" / "trial_id=t").glob("part-*"))  # noqa: E731
    assert not (tmp_path / "S" / "steps").exists()  # under flush_rows and under 0.3 s: still buffered
    time.sleep(0.35)
    w.append("steps", {"step": 2, "loss": 0.5})  # 0.3 s since the writer began: this append flushes
    assert parts() == ["part-00000.parquet"] and w.pending("steps") == 0
    assert w.last_value("steps", "loss") == 0.5  # the last row is still known after its flush
    state = w.state()  # a checkpoint here names part 0
    time.sleep(0.35)
    w.append("steps", {"step": 3, "loss": 0.25})
    assert parts() == ["part-00000.parquet", "part-00001.parquet"]
    w.restore(state)  # a restart from that checkpoint drops the part written by time after it
    assert parts() == ["part-00000.parquet"] and w.last_value("steps", "loss") is None


LIVE_STEPS = 1500  # long enough (several seconds on 2 cores) to be seen mid-run by a status polled every second


@pytest.fixture
def sweep_proc(tmp_path):
    """A real sweep in its own process (its own Ray): lru seeds (one bundle) run for a while; blockdiag cannot
    be built with hidden=63 (not a multiple of its 2x2 blocks), so its seeds fail with that reason."""
    results = tmp_path / "results"
    proc = start_cli("launch", "curse-of-memory", "--scale", "smoke", "--results", str(results),
                     "--set", "cells=lru,blockdiag", "--set", "hidden=63", "--set", "nus=0.9", "--set", "seeds=2",
                     "--set", "lr_search=none", "--set", f"steps={LIVE_STEPS}", "--set", "checkpoint_every=25")
    try:
        yield proc, results
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(30)


@pytest.mark.slow
def test_status_from_another_process_while_a_sweep_runs(sweep_proc):
    proc, results = sweep_proc
    t0, seen = time.monotonic(), None
    while time.monotonic() - t0 < 240 and proc.poll() is None:
        found = list(results.glob("*/sweep.json"))
        if found:
            r = runner.invoke(app, ["status", found[0].parent.name, "--results", str(results)])
            of = f"/{LIVE_STEPS}"
            rows = [ln.split() for ln in r.output.splitlines() if " running " in f" {ln} " and of in ln]
            if r.exit_code == 0 and any(0 < int(next(x for x in row if of in x).split("/")[0]) < LIVE_STEPS
                                        for row in rows):
                seen = r.output
                break
        time.sleep(1.0)
    assert seen, (f"no running trial with 0 < steps < {LIVE_STEPS} seen; sweep output: "
                  f"{proc.stdout.read() if proc.poll() is not None else ''}")
    sweep_id = found[0].parent.name
    assert f"sweep {sweep_id}  (curse-of-memory, scale smoke, running)" in seen
    eta = seen.split("ETA ")[1].split()[0]
    assert eta != "?" and ":" in eta  # a measured ETA
    best = [ln.split()[2] for ln in seen.splitlines() if ln.startswith(("best ", "worst "))]
    assert best and set(best) <= {"lru-d1-nu0.9-s0", "lru-d1-nu0.9-s1"}  # real trial ids
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out
    assert "ETA" in out and "loss best" in out  # the launch terminal's progress line
    assert "blockdiag-d1-nu0.9-seeds: 2 seeds failed" in out or out.count("failed: ValueError: hidden=63") == 2, out
    r = runner.invoke(app, ["status", sweep_id, "--results", str(results)])
    assert r.exit_code == 0, r.output
    text = r.output
    assert "(curse-of-memory, scale smoke, completed)" in text and "ETA 00:00" in text
    seed = next(ln.split() for ln in text.splitlines() if ln.startswith("seed "))
    assert seed[1:] == ["0", "0", "2", "0", "2", "0", "4"]  # pending running completed diverged failed pruned total
    assert text.count(f"{LIVE_STEPS}/{LIVE_STEPS}") == 2 and text.count("100%") == 2
    assert text.count("failed: ValueError: hidden=63 is not a multiple of block_size=2") == 2
