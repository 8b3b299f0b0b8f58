"""Training-step time of every student cell: the fast whole-sequence ``forward`` against the same model's
plain per-time-step Python loop (``forward_stepwise``), measured in the same run on the same machine.

One step = forward + loss 0.5 * mean((y_hat - y)^2) against the target of the teacher-student task
(TeacherStudent(nu=0.99)) + backward + Adam step, at the paper's shape by default (batch 128, T = 300,
hidden 64, d_in = d_out = 1). Each form gets its own copy of the same initial model and its own Adam;
one warm-up step each, then ``--repeats`` timed steps of each form, interleaved, and their medians.
Pass/fail uses the medians; the ratio of the best times is printed too, being less sensitive to other
processes on the machine. The fast/loop output difference is measured once, on the initial model, in float32.

Targets (speed-up = loop ms / fast ms): lru, cdiag, cdiag_norm >= 30x (FFT convolution instead of a loop);
rnn and blockdiag >= 5x (log-depth doubling of A^k); gru and lstm are reported only (their fast path is
torch's fused nn.GRU / nn.LSTM).

Run:  python bench/step_time.py [--batch 128 --seq-len 300 --hidden 64 --repeats 5 --threads N
                                 --cells lru rnn ... --device cpu]
Prints a Markdown table and always exits 0.
"""
from __future__ import annotations

import argparse
import copy
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere without installing

import torch  # noqa: E402

from trainers.cells import CELLS, CellSpec, build_cell  # noqa: E402
from trainers.tasks.teacher_student import TeacherStudent  # noqa: E402

NU = 0.99
TARGETS = {"lru": 30.0, "cdiag": 30.0, "cdiag_norm": 30.0, "rnn": 5.0, "blockdiag": 5.0}  # others: report only


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def make_step(model, forward, x, y, task):
    """One training step of ``model`` run through ``forward`` (its own Adam)."""
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)

    def step():
        opt.zero_grad(set_to_none=True)
        loss = task.loss(forward(x), y)
        loss.backward()
        opt.step()

    return step


def timed(step, device: torch.device) -> float:
    sync(device)
    t0 = time.perf_counter()
    step()
    sync(device)
    return 1e3 * (time.perf_counter() - t0)


def bench_cell(name: str, args, task: TeacherStudent, x, y, device: torch.device) -> dict:
    torch.manual_seed(0)
    spec = CellSpec(d_in=1, hidden=args.hidden, d_out=1, r_min=NU)  # diagonal cells: ring [nu0, 1] as in the paper
    fast = build_cell(name, spec).to(device)
    loop = copy.deepcopy(fast)  # the same initial model, trained through the loop
    with torch.no_grad():
        y_fast, y_loop = fast(x), fast.forward_stepwise(x)
        diff, scale = (y_fast - y_loop).abs().max().item(), y_loop.abs().max().item()
    fast_step = make_step(fast, fast.forward, x, y, task)
    loop_step = make_step(loop, loop.forward_stepwise, x, y, task)
    fast_step(), loop_step()  # warm-up: allocator, kernels, Adam state
    fast_ms, loop_ms = [], []
    for _ in range(args.repeats):  # interleaved, so that background load hits both forms alike
        fast_ms.append(timed(fast_step, device))
        loop_ms.append(timed(loop_step, device))
    return {"fast": statistics.median(fast_ms), "loop": statistics.median(loop_ms),
            "best_ratio": min(loop_ms) / min(fast_ms), "diff": diff, "scale": scale}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--seq-len", type=int, default=300)
    p.add_argument("--hidden", type=int, default=64)
    p.add_argument("--repeats", type=int, default=5, help="timed steps per form, interleaved (median reported)")
    p.add_argument("--threads", type=int, default=os.cpu_count(), help="torch.set_num_threads (default: all cores)")
    p.add_argument("--cells", nargs="+", default=list(CELLS), help=f"default: all of {', '.join(CELLS)}")
    p.add_argument("--device", default="cpu")
    args = p.parse_args(argv)

    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    task = TeacherStudent(NU, seq_len=args.seq_len).to(device)
    gen = torch.Generator(device=device).manual_seed(0)
    x, y = task.sample(args.batch, gen)

    print(f"# step time: batch {args.batch}, T {args.seq_len}, hidden {args.hidden}, d_in = d_out = 1, "
          f"teacher nu0 = {NU}; {args.repeats} repeats (median), 1 warm-up")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"torch {torch.__version__}, device {device}, threads {torch.get_num_threads()}, "
          f"{os.cpu_count()} cores, 1-min load average at start {load:.2f}")
    if load > 0.5:
        print("(other processes are using the CPU: absolute times are inflated and ratios noisy; "
              "with oversubscribed cores try --threads 1)")
    print()
    rows = []
    for name in args.cells:
        try:
            r = bench_cell(name, args, task, x, y, device)
        except Exception as e:  # a benchmark reports, it does not stop
            rows.append((name, "error", "", "", "", f"{type(e).__name__}: {e}", "", "", ""))
            continue
        ratio = r["loop"] / r["fast"]
        target = TARGETS.get(name)
        verdict = ("yes" if ratio >= target else "NO") if target is not None else "report"
        rows.append((name, f"{r['fast']:.1f}", f"{r['loop']:.1f}", f"{ratio:.1f}x",
                     f">= {target:g}x" if target is not None else "-", verdict,
                     f"{r['best_ratio']:.1f}x", f"{r['diff']:.1e}", f"{r['scale']:.1e}"))
        print(f"  {name}: fast {r['fast']:.1f} ms, loop {r['loop']:.1f} ms", file=sys.stderr, flush=True)

    print("| cell | fast ms/step | loop ms/step | speed-up (loop/fast) | target | pass? "
          "| speed-up of best times | max abs(fast - loop) (fp32) | max abs(y) |")
    print("| --- | ---: | ---: | ---: | --- | --- | ---: | ---: | ---: |")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    return 0


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # noqa: BLE001 -- a benchmark always exits 0
        print(f"benchmark error: {type(e).__name__}: {e}", file=sys.stderr)
    sys.exit(0)
