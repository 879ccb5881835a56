#!/usr/bin/env bash
# The main job on the embedded default backend (tract): build rdeploy; deploy a small image
# classifier with MMDeploy's dynamic classification config and run it; then deploy a real
# pretrained model (PP-OCRv4's text recognizer, from RapidOCR's wheel on PyPI) and run it on an
# image of text drawn here, printing what it reads. Python (the project venv, from PyPI) only
# fetches the model, draws the image and decodes the output; the models run in rdeploy.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -p rdeploy-cli
rd=target/release/rdeploy
(
  set -x
  $rd check-env
  $rd deploy configs/mmpretrain/classification_tract_dynamic.py tests/data/small-cnn.onnx --work-dir work/small-cnn
  $rd infer work/small-cnn --shape batch=2 --output-dir work/small-cnn/outputs
)
scripts/setup-venv.sh
.venv/bin/python scripts/demo_ocr.py "$rd" "${RDEPLOY_DEMO_TEXT:-rdeploy 2026}"
