"""Shared fixtures. A test of a backend skips when that backend is unavailable here, unless
RDEPLOY_REQUIRE_BACKENDS names it (CI names every backend it installs): then it fails."""
import os
import pathlib

import pytest

import rdeploy

ROOT = pathlib.Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data"
GENERATED = DATA / "generated"
BACKENDS = ["tract", "onnxruntime", "openvino"]


def require(backend: str) -> None:
    """Skips (or fails, when required) unless `backend` is available."""
    status = {b["name"]: b for b in rdeploy.check_env()["backends"]}
    b = status.get(backend)
    if b is not None and b["available"]:
        return
    reason = b["reason"] if b else "not registered"
    required = [x.strip() for x in os.environ.get("RDEPLOY_REQUIRE_BACKENDS", "").split(",")]
    if backend in required:
        pytest.fail(f"backend {backend} is required (RDEPLOY_REQUIRE_BACKENDS) but unavailable: {reason}")
    pytest.skip(f"{backend} unavailable: {reason}")


@pytest.fixture(params=BACKENDS)
def backend(request):
    require(request.param)
    return request.param


@pytest.fixture(scope="session")
def small_cnn():
    return DATA / "small-cnn.onnx"


def ort_reference(model, feeds):
    """Python onnxruntime on the original file: the independent reference."""
    import onnxruntime as ort

    sess = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    return sess.run(None, feeds)
