# mmengine's two ways to use a base's value: the {{ _base_.x }} text substitution and a plain
# _base_.x expression; both resolve to the merged bases' value (never executed).
_base_ = ['./base.py']
backend_config = dict(model_inputs=[dict(opt_shapes=dict(input={{ _base_.opt_shape }}))])
first_axis = _base_.onnx_config.dynamic_axes.input
opset = _base_.onnx_config.opset_version
both = dict(shape=_base_.opt_shape, names=_base_.onnx_config.input_names)
