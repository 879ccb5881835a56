"""An MMDeploy-style backend script (mmdeploy.backend.base managers and wrappers), run on rdeploy.

Only the imports differ from the MMDeploy version; the original lines are kept as comments.
Usage: python docs/examples/mmdeploy_style.py DEPLOY_CFG END2END_ONNX WORK_DIR
END2END_ONNX is the model as MMDeploy's torch2onnx writes it (inputs and outputs already named
by onnx_config), for example the end2end.onnx that `rdeploy deploy` or `rdeploy.deploy` writes
into a work dir. The script feeds one random float32 batch of shape (2, 3, 32, 32), the shape of
tests/data/small-cnn.onnx; change `x` for other models.
Try: rdeploy deploy configs/onnx/dynamic-batch_tract.py tests/data/small-cnn.onnx --work-dir w
     python docs/examples/mmdeploy_style.py configs/onnx/dynamic-batch_onnxruntime.py \
         w/end2end.onnx w2
"""
import logging
import sys

import numpy as np

# from mmengine import Config
# from mmdeploy.backend.base import get_backend_manager
from rdeploy import Config
from rdeploy.mmdeploy import get_backend_manager


def main(deploy_cfg_path, onnx_file, work_dir, device="cpu"):
    deploy_cfg = Config.fromfile(deploy_cfg_path)
    backend = deploy_cfg.backend_config.type
    manager = get_backend_manager(backend)
    manager.check_env(print)
    if not manager.is_available():
        raise SystemExit(f"{backend} is not available")
    backend_files = manager.to_backend([onnx_file], work_dir, deploy_cfg,
                                       log_level=logging.INFO, device=device)
    onnx_cfg = deploy_cfg.onnx_config
    wrapper = manager.build_wrapper(backend_files, device, onnx_cfg.input_names,
                                    onnx_cfg.output_names, deploy_cfg)
    x = np.random.default_rng(0).random((2, 3, 32, 32), dtype=np.float32)
    outputs = wrapper({onnx_cfg.input_names[0]: x})
    for name in wrapper.output_names:
        print(f"{name}: {tuple(outputs[name].shape)} max={float(outputs[name].max()):.6f}")
    return outputs


if __name__ == "__main__":
    main(*sys.argv[1:4])
