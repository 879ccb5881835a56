#!/usr/bin/env bash
# The main job on the embedded default backend (tract), no Python needed: build rdeploy, deploy
# a small image classifier with MMDeploy's dynamic classification config, and run it.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -p rdeploy-cli
rd=target/release/rdeploy
set -x
$rd check-env
$rd deploy configs/mmpretrain/classification_tract_dynamic.py tests/data/small-cnn.onnx --work-dir work/small-cnn
$rd infer work/small-cnn --shape batch=2 --output-dir work/small-cnn/outputs
