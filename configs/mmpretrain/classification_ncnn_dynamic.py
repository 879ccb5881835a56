# As MMDeploy's: a dynamic ONNX model on ncnn. pnnx converts at a shape, so the range is given:
# batch is run item by item, height and width stay dynamic (pnnx's inputshape2).
_base_ = ['./classification_dynamic.py', '../_base_/backends/ncnn.py']
backend_config = dict(model_inputs=[
    dict(input_shapes=dict(input=dict(
        min_shape=[1, 3, 64, 64], opt_shape=[1, 3, 224, 224], max_shape=[1, 3, 640, 640])))
])
