#!/usr/bin/env bash
# The whole ONNX node suite on every engine, natively and through rdeploy, and the published
# results: docs/conformance.md, docs/conformance.json and the README's table.
#
#   scripts/conformance.sh [BACKENDS]     (default: tract,onnxruntime,openvino)
#
# Takes about 3 minutes on 2 cores (debug build; the classes do not depend on the profile), plus the
# native runs (OpenVINO about 1 minute). CI runs a sample of it instead
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
    # OpenVINO natively at float32, the precision rdeploy's OpenVINO backend runs at by default
    # (the CPU plugin's own default is bf16 on CPUs with AVX512-BF16, which fails ~230 more
    # cases at the suite's tolerances).
    extra=()
    [ "$engine" = openvino ] && extra=(--ov-config INFERENCE_PRECISION_HINT=f32)
    $py scripts/conformance-native.py --engine "$engine" --dir target/conformance --jobs 2 \
      "${extra[@]}" --json "$results/native-$engine.json"
    native+=(--native "$engine=$results/native-$engine.json")
  fi
done
cargo build --locked -p rdeploy-cli
target/debug/rdeploy conformance --backends "$backends" --suite node --jobs 2 \
  --dir target/conformance "${native[@]}" \
  --markdown docs/conformance.md --results docs/conformance.json --readme README.md
