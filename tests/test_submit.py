"""`sweep launch --submit`: the driver runs as a Ray Job on a real head started here on loopback (`ray start
--head` with its dashboard's job server, auth off). The head runs in its own process group with its own temp
dir and is ended by that group and that folder only (never `ray stop`, which would end every Ray on the box).
Checked: the job id printed, sweep.json with the job, the job succeeding, every trial's row exactly once, and
`ls` / `status` naming the job."""
from __future__ import annotations

import json
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest
from typer.testing import CliRunner

from analysis.db import query_arrow
from orchestrator.cli import app
from orchestrator.submit import job_status
from sweepcheck import assert_exact

runner = CliRunner()
SPEC = """base = "curse-of-memory"
scale = "smoke"
name = "submitted"
[grid]
cells = ["rnn"]
nus = [0.9]
[train]
seeds = 2
steps = 20
[lr_search]
trials = 1
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def job_server_up(address: str) -> bool:
    try:
        with urllib.request.urlopen(f"{address}/api/version", timeout=5) as r:
            return r.status == 200
    except OSError:
        return False


@pytest.fixture
def head(tmp_path):
    """A Ray head on loopback with its job server: its http address. Every port of its own: the job agent's
    default http port (52365) is taken by any other Ray on the machine (the session's own, another user's),
    and an agent that cannot bind it stays up without http, so that every submit reads 'No available agent'.
    Its job agent may still be starting when this returns: `submit` waits for it, as for a user's fresh head."""
    port, dash = free_port(), free_port()
    temp = pathlib.Path("/tmp") / f"rayh-{os.getpid()}-{port}"  # short: Ray's socket paths have a length limit
    bindir = os.path.dirname(sys.executable)
    env = dict(os.environ, RAY_AUTH_MODE="disabled", PATH=f"{bindir}:{os.environ['PATH']}")
    env.pop("RAY_ADDRESS", None)
    own_ports = [f for flag in ("--dashboard-agent-listen-port", "--dashboard-agent-grpc-port",
                                "--runtime-env-agent-port", "--metrics-export-port", "--ray-client-server-port")
                 for f in (flag, str(free_port()))]
    proc = subprocess.Popen([f"{bindir}/ray", "start", "--head", "--block", "--port", str(port), "--num-cpus", "2",
                             "--dashboard-host", "127.0.0.1", "--dashboard-port", str(dash), "--include-dashboard",
                             "true", *own_ports, "--temp-dir", str(temp), "--disable-usage-stats"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    address = f"http://127.0.0.1:{dash}"
    try:
        deadline = time.monotonic() + 180
        while not job_server_up(address):
            assert proc.poll() is None, "ray start --head exited"
            assert time.monotonic() < deadline, f"no job server at {address} after 180 s"
            time.sleep(0.5)
        yield address
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:  # `ray start --block` takes over 30 s to end on SIGTERM here; its processes die by SIGKILL just as well
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        # any of this head's processes that left the group: found by its own temp dir, ended by pid
        for pid in [p for p in os.listdir("/proc") if p.isdigit()]:
            try:
                cmd = pathlib.Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue
            if str(temp).encode() in cmd:
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except ProcessLookupError:
                    pass
        shutil.rmtree(temp, ignore_errors=True)


def test_submit_needs_an_http_address():
    r = runner.invoke(app, ["launch", "curse-of-memory", "--submit", "--address", "auto"])
    assert r.exit_code == 2 and r.stderr.startswith("error: --submit needs --address http://HEAD:8265")


@pytest.mark.slow
def test_submit_runs_the_sweep_as_a_ray_job(head, tmp_path):
    spec = tmp_path / "my.toml"
    spec.write_text(SPEC)
    results = tmp_path / "results"
    r = runner.invoke(app, ["launch", str(spec), "--submit", "--address", head, "--results", str(results),
                            "--log-to", "tensorboard"])
    assert r.exit_code == 0, r.output
    first = r.stdout.splitlines()[0]
    assert first.startswith("submitted: job sweep-submitted-") and ", sweep submitted-" in first
    sid = first.split(", sweep ")[1].split()[0]
    job = f"sweep-{sid}"
    meta = json.loads((results / sid / "sweep.json").read_text())
    assert meta["job"] == {"submission_id": job, "address": head} and meta["status"] in ("submitted", "running")
    assert meta["spec_file"]["text"] == SPEC

    deadline = time.monotonic() + 400
    while (state := job_status(meta)) in ("PENDING", "RUNNING") and time.monotonic() < deadline:
        time.sleep(2)
    assert state == "SUCCEEDED", (state, subprocess.run(
        [os.path.dirname(sys.executable) + "/ray", "job", "logs", job, "--address", head],
        capture_output=True, text=True).stdout[-3000:])
    meta = json.loads((results / sid / "sweep.json").read_text())
    assert meta["status"] == "completed" and meta["job"]["submission_id"] == job and meta["log_to"] == ["tensorboard"]
    rows = query_arrow(str(results), f"SELECT trial_id, stage, status FROM trials WHERE sweep_id = '{sid}' "
                                     "ORDER BY trial_id").to_pylist()
    assert [(x["trial_id"], x["stage"], x["status"]) for x in rows] == [  # tpe: its one Optuna trial, both seeds
        ("rnn-d1-nu0.9-tpe0-s0", "seed", "completed"), ("rnn-d1-nu0.9-tpe0-s1", "seed", "completed")]  # each once
    steps = query_arrow(str(results), f"SELECT trial_id, count(*) AS n, count(DISTINCT step) AS d FROM steps "
                                      f"WHERE sweep_id = '{sid}' GROUP BY ALL").to_pylist()
    assert len(steps) == 2 and all(s["n"] == s["d"] == 20 for s in steps)

    ls = runner.invoke(app, ["ls", "--results", str(results)])
    assert ls.exit_code == 0 and f"job={job}" in ls.stdout and sid in ls.stdout
    st = runner.invoke(app, ["status", sid, "--results", str(results)])
    assert st.exit_code == 0 and st.stdout.splitlines()[0] == f"Ray Job {job} at {head}: SUCCEEDED"


@pytest.mark.slow
def test_stop_of_a_submitted_sweep_stops_its_job_then_resume_finishes(head, ray_session, tmp_path):
    """`sweep stop` of a sweep launched with --submit stops its Ray Job (the job server sends the driver SIGINT,
    the graceful stop of Ctrl-C): the job reads STOPPED, the sweep interrupted mid-run, and `sweep resume`
    finishes it with every row exactly once."""
    results, steps = tmp_path / "results", 3000
    r = runner.invoke(app, ["launch", "curse-of-memory", "--scale", "smoke", "--set", "cells=rnn", "--set", "nus=0.9",
                            "--set", "seeds=2", "--set", "lr_search=none", "--set", f"steps={steps}",
                            "--set", "checkpoint_every=100", "--submit", "--address", head, "--results", str(results)])
    assert r.exit_code == 0, r.output
    sid = r.stdout.splitlines()[0].split(", sweep ")[1].split()[0]
    deadline = time.monotonic() + 300
    while not list((results / sid).glob("_checkpoints/*.pt")):  # the job's driver has its trial under way
        assert time.monotonic() < deadline and job_status({"job": {"address": head, "submission_id": f"sweep-{sid}"}}) \
            in ("PENDING", "RUNNING"), "no checkpoint from the submitted sweep"
        time.sleep(1)

    st = runner.invoke(app, ["stop", sid, "--results", str(results)])
    assert st.exit_code == 0 and st.stdout.startswith(f"stopped: Ray Job sweep-{sid} STOPPED; sweep {sid}"), st.output
    meta = json.loads((results / sid / "sweep.json").read_text())
    assert job_status(meta) == "STOPPED" and meta["status"] == "interrupted", meta["status"]
    done = query_arrow(str(results), f"SELECT count(*) AS n FROM steps WHERE sweep_id = '{sid}'").to_pylist()[0]["n"]
    assert done < 2 * steps  # stopped mid-run
    again = runner.invoke(app, ["stop", sid, "--results", str(results)])
    assert again.exit_code == 2 and "not running; nothing to stop (its Ray Job: STOPPED)" in again.stderr

    r = runner.invoke(app, ["resume", sid, "--results", str(results)])
    assert r.exit_code == 0, r.output
    assert_exact(str(results), sid, n_trials=2, steps=steps)


@pytest.mark.slow
def test_no_job_server_is_a_one_line_error_and_leaves_nothing(tmp_path):
    results = tmp_path / "results"
    r = runner.invoke(app, ["launch", "curse-of-memory", "--scale", "smoke", "--submit", "--address",
                            f"http://127.0.0.1:{free_port()}", "--results", str(results)])
    assert r.exit_code == 2 and r.stderr.startswith("error: no Ray job server at http://127.0.0.1:"), r.output
    assert len(r.stderr.strip().splitlines()) == 1 and not list(results.glob("*/sweep.json"))
