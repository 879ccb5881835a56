"""MMDeploy's backend API shape (rdeploy.mmdeploy) and the MMDeploy-style script in docs/."""
import pathlib
import subprocess
import sys

import numpy as np
import pytest

import rdeploy
from conftest import ROOT, ort_reference
from rdeploy.mmdeploy import BaseWrapper, get_backend_manager


@pytest.fixture
def end2end(small_cnn, tmp_path):
    """small-cnn as MMDeploy's torch2onnx writes it: input 'input', output 'output'."""
    import onnx

    m = onnx.load(small_cnn)
    for coll, old, new in [(m.graph.input, "image", "input"), (m.graph.output, "probs", "output")]:
        for v in coll:
            if v.name == old:
                v.name = new
        for n in m.graph.node:
            n.input[:] = [new if i == old else i for i in n.input]
            n.output[:] = [new if o == old else o for o in n.output]
    p = tmp_path / "end2end.onnx"
    onnx.save(m, p)
    return p


def test_managers_have_mmdeploys_classmethods(backend, end2end, tmp_path):
    m = get_backend_manager(backend)
    assert m.is_available() and m.is_available(with_custom_ops=True)
    assert m.get_version() != "None"
    lines = []
    assert m.check_env(lines.append).startswith(f"{backend}:\t") and lines
    cfg = {"backend_config": {"type": backend}}
    files = m.to_backend([str(end2end)], str(tmp_path / "w"), cfg, device="cpu")
    w = m.build_wrapper(files, "cpu", ["input"], ["output"], cfg)
    assert isinstance(w, BaseWrapper) and w.output_names == ["output"]
    x = np.random.default_rng(1).random((2, 3, 32, 32), dtype=np.float32)
    out = w.forward({"input": x})
    (want,) = ort_reference(end2end, {"input": x})
    np.testing.assert_allclose(out["output"], want, rtol=1e-4, atol=1e-5)
    with pytest.raises(rdeploy.BackendUnavailable, match="tensorrt"):
        get_backend_manager("tensorrt")


def test_torch_tensors_in_and_out_when_torch_is_there(end2end, tmp_path):
    torch = pytest.importorskip("torch")
    m = get_backend_manager("tract")
    files = m.to_backend([str(end2end)], str(tmp_path / "w"), {"backend_config": {"type": "tract"}})
    w = m.build_wrapper(files)
    out = w({"input": torch.zeros(1, 3, 32, 32)})
    assert isinstance(out["output"], torch.Tensor)


def test_mmdeploy_style_script_runs_unchanged_but_for_imports(end2end, tmp_path):
    script = ROOT / "docs" / "examples" / "mmdeploy_style.py"
    text = script.read_text()
    assert "# from mmdeploy.backend.base import get_backend_manager" in text
    cfg = ROOT / "configs" / "onnx" / "dynamic-batch_tract.py"
    r = subprocess.run([sys.executable, str(script), str(cfg), str(end2end), str(tmp_path / "w")],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "tract:\t" in r.stdout and "output: (2, 10)" in r.stdout
    (want,) = ort_reference(end2end, {"input": np.random.default_rng(0).random(
        (2, 3, 32, 32), dtype=np.float32)})
    got = float(r.stdout.split("max=")[1].split()[0])
    # Tolerance: float32 engines, 6 printed decimals.
    assert abs(got - float(want.max())) < 1e-5, (got, want.max())
    assert pathlib.Path(tmp_path / "w").is_dir()
