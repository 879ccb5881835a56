# OpenVINO: ONNX -> IR (.xml/.bin) with OpenVINO's `ovc`, inference through libopenvino_c loaded
# at run time (RDEPLOY_OPENVINO_LIB, the openvino pip package, or an install). MMDeploy's keys:
# `type`, `model_inputs` (opt_shapes per input, used as the IR's input shapes) and `mo_options`
# (extra converter arguments). rdeploy's optional keys (see docs/backends/openvino.md):
#   precision='fp16'                  fp16 weights in the IR and f16 inference (default f32)
#   inference_precision='bf16'        the run-time precision alone ('f32', 'bf16', 'f16')
#   performance_hint='THROUGHPUT'     or 'LATENCY', 'CUMULATIVE_THROUGHPUT'
#   num_streams=2, inference_num_threads=4
#   properties=dict(KEY='value')      any OpenVINO device property
#   model_format='onnx'               skip conversion and load the ONNX file directly
# custom_ops (extension libraries) is refused: the openvino crate has no Core::add_extension.
backend_config = dict(type='openvino')
