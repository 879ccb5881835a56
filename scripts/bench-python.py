#!/usr/bin/env python3
"""Per-call cost of rdeploy's Python Wrapper.forward against onnxruntime.InferenceSession.run,
on the same libonnxruntime with the same threads, interleaved in one run.

Models: a 1-node model (Relu on [1, 16]: the call overhead alone) and ResNet-18 (built by
scripts/make-bench-models.py with seeded random weights; timing does not depend on weights).
Blocks of calls alternate between the two so machine noise hits both alike; the median of the
per-call times is reported. Run after `scripts/install-python.sh` (a release build).

Usage: .venv/bin/python scripts/bench-python.py [--rounds N] [--threads T] [--json OUT]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper

import rdeploy

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def one_node(path):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 16])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 16])
    g = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "relu", [x], [y])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    onnx.save(m, path)


def measure(calls, rounds, block):
    """Per-call seconds of each callable, interleaved in blocks."""
    times = {k: [] for k in calls}
    for _ in range(rounds):
        for name, f in calls.items():
            for _ in range(block):
                t = time.perf_counter()
                f()
                times[name].append(time.perf_counter() - t)
    return times


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--rounds", type=int, default=40)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json")
    a = p.parse_args()
    models = os.path.join(ROOT, "target", "bench-models")
    if not os.path.exists(os.path.join(models, "resnet18.onnx")):
        subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "make-bench-models.py"), models],
                       check=True)
    tmp = tempfile.mkdtemp(prefix="rdeploy-bench-py-")
    one = os.path.join(tmp, "relu.onnx")
    one_node(one)
    results = []
    for label, model, shape, block in [
        ("1-node Relu [1,16]", one, (1, 16), 200),
        ("ResNet-18 [1,3,224,224]", os.path.join(models, "resnet18.onnx"), (1, 3, 224, 224), 2),
    ]:
        so = ort.SessionOptions()
        so.intra_op_num_threads = a.threads
        so.inter_op_num_threads = 1
        sess = ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])
        name = sess.get_inputs()[0].name
        cfg = {"backend_config": {"type": "onnxruntime", "common_config": {
            "intra_op_num_threads": a.threads, "inter_op_num_threads": 1}}}
        w = rdeploy.load(rdeploy.deploy(cfg, model, os.path.join(tmp, label.split()[0])))
        x = np.random.default_rng(0).random(shape, dtype=np.float32)
        np.testing.assert_allclose(w({name: x})[w.output_names[0]], sess.run(None, {name: x})[0],
                                   rtol=1e-5, atol=1e-6)
        calls = {
            "onnxruntime.InferenceSession.run": lambda: sess.run(None, {name: x}),
            "rdeploy Wrapper.forward": lambda: w.forward({name: x}),
        }
        measure(calls, 2, block)  # warm-up
        rounds = a.rounds if block > 10 else max(4, a.rounds // 2)
        t = measure(calls, rounds, block)
        med = {k: statistics.median(v) * 1e6 for k, v in t.items()}
        ratio = med["rdeploy Wrapper.forward"] / med["onnxruntime.InferenceSession.run"]
        results.append({"model": label, "threads": a.threads, "calls_each": len(t["rdeploy Wrapper.forward"]),
                        "median_us": med, "ratio": ratio})
        print(f"{label}: ORT Python {med['onnxruntime.InferenceSession.run']:.1f} us, "
              f"rdeploy {med['rdeploy Wrapper.forward']:.1f} us per call (median of "
              f"{len(t['rdeploy Wrapper.forward'])}); rdeploy/ORT = {ratio:.3f}")
    print(f"onnxruntime {ort.__version__}, rdeploy {rdeploy.__version__}, numpy {np.__version__}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
