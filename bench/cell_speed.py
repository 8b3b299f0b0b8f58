"""Training-step time of the nonlinear cells: the fast ``forward`` against the same cell's plain per-time-step
Python loop (``forward_stepwise``), and against torch's own ``nn.LSTM`` of the same size, measured in the
same run on the same machine.

One step = forward + loss 0.5 * mean((y_hat - y)^2) against a fixed random target + backward + Adam step, at
batch 128, T = 300, hidden 128 by default, d_in = d_out = hidden (an inner layer of a deep stack). Fast
paths: lstm, gru, vrnn, slstm run torch's fused nn.LSTM / nn.GRU / nn.RNN (``FusedCoreCell``); star, lstmf,
ornn run ``ScanCell.forward`` (every step's input projected in one matmul, W once per call, ornn's matrix
exponential included, and an eager loop of addmm + the elementwise update). The baseline is a bare
``nn.LSTM`` with a bias-free linear readout (the lstm cell's model, built directly from torch). Every form
gets its own copy of the same initial model and its own Adam; one warm-up step each, then ``--repeats``
rounds that time one step of every form in turn (so background load hits all alike); the table uses each
form's best time (the least disturbed by other processes). The fast/loop output difference is measured once,
on the initial model, in float32.

Targets: the scan cells' step <= 3x nn.LSTM's (issue 6); the speed-up over the loop is reported.

Run:  python bench/cell_speed.py [--batch 128 --seq-len 300 --hidden 128 --d-in N --repeats 5 --threads 1
                                  --cells star lstmf ...]
``--threads 1`` by default: a sweep trial runs one intra-op thread per CPU it is given (orchestrator/worker.py).
Prints a Markdown table and always exits 0.
"""
from __future__ import annotations

import argparse
import copy
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere without installing

import torch  # noqa: E402
from torch import nn  # noqa: E402

from trainers.cells import CellSpec, build_cell  # noqa: E402
from trainers.cells.base import ScanCell  # noqa: E402

CELLS = ("lstm", "gru", "vrnn", "slstm", "star", "lstmf", "ornn")
LSTM_MULTIPLE = 3.0  # target for the scan cells: step time <= 3x nn.LSTM's


def make_step(model: nn.Module, forward, x, y):
    """One training step of ``model`` run through ``forward`` (its own Adam)."""
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)

    def step():
        opt.zero_grad(set_to_none=True)
        loss = 0.5 * (forward(x) - y).square().mean()
        loss.backward()
        opt.step()

    return step


def timed(step, device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    t0 = time.perf_counter()
    step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return 1e3 * (time.perf_counter() - t0)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--seq-len", type=int, default=300)
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--d-in", type=int, default=None, help="input (and output) features (default: hidden)")
    p.add_argument("--repeats", type=int, default=5, help="timed rounds (best time per form reported)")
    p.add_argument("--threads", type=int, default=1, help="torch.set_num_threads (default 1, as a sweep trial)")
    p.add_argument("--cells", nargs="+", default=list(CELLS), help=f"default: {', '.join(CELLS)}")
    p.add_argument("--device", default="cpu")
    args = p.parse_args(argv)

    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    d = args.d_in or args.hidden
    gen = torch.Generator(device=device).manual_seed(0)
    x = torch.randn(args.batch, args.seq_len, d, generator=gen, device=device)
    y = torch.randn(args.batch, args.seq_len, d, generator=gen, device=device)

    print(f"# cell step time: batch {args.batch}, T {args.seq_len}, hidden {args.hidden}, d_in = d_out = {d}; "
          f"best of {args.repeats} interleaved rounds, 1 warm-up")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"torch {torch.__version__}, device {device}, threads {torch.get_num_threads()}, "
          f"{os.cpu_count()} cores, 1-min load average at start {load:.2f}")
    if load > 0.5:
        print("(other processes are using the CPU: absolute times are inflated and ratios noisy)")
    print()

    torch.manual_seed(0)
    lstm, readout = nn.LSTM(d, args.hidden, batch_first=True), nn.Linear(args.hidden, d, bias=False)
    baseline = nn.ModuleList([lstm, readout]).to(device)
    steps = {"nn.LSTM": make_step(baseline, lambda v: readout(lstm(v)[0]), x, y)}
    info = {}
    for name in args.cells:
        torch.manual_seed(0)
        fast = build_cell(name, CellSpec(d, args.hidden, d)).to(device)
        loop = copy.deepcopy(fast)  # the same initial model, trained through the loop
        with torch.no_grad():
            y_fast, y_loop = fast(x), fast.forward_stepwise(x)
        info[name] = ((y_fast - y_loop).abs().max().item(), y_loop.abs().max().item(), isinstance(fast, ScanCell))
        steps[f"{name} fast"] = make_step(fast, fast.forward, x, y)
        steps[f"{name} loop"] = make_step(loop, loop.forward_stepwise, x, y)
    for step in steps.values():  # warm-up: allocator, kernels, Adam state
        step()
    ms = {k: [] for k in steps}
    for r in range(args.repeats):
        for k, step in steps.items():
            ms[k].append(timed(step, device))
        print(f"  round {r + 1}/{args.repeats} done", file=sys.stderr, flush=True)
    best = {k: min(v) for k, v in ms.items()}

    print(f"nn.LSTM step: {best['nn.LSTM']:.1f} ms (best), {sorted(ms['nn.LSTM'])[len(ms['nn.LSTM']) // 2]:.1f} ms "
          "(median)")
    print()
    print("| cell | fast path | fast ms/step | loop ms/step | speed-up (loop/fast) | fast / nn.LSTM "
          "| target | pass? | max abs(fast - loop) (fp32) | max abs(y) |")
    print("| --- | --- | ---: | ---: | ---: | ---: | --- | --- | ---: | ---: |")
    for name in args.cells:
        diff, scale, scan = info[name]
        f, lp = best[f"{name} fast"], best[f"{name} loop"]
        multiple = f / best["nn.LSTM"]
        target = f"<= {LSTM_MULTIPLE:g}x nn.LSTM" if scan else "-"
        verdict = ("yes" if multiple <= LSTM_MULTIPLE else "NO") if scan else "report"
        path = "ScanCell loop" if scan else "fused torch RNN"
        print(f"| {name} | {path} | {f:.1f} | {lp:.1f} | {lp / f:.2f}x | {multiple:.2f}x | {target} | {verdict} "
              f"| {diff:.1e} | {scale:.1e} |")
    return 0


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # noqa: BLE001 -- a benchmark always exits 0
        print(f"benchmark error: {type(e).__name__}: {e}", file=sys.stderr)
    sys.exit(0)
