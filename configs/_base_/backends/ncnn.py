# ncnn: ONNX -> end2end.ncnn.param/.bin with pnnx (the pnnx wheel's binary; RDEPLOY_PNNX names
# another), inference with the `ncnn` Python package. A backend written in Python:
# rdeploy.pybackends.ncnn:NcnnManager (docs/backends/ncnn.md). MMDeploy's keys:
#   precision='FP32'                  or 'FP16' (ncnn-fp16.py); 'INT8' is refused (it needs a
#                                     calibration table rdeploy does not make)
#   use_vulkan=False                  True is refused unless ncnn finds a Vulkan GPU
# rdeploy's optional keys:
#   model_inputs=[dict(input_shapes=dict(input=dict(opt_shape=[1, 3, 224, 224])))]
#                                     the shape pnnx converts at, needed for dims the model
#                                     leaves dynamic (a plain shape, or min_shape/max_shape too:
#                                     a range keeps those dims dynamic); dim 0 is the batch,
#                                     run item by item
#   common_config=dict(num_threads=4) ncnn's opt.num_threads (default: the big cores)
#   reference_check=False             skip the deploy-time comparison with onnxruntime
backend_config = dict(type='ncnn', precision='FP32', use_vulkan=False)
