#!/usr/bin/env python3
"""Makes the models the benchmarks run, in target/bench-models/ (not committed):
- resnet18.onnx: the ResNet-18 architecture (torchvision's layout: conv7x7, BN, ReLU, max pool,
  four stages of two basic blocks, global average pool, FC-1000) with seeded random weights,
  input `input` [batch, 3, 224, 224], opset 13. Timing does not depend on weight values.
- tiny.onnx: the small CNN of tests/data/small-cnn.onnx, for per-call overhead.
Usage: python3 scripts/make-bench-models.py [OUT_DIR]
"""
import os
import shutil
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "target", "bench-models")
rng = np.random.default_rng(18)
inits, nodes = [], []
counter = [0]


def name(prefix):
    counter[0] += 1
    return f"{prefix}_{counter[0]}"


def const(arr, prefix):
    n = name(prefix)
    inits.append(numpy_helper.from_array(arr.astype(np.float32), n))
    return n


def conv_bn(x, cin, cout, k, stride, relu=True):
    w = const(rng.standard_normal([cout, cin, k, k]) * np.sqrt(2.0 / (cin * k * k)), "w")
    y = name("conv")
    nodes.append(helper.make_node("Conv", [x, w], [y], kernel_shape=[k, k], strides=[stride, stride], pads=[k // 2] * 4))
    scale, bias = const(np.ones(cout), "bn_s"), const(np.zeros(cout), "bn_b")
    mean, var = const(rng.standard_normal(cout) * 0.1, "bn_m"), const(np.abs(rng.standard_normal(cout)) + 0.5, "bn_v")
    z = name("bn")
    nodes.append(helper.make_node("BatchNormalization", [y, scale, bias, mean, var], [z], epsilon=1e-5))
    if not relu:
        return z
    r = name("relu")
    nodes.append(helper.make_node("Relu", [z], [r]))
    return r


def basic_block(x, cin, cout, stride):
    y = conv_bn(x, cin, cout, 3, stride)
    y = conv_bn(y, cout, cout, 3, 1, relu=False)
    short = conv_bn(x, cin, cout, 1, stride, relu=False) if (stride != 1 or cin != cout) else x
    s = name("add")
    nodes.append(helper.make_node("Add", [y, short], [s]))
    r = name("relu")
    nodes.append(helper.make_node("Relu", [s], [r]))
    return r


def resnet18(path):
    x = conv_bn("input", 3, 64, 7, 2)
    p = name("pool")
    nodes.append(helper.make_node("MaxPool", [x], [p], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]))
    x, cin = p, 64
    for cout, stride in [(64, 1), (128, 2), (256, 2), (512, 2)]:
        x = basic_block(x, cin, cout, stride)
        x = basic_block(x, cout, cout, 1)
        cin = cout
    g = name("gap")
    nodes.append(helper.make_node("GlobalAveragePool", [x], [g]))
    f = name("flat")
    nodes.append(helper.make_node("Flatten", [g], [f]))
    w, b = const(rng.standard_normal([1000, 512]) * 0.02, "fc_w"), const(np.zeros(1000), "fc_b")
    nodes.append(helper.make_node("Gemm", [f, w, b], ["output"], transB=1))
    graph = helper.make_graph(nodes, "resnet18",
                              [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 3, 224, 224])],
                              [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["batch", 1000])], inits)
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="rdeploy-bench")
    m.ir_version = 8
    onnx.checker.check_model(m)
    onnx.save(m, path)


os.makedirs(OUT, exist_ok=True)
resnet18(os.path.join(OUT, "resnet18.onnx"))
shutil.copy(os.path.join(ROOT, "tests", "data", "small-cnn.onnx"), os.path.join(OUT, "tiny.onnx"))
print(f"bench models in {OUT}")
