# As MMDeploy's classification_tvm-*_static-224x224.py, with the default (untuned) compile: the
# AutoTVM and Ansor tuners were Relay's and are refused (docs/backends/tvm.md).
_base_ = ['./classification_static.py', '../_base_/backends/tvm.py']
onnx_config = dict(input_shape=[224, 224])
backend_config = dict(model_inputs=[
    dict(
        shape=dict(input=[1, 3, 224, 224]),
        dtype=dict(input='float32'),
        tuner=dict(type='DefaultTuner', target='llvm', opt_level=3))
])
