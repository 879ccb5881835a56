#!/usr/bin/env bash
# Runs every fuzz target (fuzz/fuzz_targets) for SECONDS each with libFuzzer, from seed corpora
# made of the project's real files, and fails on any crash (the crasher is kept in
# fuzz/artifacts/<target>/; turn it into a regression test). Prints runs per target.
# Usage: scripts/fuzz.sh [SECONDS] [TARGET...]     (CI: 30 s each; docs/reliability.md)
# Needs cargo-fuzz (`cargo install cargo-fuzz`); the stable toolchain builds the targets with
# RUSTC_BOOTSTRAP=1, which cargo-fuzz accepts.
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-30}"
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(config_python config_files onnx_model tensor_files manifest)
fi
export RUSTC_BOOTSTRAP=1
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
corpus=fuzz/corpus
seed() { # seed TARGET FILES... (prefix byte for the multi-format targets)
  local t=$1 prefix=$2
  shift 2
  mkdir -p "$corpus/$t"
  for f in "$@"; do
    [ -f "$f" ] || continue
    local out
    out="$corpus/$t/seed-$(basename "$f" | tr -c 'A-Za-z0-9._-' _)"
    if [ -n "$prefix" ]; then
      { printf "\\x$prefix"; cat "$f"; } > "$out"
    else
      cp "$f" "$out"
    fi
  done
}
seed config_python "" $(find tests/data/configs configs -name '*.py')
seed config_files 00 $(find tests/data/configs configs -name '*.py' | head -20)
seed config_files 01 $(find tests/data/configs -name '*.yaml' -o -name '*.yml')
seed config_files 02 $(find tests/data/configs -name '*.json')
seed config_files 03 $(find tests/data/configs -name '*.toml')
seed onnx_model "" tests/data/small-cnn.onnx $(find tests/data/generated -name 'model.onnx' 2>/dev/null | head -20)
seed tensor_files 00 $(find tests/data/generated -name '*.npy' 2>/dev/null | head -10)
seed tensor_files 02 $(find tests/data/generated -name '*.pb' 2>/dev/null | head -20)
mkdir -p "$corpus/manifest"
if [ -d tests/data/generated/cnn ]; then
  printf '%s' '{"format_version":1,"rdeploy_version":"0.1.0","backend":"tract","backend_version":"0.23.9","device":"cpu","ir_file":{"path":"end2end.onnx","sha256":"00","bytes":1},"backend_files":[{"path":"end2end.onnx","sha256":"00","bytes":1}],"inputs":[{"name":"x","dtype":"f32","shape":["batch",3]}],"outputs":[],"source_model":{"path":"m.onnx","sha256":"00","opset":13,"producer":""},"config_file":"c.py","config":{},"notes":[],"cache_key":"k"}' > "$corpus/manifest/seed-manifest.json"
fi
summary=()
for t in "${targets[@]}"; do
  echo "== fuzz $t for ${secs}s"
  log=$(mktemp)
  if ! cargo fuzz run --fuzz-dir fuzz "$t" "$corpus/$t" -- -max_total_time="$secs" \
      -rss_limit_mb=4096 -max_len=65536 -timeout=20 > "$log" 2>&1; then
    echo "fuzz target $t failed (a crash is kept in fuzz/artifacts/$t/):" >&2
    tail -60 "$log" >&2
    exit 1
  fi
  runs=$(grep -oE "Done [0-9]+ runs" "$log" | tail -1 | grep -oE "[0-9]+" || echo "?")
  cov=$(grep -oE "cov: [0-9]+" "$log" | tail -1 | grep -oE "[0-9]+" || echo "?")
  summary+=("$t: $runs runs in ${secs}s, coverage $cov edges, no crash")
  rm -f "$log"
done
printf '%s\n' "${summary[@]}"
