#!/usr/bin/env bash
# ONNX Runtime overhead benchmark, in one run: rdeploy's forward vs bare ort (criterion), then
# Python onnxruntime on the same library version, model, input and thread count.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-venv.sh
.venv/bin/python scripts/make-bench-models.py
export VIRTUAL_ENV="$PWD/.venv" RDEPLOY_BENCH_THREADS="${RDEPLOY_BENCH_THREADS:-2}"
cargo bench -p rdeploy-backend-ort --bench overhead -- --noplot 2>&1 | grep -E "^[a-z0-9_]+/|time:" 
for m in "tiny.onnx 1,3,32,32" "resnet18.onnx 1,3,224,224"; do
  set -- $m
  .venv/bin/python scripts/bench_python_ort.py "target/bench-models/$1" "$2" --threads "$RDEPLOY_BENCH_THREADS"
done
