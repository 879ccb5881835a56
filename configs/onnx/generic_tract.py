# Any ONNX model as it is: names and shapes untouched.
_base_ = ['../_base_/backends/tract.py']
