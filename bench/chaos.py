"""Random faults against real sweeps (issue 14): N faults, each one of driver SIGKILL, worker kill, raylet kill,
truncated checkpoint, stray file, copied part, folder moved (each damage between a driver kill and its resume).
Every sweep is resumed until it completes; then its rows are counted straight from Parquet through DuckDB.

    .venv/bin/python bench/chaos.py --faults 30 --seed 1

Prints one line per fault, then the table: faults injected (by kind), rows expected, lost, duplicated, states
wrong (trials not completed, or a sweep not reading completed). Rows expected = trials x steps, since every
trial of the smoke sweep used here completes.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import ray  # noqa: F401 - Ray's bundled psutil
import psutil  # noqa: E402

SETS = ["--scale", "smoke", "--set", "cells=rnn,lru", "--set", "nus=0.9", "--set", "seeds=2", "--set", "batch=16",
        "--set", "lr_search_trials=2", "--set", "grad_norm_every=5"]
KINDS = ("driver", "worker", "raylet", "checkpoint", "stray", "copy", "move")
ROOT = Path(__file__).resolve().parent.parent


def cli(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "orchestrator.cli", *args], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)


def descendants(proc: subprocess.Popen, marker: str) -> list[psutil.Process]:
    out = []
    try:
        for p in psutil.Process(proc.pid).children(recursive=True):
            try:
                if marker in " ".join(p.cmdline()):
                    out.append(p)
            except psutil.Error:
                pass
    except psutil.Error:
        pass
    return out


def kill_driver(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(60)
    time.sleep(1.0)


def sweep_status(results: Path, sid: str) -> str | None:
    try:
        return json.loads((results / sid / "sweep.json").read_text()).get("status")
    except (OSError, ValueError):
        return None


def damage(kind: str, results: Path, sid: str, rng: random.Random, base: Path) -> tuple[Path, str]:
    """Apply a damage to a killed sweep; returns the (maybe new) results folder and what was done."""
    d = results / sid
    if kind == "checkpoint":
        cks = sorted((d / "_checkpoints").glob("*.pt"))
        if not cks:
            return results, "no checkpoint to truncate"
        ck = rng.choice(cks)
        with open(ck, "r+b") as f:
            f.truncate(min(1000, ck.stat().st_size // 2))
        return results, f"truncated {ck.name}"
    if kind == "stray":
        dirs = sorted((d / "steps").glob("trial_id=*"))
        if not dirs:
            return results, "no trial folder"
        target = rng.choice(dirs) / "part-abc.parquet"
        target.write_bytes(b"stray")
        return results, f"stray {target.parent.name}/part-abc.parquet"
    if kind == "copy":
        parts = sorted(p for p in (d / "steps").glob("trial_id=*/part-*.parquet") if p.name < "part-09000")
        if not parts:
            return results, "no part"
        src = rng.choice(parts)
        dst = src.parent / f"part-{rng.randrange(9000, 10000):05d}.parquet"
        shutil.copy2(src, dst)
        return results, f"copied {src.parent.name}/{src.name} to {dst.name}"
    if kind == "move":
        new = base / f"moved-{rng.randrange(10**6)}"
        shutil.move(results, new)
        return new, f"moved to {new.name}"
    return results, ""


def count(results: Path, sid: str, steps: int) -> dict:
    from analysis.db import query_arrow

    q = lambda sql: query_arrow(str(results), sql).to_pylist()[0]  # noqa: E731
    c = q(f"SELECT count(*) AS rows, count(DISTINCT (trial_id, step)) AS uniq FROM steps WHERE sweep_id = '{sid}'")
    t = q(f"SELECT count(*) AS trials, count(*) FILTER (status <> 'completed' OR steps_done <> {steps}) AS wrong "
          f"FROM trials WHERE sweep_id = '{sid}'")
    expected = t["trials"] * steps
    return dict(expected=expected, rows=c["rows"], lost=expected - c["uniq"], duplicated=c["rows"] - c["uniq"],
                wrong=t["wrong"] + (sweep_status(results, sid) != "completed"))


def run_round(faults: list[str], steps: int, base: Path, rng: random.Random, log) -> tuple[list[str], dict]:
    results = base / f"r{rng.randrange(10**6)}"
    proc = cli("launch", "curse-of-memory", *SETS, "--set", f"steps={steps}", "--set", "checkpoint_every=40",
               "--results", str(results))
    sid, done = None, []
    for _ in range(240):  # the driver's start (Python, Ray) before the first fault can land
        sid = next((p.parent.name for p in results.glob("*/sweep.json")), None)
        if sid or proc.poll() is not None:
            break
        time.sleep(0.5)
    for kind in faults:
        time.sleep(rng.uniform(2, 6))
        d = results / str(sid)
        ready = {"checkpoint": lambda: list((d / "_checkpoints").glob("*.pt")),
                 "stray": lambda: list((d / "steps").glob("trial_id=*")),
                 "copy": lambda: list((d / "steps").glob("trial_id=*/part-*.parquet")),
                 "worker": lambda: descendants(proc, "ImplicitFunc")}.get(kind, lambda: True)
        for _ in range(180):  # until there is something to damage (or the sweep has ended)
            if proc.poll() is not None or ready():
                break
            time.sleep(0.5)
        if proc.poll() is not None or sid is None:
            break
        if kind in ("worker", "raylet"):
            marker = "ImplicitFunc" if kind == "worker" else "raylet"
            victims = descendants(proc, marker)
            if not victims:
                continue
            rng.choice(victims).kill()
            log(f"  {kind} kill")
            if kind == "raylet":  # the driver may not notice a lost raylet: give it 90 s, then kill and resume
                try:
                    proc.wait(90)
                except subprocess.TimeoutExpired:
                    log("    driver hung after the raylet kill: SIGKILL")
                kill_driver(proc)
                proc = cli("resume", sid, "--results", str(results))
            done.append(kind)
            continue
        kill_driver(proc)
        results, what = damage(kind, results, sid, rng, base)
        log(f"  driver kill{'; ' + what if what else ''}")
        done.append("driver" if what.startswith("no ") else kind)  # nothing to damage yet: a driver kill
        proc = cli("resume", sid, "--results", str(results))
    for _ in range(4):  # resume until it completes
        try:
            out, _ = proc.communicate(timeout=600)
        except subprocess.TimeoutExpired:
            kill_driver(proc)
            out = "timed out"
        sid = sid or next((p.parent.name for p in results.glob("*/sweep.json")), None)
        if sweep_status(results, sid) == "completed":
            break
        log(f"  not completed (exit {proc.returncode}): {out.strip().splitlines()[-1:] if out else ''}; resume")
        proc = cli("resume", sid, "--results", str(results))
    return done, count(results, sid, steps)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--faults", type=int, default=30)
    ap.add_argument("--per-sweep", type=int, default=5, help="faults injected into one sweep (a round)")
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--kinds", default=",".join(KINDS))
    args = ap.parse_args()
    rng = random.Random(args.seed)
    kinds = args.kinds.split(",")
    base = Path(tempfile.mkdtemp(prefix="chaos-"))
    injected: Counter = Counter()
    total = Counter()
    t0 = time.monotonic()
    r = 0
    while sum(injected.values()) < args.faults:
        r += 1
        faults = [rng.choice(kinds) for _ in range(min(args.per_sweep, args.faults - sum(injected.values())))]
        print(f"sweep {r}: {', '.join(faults)}", flush=True)
        done, c = run_round(faults, args.steps, base, rng, lambda s: print(s, flush=True))
        injected.update(done)
        total.update({k: c[k] for k in ("expected", "rows", "lost", "duplicated", "wrong")})
        print(f"  -> {c}", flush=True)
    print(f"\nchaos: {sum(injected.values())} faults in {r} sweeps, {time.monotonic() - t0:.0f} s")
    print("faults injected: " + ", ".join(f"{k} {injected[k]}" for k in KINDS if injected[k]))
    print(f"{'rows expected':>14} {'lost':>6} {'duplicated':>11} {'states wrong':>13}")
    print(f"{total['expected']:>14} {total['lost']:>6} {total['duplicated']:>11} {total['wrong']:>13}")
    shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
