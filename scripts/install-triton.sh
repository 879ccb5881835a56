#!/usr/bin/env bash
# Installs into the project venv (.venv) what the real-Triton test of libtriton_rdeploy.so needs:
#  - the nvidia-pytriton wheel, for the Triton Inference Server binary it ships
#    (pytriton/tritonserver/bin/tritonserver, CPU-only works, with its libraries in
#    nvidia_pytriton.libs/). Only the binary is used, never pytriton's Python API, so the wheel
#    goes in with --no-deps: its dependencies ask for numpy < 2, a downgrade of the pinned numpy.
#  - tritonclient (HTTP and gRPC), NVIDIA's client. Also --no-deps, with its dependencies listed
#    here: its grpc extra asks for protobuf < 7, a downgrade of the protobuf that onnx and
#    openvino's pins bring; its generated code runs on protobuf 7 (one major version newer than
#    the gencode is supported by protobuf's runtime check).
# Every version is pinned; nothing already installed is downgraded or removed (the venv may be
# shared). Idempotent: a second run changes nothing. Run after scripts/setup-venv.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
py=.venv/bin/python
if [ ! -x "$py" ]; then
  echo "install-triton.sh: no .venv here; run scripts/setup-venv.sh first" >&2
  exit 1
fi
pip=("$py" -m pip install --quiet --disable-pip-version-check)

# tritonclient[http,grpc]'s dependencies (from its metadata), minus protobuf (kept as installed).
"${pip[@]}" \
  'ml-dtypes==0.5.4' \
  'python-rapidjson==1.25' \
  'urllib3==2.8.0' \
  'aiohttp==3.14.5' \
  'geventhttpclient==2.6.1' \
  'greenlet==3.3.2' \
  'grpcio==1.85.3' \
  'packaging>=14.1'
"${pip[@]}" --no-deps 'tritonclient==2.73.0' 'nvidia-pytriton==0.7.0'

# What the test relies on, checked here so that a broken install fails now, with the reason.
"$py" - <<'EOF'
import importlib.util, os, pathlib, sys
import numpy
import tritonclient.grpc, tritonclient.http  # noqa: F401
spec = importlib.util.find_spec("pytriton")
root = pathlib.Path(spec.submodule_search_locations[0])
server = root / "tritonserver" / "bin" / "tritonserver"
libs = root.parent / "nvidia_pytriton.libs"
if not os.access(server, os.X_OK) or not libs.is_dir():
    sys.exit(f"install-triton.sh: {server} or {libs} missing after installing nvidia-pytriton")
if not numpy.__version__.startswith("2."):
    sys.exit(f"install-triton.sh: numpy was downgraded to {numpy.__version__}")
EOF
