backend_config = dict(type='onnxruntime', common_config=dict(intra_op_num_threads=2, graph_optimization_level='all'))
onnx_config = dict(opset_version=13, input_names=['input'])
