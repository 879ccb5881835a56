# Any ONNX model as it is, on ncnn (converted with pnnx; dynamic dims other than the batch need
# backend_config.model_inputs[0].input_shapes).
_base_ = ['../_base_/backends/ncnn.py']
