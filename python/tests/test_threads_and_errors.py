"""One wrapper shared by threads, and bad inputs raising the right exception (never a crash)."""
import threading

import numpy as np
import pytest

import rdeploy
from conftest import ROOT


@pytest.fixture
def cnn(backend, small_cnn, tmp_path):
    cfg = ROOT / "configs" / "onnx" / f"dynamic-batch_{backend}.py"
    return rdeploy.load(rdeploy.deploy(str(cfg), small_cnn, tmp_path / "w"))


def test_8_threads_x_50_calls_equal_serial_calls(cnn):
    rng = np.random.default_rng(7)
    xs = [rng.random((1 + i % 3, 3, 32, 32), dtype=np.float32) for i in range(8 * 50)]
    serial = [cnn({"input": x})["output"] for x in xs]
    got = [None] * len(xs)
    errors = []

    def worker(t):
        try:
            for i in range(t, len(xs), 8):
                got[i] = cnn.forward({"input": xs[i]})["output"]
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    for a, b in zip(got, serial):
        np.testing.assert_array_equal(a, b)


def test_bad_inputs_raise_input_mismatch(cnn):
    x = np.zeros((1, 3, 32, 32), np.float32)
    cases = [
        ({}, "missing"),
        ({"input": x, "nope": x}, "nope"),
        ({"input": x.astype(np.float64)}, "dtype"),
        ({"input": np.zeros((1, 3, 31, 32), np.float32)}, "shape"),
        ({"input": np.zeros((3, 32, 32), np.float32)}, "shape"),
        ({"input": np.array(["a"])}, "input"),
        ({"input": np.zeros((1, 3, 32, 32), np.complex64)}, "complex"),
        ({"input": object()}, "input"),
        ({1: x}, "str"),
    ]
    for feeds, word in cases:
        with pytest.raises(rdeploy.InputMismatch) as e:
            cnn(feeds)
        assert word in str(e.value), (feeds.keys(), str(e.value))
    with pytest.raises(rdeploy.InputMismatch):
        cnn([x])  # not a dict
    with pytest.raises(rdeploy.InputMismatch):
        cnn.execute([])
    assert isinstance(rdeploy.InputMismatch("x"), rdeploy.Error)


def test_bad_files_configs_and_backends_raise_their_exceptions(tmp_path, small_cnn):
    with pytest.raises(rdeploy.WorkDirError, match="not found"):
        rdeploy.load(tmp_path / "none")
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not onnx at all")
    with pytest.raises(rdeploy.ModelError, match="bad.onnx"):
        rdeploy.deploy({"backend_config": {"type": "tract"}}, bad, tmp_path / "w")
    # The config names a backend this build does not have: the key is at fault.
    with pytest.raises(rdeploy.ConfigError, match="backend_config.type.*nosuch"):
        rdeploy.deploy({"backend_config": {"type": "nosuch"}}, small_cnn, tmp_path / "w")
    with pytest.raises(rdeploy.BackendUnavailable, match="nosuch"):
        rdeploy.compare(small_cnn, ["tract", "nosuch"])
    with pytest.raises(rdeploy.ConfigError, match="input_names"):
        rdeploy.deploy({"backend_config": {"type": "tract"},
                        "onnx_config": {"input_names": ["a", "b"]}}, small_cnn, tmp_path / "w")
    cfg = tmp_path / "c.py"
    cfg.write_text("backend_config = dict(type='tract'\n")
    with pytest.raises(rdeploy.ConfigError, match="c.py"):
        rdeploy.Config.fromfile(cfg)
    with pytest.raises(rdeploy.ConfigError, match="not a config value"):
        rdeploy.Config.from_dict({"backend_config": {"type": object()}})
    with pytest.raises(rdeploy.DeviceError):
        rdeploy.deploy({"backend_config": {"type": "tract"}}, small_cnn, tmp_path / "w", device="cuda:0")
    with pytest.raises(rdeploy.DeviceError):
        rdeploy.load(tmp_path / "w", device="??")
    assert not (tmp_path / "w" / "deploy.json").exists(), "failed deploys leave no manifest"
    with pytest.raises(rdeploy.ConfigError):
        rdeploy.compare(small_cnn, ["tract"])
