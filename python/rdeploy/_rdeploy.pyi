"""Type stubs of rdeploy's native module. Arrays are numpy arrays; shapes are tuples whose
entries are ints (fixed), strs (named symbolic dims) or None (unknown)."""
import os
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

PathLike = Union[str, "os.PathLike[str]"]
ConfigLike = Union[PathLike, Mapping[str, Any], "Config"]
Dim = Union[int, str, None]

__version__: str

class Error(Exception):
    """Base of every rdeploy error; the message names the file, tensor, key or backend."""

class BackendUnavailable(Error):
    """The backend is unknown or cannot run here (library missing, version too old)."""

class InputMismatch(Error):
    """Inputs do not match the model's signature (name, dtype, shape)."""

class ConfigError(Error):
    """A deploy config is malformed or does not fit the model."""

class ModelError(Error):
    """An ONNX model is missing, not ONNX, or cannot be loaded."""

class WorkDirError(Error):
    """A work dir has no manifest, is corrupt, or its files changed."""

class BackendError(Error):
    """The engine failed converting or running the model."""

class DeviceError(Error):
    """A device string is malformed or the backend cannot run on it."""

class TensorFileError(Error):
    """A tensor file cannot be read or written."""

class TensorSpec:
    """One input or output: name, numpy dtype name, shape (None: unknown rank)."""

    @property
    def name(self) -> str: ...
    @property
    def dtype(self) -> str: ...
    @property
    def shape(self) -> Optional[Tuple[Dim, ...]]: ...
    def __iter__(self) -> Any:
        """Unpacks as (name, dtype, shape)."""
    def __eq__(self, other: object) -> bool: ...

class Config:
    """A merged deploy config (mmengine's Config.fromfile rules; never executed)."""

    @staticmethod
    def fromfile(filename: PathLike) -> "Config":
        """Loads .py/.yaml/.json/.toml with _base_. Raises ConfigError (file, line, key)."""
    @staticmethod
    def from_dict(cfg: Mapping[str, Any]) -> "Config":
        """A config from a dict in MMDeploy's form. Raises ConfigError."""
    def to_dict(self) -> Dict[str, Any]:
        """The merged tree; int keys and tuples kept as mmengine keeps them."""
    @property
    def filename(self) -> str: ...
    def __getitem__(self, key: str) -> Any: ...
    def __getattr__(self, key: str) -> Any: ...
    def __contains__(self, key: str) -> bool: ...
    def get(self, key: str, default: Any = None) -> Any: ...
    def keys(self) -> List[str]: ...
    def items(self) -> List[Tuple[str, Any]]: ...
    def __iter__(self) -> Any: ...
    def __len__(self) -> int: ...

class WorkDir:
    """A deployed work dir and its manifest (deploy.json)."""

    @staticmethod
    def open(path: PathLike) -> "WorkDir":
        """Reads and checks the manifest. Raises WorkDirError."""
    def verify(self) -> None:
        """Checks every file's SHA-256. Raises WorkDirError."""
    @property
    def path(self) -> str: ...
    @property
    def backend(self) -> str: ...
    @property
    def device(self) -> str: ...
    @property
    def reused(self) -> bool: ...
    @property
    def backend_files(self) -> List[str]: ...
    @property
    def inputs(self) -> List[TensorSpec]: ...
    @property
    def outputs(self) -> List[TensorSpec]: ...
    @property
    def manifest(self) -> Dict[str, Any]: ...
    def __fspath__(self) -> str: ...

class Wrapper:
    """A loaded model (MMDeploy's BaseWrapper). Thread-safe; the GIL is released while the
    engine runs."""

    def forward(self, inputs: Mapping[str, Any]) -> Dict[str, np.ndarray]:
        """{input name: array} -> {output name: array} in output_names order. Raises
        InputMismatch (name, dtype, shape) or BackendError."""
    def __call__(self, inputs: Mapping[str, Any]) -> Dict[str, np.ndarray]: ...
    def execute(self, inputs: Sequence[Any]) -> List[np.ndarray]:
        """The engine call alone: arrays in `inputs` order, out in `outputs` order."""
    @property
    def inputs(self) -> List[TensorSpec]: ...
    @property
    def outputs(self) -> List[TensorSpec]: ...
    @property
    def output_names(self) -> List[str]: ...
    @property
    def settings(self) -> Dict[str, str]: ...
    @property
    def backend(self) -> str: ...
    @property
    def device(self) -> str: ...

def check_env() -> Dict[str, Any]:
    """{'rdeploy': version, 'backends': [{'name', 'available', 'version', 'reason', 'devices'}]}."""

def backends() -> List[str]:
    """Registered backend names."""

def deploy(deploy_cfg: ConfigLike, model: PathLike, work_dir: PathLike, device: str = "cpu",
           force: bool = False) -> WorkDir:
    """onnx_config, the backend's graph passes, conversion, manifest; atomic. Raises
    ConfigError, ModelError, BackendUnavailable, DeviceError, BackendError."""

def load(work_dir: Union[PathLike, WorkDir], device: Optional[str] = None) -> Wrapper:
    """Builds the backend's wrapper. Raises WorkDirError, BackendUnavailable, DeviceError."""

def compare(model: PathLike, backends: Union[str, Sequence[str]], inputs: Optional[Mapping[str, Any]] = None,
            rtol: float = 1e-3, atol: float = 1e-4, device: str = "cpu",
            shapes: Optional[Mapping[str, Union[int, Sequence[int]]]] = None,
            seed: int = 0) -> Dict[str, Any]:
    """Same inputs through each backend; per-output max abs/rel diff vs the first; 'pass'."""

def bench(target: Union[Wrapper, WorkDir, PathLike], inputs: Optional[Mapping[str, Any]] = None,
          warmup: int = 10, iters: int = 100, concurrency: int = 1,
          shapes: Optional[Mapping[str, Union[int, Sequence[int]]]] = None,
          seed: int = 0) -> Dict[str, Any]:
    """Latency (ms) mean/min/p50/p90/p99/max of forward and execute, throughput."""

def register_backend(name: str, manager: Any) -> None:
    """Registers a Python backend (MMDeploy's manager methods; optional `device_kinds`, default
    ['cpu']) for this process."""

def register_pass(name: str, func: Callable[[bytes], Optional[bytes]],
                  backends: Optional[List[str]] = None) -> None:
    """Registers a graph pass written in Python: func(serialized ONNX model) -> rewritten model
    bytes, or None to leave it. Deploys from this process run it after rdeploy's rewrite rules
    for `backends` (all when None); rewrite_config = dict(disable=[name]) switches it off.
    Raises ConfigError for a bad or reserved name, or a func that is not callable."""

def unregister_pass(name: str) -> bool:
    """Removes the Python pass registered as `name`; whether there was one."""

def _to_backend(backend: str, ir_files: Sequence[PathLike], work_dir: PathLike,
                deploy_cfg: ConfigLike, device: str = "cpu") -> List[str]: ...
def _build_wrapper(backend: str, backend_files: Sequence[PathLike], device: str = "cpu",
                   input_names: Optional[Sequence[str]] = None,
                   output_names: Optional[Sequence[str]] = None,
                   deploy_cfg: Optional[ConfigLike] = None) -> Wrapper: ...
def _backend_check(backend: str) -> Tuple[bool, str]: ...
