# ONNX Runtime with the model converted to float16 (MMDeploy's keys). keep_io_types=False makes
# the graph inputs and outputs float16 too, as in MMDeploy; set it True to keep them float32.
backend_config = dict(
    type='onnxruntime',
    precision='fp16',
    common_config=dict(
        min_positive_val=1e-7,
        max_finite_val=1e4,
        keep_io_types=False,
        disable_shape_infer=False,
        op_block_list=None,
        node_block_list=None))
