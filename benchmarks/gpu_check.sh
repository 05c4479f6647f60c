#!/usr/bin/env bash
# One GPU check: the CUDA tests and the CUDA benchmarks, in under 8 minutes on a machine with a GPU.
#
# Usage:  bash benchmarks/gpu_check.sh [OUTDIR]        (PYTHON=/path/to/python to pick the interpreter)
#
# Without CUDA (no device, or a CPU-only torch) it prints why and exits 0 having run nothing. With CUDA it runs,
# each step under its own time limit (total at most 7 min 30 s), logging to OUTDIR (default gpu_check_out/):
#   1. device facts (nvidia-smi -L, torch and CUDA versions)                                          10 s
#   2. the tests that exercise CUDA (fit on the device; skipped parts say why)                       120 s
#   3. body model forward+backward on cuda (bench_body_model.py, demo model + shared models)          60 s
#   4. direct fit on cuda, real mouse clip (bench_fit.py; needs ../shared, else reports the skip)    120 s
#   5. training step vs backbone on cuda, bf16 (bench_train.py: small_cnn 64 px, resnet50 224 px)    120 s
# and prints one summary line per step (ok / FAILED rc / TIMEOUT) plus the benchmark figures.
# Exit status: 0 when every step passed (or CUDA is absent), 1 otherwise.
set -uo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python}"
command -v "$PY" >/dev/null 2>&1 || PY=python3
export PYTHONPATH="${PWD}/src${PYTHONPATH:+:$PYTHONPATH}"

if ! "$PY" - <<'PYEOF'
import sys
try:
    import torch
except ImportError:
    print("gpu_check: torch is not installed: skipped")
    sys.exit(1)
if not torch.cuda.is_available():
    print(f"gpu_check: no CUDA device (torch {torch.__version__}, built with CUDA {torch.version.cuda}): skipped")
    sys.exit(1)
PYEOF
then
    exit 0
fi

OUT="${1:-gpu_check_out}"
mkdir -p "$OUT"
START=$(date +%s)
declare -a SUMMARY=()
STATUS=0

step() {  # step NAME LIMIT_S COMMAND...
    local name="$1" limit="$2"
    shift 2
    local t0=$(date +%s)
    echo "::: $name (limit ${limit} s)"
    timeout --kill-after=10 "$limit" "$@" >"$OUT/$name.log" 2>&1
    local rc=$? dt=$(( $(date +%s) - t0 ))
    if [ $rc -eq 0 ]; then
        SUMMARY+=("$name: ok (${dt} s)")
    elif [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
        SUMMARY+=("$name: TIMEOUT after ${limit} s (log $OUT/$name.log)"); STATUS=1
    else
        SUMMARY+=("$name: FAILED rc $rc (${dt} s, log $OUT/$name.log)"); STATUS=1
    fi
    tail -n 15 "$OUT/$name.log"
}

step device 10 bash -c "nvidia-smi -L 2>/dev/null || true; \"$PY\" -c 'import torch; print(\"torch\", torch.__version__, \"cuda\", torch.version.cuda, torch.cuda.get_device_name(0))'"
step cuda_tests 120 "$PY" -m pytest -q -p no:cacheprovider tests/test_fitting_synthetic.py -k "device_argument" -rs
step bench_body_model 60 "$PY" benchmarks/bench_body_model.py --device cuda --batch-sizes 1 32 256 1024 --budget 1 --no-naive
if [ -d ../shared/external/sleap-anipose/minimal_session ]; then
    step bench_fit 120 "$PY" benchmarks/bench_fit.py --device cuda --repeats 2
else
    SUMMARY+=("bench_fit: skipped (../shared/external/sleap-anipose/minimal_session absent; see README, sample data)")
fi
step bench_train 120 "$PY" benchmarks/bench_train.py --device cuda --amp bf16 --backbone small_cnn resnet50 \
    --size 64 224 --batch 32 32 --iters 10 --warmup 3

echo
echo "::: gpu_check summary ($(( $(date +%s) - START )) s in all; logs in $OUT/)"
printf '  %s\n' "${SUMMARY[@]}"
exit $STATUS
