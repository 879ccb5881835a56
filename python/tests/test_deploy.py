"""deploy + load + forward through the Python package on each backend, against Python
onnxruntime on the original model file."""
import numpy as np
import pytest

import rdeploy
from conftest import GENERATED, ROOT, ort_reference


def test_mmdeploy_config_deploys_and_matches_onnxruntime(backend, small_cnn, tmp_path):
    cfg = ROOT / "configs" / "onnx" / f"dynamic-batch_{backend}.py"
    work = rdeploy.deploy(str(cfg), small_cnn, tmp_path / "w")
    assert work.backend == backend and not work.reused
    assert [t.name for t in work.inputs] == ["input"]
    assert work.inputs[0].shape == ("batch", 3, 32, 32)
    assert [p["name"] for p in work.manifest["passes"]][:2] == ["normalize", "onnx_config"]
    model = rdeploy.load(work)
    assert model.output_names == ["output"]
    x = np.random.default_rng(0).random((3, 3, 32, 32), dtype=np.float32)
    out = model({"input": x})
    (want,) = ort_reference(small_cnn, {"image": x})
    assert out["output"].dtype == np.float32 and out["output"].shape == (3, 10)
    # Tolerance: float32 engines, different kernels; probabilities in [0, 1].
    np.testing.assert_allclose(out["output"], want, rtol=1e-4, atol=1e-5)
    # The same work dir again: reused, and loadable by path.
    again = rdeploy.deploy(str(cfg), small_cnn, tmp_path / "w")
    assert again.reused
    np.testing.assert_array_equal(rdeploy.load(str(tmp_path / "w"))(
        {"input": x})["output"], out["output"])


@pytest.mark.parametrize("case", ["cnn", "mlp"])
def test_generated_cases_match_their_expected_outputs(backend, case, tmp_path):
    import onnx
    from onnx import numpy_helper

    d = GENERATED / case
    model = d / "model.onnx"
    work = rdeploy.deploy({"backend_config": {"type": backend}}, model, tmp_path / case)
    w = rdeploy.load(work)
    ds = d / "test_data_set_0"
    feeds = {}
    for spec, i in zip(w.inputs, range(len(w.inputs))):
        t = onnx.TensorProto()
        t.ParseFromString((ds / f"input_{i}.pb").read_bytes())
        feeds[spec.name] = numpy_helper.to_array(t)
    out = w.forward(feeds)
    want = ort_reference(model, feeds)
    for name, ref in zip(w.output_names, want):
        np.testing.assert_allclose(out[name], ref, rtol=1e-4, atol=1e-5)


def test_dict_config_keeps_int_keys_and_tuples(tmp_path, small_cnn):
    cfg = rdeploy.Config.from_dict({
        "backend_config": {"type": "tract"},
        "onnx_config": {"input_names": ["input"], "input_shape": (32, 32),
                        "dynamic_axes": {"input": {0: "n"}}},
    })
    d = cfg.to_dict()
    assert d["onnx_config"]["dynamic_axes"] == {"input": {0: "n"}}
    assert d["onnx_config"]["input_shape"] == (32, 32)
    work = rdeploy.deploy(cfg, small_cnn, tmp_path / "w")
    assert work.inputs[0].shape == ("n", 3, 32, 32)


def test_config_fromfile_is_mmengines_merge():
    cfg = rdeploy.Config.fromfile(ROOT / "configs" / "mmpretrain" / "classification_onnxruntime_dynamic.py")
    d = cfg.to_dict()
    assert d["backend_config"]["type"] == "onnxruntime"
    assert d["onnx_config"]["input_names"] == ["input"]
    assert "onnx_config" in cfg and cfg["codebase_config"]["type"] == "mmpretrain"
    try:
        from mmengine import Config as MMConfig
    except ImportError:  # pragma: no cover - mmengine is in the test venv
        return
    assert d == MMConfig.fromfile(str(cfg.filename)).to_dict()


def test_check_env_matches_the_cli(tmp_path):
    import json
    import subprocess

    env = rdeploy.check_env()
    assert env["rdeploy"] == rdeploy.__version__
    names = [b["name"] for b in env["backends"]]
    assert names[:3] == ["tract", "onnxruntime", "openvino"] == rdeploy.backends()[:3]
    cli = ROOT / "target" / "debug" / "rdeploy"
    if cli.exists():
        import os
        import sys

        env_vars = dict(os.environ, VIRTUAL_ENV=sys.prefix)
        out = json.loads(subprocess.run([str(cli), "check-env", "--json"], check=True, env=env_vars,
                                        capture_output=True, text=True).stdout)
        assert [(b["name"], b["available"], b["version"]) for b in out["backends"]] == \
            [(b["name"], b["available"], b["version"]) for b in env["backends"]]


def test_compare_and_bench(small_cnn, tmp_path):
    from conftest import require

    require("onnxruntime")
    r = rdeploy.compare(small_cnn, ["tract", "onnxruntime"], shapes={"batch": 2})
    assert r["pass"] and r["reference"] == "tract"
    assert r["outputs"][0]["max_abs_diff"] < 1e-5
    work = rdeploy.deploy({"backend_config": {"type": "tract"}}, small_cnn, tmp_path / "w")
    rep = rdeploy.bench(work, iters=5, warmup=1, concurrency=2, shapes={"batch": 2})
    assert rep["iters"] == 5 and rep["concurrency"] == 2
    assert rep["input_shapes"] == [["image", [2, 3, 32, 32]]]
    assert 0 < rep["execute_ms"]["p50"] <= rep["latency_ms"]["max"]
    assert rep["batch"] == 2 and rep["samples_per_s"] == pytest.approx(2 * rep["throughput_per_s"])
    assert rep["peak_rss_mb"] > 1
    # A time budget instead of a count of calls.
    rep = rdeploy.bench(work, duration=0.2, warmup=0)
    assert rep["iters"] >= 1 and rep["latency_ms"]["p50"] > 0


def test_config_mapping_api_and_pickle():
    import copy
    import pickle

    cfg = rdeploy.Config.fromfile(ROOT / "configs" / "mmpretrain" / "classification_tract_dynamic.py")
    assert cfg.get("backend_config").type == "tract" and cfg.get("nope", 5) == 5
    assert cfg["onnx_config"].input_names == ["input"]
    assert list(cfg) == cfg.keys() and len(cfg) == len(cfg.keys())
    assert dict(cfg.items())["backend_config"]["type"] == "tract"
    assert copy.deepcopy(cfg) is cfg
    assert pickle.loads(pickle.dumps(cfg)).to_dict() == cfg.to_dict()
    with pytest.raises(AttributeError, match="no key 'nope'"):
        cfg.nope


def test_specs_compare_and_unpack(small_cnn, tmp_path):
    w = rdeploy.load(rdeploy.deploy({"backend_config": {"type": "tract"}}, small_cnn, tmp_path / "w"))
    a, b = w.inputs[0], rdeploy.load(tmp_path / "w").inputs[0]
    assert a == b and a != w.outputs[0]
    name, dtype, shape = a
    assert (name, dtype, shape) == ("image", "float32", ("batch", 3, 32, 32))


def test_argument_errors_are_rdeploy_errors(small_cnn, tmp_path):
    work = rdeploy.deploy({"backend_config": {"type": "tract"}}, small_cnn, tmp_path / "w")
    for kw in [{"iters": 0}, {"iters": -1}, {"concurrency": 0}, {"warmup": -2}]:
        with pytest.raises(rdeploy.Error, match="must be at least"):
            rdeploy.bench(work, **kw)
    for d in (0, -1.0, float("nan")):
        with pytest.raises(rdeploy.Error, match="duration must be a positive"):
            rdeploy.bench(work, duration=d)
    with pytest.raises(rdeploy.WorkDirError, match="is a file"):
        rdeploy.bench(small_cnn)
    assert rdeploy.compare(small_cnn, "tract,tract", shapes={"batch": 1})["pass"]
    with pytest.raises(rdeploy.InputMismatch, match="'input'"):
        rdeploy.compare(small_cnn, ["tract", "tract"], inputs={"input": np.zeros((1, 3, 32, 32), np.float32)})
    m = rdeploy.load(work)
    with pytest.raises(rdeploy.InputMismatch, match="got None"):
        m({"image": None})
    assert rdeploy.Error.__name__ == "Error" and issubclass(rdeploy.InputMismatch, rdeploy.Error)
