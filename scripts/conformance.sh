#!/usr/bin/env bash
# The whole ONNX node suite on every engine, natively and through rdeploy, and the published
# results: docs/conformance.md, docs/conformance.json and the README's table.
#
#   scripts/conformance.sh [BACKENDS]     (default: tract,onnxruntime,openvino)
#
# Takes about 20 minutes on 2 cores (release build). CI runs a sample of it instead
# (crates/cli/tests/conformance.rs checks the sample against docs/conformance.json).
set -euo pipefail
cd "$(dirname "$0")/.."
backends="${1:-tract,onnxruntime,openvino}"
export VIRTUAL_ENV="$PWD/.venv"
py=.venv/bin/python
$py scripts/prepare-conformance.py --suite node --out target/conformance
results=target/conformance/results
mkdir -p "$results"
native=()
for engine in onnxruntime openvino; do
  if [[ ",$backends," == *",$engine,"* ]]; then
    $py scripts/conformance-native.py --engine "$engine" --dir target/conformance --jobs 2 \
      --json "$results/native-$engine.json"
    native+=(--native "$engine=$results/native-$engine.json")
  fi
done
cargo build --release --locked -p rdeploy-cli
target/release/rdeploy conformance --backends "$backends" --suite node --jobs 2 \
  --dir target/conformance "${native[@]}" \
  --markdown docs/conformance.md --results docs/conformance.json --readme README.md
