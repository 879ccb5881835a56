#!/usr/bin/env bash
# The whole test suite, from a fresh clone: Python test environment, test data, cargo test,
# and the shared command-line contract check when shared/ is beside the project.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-venv.sh
.venv/bin/python scripts/prepare-test-data.py
# Tests of a backend named here fail (rather than skip) when it is unavailable.
export RDEPLOY_REQUIRE_BACKENDS="${RDEPLOY_REQUIRE_BACKENDS:-tract,onnxruntime,openvino}"
# Engines installed as Python wheels are found through the active environment.
export VIRTUAL_ENV="$PWD/.venv"
cargo test --workspace --locked
contract=../shared/checks/cli-contract.sh
if [ -f "$contract" ]; then
  PATH="$PWD/.venv/bin:$PATH" bash "$contract" target/debug/rdeploy ${RDEPLOY_REQUIRE_BACKENDS//,/ }
fi
