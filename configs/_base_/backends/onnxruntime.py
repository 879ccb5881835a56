# ONNX Runtime, loaded at run time (ORT_DYLIB_PATH, the onnxruntime pip package, or system paths).
backend_config = dict(type='onnxruntime')
