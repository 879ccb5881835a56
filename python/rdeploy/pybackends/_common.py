"""What the Python backends share: reading the deploy config, the ONNX model's signature and the
shapes a config gives. Engines are not imported here."""

import logging
import os
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

Dim = Union[int, str, None]
# (name, dtype, dims): the form rdeploy reads from a wrapper's `inputs` / `outputs`.
TensorInfo = Tuple[str, str, List[Dim]]

# ONNX TensorProto element types rdeploy can carry, by number.
ONNX_DTYPES = {
    1: "float32", 2: "uint8", 3: "int8", 4: "uint16", 5: "int16", 6: "int32", 7: "int64",
    9: "bool", 10: "float16", 11: "float64", 12: "uint32", 13: "uint64",
}

# The shape keys of `backend_config.model_inputs[0]` read, in order of precedence: TensorRT's
# `input_shapes` (a shape, or dict(min_shape, opt_shape, max_shape)), OpenVINO's `opt_shapes`,
# MMDeploy TVM's `shape`.
SHAPE_KEYS = ("input_shapes", "opt_shapes", "shape")


def plain_config(deploy_cfg: Any) -> Dict[str, Any]:
    """The deploy config as a plain dict: a dict, an rdeploy/mmengine Config, or a path."""
    if deploy_cfg is None:
        return {}
    if isinstance(deploy_cfg, (str, os.PathLike)):
        from rdeploy import Config

        return Config.fromfile(deploy_cfg).to_dict()
    if hasattr(deploy_cfg, "to_dict"):
        return deploy_cfg.to_dict()
    if isinstance(deploy_cfg, dict):
        return deploy_cfg
    raise TypeError(f"deploy_cfg must be a dict or a Config, not {type(deploy_cfg).__name__}")


def backend_config(deploy_cfg: Any) -> Dict[str, Any]:
    """`backend_config` of the deploy config (empty when absent)."""
    be = plain_config(deploy_cfg).get("backend_config") or {}
    if not isinstance(be, dict):
        raise ValueError(f"backend_config must be a dict, not {type(be).__name__}")
    return be


def first_model_input(be: Dict[str, Any]) -> Dict[str, Any]:
    """`backend_config.model_inputs[0]` (empty when absent): the entry for the one IR file."""
    items = be.get("model_inputs") or []
    if not isinstance(items, (list, tuple)):
        raise ValueError("backend_config.model_inputs must be a list of dicts, "
                         f"not {type(items).__name__}")
    if not items:
        return {}
    if not isinstance(items[0], dict):
        raise ValueError("backend_config.model_inputs[0] must be a dict, "
                         f"not {type(items[0]).__name__}")
    return items[0]


def _shape(v: Any, key: str) -> List[int]:
    if not isinstance(v, (list, tuple)) or not all(
            isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in v):
        raise ValueError(f"{key} must be a shape of non-negative ints such as [1, 3, 224, 224], "
                         f"not {v!r}")
    return [int(d) for d in v]


class ShapeRange:
    """The shapes a config gives for one input: the one to convert at (`opt`), and the range
    the converted model must take (`min`/`max`, equal to `opt` when the config gives one)."""

    def __init__(self, key: str, opt: List[int], lo: Optional[List[int]] = None,
                 hi: Optional[List[int]] = None, ranged: bool = False):
        self.key, self.opt = key, opt
        # Where each shape came from, for messages.
        self.keys = {"opt": f"{key}.opt_shape" if ranged else key,
                     "min": f"{key}.min_shape", "max": f"{key}.max_shape"}
        self.min = lo if lo is not None else opt
        self.max = hi if hi is not None else opt

    def varying_axes(self) -> List[int]:
        """Axes whose size may differ at run time (min != max)."""
        return [i for i, (a, b) in enumerate(zip(self.min, self.max)) if a != b]


def config_shapes(deploy_cfg: Any) -> Dict[str, ShapeRange]:
    """Input shapes from `backend_config.model_inputs[0]`: `input_shapes` (a shape or
    dict(min_shape=, opt_shape=, max_shape=)), `opt_shapes` or `shape`, by input name."""
    mi = first_model_input(backend_config(deploy_cfg))
    out: Dict[str, ShapeRange] = {}
    for key in SHAPE_KEYS:
        entries = mi.get(key)
        if entries is None:
            continue
        base = f"backend_config.model_inputs[0].{key}"
        if not isinstance(entries, dict):
            raise ValueError(f"{base} must be a dict of shapes by input name, e.g. "
                             f"dict(input=[1, 3, 224, 224]), not {entries!r}")
        for name, v in entries.items():
            k = f"{base}.{name}"
            if name in out:
                continue
            if isinstance(v, dict):
                unknown = set(v) - {"min_shape", "opt_shape", "max_shape"}
                if unknown:
                    raise ValueError(f"{k} takes min_shape, opt_shape and max_shape, "
                                     f"not {sorted(unknown)}")
                opt = v.get("opt_shape") or v.get("max_shape") or v.get("min_shape")
                if opt is None:
                    raise ValueError(f"{k} gives no shape: set opt_shape")
                opt = _shape(opt, f"{k}.opt_shape")
                lo = _shape(v["min_shape"], f"{k}.min_shape") if v.get("min_shape") else None
                hi = _shape(v["max_shape"], f"{k}.max_shape") if v.get("max_shape") else None
                for other, what in ((lo, "min_shape"), (hi, "max_shape")):
                    if other is not None and len(other) != len(opt):
                        raise ValueError(f"{k}.{what} has rank {len(other)} but opt_shape has "
                                         f"rank {len(opt)}")
                out[name] = ShapeRange(k, opt, lo, hi, ranged=True)
            else:
                out[name] = ShapeRange(k, _shape(v, k))
    return out


def require_onnx(backend: str, purpose: str):
    """The `onnx` module, or an error saying what it is needed for."""
    try:
        import onnx
    except ImportError as e:
        raise RuntimeError(f"the {backend} backend needs the `onnx` Python package to {purpose} "
                           f"({e}): pip install onnx") from None
    return onnx


def default_opset(model) -> int:
    for o in model.opset_import:
        if o.domain in ("", "ai.onnx"):
            return int(o.version)
    return 1


def upgrade_opset(model, target: int, path: str, backend: str, why: str, log: logging.Logger):
    """`model` at default-domain opset >= `target`, upgraded with onnx's version converter
    when it is older. `why` says what goes wrong without the upgrade."""
    opset = default_opset(model)
    if opset >= target:
        return model
    from onnx import version_converter

    try:
        upgraded = version_converter.convert_version(model, target)
    except Exception as e:  # the converter raises several types for unsupported adapters
        raise RuntimeError(
            f"{path} is at opset {opset} and the {backend} backend needs opset {target} or "
            f"newer ({why}); onnx's version converter failed: {type(e).__name__}: {e}. "
            f"Export the model at opset {target} or newer, or let rdeploy upgrade it "
            f"(rewrite_config=dict(opset_upgrade=dict(target={target})))") from None
    log.info("%s: upgraded from opset %d to %d with onnx.version_converter (%s)", path, opset,
             target, why)
    return upgraded


def _dims(vi) -> Optional[List[Dim]]:
    tt = vi.type.tensor_type
    if not tt.HasField("shape"):
        return None
    dims: List[Dim] = []
    for d in tt.shape.dim:
        if d.HasField("dim_value") and d.dim_value >= 0:
            dims.append(int(d.dim_value))
        elif d.dim_param:
            dims.append(d.dim_param)
        else:
            dims.append(None)  # unknown, or Paddle's -1
    return dims


def signature(model, path: str) -> Tuple[List[TensorInfo], List[TensorInfo]]:
    """The graph's inputs (initializers excluded) and outputs as (name, dtype, dims)."""
    inits = {t.name for t in model.graph.initializer}

    def info(vi, kind):
        tt = vi.type.tensor_type
        if not vi.type.HasField("tensor_type"):
            raise ValueError(f"{path}: {kind} '{vi.name}' is not a tensor; only tensor inputs "
                             "and outputs are supported")
        dtype = ONNX_DTYPES.get(tt.elem_type)
        if dtype is None:
            raise ValueError(f"{path}: {kind} '{vi.name}' has ONNX element type {tt.elem_type}, "
                             "which rdeploy does not carry")
        dims = _dims(vi)
        if dims is None:
            raise ValueError(f"{path}: {kind} '{vi.name}' has no shape (unknown rank); give the "
                             "model's graph a shape for it")
        return (vi.name, dtype, dims)

    ins = [info(v, "input") for v in model.graph.input if v.name not in inits]
    outs = [info(v, "output") for v in model.graph.output]
    return ins, outs


def resolve_shapes(inputs: Sequence[TensorInfo], cfg: Dict[str, ShapeRange], backend: str,
                   path: str) -> None:
    """Checks the config's shapes against the model: known names, ranks, fixed dims."""
    names = [n for n, _, _ in inputs]
    for name, r in cfg.items():
        if name not in names:
            raise ValueError(f"{r.key}: the model {path} has no input '{name}' "
                             f"(its inputs: {', '.join(names)})")
    for name, _, dims in inputs:
        r = cfg.get(name)
        if r is None:
            continue
        for which, shape in (("opt", r.opt), ("min", r.min), ("max", r.max)):
            key = r.keys[which]
            if len(shape) != len(dims):
                raise ValueError(f"{key} = {shape} has rank {len(shape)} but the model's "
                                 f"input '{name}' is {dims_text(dims)} (rank {len(dims)})")
            for i, (want, got) in enumerate(zip(dims, shape)):
                if isinstance(want, int) and want != got:
                    raise ValueError(f"{key} = {shape}: dim {i} of input '{name}' is "
                                     f"fixed at {want} in the model ({dims_text(dims)})")


def dims_text(dims: Sequence[Dim]) -> str:
    return "[" + ", ".join("?" if d is None else str(d) for d in dims) + "]"


def infer_output_dims(onnx, model, input_dims: Dict[str, List[Dim]],
                      declared: Sequence[TensorInfo], log: logging.Logger) -> List[List[Dim]]:
    """The outputs' dims when the inputs have `input_dims` (ints, or names for dims that vary),
    by ONNX shape inference; the model's declared dims where inference knows less."""
    m = onnx.ModelProto()
    m.CopyFrom(model)
    for vi in m.graph.input:
        if vi.name not in input_dims:
            continue
        shape = vi.type.tensor_type.shape
        for d, want in zip(shape.dim, input_dims[vi.name]):
            d.Clear()
            if isinstance(want, int):
                d.dim_value = want
            elif want:
                d.dim_param = want
    del m.graph.value_info[:]
    for o in m.graph.output:
        o.type.tensor_type.ClearField("shape")
    try:
        m = onnx.shape_inference.infer_shapes(m, strict_mode=False, data_prop=True)
        inferred = {o.name: _dims(o) for o in m.graph.output}
    except Exception as e:  # inference is a refinement; the declared shapes stay valid
        log.info("shape inference failed (%s); keeping the model's declared output shapes", e)
        inferred = {}
    out = []
    for name, _, dims in declared:
        got = inferred.get(name)
        if got is None or len(got) != len(dims):
            out.append(list(dims))
            continue
        merged: List[Dim] = []
        for d, g in zip(dims, got):
            if isinstance(d, int) or isinstance(g, int):
                merged.append(d if isinstance(d, int) else g)
            elif d is None and isinstance(g, str) and not g.startswith("unk__"):
                merged.append(g)  # a name the inputs carry, e.g. the batch
            else:
                merged.append(d)
        out.append(merged)
    return out
