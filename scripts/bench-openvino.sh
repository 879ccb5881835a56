#!/usr/bin/env bash
# OpenVINO: rdeploy's wrapper (`rdeploy bench`) against OpenVINO's own `benchmark_app` (from the
# same pip package), on the same IR file, device, precision, hint, streams and requests, in one
# run. Latency mode: PERFORMANCE_HINT=LATENCY, 1 request, synchronous calls. Throughput mode:
# PERFORMANCE_HINT=THROUGHPUT (OpenVINO picks the streams), N requests in flight (benchmark_app
# async -nireq N; rdeploy bench --concurrency N). Both print the streams OpenVINO chose.
# usage: scripts/bench-openvino.sh [ITERS] [REQUESTS]
set -euo pipefail
cd "$(dirname "$0")/.."
iters="${1:-300}"
streams="${2:-2}"
scripts/setup-venv.sh
.venv/bin/python scripts/make-bench-models.py >/dev/null
export VIRTUAL_ENV="$PWD/.venv" RDEPLOY_LOG=warn
cargo build --release --locked -p rdeploy-cli >/dev/null 2>&1 || cargo build --release --locked -p rdeploy-cli
rdeploy=target/release/rdeploy
out=target/bench-openvino
rm -rf "$out" && mkdir -p "$out"

config() { # name, extra backend_config keys
  cat > "$out/$1.py" <<PY
backend_config = dict(
    type='openvino',
    model_inputs=[dict(opt_shapes=dict(input=[1, 3, 224, 224]))],
    $2)
PY
}
config latency "performance_hint='LATENCY'"
config throughput "performance_hint='THROUGHPUT'"

ba() { # benchmark_app on the deployed IR; prints "median_ms mean_ms throughput"
  .venv/bin/benchmark_app -m "$1/end2end.xml" -d CPU -infer_precision f32 "${@:2}" \
    -niter "$iters" 2>&1 | tee "$1/benchmark_app.log" | awk '
      /NUM_STREAMS/ {print "  benchmark_app:", $0 > "/dev/stderr"}
      /Median:/ {med=$(NF-1)} /Average:/ {avg=$(NF-1)} /Throughput:/ {tp=$(NF-1)}
      END {print med, avg, tp}'
}
rd() { # rdeploy bench; prints "median_ms mean_ms throughput"
  "$rdeploy" bench "$1" --warmup 20 --iters "$iters" --json "${@:2}" > "$1/rdeploy-bench.json"
  .venv/bin/python -c 'import json,sys; j=json.load(open(sys.argv[1])); print(j["latency_ms"]["p50"], j["latency_ms"]["mean"], j["throughput_per_s"]); print("  settings:", j["settings"], file=sys.stderr)' "$1/rdeploy-bench.json"
}

printf '%-34s %12s %12s %14s\n' "ResNet-18 1x3x224x224, f32" "median ms" "mean ms" "throughput/s"
for mode in latency throughput; do
  "$rdeploy" deploy "$out/$mode.py" target/bench-models/resnet18.onnx --work-dir "$out/$mode" >/dev/null
  if [ "$mode" = latency ]; then
    a=$(ba "$out/$mode" -hint latency -api sync -nireq 1)
    b=$(rd "$out/$mode")
  else
    a=$(ba "$out/$mode" -hint throughput -api async -nireq "$streams")
    b=$(rd "$out/$mode" --concurrency "$streams")
  fi
  read -r am aa at <<<"$a"
  read -r bm bb bt <<<"$b"
  printf '%-34s %12.2f %12.2f %14.2f\n' "$mode: benchmark_app" "$am" "$aa" "$at"
  printf '%-34s %12.2f %12.2f %14.2f\n' "$mode: rdeploy bench" "$bm" "$bb" "$bt"
  .venv/bin/python -c 'import sys; a,b=map(float,sys.argv[1:3]); ta,tb=map(float,sys.argv[3:5]); print(" " * 35 + f"rdeploy/benchmark_app: median {100*(b/a-1):+.1f}%, throughput x{tb/ta:.3f}")' "$am" "$bm" "$at" "$bt"
done
