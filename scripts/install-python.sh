#!/usr/bin/env bash
# Builds the rdeploy Python package (python/ + crates/python, PyO3/maturin) and installs it into
# the project venv (.venv, created by scripts/setup-venv.sh if missing). Afterwards:
#   .venv/bin/python -c "import rdeploy; print(rdeploy.check_env())"
# Usage: scripts/install-python.sh [--dev]    (--dev: unoptimised build of rdeploy's own crates,
#        faster to build; engines are optimised either way. Default: release.)
# A wheel for other environments: .venv/bin/maturin build --release -m python/pyproject.toml
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/maturin ] || scripts/setup-venv.sh
profile=(--release)
if [ "${1:-}" = "--dev" ]; then profile=(); fi
export VIRTUAL_ENV="$PWD/.venv"
export PATH="$VIRTUAL_ENV/bin:$PATH"
# One target dir with the rest of the workspace, so shared crates are built once.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
(cd python && maturin develop --locked "${profile[@]}")
.venv/bin/python -c "import rdeploy; print('rdeploy', rdeploy.__version__, 'installed in .venv; backends:', ', '.join(rdeploy.backends()))"
