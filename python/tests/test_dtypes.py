"""Every dtype rdeploy supports goes in and comes back through numpy, on every backend, checked
against numpy (Concat of the input with itself: defined for every ONNX type)."""
import numpy as np
import pytest

import rdeploy

DTYPES = ["float32", "float16", "float64", "int8", "int16", "int32", "int64",
          "uint8", "uint16", "uint32", "uint64", "bool"]

# (backend, dtype) pairs an engine does not run, with the engine's reason; anything else must
# pass, and these must fail with a clear rdeploy error rather than wrong numbers.
UNSUPPORTED = {}

# Engine limits (docs/backends/openvino.md): OpenVINO's CPU plugin computes float64 in float32
# and int64/uint64 in int32, so those round trips hold at float32 precision and within int32's
# range (values outside it come back wrapped: issue 10 makes deploy warn about it).
LIMITED = {("openvino", "float64"), ("openvino", "int64"), ("openvino", "uint64")}


def concat_model(path, dtype):
    import onnx
    from onnx import TensorProto, helper

    elem = helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
    x = helper.make_tensor_value_info("x", elem, ["n", 3])
    y = helper.make_tensor_value_info("y", elem, [None, 3])
    node = helper.make_node("Concat", ["x", "x"], ["y"], axis=0)
    g = helper.make_graph([node], "concat", [x], [y])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    onnx.save(m, path)
    assert TensorProto  # imported for the element-type table


def sample(dtype, rng):
    if dtype == "bool":
        return rng.random((2, 3)) > 0.5
    info = np.iinfo(dtype) if np.dtype(dtype).kind in "iu" else None
    if info is not None:
        return rng.integers(info.min, info.max, size=(2, 3), dtype=dtype, endpoint=True)
    return (rng.standard_normal((2, 3)) * 100).astype(dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_dtype_round_trips(backend, dtype, tmp_path):
    model = tmp_path / "m.onnx"
    concat_model(model, dtype)
    x = sample(dtype, np.random.default_rng(DTYPES.index(dtype)))
    if (backend, dtype) in LIMITED and dtype in ("int64", "uint64"):
        x = x // (1 << 33)  # within int32's range
    want = np.concatenate([x, x], axis=0)
    key = (backend, dtype)
    try:
        work = rdeploy.deploy({"backend_config": {"type": backend}}, model, tmp_path / "w")
        w = rdeploy.load(work)
        assert w.inputs[0].dtype == dtype
        out = w({"x": x})["y"]
    except rdeploy.Error as e:
        assert key in UNSUPPORTED, f"{backend} failed on {dtype}: {e}"
        return
    assert key not in UNSUPPORTED, f"{backend} now runs {dtype}: drop it from UNSUPPORTED"
    assert out.dtype == np.dtype(dtype)
    if (backend, dtype) in LIMITED and dtype == "float64":
        # Tolerance: one rounding to float32 (relative step 2^-24 ~ 6e-8).
        np.testing.assert_allclose(out, want, rtol=1.2e-7, atol=0)
    else:
        np.testing.assert_array_equal(out, want)


def test_outputs_are_numpy_owned_and_writable(tmp_path):
    model = tmp_path / "m.onnx"
    concat_model(model, "float32")
    w = rdeploy.load(rdeploy.deploy({"backend_config": {"type": "tract"}}, model, tmp_path / "w"))
    out = w({"x": np.ones((2, 3), np.float32)})["y"]
    assert out.flags.c_contiguous and out.flags.writeable and out.flags.owndata is False
    out[0, 0] = 5  # the buffer belongs to the array now


def test_non_contiguous_and_byte_swapped_inputs(tmp_path):
    model = tmp_path / "m.onnx"
    concat_model(model, "float32")
    w = rdeploy.load(rdeploy.deploy({"backend_config": {"type": "tract"}}, model, tmp_path / "w"))
    base = np.arange(12, dtype=np.float32).reshape(3, 4)
    x = base[:2, ::-1][:, :3]  # strided view
    np.testing.assert_array_equal(w({"x": x})["y"], np.concatenate([x, x]))
    swapped = x.astype(">f4")
    np.testing.assert_array_equal(w({"x": swapped})["y"], np.concatenate([x, x]))
    # lists go through numpy.asarray
    np.testing.assert_array_equal(w({"x": [[1.0, 2.0, 3.0]]})["y"], [[1, 2, 3], [1, 2, 3]])
