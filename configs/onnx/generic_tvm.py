# Any ONNX model as it is, on TVM (compiled with Relax; dynamic dims stay dynamic).
_base_ = ['../_base_/backends/tvm.py']
