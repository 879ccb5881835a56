# A dynamic ONNX model on TVM: Relax compiles batch, height and width as symbolic dims.
_base_ = ['./classification_dynamic.py', '../_base_/backends/tvm.py']
