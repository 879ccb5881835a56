"""Graph rewrites from Python: a pass written in Python (rdeploy.register_pass) runs in the
deploy pipeline for the backends it names, is listed in the manifest, can be switched off by
rewrite_config, and its failures are clear errors; MMDeploy's custom ops deploy with no op
library. References: numpy on the same inputs."""
import json
import os

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

import rdeploy

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "..", "..", "tests", "data", "generated")


def relu_model(path):
    g = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"], name="relu")],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3])],
    )
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), path)


def relu_to_abs(model_bytes):
    """Replaces every Relu by Abs: a change a test can see in the outputs."""
    m = onnx.load_from_string(model_bytes)
    for n in m.graph.node:
        if n.op_type == "Relu":
            n.op_type = "Abs"
    return m.SerializeToString()


X = np.array([[-1.0, 2.0, -3.0], [4.0, -5.0, 6.0]], dtype=np.float32)


def test_a_python_pass_runs_for_its_backend_only(tmp_path):
    model = str(tmp_path / "relu.onnx")
    relu_model(model)
    rdeploy.register_pass("relu_to_abs", relu_to_abs, backends=["onnxruntime"])
    ort = rdeploy.deploy(dict(backend_config=dict(type="onnxruntime")), model, str(tmp_path / "ort"))
    y = rdeploy.load(ort).forward({"x": X})["y"]
    np.testing.assert_array_equal(y, np.abs(X))
    names = [p["name"] for p in json.load(open(tmp_path / "ort" / "deploy.json"))["passes"]]
    assert "relu_to_abs" in names
    tract = rdeploy.deploy(dict(backend_config=dict(type="tract")), model, str(tmp_path / "tract"))
    np.testing.assert_array_equal(rdeploy.load(tract).forward({"x": X})["y"], np.maximum(X, 0))
    # Switched off by name.
    off = rdeploy.deploy(
        dict(backend_config=dict(type="onnxruntime"), rewrite_config=dict(disable=["relu_to_abs"])),
        model,
        str(tmp_path / "off"),
    )
    np.testing.assert_array_equal(rdeploy.load(off).forward({"x": X})["y"], np.maximum(X, 0))
    assert rdeploy.unregister_pass("relu_to_abs")
    assert not rdeploy.unregister_pass("relu_to_abs")


def test_python_pass_failures_are_clear(tmp_path):
    model = str(tmp_path / "relu.onnx")
    relu_model(model)

    def boom(_):
        raise ValueError("no thanks")

    rdeploy.register_pass("boom", boom, backends=["tract"])
    with pytest.raises(rdeploy.ModelError, match="boom.*no thanks"):
        rdeploy.deploy(dict(backend_config=dict(type="tract")), model, str(tmp_path / "w"))
    assert not os.path.exists(tmp_path / "w" / "deploy.json")
    rdeploy.register_pass("boom", lambda b: b"not a model", backends=["tract"])
    with pytest.raises(rdeploy.ModelError, match="not an ONNX model"):
        rdeploy.deploy(dict(backend_config=dict(type="tract")), model, str(tmp_path / "w"))
    rdeploy.register_pass("boom", lambda b: 42, backends=["tract"])
    with pytest.raises(rdeploy.ModelError, match="not bytes"):
        rdeploy.deploy(dict(backend_config=dict(type="tract")), model, str(tmp_path / "w"))
    rdeploy.register_pass("boom", lambda b: None, backends=["tract"])
    assert rdeploy.unregister_pass("boom")


def test_register_pass_checks_its_arguments():
    with pytest.raises(rdeploy.ConfigError, match="not a pass name"):
        rdeploy.register_pass("bad name", relu_to_abs)
    with pytest.raises(rdeploy.ConfigError, match="rdeploy's own"):
        rdeploy.register_pass("opset_upgrade", relu_to_abs)
    with pytest.raises(rdeploy.ConfigError, match="callable"):
        rdeploy.register_pass("x", 3)


@pytest.mark.parametrize("backend", ["tract", "onnxruntime"])
def test_mmdeploy_grid_sampler_model_deploys_with_no_op_library(tmp_path, backend):
    case = os.path.join(DATA, "custom-ops", "mixed_conv_relu_grid_sampler_add")
    ins = [onnx.numpy_helper.to_array(onnx.load_tensor(os.path.join(case, "test_data_set_0", f)))
           for f in sorted(os.listdir(os.path.join(case, "test_data_set_0"))) if f.startswith("input")]
    want = onnx.numpy_helper.to_array(onnx.load_tensor(os.path.join(case, "test_data_set_0", "output_0.pb")))
    wd = rdeploy.deploy(dict(backend_config=dict(type=backend)), os.path.join(case, "model.onnx"), str(tmp_path / "w"))
    w = rdeploy.load(wd)
    out = w.forward(dict(zip([s.name for s in w.inputs], ins)))
    np.testing.assert_allclose(list(out.values())[0], want, rtol=1e-4, atol=1e-5)


def test_register_pass_backends_take_a_name_and_must_exist(tmp_path):
    model = str(tmp_path / "relu.onnx")
    relu_model(model)
    rdeploy.register_pass("one_name", relu_to_abs, backends="ort")  # an alias, as a string
    try:
        wd = rdeploy.deploy(dict(backend_config=dict(type="onnxruntime")), model, str(tmp_path / "w"))
        np.testing.assert_array_equal(rdeploy.load(wd).forward({"x": X})["y"], np.abs(X))
    finally:
        rdeploy.unregister_pass("one_name")
    with pytest.raises(rdeploy.ConfigError, match="not registered"):
        rdeploy.register_pass("typo", relu_to_abs, backends=["onnxrt"])
    with pytest.raises(rdeploy.ConfigError, match="empty"):
        rdeploy.register_pass("none", relu_to_abs, backends=[])


def test_a_pass_cannot_deploy_from_inside(tmp_path):
    model = str(tmp_path / "relu.onnx")
    relu_model(model)

    def reentrant(b):
        rdeploy.deploy(dict(backend_config=dict(type="tract")), model, str(tmp_path / "inner"))
        return None

    rdeploy.register_pass("reentrant", reentrant, backends=["tract"])
    try:
        with pytest.raises(rdeploy.ModelError, match="inside a graph pass"):
            rdeploy.deploy(dict(backend_config=dict(type="tract")), model, str(tmp_path / "outer"))
    finally:
        rdeploy.unregister_pass("reentrant")


def test_a_pass_must_keep_the_signature(tmp_path):
    model = str(tmp_path / "relu.onnx")
    relu_model(model)

    def rename(b):
        m = onnx.load_from_string(b)
        m.graph.output[0].name = "z"
        m.graph.node[-1].output[0] = "z"
        return m.SerializeToString()

    rdeploy.register_pass("rename", rename, backends=["tract"])
    try:
        with pytest.raises(rdeploy.ModelError, match="'rename' changed the model's inputs/outputs"):
            rdeploy.deploy(dict(backend_config=dict(type="tract")), model, str(tmp_path / "w"))
    finally:
        rdeploy.unregister_pass("rename")
