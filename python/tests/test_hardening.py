"""Inputs that used to crash, hang or corrupt state (found by trying to break the package);
each must now raise an rdeploy.Error naming what is wrong. Crash-prone cases run in a child
process so that a regression fails the test instead of killing pytest."""
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import rdeploy
from conftest import DATA, require

CNN = DATA / "small-cnn.onnx"


def run_child(code, timeout=120):
    """Runs `code` in a fresh interpreter; it must exit 0, print "ok" last and never
    "NO ERROR" (a crash, or a call that should have raised, fails the test)."""
    r = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                       text=True, timeout=timeout)
    assert r.returncode == 0 and r.stdout.strip().endswith("ok") and "NO ERROR" not in r.stdout, \
        (r.returncode, r.stdout, r.stderr)


@pytest.fixture(scope="module")
def tract_work(tmp_path_factory):
    return rdeploy.deploy({"backend_config": {"type": "tract"}}, CNN,
                          tmp_path_factory.mktemp("t") / "w")


def test_huge_zero_stride_inputs_are_refused_not_allocated(tract_work):
    code = f"""
        import numpy as np, rdeploy
        w = rdeploy.load({str(tract_work.path)!r})
        base = np.zeros(1, np.float32)
        for shape, word in [((1 << 24, 3, 32, 32), "bytes"), ((1 << 40, 3, 32, 31), "shape"),
                            ((1 << 40,), "shape")]:
            z = np.lib.stride_tricks.as_strided(base, shape=shape, strides=(0,) * len(shape))
            for call in (lambda: w({{"image": z}}), lambda: w.execute([z])):
                try:
                    call()
                    print("NO ERROR", shape)
                except rdeploy.InputMismatch as e:
                    assert word in str(e), str(e)
        print("ok")
    """
    run_child(code)


def test_huge_generated_shapes_are_refused(tract_work):
    code = f"""
        import rdeploy
        for call in (lambda: rdeploy.bench({str(tract_work.path)!r}, iters=1, warmup=0,
                                           shapes={{"batch": 2 ** 40}}),
                     lambda: rdeploy.compare({str(CNN)!r}, ["tract", "tract"],
                                             shapes={{"batch": 2 ** 40}})):
            try:
                call()
                print("NO ERROR")
            except rdeploy.InputMismatch as e:
                assert "memory" in str(e), str(e)
        print("ok")
    """
    run_child(code)


def test_deep_and_self_referencing_configs():
    code = """
        import rdeploy
        d = inner = {}
        for _ in range(100000):
            inner["a"] = {}
            inner = inner["a"]
        me = {"backend_config": {"type": "tract"}}
        me["me"] = me
        lst = []
        lst.append(lst)
        for cfg in (d, me, {"x": lst}):
            try:
                rdeploy.Config.from_dict(cfg)
                print("NO ERROR")
            except rdeploy.ConfigError as e:
                assert "deep" in str(e), str(e)
        print("ok")
    """
    run_child(code)


def test_config_values_are_kept_or_refused():
    cfg = rdeploy.Config.from_dict({"backend_config": {"type": "tract"}, "a": float("nan"),
                                    "b": {1: "x"}})
    assert np.isnan(cfg.to_dict()["a"]) and cfg.to_dict()["b"] == {1: "x"}
    for bad, word in [({None: 1}, "key"), ({(1, 2): 1}, "key"), ({1.5: 1}, "key"),
                      ({"x": 2 ** 64}, "64 bits"), ({"x": {1, 2}}, "set")]:
        with pytest.raises(rdeploy.ConfigError, match=word):
            rdeploy.Config.from_dict(bad)


def test_yaml_aliases_and_devices_are_refused(tmp_path):
    y = tmp_path / "bomb.yaml"
    lines = ["a: &a [1, 2]"] + [f"{c}: &{c} [{', '.join(['*' + p] * 9)}]"
                                for p, c in zip("abcdefgh", "bcdefghi")]
    y.write_text("\n".join(lines) + "\n")
    with pytest.raises(rdeploy.ConfigError, match="aliases"):
        rdeploy.Config.fromfile(y)
    with pytest.raises(rdeploy.ConfigError, match="not a regular file"):
        rdeploy.Config.fromfile("/dev/zero")
    with pytest.raises(rdeploy.ModelError, match="not a regular file"):
        rdeploy.deploy({"backend_config": {"type": "tract"}}, "/dev/zero", tmp_path / "w")
    assert not (tmp_path / "w").exists(), "a failed deploy leaves no new work dir behind"


def test_tampered_work_dirs_are_refused(tmp_path):
    work = rdeploy.deploy({"backend_config": {"type": "tract"}}, CNN, tmp_path / "w")
    manifest = tmp_path / "w" / "deploy.json"
    m = json.loads(manifest.read_text())
    for path in [str(CNN), "../../../etc/passwd", ""]:
        bad = dict(m, backend_files=[dict(m["backend_files"][0], path=path)])
        manifest.write_text(json.dumps(bad))
        with pytest.raises(rdeploy.WorkDirError, match="not a path inside the work dir"):
            rdeploy.load(tmp_path / "w")
    manifest.write_text(json.dumps(m))
    ir = tmp_path / "w" / m["ir_file"]["path"]
    ir.unlink()
    os.symlink("/dev/zero", ir)
    with pytest.raises(rdeploy.WorkDirError, match="not a regular file"):
        rdeploy.WorkDir.open(tmp_path / "w").verify()
    assert work.backend == "tract"


def test_work_dir_must_be_a_directory_of_its_own(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = {"backend_config": {"type": "tract"}}
    with pytest.raises(rdeploy.WorkDirError, match="empty path"):
        rdeploy.deploy(cfg, CNN, "")
    with pytest.raises(rdeploy.WorkDirError, match="root"):
        rdeploy.deploy(cfg, CNN, "/")
    (tmp_path / "f").write_text("x")
    with pytest.raises(rdeploy.WorkDirError, match="not a directory"):
        rdeploy.deploy(cfg, CNN, tmp_path / "f")
    assert sorted(os.listdir(tmp_path)) == ["f"]


def test_bad_arguments_and_lossy_lists(tract_work):
    w = rdeploy.load(tract_work)
    with pytest.raises(rdeploy.Error, match="256"):
        rdeploy.bench(w, iters=2, warmup=0, concurrency=100000)
    for kw in [{"rtol": float("nan")}, {"atol": float("inf")}, {"rtol": -1}]:
        with pytest.raises(rdeploy.ConfigError, match="finite number"):
            rdeploy.compare(CNN, ["tract", "tract"], **kw)
    x = np.zeros((1, 3, 32, 32)).tolist()
    assert w({"image": x})["probs"].shape == (1, 10)  # floats to float32: same kind
    with pytest.raises(rdeploy.InputMismatch, match="without loss"):
        w({"image": [[["a"]]]})
    big = w({"image": np.zeros((1, 3, 32, 32), np.float32).tobytes()}) if False else None
    assert big is None
    with pytest.raises(rdeploy.InputMismatch) as e:
        w({"image": np.zeros((64, 3, 32, 32), np.float32).tobytes()})
    assert len(str(e.value)) < 3000


def test_openvino_recovers_after_a_failed_call(tmp_path):
    require("openvino")
    w = rdeploy.load(rdeploy.deploy({"backend_config": {"type": "openvino"}}, CNN, tmp_path / "w"))
    x = np.ones((2, 3, 32, 32), np.float32)
    want = w({"image": x})["probs"]
    with pytest.raises(rdeploy.InputMismatch, match="empty tensors"):
        w({"image": np.ones((0, 3, 32, 32), np.float32)})
    np.testing.assert_array_equal(w({"image": x})["probs"], want)


def test_python_backend_mistakes_and_interrupts(tmp_path):
    class Base:
        @classmethod
        def is_available(cls):
            return True

        @classmethod
        def to_backend(cls, ir_files, work_dir, deploy_cfg, log_level=20, device="cpu"):
            return [ir_files[0]]

        @classmethod
        def build_wrapper(cls, files, device="cpu", i=None, o=None, cfg=None):
            return object()

    class Str(Base):
        @classmethod
        def to_backend(cls, ir_files, work_dir, deploy_cfg, log_level=20, device="cpu"):
            return ir_files[0]

    class Maybe(Base):
        @classmethod
        def is_available(cls):
            return "no"

    class Interrupt(Base):
        @classmethod
        def to_backend(cls, *a, **k):
            raise KeyboardInterrupt

    for name, cls in [("hb_obj", Base), ("hb_str", Str), ("hb_maybe", Maybe), ("hb_int", Interrupt)]:
        if name not in rdeploy.backends():
            rdeploy.register_backend(name, cls)
    cfg = lambda b: {"backend_config": {"type": b}}  # noqa: E731
    # deploy proves the backend can load what it wrote: the mistake shows at deploy.
    with pytest.raises(rdeploy.BackendError, match="cannot load them.*no forward"):
        rdeploy.deploy(cfg("hb_obj"), CNN, tmp_path / "a")
    with pytest.raises(rdeploy.BackendError, match="list of file paths|not a file it wrote"):
        rdeploy.deploy(cfg("hb_str"), CNN, tmp_path / "b")
    with pytest.raises(rdeploy.BackendUnavailable, match="not True or False"):
        rdeploy.deploy(cfg("hb_maybe"), CNN, tmp_path / "c")
    with pytest.raises(KeyboardInterrupt):
        rdeploy.deploy(cfg("hb_int"), CNN, tmp_path / "d")
