"""The cost of running a backend written in Python from the rdeploy binary: the worker process's
own time per call (shared-memory transfer, JSON messages, scheduling) beside the engine's time.

Uses the test-only package tests/python-backend-pkg (its `ortpy` backend drives ONNX Runtime
from Python; installed into target/python-backend-pkg and put on PYTHONPATH) and `rdeploy bench`,
which reports `execute_ms` (the call as rdeploy makes it) and `engine_ms` (the Python
`forward` inside the worker). The worker's cost is their difference. Models: rdeploy's small
CNN (12 KB in, 40 B out) and a Relu over 1x3x224x224 and 8x3x224x224 (0.6 MB and 4.8 MB in and
out), generated here.

Usage: .venv/bin/python scripts/bench-python-worker.py [--rdeploy target/release/rdeploy]
                                                       [--iters 2000] [--markdown]
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def relu_model(path, shape):
    import onnx
    from onnx import TensorProto, helper

    g = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "relu",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, shape)])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    onnx.save(m, path)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rdeploy", default=str(ROOT / "target/release/rdeploy"))
    ap.add_argument("--iters", type=int, default=2000)
    ap.add_argument("--markdown", action="store_true", help="print a Markdown table")
    a = ap.parse_args()
    if not Path(a.rdeploy).exists():
        sys.exit(f"{a.rdeploy} not found: cargo build --release -p rdeploy-cli")
    pkg = ROOT / "target/python-backend-pkg"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                    "--no-deps", "--no-build-isolation", "--upgrade", "--target", str(pkg),
                    str(ROOT / "tests/python-backend-pkg")], check=True)
    env = dict(os.environ, PYTHONPATH=str(pkg), VIRTUAL_ENV=str(Path(sys.executable).parent.parent),
               RDEPLOY_LOG="warn")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        models = [("small CNN 1x3x32x32", ROOT / "tests/data/small-cnn.onnx")]
        for shape in ([1, 3, 224, 224], [8, 3, 224, 224]):
            p = tmp / f"relu-{shape[0]}.onnx"
            relu_model(p, shape)
            models.append((f"Relu {'x'.join(map(str, shape))}", p))
        cfg = tmp / "ortpy.py"
        cfg.write_text("backend_config = dict(type='ortpy')\n")
        for label, model in models:
            work = tmp / f"w-{model.stem}"
            subprocess.run([a.rdeploy, "deploy", str(cfg), str(model), "--work-dir", str(work)],
                           env=env, check=True, capture_output=True)
            out = subprocess.run([a.rdeploy, "bench", str(work), "--iters", str(a.iters), "--warmup", "50",
                                  "--json"], env=env, check=True, capture_output=True, text=True).stdout
            r = json.loads(out)
            ex, en = r["execute_ms"], r["engine_ms"]
            rows.append((label, ex["p50"] * 1e3, en["p50"] * 1e3, (ex["mean"] - en["mean"]) * 1e3,
                         (ex["p50"] - en["p50"]) * 1e3))
    if a.markdown:
        print("| model | execute p50 (us) | engine p50 (us) | worker cost, mean (us) | worker cost, p50 (us) |")
        print("|---|---|---|---|---|")
        for label, ex, en, cm, cp in rows:
            print(f"| {label} | {ex:.0f} | {en:.0f} | {cm:.0f} | {cp:.0f} |")
    else:
        for label, ex, en, cm, cp in rows:
            print(f"{label:22s} execute p50 {ex:8.1f} us  engine p50 {en:8.1f} us  "
                  f"worker cost mean {cm:7.1f} us  p50 {cp:7.1f} us")


if __name__ == "__main__":
    main()
