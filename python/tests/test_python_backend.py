"""A backend written in Python (a numpy reference interpreter for a few ONNX ops, written here)
registered with rdeploy.register_backend, then deployed, loaded, compared against tract and
benchmarked exactly like a built-in backend."""
import shutil

import numpy as np
import pytest

import rdeploy

OPS = {"Conv", "Relu", "MaxPool", "GlobalAveragePool", "Flatten", "Gemm", "Softmax"}


def conv(x, w, b, pads, strides):
    n, c, h, wd = x.shape
    m, _, kh, kw = w.shape
    pt, pl, pb, pr = pads
    x = np.pad(x, ((0, 0), (0, 0), (pt, pb), (pl, pr)))
    sh, sw = strides
    oh, ow = (x.shape[2] - kh) // sh + 1, (x.shape[3] - kw) // sw + 1
    cols = np.lib.stride_tricks.sliding_window_view(x, (kh, kw), axis=(2, 3))[:, :, ::sh, ::sw]
    y = np.einsum("ncijkl,mckl->nmij", cols, w, optimize=True)
    return y + (b.reshape(1, m, 1, 1) if b is not None else 0)


def maxpool(x, k, s):
    win = np.lib.stride_tricks.sliding_window_view(x, tuple(k), axis=(2, 3))[:, :, ::s[0], ::s[1]]
    return win.max(axis=(-2, -1))


class NumpyWrapper:
    def __init__(self, path):
        import onnx
        from onnx import numpy_helper

        m = onnx.load(path)
        self.graph = m.graph
        self.weights = {t.name: numpy_helper.to_array(t) for t in m.graph.initializer}
        self.output_names = [o.name for o in m.graph.output]

    def forward(self, inputs):
        from onnx import helper

        env = dict(self.weights)
        env.update(inputs)
        for n in self.graph.node:
            a = {x.name: helper.get_attribute_value(x) for x in n.attribute}
            ins = [env[i] if i else None for i in n.input]
            op = n.op_type
            if op == "Conv":
                y = conv(ins[0], ins[1], ins[2] if len(ins) > 2 else None,
                         a.get("pads", [0, 0, 0, 0]), a.get("strides", [1, 1]))
            elif op == "Relu":
                y = np.maximum(ins[0], 0)
            elif op == "MaxPool":
                y = maxpool(ins[0], a["kernel_shape"], a.get("strides", a["kernel_shape"]))
            elif op == "GlobalAveragePool":
                y = ins[0].mean(axis=(2, 3), keepdims=True)
            elif op == "Flatten":
                y = ins[0].reshape(ins[0].shape[0], -1)
            elif op == "Gemm":
                b = ins[1].T if a.get("transB") else ins[1]
                y = ins[0] @ b + (ins[2] if len(ins) > 2 else 0)
            elif op == "Softmax":
                e = np.exp(ins[0] - ins[0].max(axis=a.get("axis", -1), keepdims=True))
                y = e / e.sum(axis=a.get("axis", -1), keepdims=True)
            else:
                raise NotImplementedError(op)
            env[n.output[0]] = y.astype(np.float32)
        return {name: env[name] for name in self.output_names}


class NumpyManager:
    """MMDeploy's manager shape: classmethods is_available/get_version/to_backend/build_wrapper."""

    calls = []

    @classmethod
    def is_available(cls, with_custom_ops=False):
        return True

    @classmethod
    def get_version(cls):
        return f"numpy-{np.__version__}"

    @classmethod
    def to_backend(cls, ir_files, work_dir, deploy_cfg, log_level=20, device="cpu"):
        import onnx

        cls.calls.append(("to_backend", deploy_cfg["backend_config"]["type"], device))
        model = onnx.load(ir_files[0])
        missing = {n.op_type for n in model.graph.node} - OPS
        if missing:
            raise NotImplementedError(f"the numpy backend has no {sorted(missing)}")
        out = f"{work_dir}/model.npref.onnx"
        shutil.copy(ir_files[0], out)
        return [out]

    @classmethod
    def build_wrapper(cls, backend_files, device="cpu", input_names=None, output_names=None,
                      deploy_cfg=None):
        cls.calls.append(("build_wrapper", tuple(input_names or ()), tuple(output_names or ())))
        return NumpyWrapper(backend_files[0])


@pytest.fixture(scope="module")
def npref():
    if "npref" not in rdeploy.backends():
        rdeploy.register_backend("npref", NumpyManager)
    return "npref"


def test_registered_backend_is_listed_and_available(npref):
    status = {b["name"]: b for b in rdeploy.check_env()["backends"]}
    assert status[npref]["available"] and status[npref]["version"] == f"numpy-{np.__version__}"
    with pytest.raises(rdeploy.ConfigError, match="already registered"):
        rdeploy.register_backend(npref, NumpyManager)
    with pytest.raises(rdeploy.ConfigError, match="to_backend"):
        rdeploy.register_backend("incomplete", object())


def test_deploy_load_and_compare_with_tract(npref, small_cnn, tmp_path):
    cfg = {"backend_config": {"type": npref},
           "onnx_config": {"input_names": ["input"], "output_names": ["probs"],
                           "dynamic_axes": {"input": {0: "batch"}}}}
    work = rdeploy.deploy(cfg, small_cnn, tmp_path / "w")
    assert work.backend == npref
    assert [f.rsplit("/", 1)[-1] for f in work.backend_files] == ["model.npref.onnx"]
    model = rdeploy.load(work)
    assert ("build_wrapper", ("input",), ("probs",)) in NumpyManager.calls
    assert [t.name for t in model.inputs] == ["input"] and model.output_names == ["probs"]
    x = np.random.default_rng(3).random((2, 3, 32, 32), dtype=np.float32)
    got = model({"input": x})["probs"]
    tract = rdeploy.load(rdeploy.deploy(dict(cfg, backend_config={"type": "tract"}),
                                        small_cnn, tmp_path / "t"))
    # Tolerance: float32 with different summation orders.
    np.testing.assert_allclose(got, tract({"input": x})["probs"], rtol=1e-4, atol=1e-6)
    # The compare harness takes the Python backend like any other.
    r = rdeploy.compare(small_cnn, ["tract", npref], shapes={"batch": 3}, rtol=1e-4, atol=1e-6)
    assert r["pass"], r
    # Wrong inputs are caught by rdeploy before Python code runs.
    with pytest.raises(rdeploy.InputMismatch):
        model({"input": x[:, :2]})
    rep = rdeploy.bench(model, iters=4, warmup=1, concurrency=2)
    assert rep["backend"] == npref and rep["iters"] == 4


def test_python_exceptions_become_rdeploy_errors(npref, tmp_path):
    import onnx
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])
    m = helper.make_model(helper.make_graph([helper.make_node("Neg", ["x"], ["y"])], "g", [x], [y]),
                          opset_imports=[helper.make_opsetid("", 13)])
    p = tmp_path / "neg.onnx"
    onnx.save(m, p)
    with pytest.raises(rdeploy.BackendError, match="NotImplementedError.*Neg"):
        rdeploy.deploy({"backend_config": {"type": npref}}, p, tmp_path / "w")
    assert not (tmp_path / "w" / "deploy.json").exists()


def test_relative_work_dirs_and_wrong_outputs(npref, small_cnn, tmp_path, monkeypatch):
    """MMDeploy-style managers join work_dir themselves; what forward returns is checked."""
    from rdeploy.mmdeploy import get_backend_manager

    monkeypatch.chdir(tmp_path)
    m = get_backend_manager(npref)
    files = m.to_backend([str(small_cnn)], "rel/work", {"backend_config": {"type": npref}})
    assert files == [str(tmp_path / "rel" / "work" / "model.npref.onnx")], files

    class Bad(NumpyManager):
        mode = "dtype"

        @classmethod
        def build_wrapper(cls, backend_files, device="cpu", input_names=None, output_names=None,
                          deploy_cfg=None):
            inner = NumpyWrapper(backend_files[0])

            class W:
                def forward(self, inputs):
                    out = inner.forward(inputs)
                    y = out["probs"]
                    return {"probs": y.astype(np.float64) if Bad.mode == "dtype" else y[:, :7]}

            return W()

    rdeploy.register_backend("npbad", Bad)
    # deploy runs the model once: a wrong output fails the deploy, naming the output.
    with pytest.raises(rdeploy.BackendError, match="cannot run them.*wrong output.*probs.*f32"):
        rdeploy.deploy({"backend_config": {"type": "npbad"}}, small_cnn, "w")
    Bad.mode = "shape"
    with pytest.raises(rdeploy.BackendError, match="wrong output.*probs.*shape"):
        rdeploy.deploy({"backend_config": {"type": "npbad"}}, small_cnn, "w")
    assert not (tmp_path / "w").exists()


def test_device_kinds_come_from_the_manager(npref, small_cnn, tmp_path):
    with pytest.raises(rdeploy.DeviceError, match="cpu"):
        rdeploy.deploy({"backend_config": {"type": npref}}, small_cnn, tmp_path / "w", device="cuda")

    class Gpu(NumpyManager):
        device_kinds = ["cpu", "cuda"]

    rdeploy.register_backend("npgpu", Gpu)
    work = rdeploy.deploy({"backend_config": {"type": "npgpu"}}, small_cnn, tmp_path / "g",
                          device="cuda:1")
    assert work.device == "cuda:1"
    assert ("to_backend", "npgpu", "cuda:1") in NumpyManager.calls
