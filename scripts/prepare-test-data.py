#!/usr/bin/env python3
"""Prepares rdeploy's test data in tests/data/generated/ (git-ignored).

Sources (nothing is downloaded at test time):
- onnx-backend/: real models with inputs and expected outputs from the `onnx` Python package's
  backend test data (onnx/backend/test/data/{pytorch-converted,pytorch-operator}, Apache-2.0),
  copied (models older than opset 7 upgraded to opset 13 by onnx.version_converter, since
  onnxruntime supports opset 7 and later). The expected outputs are PyTorch's, so they are independent of every
  engine rdeploy runs.
- onnx-backend/test_Conv2d_dynbatch: test_Conv2d with its batch dim made symbolic ('batch'),
  with the original data set and a second one at batch 4 (the input and expected output
  repeated), so a dynamic batch is checked at a size the model was not exported with.
- custom-ops/: small models using MMDeploy's and mmcv's ONNX Runtime custom ops (grid_sampler,
  MMCVModulatedDeformConv2d, NMSRotated, MMCVRoIAlignRotated, NMSMatch, MMCVRoiAlign, ...) and one
  mixing them with standard ops, with expected outputs from numpy references written from the
  ops' documented semantics; made by scripts/make_custom_op_models.py (sources in its docstring).
- cnn/: a small CNN (conv, relu, maxpool, global pool, gemm, softmax) with a dynamic batch,
  made here with fixed random weights; its expected outputs come from onnxruntime (another
  engine) when it is installed.

Usage: python3 scripts/prepare-test-data.py [OUT_DIR]
"""
import os
import shutil
import sys

import numpy as np
import onnx
import onnx.version_converter
from onnx import TensorProto, helper, numpy_helper

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "tests", "data", "generated")
SRC = os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data")

# Chosen to cover many operator families and input kinds (float and int64, 1..3 inputs,
# 1..n outputs). Cases a backend cannot run are listed per backend in its tests, with the reason.
CASES = [
    "pytorch-converted/test_Conv1d_dilated",
    "pytorch-converted/test_Conv2d",
    "pytorch-converted/test_Conv2d_depthwise_padded",
    "pytorch-converted/test_Conv2d_groups",
    "pytorch-converted/test_Conv3d_dilated_strided",
    "pytorch-converted/test_ConvTranspose2d",
    "pytorch-converted/test_BatchNorm2d_eval",
    "pytorch-converted/test_MaxPool2d",
    "pytorch-converted/test_MaxPool3d_stride_padding",
    "pytorch-converted/test_AvgPool2d_stride",
    "pytorch-converted/test_Linear",
    "pytorch-converted/test_Embedding",
    "pytorch-converted/test_GLU_dim",
    "pytorch-converted/test_PixelShuffle",
    "pytorch-converted/test_PReLU_2d_multiparam",
    "pytorch-converted/test_ReflectionPad2d",
    "pytorch-converted/test_ReplicationPad2d",
    "pytorch-converted/test_Softmax",
    "pytorch-converted/test_log_softmax_dim3",
    "pytorch-converted/test_SELU",
    "pytorch-converted/test_ELU",
    "pytorch-converted/test_Softsign",
    "pytorch-converted/test_PoissonNLLLLoss_no_reduce",
    "pytorch-operator/test_operator_addmm",
    "pytorch-operator/test_operator_add_broadcast",
    "pytorch-operator/test_operator_chunk",
    "pytorch-operator/test_operator_concat2",
    "pytorch-operator/test_operator_permute2",
    "pytorch-operator/test_operator_reduced_mean_keepdim",
    "pytorch-operator/test_operator_repeat",
    "pytorch-operator/test_operator_pow",
    "pytorch-operator/test_operator_view",
]


def copy_cases(dst):
    """Copies the cases; models older than opset 7 (which onnxruntime does not support) are
    upgraded to opset 13 with ONNX's own version converter. Inputs and expected outputs are
    PyTorch's, unchanged."""
    os.makedirs(dst, exist_ok=True)
    for case in CASES:
        src = os.path.join(SRC, case)
        if not os.path.isdir(src):
            sys.exit(f"missing {src}: is the onnx package complete?")
        out = os.path.join(dst, os.path.basename(case))
        shutil.copytree(src, out, dirs_exist_ok=True)
        m = onnx.load(os.path.join(out, "model.onnx"))
        opset = next((o.version for o in m.opset_import if o.domain in ("", "ai.onnx")), 0)
        if opset < 7:
            try:
                up = onnx.version_converter.convert_version(m, 13)
                onnx.checker.check_model(up)
                onnx.save(up, os.path.join(out, "model.onnx"))
            except Exception as e:  # keep the original; backends that cannot run it skip it
                print(f"{case}: cannot upgrade opset {opset}: {e}", file=sys.stderr)


def copy_old_opset_cases(dst):
    """Copies every model-suite case of the onnx package written at opset <= 6, unchanged: the
    cases rdeploy's own `opset_upgrade` pass must make loadable (ONNX Runtime has no kernels for
    several of those operator versions)."""
    if os.path.isdir(dst):
        shutil.rmtree(dst)
    os.makedirs(dst)
    n = 0
    for suite in ("pytorch-converted", "pytorch-operator", "simple", "light"):
        for case in sorted(os.listdir(os.path.join(SRC, suite))):
            src = os.path.join(SRC, suite, case)
            model = os.path.join(src, "model.onnx")
            if not os.path.isfile(model):
                continue
            m = onnx.load(model, load_external_data=False)
            opset = max((o.version for o in m.opset_import if o.domain in ("", "ai.onnx")), default=0)
            if opset <= 6:
                shutil.copytree(src, os.path.join(dst, case))
                n += 1
    return n


def save_pb(arr, path, name=""):
    t = numpy_helper.from_array(arr, name)
    with open(path, "wb") as f:
        f.write(t.SerializeToString())


def load_pb(path):
    t = TensorProto()
    with open(path, "rb") as f:
        t.ParseFromString(f.read())
    return numpy_helper.to_array(t)


def make_dynbatch(dst):
    src = os.path.join(dst, "test_Conv2d")
    out = os.path.join(dst, "test_Conv2d_dynbatch")
    shutil.rmtree(out, ignore_errors=True)
    shutil.copytree(src, out)
    m = onnx.load(os.path.join(src, "model.onnx"))
    inits = {i.name for i in m.graph.initializer}
    for v in list(m.graph.input) + list(m.graph.output):
        if v.name in inits:
            continue
        d = v.type.tensor_type.shape.dim[0]
        d.ClearField("dim_value")
        d.dim_param = "batch"
    onnx.checker.check_model(m)
    onnx.save(m, os.path.join(out, "model.onnx"))
    x = load_pb(os.path.join(src, "test_data_set_0", "input_0.pb"))
    y = load_pb(os.path.join(src, "test_data_set_0", "output_0.pb"))
    ds = os.path.join(out, "test_data_set_1")
    os.makedirs(ds, exist_ok=True)
    save_pb(np.concatenate([x, x]), os.path.join(ds, "input_0.pb"))
    save_pb(np.concatenate([y, y]), os.path.join(ds, "output_0.pb"))


def make_cnn(dst):
    """A small image classifier with a dynamic batch; weights fixed by seed."""
    os.makedirs(os.path.join(dst, "test_data_set_0"), exist_ok=True)
    rng = np.random.default_rng(20261126)

    def init(name, shape, scale):
        return numpy_helper.from_array((rng.standard_normal(shape) * scale).astype(np.float32), name)

    inits = [
        init("conv1.w", [8, 3, 3, 3], 0.3), init("conv1.b", [8], 0.1),
        init("conv2.w", [16, 8, 3, 3], 0.15), init("conv2.b", [16], 0.1),
        init("fc.w", [10, 16], 0.3), init("fc.b", [10], 0.1),
    ]
    nodes = [
        helper.make_node("Conv", ["image", "conv1.w", "conv1.b"], ["c1"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("MaxPool", ["r1"], ["p1"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Conv", ["p1", "conv2.w", "conv2.b"], ["c2"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c2"], ["r2"]),
        helper.make_node("GlobalAveragePool", ["r2"], ["g"]),
        helper.make_node("Flatten", ["g"], ["f"]),
        helper.make_node("Gemm", ["f", "fc.w", "fc.b"], ["logits"], transB=1),
        helper.make_node("Softmax", ["logits"], ["probs"], axis=1),
    ]
    graph = helper.make_graph(
        nodes, "small_cnn",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", 3, 32, 32])],
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["batch", 10])],
        inits,
    )
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)],
                          producer_name="rdeploy-tests")
    m.ir_version = 8
    onnx.checker.check_model(m)
    onnx.save(m, os.path.join(dst, "model.onnx"))
    x = rng.standard_normal([2, 3, 32, 32]).astype(np.float32)
    save_pb(x, os.path.join(dst, "test_data_set_0", "input_0.pb"), "image")
    np.save(os.path.join(dst, "image.npy"), x)
    try:
        import onnxruntime as ort
    except ImportError:
        print("onnxruntime not installed: cnn/ has no expected outputs", file=sys.stderr)
        return
    sess = ort.InferenceSession(os.path.join(dst, "model.onnx"), providers=["CPUExecutionProvider"])
    y = sess.run(None, {"image": x})[0]
    save_pb(y, os.path.join(dst, "test_data_set_0", "output_0.pb"), "probs")


def make_fp16_traps(dst):
    """Computations a float16 conversion must keep in float32: a reshape target computed in float
    (4099 is not a float16 integer) and Resize scales. Reference: onnxruntime in float32."""
    os.makedirs(os.path.join(dst, "test_data_set_0"), exist_ok=True)
    f = TensorProto.FLOAT
    inits = [
        numpy_helper.from_array(np.array(1.0, np.float32), "one"),
        numpy_helper.from_array(np.array(0.5, np.float32), "half"),
        numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), "scales"),
    ]
    nodes = [
        helper.make_node("Relu", ["x"], ["t"]),
        helper.make_node("Shape", ["t"], ["s"]),
        helper.make_node("Cast", ["s"], ["sf"], to=f),
        helper.make_node("Mul", ["sf", "one"], ["sm"]),
        helper.make_node("Cast", ["sm"], ["si"], to=TensorProto.INT64),
        helper.make_node("Reshape", ["t", "si"], ["r"]),
        helper.make_node("Add", ["r", "half"], ["y"]),
        helper.make_node("Resize", ["img", "", "scales"], ["z"], mode="nearest"),
    ]
    graph = helper.make_graph(
        nodes, "fp16_traps",
        [helper.make_tensor_value_info("x", f, [1, 4099]), helper.make_tensor_value_info("img", f, [1, 1, 4, 4])],
        [helper.make_tensor_value_info("y", f, [1, 4099]), helper.make_tensor_value_info("z", f, [1, 1, 8, 8])],
        inits,
    )
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="rdeploy-tests")
    m.ir_version = 8
    onnx.checker.check_model(m)
    onnx.save(m, os.path.join(dst, "model.onnx"))
    rng = np.random.default_rng(4099)
    x = rng.standard_normal([1, 4099]).astype(np.float32)
    img = rng.standard_normal([1, 1, 4, 4]).astype(np.float32)
    save_pb(x, os.path.join(dst, "test_data_set_0", "input_0.pb"), "x")
    save_pb(img, os.path.join(dst, "test_data_set_0", "input_1.pb"), "img")
    try:
        import onnxruntime as ort
    except ImportError:
        return
    sess = ort.InferenceSession(os.path.join(dst, "model.onnx"), providers=["CPUExecutionProvider"])
    y, z = sess.run(None, {"x": x, "img": img})
    save_pb(y, os.path.join(dst, "test_data_set_0", "output_0.pb"), "y")
    save_pb(z, os.path.join(dst, "test_data_set_0", "output_1.pb"), "z")


def make_mlp(dst):
    """A multi-layer perceptron (Gemm, Relu, MatMul, Add, Softmax) with a dynamic batch, weights
    fixed by seed; expected outputs from numpy in float64 (an independent reference)."""
    os.makedirs(os.path.join(dst, "test_data_set_0"), exist_ok=True)
    rng = np.random.default_rng(16)
    w1 = (rng.standard_normal([32, 16]) * 0.3).astype(np.float32)
    b1 = (rng.standard_normal([32]) * 0.1).astype(np.float32)
    w2 = (rng.standard_normal([32, 10]) * 0.3).astype(np.float32)
    b2 = (rng.standard_normal([10]) * 0.1).astype(np.float32)
    inits = [numpy_helper.from_array(a, n) for a, n in [(w1, "fc1.w"), (b1, "fc1.b"), (w2, "fc2.w"), (b2, "fc2.b")]]
    nodes = [
        helper.make_node("Gemm", ["x", "fc1.w", "fc1.b"], ["h"], transB=1, name="fc1"),
        helper.make_node("Relu", ["h"], ["hr"], name="relu"),
        helper.make_node("MatMul", ["hr", "fc2.w"], ["l"], name="fc2"),
        helper.make_node("Add", ["l", "fc2.b"], ["logits"], name="bias"),
        helper.make_node("Softmax", ["logits"], ["probs"], axis=-1, name="softmax"),
    ]
    graph = helper.make_graph(
        nodes, "mlp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 16])],
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["batch", 10])],
        inits,
    )
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="rdeploy-tests")
    m.ir_version = 8
    onnx.checker.check_model(m)
    onnx.save(m, os.path.join(dst, "model.onnx"))
    x = rng.standard_normal([4, 16]).astype(np.float32)
    h = np.maximum(x.astype(np.float64) @ w1.T.astype(np.float64) + b1, 0)
    logits = h @ w2.astype(np.float64) + b2
    e = np.exp(logits - logits.max(axis=-1, keepdims=True))
    y = (e / e.sum(axis=-1, keepdims=True)).astype(np.float32)
    save_pb(x, os.path.join(dst, "test_data_set_0", "input_0.pb"), "x")
    save_pb(y, os.path.join(dst, "test_data_set_0", "output_0.pb"), "probs")


def make_unsupported_op(dst):
    """A valid ONNX model with an operator no engine knows (custom domain), for conversion-failure
    tests: the error must name the op, and nothing half-written may be left."""
    os.makedirs(dst, exist_ok=True)
    f = TensorProto.FLOAT
    nodes = [
        helper.make_node("Relu", ["x"], ["t"]),
        helper.make_node("RdeployNoSuchOp", ["t"], ["y"], domain="com.example.rdeploy"),
    ]
    graph = helper.make_graph(
        nodes, "unsupported_op",
        [helper.make_tensor_value_info("x", f, [1, 4])],
        [helper.make_tensor_value_info("y", f, [1, 4])],
    )
    m = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", 13), helper.make_opsetid("com.example.rdeploy", 1)],
        producer_name="rdeploy-tests",
    )
    m.ir_version = 8
    onnx.checker.check_model(m)
    onnx.save(m, os.path.join(dst, "model.onnx"))


def make_custom_ops(dst):
    """MMDeploy/mmcv custom-op models and their numpy reference outputs, from the generator next
    to this script (also runnable on its own, with --self-check)."""
    import importlib.util

    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "make_custom_op_models.py")
    spec = importlib.util.spec_from_file_location("make_custom_op_models", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.main(dst)


def make_config_references(out_file):
    """Merges every config under tests/data/configs with mmengine's Config.fromfile (the
    reference rdeploy's config reader must match) and records the JSON, or the error."""
    try:
        from mmengine.config import Config
    except ImportError:
        print("mmengine not installed: no config references", file=sys.stderr)
        return
    import json
    root = os.path.join(ROOT, "tests", "data", "configs")
    refs = {}
    for dirpath, _, files in os.walk(root):
        for f in sorted(files):
            if not f.endswith((".py", ".json", ".yaml")):
                continue
            rel = os.path.relpath(os.path.join(dirpath, f), root)
            try:
                refs[rel] = {"ok": Config.fromfile(os.path.join(root, rel)).to_dict()}
            except Exception as e:  # the reader must fail on these too
                refs[rel] = {"error": f"{type(e).__name__}: {str(e)[:200]}"}
    with open(out_file, "w") as fh:
        json.dump(refs, fh, indent=1)  # key order matters: no sort_keys


# Real pretrained models, as published, from a package on PyPI: RapidOCR's PP-OCR models
# (Apache-2.0, exported by Paddle2ONNX): text detection (DBNet, PP-OCRv4), text-direction
# classification (mobile v2.0) and text recognition (CRNN/SVTR, PP-OCRv4). Fetched once with
# `pip download --no-deps` (no other dependency is installed) and cached in the output folder.
REALWORLD_WHEEL = "rapidocr-onnxruntime==1.4.4"
REALWORLD_MODELS = {
    "ppocr-det": "ch_PP-OCRv4_det_infer.onnx",
    "ppocr-cls": "ch_ppocr_mobile_v2.0_cls_infer.onnx",
    "ppocr-rec": "ch_PP-OCRv4_rec_infer.onnx",
}


def fetch_realworld(dst):
    import glob
    import subprocess
    import zipfile

    if all(os.path.exists(os.path.join(dst, f"{k}.onnx")) for k in REALWORLD_MODELS):
        return True
    os.makedirs(dst, exist_ok=True)
    r = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet",
                        "--disable-pip-version-check", "-d", dst, REALWORLD_WHEEL],
                       capture_output=True, text=True)
    wheels = glob.glob(os.path.join(dst, "rapidocr_onnxruntime-*.whl"))
    if r.returncode != 0 or not wheels:
        print(f"realworld models: cannot download {REALWORLD_WHEEL}: {r.stderr.strip()[-300:]}")
        return False
    with zipfile.ZipFile(wheels[0]) as z:
        for key, name in REALWORLD_MODELS.items():
            with z.open(f"rapidocr_onnxruntime/models/{name}") as src, \
                    open(os.path.join(dst, f"{key}.onnx"), "wb") as out:
                shutil.copyfileobj(src, out)
    os.remove(wheels[0])
    return True


def main():
    backend = os.path.join(OUT, "onnx-backend")
    copy_cases(backend)
    make_dynbatch(backend)
    copy_old_opset_cases(os.path.join(OUT, "onnx-old-opset"))
    make_cnn(os.path.join(OUT, "cnn"))
    make_fp16_traps(os.path.join(OUT, "fp16-traps"))
    make_unsupported_op(os.path.join(OUT, "unsupported-op"))
    make_mlp(os.path.join(OUT, "mlp"))
    make_custom_ops(os.path.join(OUT, "custom-ops"))
    make_config_references(os.path.join(OUT, "configs-expected.json"))
    fetch_realworld(os.path.join(OUT, "realworld"))
    with open(os.path.join(OUT, "README.md"), "w") as f:
        f.write("Generated by scripts/prepare-test-data.py; do not edit or commit.\n")
    print(f"test data ready in {OUT} ({len(CASES) + 1} onnx backend cases, cnn)")


if __name__ == "__main__":
    main()
