#!/usr/bin/env bash
# Creates the project-local Python environment (.venv) with what the tests need: the `onnx`
# package (its backend test data and model tools), numpy, and engine wheels used as references
# and backends. Idempotent; nothing outside the project is touched except, on a bare Debian
# machine without the venv module, `apt-get install python3-venv`.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ]; then
  if ! python3 -m venv .venv 2>/dev/null; then
    rm -rf .venv
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null
      python3 -m venv .venv
    else
      echo "python3 -m venv failed: install python3-venv (Debian: sudo apt-get install python3-venv)" >&2
      exit 1
    fi
  fi
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check -r scripts/requirements-test.txt
# ncnn's converter: the standalone pnnx binary only (its Python half needs torch, which it would
# pull in as a dependency).
.venv/bin/python -m pip install --quiet --disable-pip-version-check --no-deps pnnx==20261020
