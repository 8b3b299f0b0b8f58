#!/usr/bin/env bash
# Every GPU check in one go (under 8 minutes on one H100-class GPU), then one table of what each printed.
# The first time a GPU machine is at hand: `bash bench/gpu.sh` from the repository root, with .venv made.
#   1. the CUDA tests (tests that skip without CUDA, run here with it);
#   2. bundles of rates x seeds against the same runs solo (bench/rate_bundle.py --device cuda);
#   3. the fused cells' speed on CUDA (bench/cell_speed.py, bench/step_time.py --device cuda);
#   4. the paper-scale projection with --device cuda (bench/project.py).
set -u
PY=${PY:-.venv/bin/python}
if ! "$PY" -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; then
    echo "bench/gpu.sh: no CUDA device (torch.cuda.is_available() is false in $PY); run it on a GPU machine" >&2
    exit 2
fi
OUT=$(mktemp -d)
declare -a NAMES CODES SECS
run() {  # run NAME LIMIT_S CMD...: its output to $OUT/NAME.log, status and seconds kept for the table
    local name=$1 limit=$2; shift 2
    local t0=$SECONDS
    timeout "$limit" "$@" > "$OUT/$name.log" 2>&1
    CODES+=($?); NAMES+=("$name"); SECS+=($((SECONDS - t0)))
    echo "== $name (exit ${CODES[-1]}, ${SECS[-1]} s)"; tail -n 15 "$OUT/$name.log"
}
run cuda-tests 120 "$PY" -m pytest -q -x tests/test_hessian.py tests/test_lr_protocol.py -k "cuda or bundle"
run rate-bundles 120 "$PY" bench/rate_bundle.py --device cuda --steps 200
run cell-speed 60 "$PY" bench/cell_speed.py --device cuda --repeats 3
run step-time 60 "$PY" bench/step_time.py --device cuda --repeats 3
run projection 120 "$PY" bench/project.py --device cuda --sweeps curse-of-memory --gpus 1 8 32
echo
printf '%-14s %6s %6s  %s\n' check exit secs log
for i in "${!NAMES[@]}"; do
    printf '%-14s %6s %6s  %s\n' "${NAMES[$i]}" "${CODES[$i]}" "${SECS[$i]}" "$OUT/${NAMES[$i]}.log"
done
for c in "${CODES[@]}"; do [ "$c" = 0 ] || exit 1; done
