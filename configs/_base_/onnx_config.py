# The ONNX export settings MMDeploy's configs inherit (configs/_base_/onnx_config.py upstream).
# rdeploy starts from an ONNX file, so it applies these to that file: input/output names,
# input_shape, dynamic_axes; opset_version is checked; save_file names the IR file.
onnx_config = dict(
    type='onnx',
    export_params=True,
    keep_initializers_as_inputs=False,
    opset_version=11,
    save_file='end2end.onnx',
    input_names=['input'],
    output_names=['output'],
    input_shape=None,
    optimize=True)
