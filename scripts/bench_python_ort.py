#!/usr/bin/env python3
"""Python onnxruntime InferenceSession.run on a model, same input and threads as
crates/backend-ort/benches/overhead.rs. Prints mean and median per call in microseconds.
Usage: bench_python_ort.py MODEL BATCH,C,H,W [--threads N] [--iters N]"""
import argparse
import statistics
import time

import numpy as np
import onnxruntime as ort

p = argparse.ArgumentParser()
p.add_argument("model")
p.add_argument("shape")
p.add_argument("--threads", type=int, default=2)
p.add_argument("--iters", type=int, default=300)
a = p.parse_args()
shape = [int(d) for d in a.shape.split(",")]
count = int(np.prod(shape))
x = (((np.arange(count) * 7919) % 1000) / 1000.0).astype(np.float32).reshape(shape)
so = ort.SessionOptions()
so.intra_op_num_threads = a.threads
so.inter_op_num_threads = 1
sess = ort.InferenceSession(a.model, so, providers=["CPUExecutionProvider"])
name = sess.get_inputs()[0].name
for _ in range(20):
    sess.run(None, {name: x})
times = []
deadline = time.perf_counter() + 30
for _ in range(a.iters):
    t = time.perf_counter()
    sess.run(None, {name: x})
    times.append((time.perf_counter() - t) * 1e6)
    if time.perf_counter() > deadline:
        break
print(f"python_onnxruntime {ort.__version__} {a.model.split('/')[-1]} b{shape[0]}: "
      f"mean {statistics.mean(times):.1f} us, median {statistics.median(times):.1f} us, n={len(times)}")
