"""Graph forms engines mishandle (issue 10, classes 4 and 5), on every backend, against numpy:
omitted optional inputs written as "", outputs made by a lone Identity/Dropout, an output that
is an input. Names must survive, or the deploy must fail saying why; never the first infer."""
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

import rdeploy


def save(tmp_path, nodes, inputs, outputs, opset=13, name="m.onnx"):
    g = helper.make_graph(nodes, "g", inputs, outputs)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8
    p = tmp_path / name
    onnx.save(m, p)
    return p


def vi(name, shape):
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)


def test_empty_optional_input_is_an_absent_one(backend, tmp_path):
    # ReduceSum(x, "") with no axes input: reduce over all axes (opset 13).
    p = save(tmp_path, [helper.make_node("ReduceSum", ["x", ""], ["y"], keepdims=1)],
             [vi("x", [2, 3])], [vi("y", [1, 1])])
    work = rdeploy.deploy({"backend_config": {"type": backend}}, p, tmp_path / "w")
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    np.testing.assert_allclose(rdeploy.load(work)({"x": x})["y"], x.sum(keepdims=True))
    rec = {r["name"]: r for r in work.manifest["passes"]}["normalize"]
    assert rec["details"]["empty_optional_inputs_removed"] == 1


@pytest.mark.parametrize("op", ["Identity", "Dropout"])
def test_outputs_made_by_a_lone_passthrough_keep_their_names(backend, op, tmp_path):
    nodes = [helper.make_node("Relu", ["x"], ["r"]), helper.make_node(op, ["r"], ["y:0"])]
    p = save(tmp_path, nodes, [vi("x", [2, 3])], [vi("y:0", [2, 3])])
    work = rdeploy.deploy({"backend_config": {"type": backend}}, p, tmp_path / "w")
    w = rdeploy.load(work)
    assert w.output_names == ["y:0"]
    x = np.linspace(-1, 1, 6, dtype=np.float32).reshape(2, 3)
    np.testing.assert_array_equal(w({"x": x})["y:0"], np.maximum(x, 0))


def test_an_output_that_is_an_input_works_or_fails_at_deploy(backend, tmp_path):
    nodes = [helper.make_node("Relu", ["x"], ["y"])]
    p = save(tmp_path, nodes, [vi("x", [2, 3])], [vi("y", [2, 3]), vi("x", [2, 3])])
    x = np.linspace(-1, 1, 6, dtype=np.float32).reshape(2, 3)
    try:
        work = rdeploy.deploy({"backend_config": {"type": backend}}, p, tmp_path / "w")
    except rdeploy.BackendError as e:
        # tract cannot plan it and says why; OpenVINO's IR renames it (x_1), which the deploy
        # check catches. Both at deploy, never at the first infer.
        msg = str(e)
        if backend == "tract":
            assert "is the graph input 'x' itself" in msg, msg
        else:
            assert backend == "openvino" and "deploy checks" in msg and "no output named 'x'" in msg, msg
        assert not (tmp_path / "w").exists()
        return
    out = rdeploy.load(work)({"x": x})
    np.testing.assert_array_equal(out["y"], np.maximum(x, 0))
    np.testing.assert_array_equal(out["x"], x)


def test_scalars_and_empty_tensors_run_or_are_refused_with_the_reason(backend, small_cnn, tmp_path):
    """Issue 10, class 6: 0-d inputs and 0-sized dims. Every engine runs 0-d tensors (OpenVINO's
    C API has no rank-0 shape; rdeploy binds scalars without one); tract and onnxruntime run
    0-sized dims, OpenVINO's CPU plugin cannot, and rdeploy says so."""
    p = save(tmp_path, [helper.make_node("Neg", ["x"], ["y"])], [vi("x", [])], [vi("y", [])],
             name="scalar.onnx")
    w = rdeploy.load(rdeploy.deploy({"backend_config": {"type": backend}}, p, tmp_path / "s"))
    y = w({"x": np.array(3.0, np.float32)})["y"]
    assert y.shape == () and y == -3.0
    w = rdeploy.load(rdeploy.deploy({"backend_config": {"type": backend}}, small_cnn, tmp_path / "c"))
    empty = np.zeros((0, 3, 32, 32), np.float32)
    if backend == "openvino":
        with pytest.raises(rdeploy.InputMismatch, match="empty tensors"):
            w({"image": empty})
    else:
        assert w({"image": empty})["probs"].shape == (0, 10)


def test_openvino_warns_about_int64_arithmetic(tmp_path, caplog):
    """Issue 10, class 9: OpenVINO's CPU plugin computes int64 in int32; deploy says so."""
    import logging

    from conftest import require

    require("openvino")
    i64 = [helper.make_tensor_value_info(n, TensorProto.INT64, [2]) for n in ("a", "b", "c")]
    p = save(tmp_path, [helper.make_node("Add", ["a", "b"], ["c"], name="sum")], i64[:2], i64[2:])
    with caplog.at_level(logging.WARNING):
        work = rdeploy.deploy({"backend_config": {"type": "openvino"}}, p, tmp_path / "w")
    assert any("int64 in int32" in r.getMessage() and "Add 'sum'" in r.getMessage()
               for r in caplog.records), [r.getMessage() for r in caplog.records]
    # Within int32 the result is exact.
    a, b = np.array([1, -2], np.int64), np.array([3, 4], np.int64)
    np.testing.assert_array_equal(rdeploy.load(work)({"a": a, "b": b})["c"], a + b)


def test_a_model_the_backend_cannot_run_fails_at_deploy(backend, tmp_path):
    """Issue 10, class 7: an opset-7 Upsample model with MMDeploy's dynamic classification
    config. Its dims are symbolic after onnx_config, so the deploy check runs it at the source
    model's own shape; a backend that cannot run it fails the deploy with the engine's reason
    (before: deploy succeeded and every infer failed)."""
    from conftest import ROOT

    node = helper.make_node("Upsample", ["x"], ["y"], scales=[1.0, 1.0, 2.0, 2.0], mode="nearest")
    p = save(tmp_path, [node], [vi("x", [1, 3, 8, 8])], [vi("y", [1, 3, 16, 16])], opset=7)
    cfg = ROOT / "configs" / "mmpretrain" / f"classification_{backend}_dynamic.py"
    if not cfg.exists():
        cfg = ROOT / "configs" / "mmpretrain" / "classification_dynamic.py"
        cfg = {"backend_config": {"type": backend},
               **{k: v for k, v in rdeploy.Config.fromfile(cfg).to_dict().items()
                  if k == "onnx_config"}}
    x = np.arange(3 * 8 * 8, dtype=np.float32).reshape(1, 3, 8, 8)
    want = x.repeat(2, axis=2).repeat(2, axis=3)
    try:
        work = rdeploy.deploy(str(cfg) if not isinstance(cfg, dict) else cfg, p, tmp_path / "w")
    except rdeploy.BackendError as e:
        assert "deploy checks" in str(e) or "cannot" in str(e), str(e)
        assert not (tmp_path / "w").exists()
        return
    assert any("loads and runs" in n for n in work.manifest["notes"]), work.manifest["notes"]
    np.testing.assert_array_equal(rdeploy.load(work)({"input": x})["output"], want)
