# Values other configs refer to with _base_.name (mmengine's base variables).
opt_shape = [1, 3, 224, 224]
backend_config = dict(type='openvino', model_inputs=[dict(opt_shapes=dict(input=[1, 3, 224, 224]))])
onnx_config = dict(input_names=['input'], opset_version=11, dynamic_axes={'input': {0: 'batch'}})
