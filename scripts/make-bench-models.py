#!/usr/bin/env python3
"""Makes the models the benchmarks run, in target/bench-models/ (not committed):
- resnet18.onnx: the ResNet-18 architecture (torchvision's layout: conv7x7, BN, ReLU, max pool,
  four stages of two basic blocks, global average pool, FC-1000) with seeded random weights,
  input `input` [batch, 3, 224, 224], opset 13. Timing does not depend on weight values.
- resnet50.onnx: ResNet-50 (bottleneck blocks 3-4-6-3, torchvision's layout), same recipe.
- squeezenet.onnx: SqueezeNet 1.1 (fire modules, no BN, global average pool over a 1x1 conv).
- inception.onnx: a GoogLeNet-style network (Inception v1 modules 3a..5b, four parallel branches
  concatenated), same recipe.
- densenet121.onnx: DenseNet-121 (dense blocks 6-12-24-16, growth 32, BN-ReLU-conv, transitions).
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
if len(sys.argv) > 1 and sys.argv[1] in ("-h", "--help"):
    print(__doc__)
    sys.exit(0)
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


def add(op, ins, **attrs):
    y = name(op.lower())
    nodes.append(helper.make_node(op, ins, [y], **attrs))
    return y


def conv(x, cin, cout, k, stride=1, pad=None, relu=True, bias=True):
    w = const(rng.standard_normal([cout, cin, k, k]) * np.sqrt(2.0 / (cin * k * k)), "w")
    ins = [x, w] + ([const(np.zeros(cout), "b")] if bias else [])
    p = k // 2 if pad is None else pad
    y = add("Conv", ins, kernel_shape=[k, k], strides=[stride, stride], pads=[p] * 4)
    return add("Relu", [y]) if relu else y


def bn_relu(x, c):
    scale, bias = const(np.ones(c), "bn_s"), const(np.zeros(c), "bn_b")
    mean, var = const(rng.standard_normal(c) * 0.1, "bn_m"), const(np.abs(rng.standard_normal(c)) + 0.5, "bn_v")
    return add("Relu", [add("BatchNormalization", [x, scale, bias, mean, var], epsilon=1e-5)])


def head(x, c, classes=1000):
    f = add("Flatten", [add("GlobalAveragePool", [x])])
    w, b = const(rng.standard_normal([classes, c]) * 0.02, "fc_w"), const(np.zeros(classes), "fc_b")
    nodes.append(helper.make_node("Gemm", [f, w, b], ["output"], transB=1))


def finish(graph_name, path):
    global nodes, inits
    graph = helper.make_graph(nodes, graph_name,
                              [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 3, 224, 224])],
                              [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["batch", 1000])], inits)
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="rdeploy-bench")
    m.ir_version = 8
    onnx.checker.check_model(m)
    onnx.save(m, path)
    nodes, inits = [], []


def bottleneck(x, cin, mid, stride):
    cout = mid * 4
    y = conv_bn(x, cin, mid, 1, 1)
    y = conv_bn(y, mid, mid, 3, stride)
    y = conv_bn(y, mid, cout, 1, 1, relu=False)
    short = conv_bn(x, cin, cout, 1, stride, relu=False) if (stride != 1 or cin != cout) else x
    return add("Relu", [add("Add", [y, short])])


def resnet50(path):
    x = conv_bn("input", 3, 64, 7, 2)
    x = add("MaxPool", [x], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])
    cin = 64
    for mid, blocks, stride in [(64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)]:
        for i in range(blocks):
            x = bottleneck(x, cin, mid, stride if i == 0 else 1)
            cin = mid * 4
    head(x, 2048)
    finish("resnet50", path)


def fire(x, cin, squeeze, expand):
    s = conv(x, cin, squeeze, 1, pad=0)
    return add("Concat", [conv(s, squeeze, expand, 1, pad=0), conv(s, squeeze, expand, 3, pad=1)], axis=1)


def squeezenet(path):
    x = conv("input", 3, 64, 3, 2, pad=0)
    x = add("MaxPool", [x], kernel_shape=[3, 3], strides=[2, 2])
    cin = 64
    for i, (sq, ex) in enumerate([(16, 64), (16, 64), (32, 128), (32, 128), (48, 192), (48, 192), (64, 256), (64, 256)]):
        x = fire(x, cin, sq, ex)
        cin = ex * 2
        if i in (1, 3):
            x = add("MaxPool", [x], kernel_shape=[3, 3], strides=[2, 2])
    x = conv(x, cin, 1000, 1, pad=0)
    nodes.append(helper.make_node("GlobalAveragePool", [x], ["gap_out"]))
    nodes.append(helper.make_node("Flatten", ["gap_out"], ["output"]))
    finish("squeezenet1_1", path)


def inception_module(x, cin, c1, c3r, c3, c5r, c5, pp):
    b1 = conv(x, cin, c1, 1, pad=0)
    b2 = conv(conv(x, cin, c3r, 1, pad=0), c3r, c3, 3)
    b3 = conv(conv(x, cin, c5r, 1, pad=0), c5r, c5, 5)
    b4 = conv(add("MaxPool", [x], kernel_shape=[3, 3], strides=[1, 1], pads=[1, 1, 1, 1]), cin, pp, 1, pad=0)
    return add("Concat", [b1, b2, b3, b4], axis=1), c1 + c3 + c5 + pp


def inception(path):
    x = conv("input", 3, 64, 7, 2)
    x = add("MaxPool", [x], kernel_shape=[3, 3], strides=[2, 2], pads=[0, 0, 1, 1])
    x = conv(conv(x, 64, 64, 1, pad=0), 64, 192, 3)
    x = add("MaxPool", [x], kernel_shape=[3, 3], strides=[2, 2], pads=[0, 0, 1, 1])
    cin = 192
    for i, cfg in enumerate([(64, 96, 128, 16, 32, 32), (128, 128, 192, 32, 96, 64), "pool",
                             (192, 96, 208, 16, 48, 64), (160, 112, 224, 24, 64, 64), (128, 128, 256, 24, 64, 64),
                             (112, 144, 288, 32, 64, 64), (256, 160, 320, 32, 128, 128), "pool",
                             (256, 160, 320, 32, 128, 128), (384, 192, 384, 48, 128, 128)]):
        if cfg == "pool":
            x = add("MaxPool", [x], kernel_shape=[3, 3], strides=[2, 2], pads=[0, 0, 1, 1])
            continue
        x, cin = inception_module(x, cin, *cfg)
    head(x, cin)
    finish("inception_v1", path)


def densenet121(path):
    x = conv_bn("input", 3, 64, 7, 2)
    x = add("MaxPool", [x], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])
    c, growth = 64, 32
    for bi, layers in enumerate([6, 12, 24, 16]):
        feats = [x]
        for _ in range(layers):
            inp = feats[0] if len(feats) == 1 else add("Concat", feats, axis=1)
            y = conv(bn_relu(inp, c), c, 4 * growth, 1, pad=0, relu=False, bias=False)
            y = conv(bn_relu(y, 4 * growth), 4 * growth, growth, 3, relu=False, bias=False)
            feats.append(y)
            c += growth
        x = add("Concat", feats, axis=1)
        if bi < 3:
            x = conv(bn_relu(x, c), c, c // 2, 1, pad=0, relu=False, bias=False)
            c //= 2
            x = add("AveragePool", [x], kernel_shape=[2, 2], strides=[2, 2])
    head(bn_relu(x, c), c)
    finish("densenet121", path)


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
nodes, inits = [], []
resnet50(os.path.join(OUT, "resnet50.onnx"))
squeezenet(os.path.join(OUT, "squeezenet.onnx"))
inception(os.path.join(OUT, "inception.onnx"))
densenet121(os.path.join(OUT, "densenet121.onnx"))
shutil.copy(os.path.join(ROOT, "tests", "data", "small-cnn.onnx"), os.path.join(OUT, "tiny.onnx"))
print(f"bench models in {OUT}")
