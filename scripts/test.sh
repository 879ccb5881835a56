#!/usr/bin/env bash
# The whole test suite, from a fresh clone: Python test environment, test data, cargo test,
# and the shared command-line contract check when shared/ is beside the project.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-venv.sh
# Triton Inference Server and its client, for the real-Triton test of libtriton_rdeploy.so.
scripts/install-triton.sh
# Headless Chromium, which renders `rdeploy bench --report` in a test.
scripts/install-chromium.sh
.venv/bin/python scripts/prepare-test-data.py
# The ONNX node suite's cases for `rdeploy conformance` (serialised once from the onnx wheel).
.venv/bin/python scripts/prepare-conformance.py --suite node --out target/conformance
# Tests of a backend named here fail (rather than skip) when it is unavailable.
export RDEPLOY_REQUIRE_BACKENDS="${RDEPLOY_REQUIRE_BACKENDS:-tract,onnxruntime,openvino,ncnn,tvm}"
# Engines installed as Python wheels are found through the active environment.
export VIRTUAL_ENV="$PWD/.venv"
# One target dir for the workspace and the out-of-tree examples; binaries are used from it.
export CARGO_TARGET_DIR="$PWD/target"
# The Python package first (PyO3; rdeploy's own crates unoptimised for a quick build): the
# binary's Python backends (ncnn, tvm, the test package's) run in its worker module.
scripts/install-python.sh --dev
cargo test --workspace --locked
# The Python package's own tests.
RDEPLOY_REQUIRE_BACKENDS="$RDEPLOY_REQUIRE_BACKENDS" .venv/bin/python -m pytest -q python/tests
# The main job's real-model part (PP-OCRv4 reads a drawn line of text on tract).
.venv/bin/python scripts/demo_ocr.py target/debug/rdeploy
# Third-party backends, built outside the workspace against rdeploy's public crates only (same
# target dir and profiles, so shared dependencies are not rebuilt).
# --all-targets: the cdylib (which `cargo test` does not produce) is built with the test
# targets' dependency features, the same as the workspace's, so nothing shared is rebuilt.
cargo build --manifest-path examples/custom-backend/Cargo.toml --locked --all-targets
cargo test --manifest-path examples/custom-backend/Cargo.toml --locked
# The same Rust backend as a plugin (export_plugin! cdylib) of the stock rdeploy binary.
target/debug/rdeploy --plugin target/debug/librdeploy_ndarray_backend.so \
  compare tests/data/small-cnn.onnx --backends tract,ndarray --shape batch=2
# The C plugin, built with cc, end to end through the stock binary.
PATH="$PWD/.venv/bin:$PATH" examples/c-plugin/check.sh target/debug/rdeploy
contract=../shared/checks/cli-contract.sh
if [ -f "$contract" ]; then
  PATH="$PWD/.venv/bin:$PATH" bash "$contract" target/debug/rdeploy ${RDEPLOY_REQUIRE_BACKENDS//,/ }
fi
