# Any ONNX model as it is, on ONNX Runtime.
_base_ = ['../_base_/backends/onnxruntime.py']
