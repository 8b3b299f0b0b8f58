"""`sweep launch ... --submit --address http://HEAD:8265`: the sweep's driver runs on the cluster as a Ray Job
(Ray's job submission API, ``ray.job_submission.JobSubmissionClient``), so the sweep outlives the terminal.

The submitter resolves and validates the target here, picks the sweep id and the job's submission id, writes the
sweep's ``sweep.json`` with status ``submitted`` and the job (``{"submission_id", "address"}``), submits the
entrypoint ``sweep launch <the same target and flags> --address auto`` (a spec file travels in the job's
``working_dir``), prints the job id and returns. On the head the driver finds ``SWEEP_JOB`` in its environment:
it keeps that sweep id and records the job in sweep.json again, so ``sweep ls`` / ``sweep status`` show it, and
``job_status`` / ``stop_job`` reach the job server over its REST API (no Ray import).

A head just started may answer before its job agent is ready ("No available agent to submit job, please try
again later", or the agent's port not yet open): the submitter retries until ``AGENT_WAIT_S`` has passed, then
says so in one line. `sweep stop` of a submitted sweep asks the job server to stop the job; the job is submitted
with ``RAY_JOB_STOP_SIGNAL=SIGINT``, so its driver stops the way Ctrl-C stops a launch (its trials stop, the
sweep reads ``interrupted``), with up to ``STOP_WAIT_S`` before Ray's SIGKILL.

The results location must be one the cluster's nodes and this machine both see (S3, a shared mount); a local
path is made absolute. No torch or Ray at import: `sweep status` reads ``job_status``.
"""
from __future__ import annotations

import json
import os
import shlex
import shutil
import tempfile
import time
import urllib.error
import urllib.request

AGENT_WAIT_S = float(os.environ.get("SWEEP_AGENT_WAIT_S", "180"))  # a submit waits this long for a head's job agent
STOP_WAIT_S = 120  # a stopped job's driver has this long to end gracefully (SIGINT) before Ray's SIGKILL
ENV = "SWEEP_JOB"  # JSON {"sweep_id", "submission_id", "address"} handed to the job's driver


def check_address(address: str | None) -> str:
    from .spec import UserError

    if not address or not address.startswith(("http://", "https://")):
        raise UserError(f"--submit needs --address http://HEAD:8265 (the Ray dashboard's job server), not "
                        f"{address!r}")
    return address.rstrip("/")


def entrypoint(target: str, flags: list[str]) -> str:
    """The command the job runs on the head: this launch again, joined to the cluster it runs on."""
    return shlex.join(["sweep", "launch", target, *flags, "--address", "auto"])


def submit(target, name: str, flags: list[str], results: str, address: str, resources: dict,
           extra: dict) -> tuple[str, str]:
    """Submit the sweep of resolved ``target`` (``specfile.Target``); returns (sweep id, job submission id).
    ``name``: what the user typed (sweep name or spec file path); ``flags``: the other launch flags."""
    from ray.job_submission import JobSubmissionClient

    from layout import sweep_json
    from layout.location import open_sweep

    from .launch import new_meta
    from .spec import UserError
    from .sweep_store import check_writable, new_sweep_id

    address = check_address(address)
    check_writable(results)
    sweep_id = new_sweep_id(target.spec.name)
    job = {"submission_id": f"sweep-{sweep_id}", "address": address}
    runtime_env: dict = {"env_vars": {ENV: json.dumps({"sweep_id": sweep_id, **job}), "RAY_JOB_STOP_SIGNAL": "SIGINT",
                                      "RAY_JOB_STOP_WAIT_TIME_S": str(STOP_WAIT_S)}}
    tmp = None
    if target.source:  # the spec file travels with the job; it runs in that folder
        tmp = tempfile.mkdtemp(prefix="sweep-submit-")
        shutil.copy(name, os.path.join(tmp, os.path.basename(name)))
        runtime_env["working_dir"] = tmp
        name = os.path.basename(name)
    try:
        client = JobSubmissionClient(address)
    except Exception as e:  # connection refused, not a job server: one line
        raise UserError(f"no Ray job server at {address} ({str(e).splitlines()[0] if str(e) else type(e).__name__})"
                        ) from None
    sweep_json.write(*open_sweep(results, sweep_id), new_meta(target.spec, sweep_id, resources, dict(extra, job=job),
                                                              status="submitted"))
    try:
        deadline = time.monotonic() + AGENT_WAIT_S
        while True:
            try:
                client.submit_job(entrypoint=entrypoint(name, flags), submission_id=job["submission_id"],
                                  runtime_env=runtime_env, metadata={"sweep_id": sweep_id})
                break
            except (RuntimeError, OSError) as e:  # OSError: requests' ConnectionError (the server restarting)
                if _job_exists(job):  # an attempt that reached the agent although its answer was lost
                    break
                if not _agent_not_ready(e) or time.monotonic() > deadline:
                    why = str(e).splitlines()[0] if str(e) else type(e).__name__
                    late = "" if not _agent_not_ready(e) else (
                        f" (its job agent not ready after {AGENT_WAIT_S:g} s: is its http port, 52365 unless "
                        "--dashboard-agent-listen-port, taken by another Ray on the head?)")
                    raise UserError(f"the job server at {address} refused the sweep{late}: {why}") from None
                time.sleep(2)
    except BaseException:
        _remove(results, sweep_id)  # nothing left behind for a sweep that never started
        raise
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)
    return sweep_id, job["submission_id"]


def _agent_not_ready(e: Exception) -> bool:
    """Whether a refused submit is a head whose job agent is not ready yet (try again), not a bad request: Ray's
    "No available agent", the agent's port not open yet, or the job server itself not answering."""
    text = str(e)
    return isinstance(e, OSError) or "No available agent" in text or (
        "status code 500" in text and any(w in text for w in ("Cannot connect", "Connection refused",
                                                                "ClientConnectorError", "ServerDisconnected")))


def _job_exists(job: dict) -> bool:
    try:
        _api(job)
        return True
    except (urllib.error.URLError, OSError, ValueError):
        return False


def _remove(results: str, sweep_id: str) -> None:
    from layout.location import open_sweep

    fs, sweep_dir = open_sweep(results, sweep_id)
    fs.delete_dir(sweep_dir)


def from_env() -> dict | None:
    """The job a submitted driver belongs to (``SWEEP_JOB``), or None for an ordinary launch."""
    text = os.environ.get(ENV)
    return json.loads(text) if text else None


def _api(job: dict, suffix: str = "", method: str = "GET") -> dict:
    url = f"{job['address']}/api/jobs/{job['submission_id']}{suffix}"
    with urllib.request.urlopen(urllib.request.Request(url, method=method), timeout=5) as r:
        return json.loads(r.read().decode() or "{}")


def job_status(meta: dict) -> str | None:
    """The Ray Job's status (PENDING, RUNNING, SUCCEEDED, FAILED, STOPPED) of a submitted sweep, from its job
    server; None for a sweep not submitted; ``unreachable (...)`` when the server does not answer."""
    job = meta.get("job")
    if not job:
        return None
    try:
        return str(_api(job).get("status"))
    except (urllib.error.URLError, OSError, ValueError) as e:
        return f"unreachable ({getattr(e, 'reason', None) or e})"


def stop_job(meta: dict) -> bool:
    """Ask the job server to stop a submitted sweep's driver (the hook for `sweep stop`); True if it stopped.
    Its trials end with the driver; `sweep resume` continues the sweep from their checkpoints."""
    job = meta.get("job")
    if not job:
        return False
    return bool(_api(job, "/stop", method="POST").get("stopped"))
