# Any ONNX model as it is, on OpenVINO (converted to IR).
_base_ = ['../_base_/backends/openvino.py']
