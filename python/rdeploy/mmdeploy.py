"""MMDeploy's backend API shape over rdeploy.

Code written against ``mmdeploy.backend`` runs after an import change::

    # from mmdeploy.backend.base import get_backend_manager
    from rdeploy.mmdeploy import get_backend_manager

    manager = get_backend_manager("onnxruntime")
    if manager.is_available():
        files = manager.to_backend(["end2end.onnx"], "work", deploy_cfg)
        wrapper = manager.build_wrapper(files, "cpu", ["input"], ["output"], deploy_cfg)
        outputs = wrapper({"input": x})          # dict of torch tensors or numpy arrays

Managers have MMDeploy's classmethod signatures (``is_available(with_custom_ops=False)``,
``get_version()``, ``check_env(log_callback)``, ``to_backend(ir_files, work_dir, deploy_cfg,
log_level, device)``, ``build_wrapper(backend_files, device, input_names, output_names,
deploy_cfg)``). Wrappers take and return torch tensors when given torch tensors (torch is
optional), numpy arrays otherwise. Any backend rdeploy knows works, Python-registered ones
included.
"""

import logging
from typing import Any, Callable, Dict, List, Optional, Sequence

import numpy as np

from . import _rdeploy

__all__ = ["BaseBackendManager", "BaseWrapper", "get_backend_manager"]

# The Python loggers rdeploy's messages go to (one per Rust crate).
_LOGGERS = ["rdeploy", "rdeploy_core", "rdeploy_onnx", "rdeploy_backend_tract",
            "rdeploy_backend_ort", "rdeploy_backend_openvino", "rdeploy_plugin", "_rdeploy"]


def _to_numpy(x: Any) -> Any:
    if hasattr(x, "detach") and hasattr(x, "numpy"):  # torch.Tensor
        return x.detach().cpu().numpy()
    return x


class BaseWrapper:
    """MMDeploy's ``BaseWrapper``: ``forward(dict) -> dict`` and ``output_names``."""

    def __init__(self, wrapper: "_rdeploy.Wrapper"):
        self._wrapper = wrapper

    @property
    def output_names(self) -> List[str]:
        """The output names, in output order."""
        return self._wrapper.output_names

    @output_names.setter
    def output_names(self, names: List[str]) -> None:
        raise AttributeError(
            "rdeploy wrappers fix their outputs when built; pass output_names to build_wrapper"
        )

    @property
    def wrapper(self) -> "_rdeploy.Wrapper":
        """The underlying :class:`rdeploy.Wrapper`."""
        return self._wrapper

    def forward(self, inputs: Dict[str, Any]) -> Dict[str, Any]:
        """Runs the model. Torch tensors in give torch tensors out (on the inputs' device);
        numpy arrays in give numpy arrays out.

        Raises :class:`rdeploy.InputMismatch` or :class:`rdeploy.BackendError`."""
        torch_device = None
        for v in inputs.values():
            if hasattr(v, "detach") and hasattr(v, "device"):
                torch_device = v.device
                break
        outs = self._wrapper.forward({k: _to_numpy(v) for k, v in inputs.items()})
        if torch_device is None:
            return outs
        import torch  # only reached when torch tensors came in

        return {k: torch.from_numpy(np.ascontiguousarray(v)).to(torch_device) for k, v in outs.items()}

    __call__ = forward


class BaseBackendManager:
    """MMDeploy's ``BaseBackendManager`` for one rdeploy backend (classmethods)."""

    backend_name: str = ""

    @classmethod
    def is_available(cls, with_custom_ops: bool = False) -> bool:
        """Whether the engine can be used here. rdeploy carries no custom-op library to build,
        so ``with_custom_ops`` changes nothing."""
        return _rdeploy._backend_check(cls.backend_name)[0]

    @classmethod
    def get_version(cls) -> str:
        """The engine's version, or ``'None'`` when unavailable (as MMDeploy prints it)."""
        ok, text = _rdeploy._backend_check(cls.backend_name)
        return text if ok else "None"

    @classmethod
    def check_env(cls, log_callback: Callable[[str], Any] = lambda _: _) -> str:
        """``name:\\tversion`` (or ``name:\\tNone (reason)``), passed to ``log_callback``."""
        ok, text = _rdeploy._backend_check(cls.backend_name)
        info = f"{cls.backend_name}:\t{text}" if ok else f"{cls.backend_name}:\tNone ({text})"
        log_callback(info)
        return info

    @classmethod
    def to_backend(
        cls,
        ir_files: Sequence[str],
        work_dir: str,
        deploy_cfg: Any,
        log_level: int = logging.INFO,
        device: str = "cpu",
        **kwargs: Any,
    ) -> List[str]:
        """Converts ONNX IR files into the backend's files in ``work_dir``; returns their paths.
        ``deploy_cfg`` is a path, a dict, an :class:`rdeploy.Config` or an mmengine Config."""
        if hasattr(deploy_cfg, "to_dict") and not isinstance(deploy_cfg, _rdeploy.Config):
            deploy_cfg = deploy_cfg.to_dict()
        # log_level applies to this call only, on every rdeploy logger.
        loggers = [logging.getLogger(n) for n in _LOGGERS]
        saved = [lg.level for lg in loggers]
        for lg in loggers:
            lg.setLevel(log_level)
        try:
            return _rdeploy._to_backend(cls.backend_name, list(ir_files), work_dir, deploy_cfg,
                                        device)
        finally:
            for lg, level in zip(loggers, saved):
                lg.setLevel(level)

    @classmethod
    def build_wrapper(
        cls,
        backend_files: Sequence[str],
        device: str = "cpu",
        input_names: Optional[Sequence[str]] = None,
        output_names: Optional[Sequence[str]] = None,
        deploy_cfg: Optional[Any] = None,
        **kwargs: Any,
    ) -> BaseWrapper:
        """Loads backend files into a wrapper."""
        if deploy_cfg is not None and hasattr(deploy_cfg, "to_dict") and not isinstance(
            deploy_cfg, _rdeploy.Config
        ):
            deploy_cfg = deploy_cfg.to_dict()
        w = _rdeploy._build_wrapper(
            cls.backend_name,
            list(backend_files),
            device,
            list(input_names) if input_names else None,
            list(output_names) if output_names else None,
            deploy_cfg,
        )
        return BaseWrapper(w)


def get_backend_manager(name: str) -> type:
    """The manager class of backend ``name`` (MMDeploy's ``get_backend_manager``).

    Raises :class:`rdeploy.BackendUnavailable` for a name rdeploy does not know."""
    known = _rdeploy.backends()
    match = next((b for b in known if b.lower() == str(name).lower()), None)
    if match is None:
        raise _rdeploy.BackendUnavailable(
            f"unknown backend '{name}'; registered backends: {', '.join(known)}"
        )
    return type(f"{match.capitalize()}Manager", (BaseBackendManager,), {"backend_name": match})
