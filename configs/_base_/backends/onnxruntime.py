# ONNX Runtime, loaded at run time (ORT_DYLIB_PATH, the onnxruntime pip package, or system paths).
# Optional keys (docs/backends/onnxruntime.md):
#   custom_ops=['libs/libmyops.so']   custom-op libraries (exporting RegisterCustomOps) loaded
#                                     into every session; relative paths resolve against the
#                                     folder of the deploy config given to `rdeploy deploy`; the
#                                     work dir keeps a copy of each, so it loads from anywhere
backend_config = dict(type='onnxruntime')
