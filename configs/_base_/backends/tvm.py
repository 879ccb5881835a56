# Apache TVM: ONNX -> end2end.so compiled with Relax (TVM >= 0.20 has no Relay, which MMDeploy
# used) and run in Relax's virtual machine on the CPU. A backend written in Python:
# rdeploy.pybackends.tvm:TVMManager (docs/backends/tvm.md). MMDeploy's keys, all optional, in
# backend_config.model_inputs[0]:
#   shape=dict(input=[1, 3, 224, 224])  static input shapes (dims not given stay dynamic);
#                                       input_shapes/opt_shapes are read too
#   dtype=dict(input='float32')         must agree with the model's types
#   tuner=dict(type='DefaultTuner', target='llvm', opt_level=3)
#   use_vm=True                         ignored: Relax always runs in its VM
# Refused: tuner types 'AutoTVMTuner' and 'AutoScheduleTuner' (Relay-era tuners) and qconfig
# (Relay's int8 quantization). rdeploy's optional keys:
#   target='llvm'                       or dict(kind='llvm', mcpu='native'); CLI strings such
#                                       as 'llvm -mcpu=skylake' are translated
#   opt_level=3, num_threads=2          TVM's thread pool (TVM_NUM_THREADS works too)
backend_config = dict(type='tvm')
