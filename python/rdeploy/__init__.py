"""rdeploy: deploy ONNX models to inference backends through one contract.

MMDeploy's backend system rebuilt in Rust, from Python::

    import numpy as np, rdeploy

    work = rdeploy.deploy("configs/mmpretrain/classification_tract_dynamic.py",
                          "model.onnx", "work/m")            # or a dict config
    model = rdeploy.load(work)                              # tract, onnxruntime, openvino, ...
    out = model({"input": np.zeros((1, 3, 224, 224), np.float32)})
    print({k: v.shape for k, v in out.items()})

Errors raise subclasses of :class:`rdeploy.Error` whose messages name the file, tensor, key or
backend at fault and what to do. ``rdeploy.mmdeploy`` offers MMDeploy's manager and wrapper
signatures for code written against ``mmdeploy.backend``.
"""

from ._rdeploy import (
    BackendError,
    BackendUnavailable,
    Config,
    ConfigError,
    DeviceError,
    Error,
    InputMismatch,
    ModelError,
    TensorFileError,
    TensorSpec,
    WorkDir,
    WorkDirError,
    Wrapper,
    __version__,
    backends,
    bench,
    check_env,
    compare,
    deploy,
    load,
    register_backend,
    register_pass,
    unregister_pass,
)

__all__ = [
    "BackendError",
    "BackendUnavailable",
    "Config",
    "ConfigError",
    "DeviceError",
    "Error",
    "InputMismatch",
    "ModelError",
    "TensorFileError",
    "TensorSpec",
    "WorkDir",
    "WorkDirError",
    "Wrapper",
    "__version__",
    "backends",
    "bench",
    "check_env",
    "compare",
    "deploy",
    "load",
    "register_backend",
    "register_pass",
    "unregister_pass",
]
