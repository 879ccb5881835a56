"""Real pretrained models, weights as published (RapidOCR's PP-OCR models from PyPI, fetched by
scripts/prepare-test-data.py): text detection, text-direction classification and text
recognition, on every backend, against Python onnxruntime on the original file."""
import numpy as np
import pytest

import rdeploy
from conftest import GENERATED, ort_reference

MODELS = {
    # name: input shape (PP-OCR's preprocessing: NCHW float32, (pixel / 255 - 0.5) / 0.5)
    "ppocr-det": (1, 3, 96, 160),
    "ppocr-cls": (1, 3, 48, 192),
    "ppocr-rec": (1, 3, 48, 320),
}


def text_image(shape, seed=0):
    """A white page with dark strokes (bars of glyph-like widths), PP-OCR-normalised."""
    rng = np.random.default_rng(seed)
    n, c, h, w = shape
    img = np.full((h, w), 255.0)
    x = 4
    while x < w - 8:
        gw = int(rng.integers(3, 9))
        top, bottom = int(h * 0.25), int(h * 0.75)
        img[top:bottom, x:x + gw] = rng.integers(0, 60)
        x += gw + int(rng.integers(2, 6))
    img = np.broadcast_to(img, (n, c, h, w))
    return ((img / 255.0 - 0.5) / 0.5).astype(np.float32)


def model_path(name):
    p = GENERATED / "realworld" / f"{name}.onnx"
    if not p.exists():
        pytest.fail(f"{p} missing: scripts/prepare-test-data.py downloads it from PyPI")
    return p


@pytest.mark.parametrize("name", sorted(MODELS))
def test_pretrained_models_match_onnxruntime(backend, name, tmp_path):
    model = model_path(name)
    x = text_image(MODELS[name])
    work = rdeploy.deploy({"backend_config": {"type": backend}}, model, tmp_path / "w")
    w = rdeploy.load(work)
    out = w({w.inputs[0].name: x})[w.output_names[0]]
    (want,) = ort_reference(model, {"x": x})[:1]
    assert out.shape == want.shape
    # Tolerance: float32 engines with different kernels and fusions, on probabilities in [0, 1]
    # after a sigmoid (det) or softmax (cls, rec).
    np.testing.assert_allclose(out, want, rtol=1e-3, atol=2e-4)
    if name != "ppocr-det":
        # What a user reads off: the same class / the same character per time step.
        np.testing.assert_array_equal(out.argmax(-1), want.argmax(-1))


def test_paddle_unknown_dims_take_any_size(backend, tmp_path):
    """PP-OCR's classifier declares x as [-1, 3, ?, ?]: each '?' is its own unknown."""
    model = model_path("ppocr-cls")
    w = rdeploy.load(rdeploy.deploy({"backend_config": {"type": backend}}, model, tmp_path / "w"))
    assert w.inputs[0].shape == (None, 3, None, None)
    assert w({"x": text_image((1, 3, 48, 192))})[w.output_names[0]].shape == (1, 2)


FP16 = {"type": "onnxruntime", "precision": "fp16",
        "common_config": {"keep_io_types": True, "min_positive_val": 1e-7, "max_finite_val": 1e4}}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_fp16_matches_fp32_or_the_deploy_fails(name, tmp_path):
    """MMDeploy's onnxruntime-fp16 keys on the pretrained models. PP-OCRv4's detector has a
    BatchNorm variance of 9.8e7, which float16 conversion used to clamp to 1e4 (5% of pixels off
    by up to 1.0 on a synthetic page, more on real ones): that node now stays float32, and the
    deploy-time check compares fp16 with fp32 at the config's opt shape."""
    require_ort()
    model = model_path(name)
    shape = MODELS[name]
    cfg = {"backend_config": dict(FP16, model_inputs=[{"opt_shapes": {"x": list(shape)}}])}
    work = rdeploy.deploy(cfg, model, tmp_path / "w")
    notes = "\n".join(work.manifest["notes"])
    assert "fp16 check: output" in notes and "loads and runs" in notes, notes
    if name == "ppocr-det":
        assert "batch_norm_0.w_2" in notes and "stays float32" in notes, notes
    x = text_image(shape)
    got = rdeploy.load(work)({"x": x})
    (want,) = ort_reference(model, {"x": x})[:1]
    # The documented fp16 tolerance (docs/python.md, rdeploy::check::FP16_RTOL/ATOL).
    np.testing.assert_allclose(list(got.values())[0].astype(np.float32), want, rtol=1e-2, atol=5e-2)


def require_ort():
    from conftest import require

    require("onnxruntime")


def cancel_model(tmp_path, named):
    """y = r * 1234.567 - r * 1234.5 with r = relu(x): 0.067 r in float32; in float16 both
    constants round to whole numbers (1235 and 1234: 11 significant bits) and y becomes r."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 64])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 64])
    names = ["relu", "mul_a", "mul_b", "sub"] if named else [""] * 4
    nodes = [helper.make_node("Relu", ["x"], ["r"], name=names[0]),
             helper.make_node("Mul", ["r", "a"], ["xa"], name=names[1]),
             helper.make_node("Mul", ["r", "b"], ["xb"], name=names[2]),
             helper.make_node("Sub", ["xa", "xb"], ["y"], name=names[3])]
    inits = [numpy_helper.from_array(np.array([1234.567], np.float32), "a"),
             numpy_helper.from_array(np.array([1234.5], np.float32), "b")]
    g = helper.make_graph(nodes, "cancel", [x], [y], initializer=inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    p = tmp_path / f"cancel-{named}.onnx"
    onnx.save(m, p)
    return p


def test_fp16_that_changes_results_fails_the_deploy_with_the_reason(tmp_path):
    """Nothing is out of range, so only the deploy-time comparison can catch it; with unnamed
    nodes no node_block_list can fix it, so the deploy fails naming the output."""
    require_ort()
    p = cancel_model(tmp_path, named=False)
    with pytest.raises(rdeploy.BackendError, match="fp16 model's output 'y' differs"):
        rdeploy.deploy({"backend_config": FP16}, p, tmp_path / "w")
    assert not (tmp_path / "w").exists()
    # The user can accept it knowingly.
    ok = dict(FP16, fp16_check={"enabled": False})
    work = rdeploy.deploy({"backend_config": ok}, p, tmp_path / "w2")
    assert any("fp16 check skipped" in n for n in work.manifest["notes"])


def test_fp16_keeps_out_of_range_constants_exact(tmp_path):
    """Mul by [30000, 1, -20000, 0.5] (issue 10): clamping gave [1e4, 2, -1e4, 2]."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    require_ort()
    k = np.array([30000, 1, -20000, 0.5], np.float32)
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [4])
    g = helper.make_graph([helper.make_node("Mul", ["x", "k"], ["y"])], "mul", [x], [y],
                          initializer=[numpy_helper.from_array(k, "k")])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    p = tmp_path / "mul.onnx"
    onnx.save(m, p)
    work = rdeploy.deploy({"backend_config": FP16}, p, tmp_path / "w")
    passes = {r["name"]: r for r in work.manifest["passes"]}
    assert passes["fp16"]["details"]["kept_fp32_for_range"][0]["node"].startswith("Mul")
    out = rdeploy.load(work)({"x": np.array([1, 2, 1, 4], np.float32)})["y"]
    np.testing.assert_array_equal(out, [30000, 2, -20000, 2])


def test_signatures_after_the_ir_stage_are_inferred_again(backend, tmp_path):
    """Issue 10, class 3: input_shape fixes h and w, dynamic_axes names only the batch; the
    output's dims follow (PP-OCRv4's detector maps [n, 3, h, w] to [n, 1, h, w])."""
    cfg = {"backend_config": {"type": backend},
           "onnx_config": {"input_names": ["input"], "output_names": ["output"],
                           "input_shape": [128, 96],
                           "dynamic_axes": {"input": {0: "batch_size"}, "output": {0: "batch_size"}}}}
    work = rdeploy.deploy(cfg, model_path("ppocr-det"), tmp_path / "w")
    assert work.inputs[0].shape == ("batch_size", 3, 96, 128)
    assert work.outputs[0].shape == ("batch_size", 1, 96, 128)
    w = rdeploy.load(work)
    assert w({"input": text_image((2, 3, 96, 128))})["output"].shape == (2, 1, 96, 128)


def test_static_configs_give_static_outputs(tmp_path, small_cnn):
    cfg = {"backend_config": {"type": "tract"},
           "onnx_config": {"input_names": ["input"], "output_names": ["output"],
                           "input_shape": [1, 3, 32, 32]}}
    work = rdeploy.deploy(cfg, small_cnn, tmp_path / "w")
    assert work.inputs[0].shape == (1, 3, 32, 32) and work.outputs[0].shape == (1, 10)


def test_fp16_without_keep_io_types_states_float16(tmp_path, small_cnn):
    require_ort()
    cfg = {"backend_config": dict(FP16, common_config=dict(FP16["common_config"],
                                                             keep_io_types=False))}
    work = rdeploy.deploy(cfg, small_cnn, tmp_path / "w")
    assert work.inputs[0].dtype == "float16" and work.outputs[0].dtype == "float16"
    w = rdeploy.load(work)
    out = w({"image": np.zeros((1, 3, 32, 32), np.float16)})
    assert out["probs"].dtype == np.float16


def test_fp16_casts_values_captured_by_subgraphs(tmp_path):
    """An If whose branches read an outer value produced by a node that became float16: ONNX
    Runtime refused the converted file ("bound to different types"); the value is now cast back
    to float32 at the subgraph boundary (issue 10, class 8)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    require_ort()
    f = lambda n, s: helper.make_tensor_value_info(n, TensorProto.FLOAT, s)  # noqa: E731
    one = numpy_helper.from_array(np.array([1.0], np.float32), "one")
    then_g = helper.make_graph([helper.make_node("Add", ["a", "one_t"], ["t"])], "then", [], [f("t", [2])],
                               initializer=[numpy_helper.from_array(np.array([1.0], np.float32), "one_t")])
    else_g = helper.make_graph([helper.make_node("Sub", ["a", "one_e"], ["e"])], "else", [], [f("e", [2])],
                               initializer=[numpy_helper.from_array(np.array([1.0], np.float32), "one_e")])
    nodes = [helper.make_node("Mul", ["x", "two"], ["a"]),
             helper.make_node("If", ["c"], ["y"], then_branch=then_g, else_branch=else_g)]
    g = helper.make_graph(nodes, "if", [f("x", [2]), helper.make_tensor_value_info("c", TensorProto.BOOL, [])],
                          [f("y", [2])],
                          initializer=[numpy_helper.from_array(np.array([2.0], np.float32), "two"), one])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    p = tmp_path / "if.onnx"
    onnx.save(m, p)
    work = rdeploy.deploy({"backend_config": FP16}, p, tmp_path / "w")
    w = rdeploy.load(work)
    x = np.array([1.5, -3.0], np.float32)
    np.testing.assert_array_equal(w({"x": x, "c": np.array(True)})["y"], x * 2 + 1)
    np.testing.assert_array_equal(w({"x": x, "c": np.array(False)})["y"], x * 2 - 1)


def test_fp16_keeps_the_responsible_nodes_fp32_automatically(tmp_path):
    """The same cancellation with named nodes: the check finds which nodes to keep float32
    (automatic mixed precision, on by default) and the deploy succeeds with them listed."""
    require_ort()
    p = cancel_model(tmp_path, named=True)
    work = rdeploy.deploy({"backend_config": FP16}, p, tmp_path / "w")
    note = next(n for n in work.manifest["notes"] if "automatic mixed precision" in n)
    kept = work.manifest["config"]["backend_config"]["common_config"]["node_block_list"]
    assert kept and set(kept) <= {"relu", "mul_a", "mul_b"}, (kept, note)
    xv = np.random.default_rng(0).random((1, 64), dtype=np.float32)
    got = rdeploy.load(work)({"x": xv})["y"]
    np.testing.assert_allclose(got, xv * np.float32(1234.567) - xv * np.float32(1234.5),
                               rtol=1e-2, atol=5e-2)
    off = dict(FP16, fp16_check={"auto_mixed_precision": False})
    with pytest.raises(rdeploy.BackendError, match="differs"):
        rdeploy.deploy({"backend_config": off}, p, tmp_path / "w2")
