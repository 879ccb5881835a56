_base_ = ['./mid.json']
onnx_config = dict(dynamic_axes={'input': {0: 'batch'}})
backend_config = dict(common_config=dict(intra_op_num_threads=4))
