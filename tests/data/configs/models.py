# model_inputs for several backends, with shapes and tuples.
_base_ = './base_onnx.py'
backend_config = dict(
    type='openvino',
    model_inputs=[dict(opt_shapes=dict(input=[1, 3, 224, 224]))])
trt_inputs = [
    dict(input_shapes=dict(input=dict(min_shape=[1, 3, 320, 320], opt_shape=[1, 3, 800, 1344], max_shape=[1, 3, 1344, 1344]))),
]
ncnn = dict(precision='INT8', use_vulkan=False)
sdk = dict(pipeline=[dict(type='LoadImageFromFile'), dict(type='Resize', size=(256, -1), backend='pillow')])
