# Any single-input ONNX model with a dynamic batch on TVM: the first input and output are
# named 'input' and 'output' (as MMDeploy exports them) and their first axis is 'batch'.
_base_ = ['../_base_/backends/tvm.py']
onnx_config = dict(
    input_names=['input'],
    output_names=['output'],
    dynamic_axes=dict(input={0: 'batch'}, output={0: 'batch'}))
