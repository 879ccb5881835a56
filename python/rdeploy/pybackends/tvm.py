"""Apache TVM as an rdeploy backend written in Python (MMDeploy's ``TVMManager`` shape), on TVM's
Relax (TVM >= 0.20 has no Relay, which MMDeploy used).

``to_backend`` imports the ONNX IR with ``tvm.relax.frontend.onnx.from_onnx``, compiles it for a
CPU target (``llvm`` unless configured) and exports ``end2end.so`` plus ``tvm_io.json`` (the
signature, target, TVM version). ``build_wrapper`` loads the library with
``tvm.runtime.load_module`` and runs ``main`` in a ``relax.VirtualMachine`` on ``tvm.cpu()``,
one VM per thread (a VM keeps per-call state).

Config keys (MMDeploy's ``configs/_base_/backends/tvm.py`` and tvm configs, docs/backends/tvm.md):
``backend_config.model_inputs[0]``: ``shape`` (dict of shapes by input name; rdeploy also reads
``input_shapes``/``opt_shapes``), ``dtype`` (must agree with the model), ``tuner`` (only
``DefaultTuner``, with ``target`` and ``opt_level``; AutoTVM and Ansor tuners, and ``qconfig``
int8 quantization, are refused: they were Relay features), ``use_vm`` (ignored: Relax always
runs in its VM). rdeploy's own: ``backend_config.target``, ``opt_level``, ``num_threads``.
Dims without a configured shape stay dynamic (Relax compiles symbolic shapes).
"""

import contextlib
import importlib.metadata
import io as io_module
import importlib.util
import json
import logging
import os
import re
import shutil
import tempfile
import threading
import time
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from . import _common

log = logging.getLogger("rdeploy.pybackends.tvm")

IO_FILE = "tvm_io.json"
IO_FORMAT = "rdeploy-tvm-io/1"
# MMDeploy's tvm tuner keys (mmdeploy/backend/tvm/tuner.py, DefaultTuner).
TUNER_KEYS = {"type", "target", "opt_level", "use_vm"}
MODEL_INPUT_KEYS = {"shape", "dtype", "tuner", "use_vm", "qconfig", "input_shapes", "opt_shapes"}
# Target attributes that are lists in TVM's JSON target form.
LIST_ATTRS = {"mattr", "libs", "keys", "cl-opt", "mabi"}


def why_unavailable() -> Optional[str]:
    """Why the TVM backend cannot be used here, in one line; None when it can. Cheap: tvm is
    found, not imported (that takes about a second); import errors surface when it is used."""
    try:
        spec = importlib.util.find_spec("tvm")
    except (ImportError, ValueError) as e:
        return f"the `tvm` Python package cannot be found: {e}"
    if spec is None:
        return "the `tvm` Python package is not installed: pip install apache-tvm"
    return None


def _import_tvm():
    why = why_unavailable()
    if why is not None:
        raise RuntimeError(why)
    try:
        import tvm
        from tvm import relax  # noqa: F401
    except Exception as e:
        raise RuntimeError(f"the `tvm` Python package cannot be imported: {type(e).__name__}: "
                           f"{e}") from None
    return tvm


def _tvm_version() -> str:
    for dist in ("apache-tvm", "tvm", "mlc-ai-nightly-cpu", "mlc-ai-nightly", "tlcpack"):
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
    return getattr(_import_tvm(), "__version__", "unknown")


def _check_device(device: str) -> None:
    if str(device).split(":")[0] != "cpu":
        raise ValueError(f"the TVM backend compiles for and runs on cpu, not on device "
                         f"'{device}'")


def _target_dict(t: Any, key: str) -> Dict[str, Any]:
    """A target as TVM's JSON form. TVM 0.27 refuses the CLI string form ("llvm -mcpu=x") that
    MMDeploy's configs use, so strings are translated."""
    if isinstance(t, dict):
        d = dict(t)
    elif isinstance(t, str) and t.split():
        parts = t.split()
        d = {"kind": parts[0]}
        for p in parts[1:]:
            if not p.startswith("-"):
                raise ValueError(f"{key}={t!r}: '{p}' is not an option such as -mcpu=skylake")
            k, eq, v = p.lstrip("-").partition("=")
            if not eq:
                d[k] = True
            elif k in LIST_ATTRS or "," in v:
                d[k] = [x for x in v.split(",") if x]
            elif re.fullmatch(r"-?\d+", v):
                d[k] = int(v)
            else:
                d[k] = v
    else:
        raise ValueError(f"{key} must be a target such as 'llvm' or dict(kind='llvm', "
                         f"mcpu='native'), not {t!r}")
    if d.get("kind") not in ("llvm", "c"):
        raise ValueError(f"{key}={t!r}: the TVM backend compiles for the CPU (target kind 'llvm'); "
                         f"'{d.get('kind')}' is not supported")
    return d


def _settings(deploy_cfg: Any) -> Dict[str, Any]:
    """The compile settings a config asks for; keys that cannot be honoured are refused."""
    be = _common.backend_config(deploy_cfg)
    mi = _common.first_model_input(be)
    base = "backend_config.model_inputs[0]"
    unknown = set(mi) - MODEL_INPUT_KEYS
    if unknown:
        log.warning("%s: keys %s are not read by the TVM backend", base, sorted(unknown))
    if mi.get("qconfig") is not None:
        raise ValueError(
            f"{base}.qconfig is refused: MMDeploy's int8 path is Relay's quantize "
            "(relay.quantize.qconfig + calibration), which TVM's Relax has no equivalent of; "
            "remove qconfig (and calib_config) to compile in float32")
    tuner = mi.get("tuner") or {}
    if not isinstance(tuner, dict):
        raise ValueError(f"{base}.tuner must be a dict such as dict(type='DefaultTuner')")
    ttype = tuner.get("type", "DefaultTuner")
    if ttype == "AutoTVMTuner":
        raise ValueError(
            f"{base}.tuner.type='AutoTVMTuner' is refused: AutoTVM tunes Relay operators and TVM "
            ">= 0.20 has no Relay (rdeploy compiles with Relax); use dict(type='DefaultTuner') "
            "or remove tuner")
    if ttype == "AutoScheduleTuner":
        raise ValueError(
            f"{base}.tuner.type='AutoScheduleTuner' is refused: Ansor (auto_scheduler) went with "
            "Relay, and its Relax successor MetaSchedule is not wired into rdeploy (it needs "
            "psutil and xgboost and hours of measurements on a CPU); use "
            "dict(type='DefaultTuner') or remove tuner")
    if ttype != "DefaultTuner":
        raise ValueError(f"{base}.tuner.type={ttype!r} is not a tuner rdeploy knows; the TVM "
                         "backend takes 'DefaultTuner'")
    extra = set(tuner) - TUNER_KEYS
    if extra:
        raise ValueError(f"{base}.tuner: DefaultTuner takes target, opt_level and use_vm, not "
                         f"{sorted(extra)}")
    if mi.get("use_vm") is not None or tuner.get("use_vm") is not None:
        log.info("%s use_vm: Relax always runs in its virtual machine; the key changes nothing",
                 base)
    if "target" in tuner:
        target, tkey = tuner["target"], f"{base}.tuner.target"
    else:
        target, tkey = be.get("target", "llvm"), "backend_config.target"
    opt_level = tuner.get("opt_level", be.get("opt_level", 3))
    if isinstance(opt_level, bool) or not isinstance(opt_level, int) or not 0 <= opt_level <= 4:
        raise ValueError(f"opt_level must be an int from 0 to 4, not {opt_level!r} "
                         f"({base}.tuner.opt_level or backend_config.opt_level)")
    return {"target": _target_dict(target, tkey), "target_key": tkey, "opt_level": opt_level,
            "dtype": mi.get("dtype"), "num_threads": _num_threads(be)}


def _num_threads(be: Dict[str, Any]) -> Optional[int]:
    n = be.get("num_threads")
    if n is None:
        return None
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"backend_config.num_threads must be a positive int, not {n!r}")
    return n


def _check_dtypes(dtype_cfg: Any, inputs) -> None:
    """MMDeploy's `dtype` (a name or dict by input) must agree with the model's own types."""
    if dtype_cfg is None:
        return
    key = "backend_config.model_inputs[0].dtype"
    for name, dtype, _ in inputs:
        want = dtype_cfg.get(name) if isinstance(dtype_cfg, dict) else dtype_cfg
        if want is not None and str(want) != dtype:
            raise ValueError(f"{key} gives input '{name}' as {want}, but the model takes {dtype}; "
                             "remove the key or make it agree (the ONNX model's types are used)")


def _var_name(text: str) -> str:
    name = re.sub(r"\W", "_", text)
    return name if name and not name[0].isdigit() else f"d_{name}"


class TVMManager:
    """MMDeploy's manager shape for TVM: classmethods, no state."""

    device_kinds = ["cpu"]

    @classmethod
    def why_unavailable(cls) -> Optional[str]:
        return why_unavailable()

    @classmethod
    def is_available(cls, with_custom_ops: bool = False) -> bool:
        return why_unavailable() is None

    @classmethod
    def get_version(cls) -> str:
        return "None" if why_unavailable() is not None else _tvm_version()

    @classmethod
    def to_backend(cls, ir_files: Sequence[str], work_dir: str, deploy_cfg: Any,
                   log_level: int = logging.INFO, device: str = "cpu", **kwargs) -> List[str]:
        """Compiles the one ONNX file; returns [end2end.so, tvm_io.json]."""
        _check_device(device)
        if len(ir_files) != 1:
            raise ValueError(f"the TVM backend compiles one ONNX file, got {len(ir_files)}")
        settings = _settings(deploy_cfg)
        tvm = _import_tvm()
        from tvm import relax
        from tvm.relax.frontend.onnx import from_onnx

        src = os.path.abspath(os.fspath(ir_files[0]))
        work_dir = os.path.abspath(os.fspath(work_dir))
        os.makedirs(work_dir, exist_ok=True)
        onnx = _common.require_onnx("TVM", "import the model")
        model = onnx.load(src)
        inputs, outputs = _common.signature(model, src)
        _check_dtypes(settings["dtype"], inputs)
        shapes = _common.config_shapes(deploy_cfg)
        _common.resolve_shapes(inputs, shapes, "TVM", src)
        try:
            target = tvm.target.Target(settings["target"])
        except Exception as e:
            raise ValueError(f"{settings['target_key']}: TVM does not accept target "
                             f"{settings['target']}: {e}") from None

        # Shapes Relax compiles for: ints where the model or the config fixes a dim, one
        # symbolic variable per dim name otherwise (unnamed dims each get their own).
        tvars: Dict[str, Any] = {}
        names_of: Dict[str, Optional[str]] = {}
        shape_dict, declared_in = {}, []
        for name, dtype, dims in inputs:
            r = shapes.get(name)
            varying = r.varying_axes() if r else []
            sd, decl = [], []
            for j, d in enumerate(dims):
                if isinstance(d, int):
                    sd.append(d)
                    decl.append(d)
                elif r is not None and j not in varying:
                    sd.append(r.opt[j])
                    decl.append(r.opt[j])
                else:
                    key = d if d else f"{name}_dim{j}"
                    if key not in tvars:
                        tvars[key] = tvm.tirx.Var(_var_name(key), "int64")
                        names_of[_var_name(key)] = d
                    sd.append(tvars[key])
                    decl.append(d)
            shape_dict[name] = sd
            declared_in.append((name, dtype, decl))

        t0 = time.monotonic()
        if not tvars:
            model = _with_static_inputs(onnx, model, shape_dict)
            folded = _fold_static_shapes(onnx, model)
            if folded:
                log.info("%s: %d shape inputs (Reshape targets and the like) computed from the "
                         "static input shapes and written as constants", src, folded)
        printed = io_module.StringIO()  # the frontend prints the op it failed on
        try:
            with contextlib.redirect_stdout(printed):
                mod = from_onnx(model, shape_dict=shape_dict,
                                dtype_dict={n: t for n, t, _ in inputs},
                                keep_params_in_input=False)
        except Exception as e:
            op = re.search(r"Error converting operator (\w+)", printed.getvalue())
            where = f" (converting {op.group(1)})" if op else ""
            raise RuntimeError(f"TVM's Relax ONNX frontend cannot import {src}{where}: "
                               f"{type(e).__name__}: {_first_lines(e)}"
                               f"{_dynamic_hint(tvars, inputs)}") from None
        imported = time.monotonic() - t0
        out_info = _output_info(relax, tvm, mod, outputs, names_of)
        try:
            mod = relax.transform.DecomposeOpsForInference()(mod)
            with tvm.transform.PassContext(opt_level=settings["opt_level"]):
                ex = tvm.compile(mod, target=target)
        except Exception as e:
            raise RuntimeError(f"TVM cannot compile {src} for {target}: {type(e).__name__}: "
                               f"{_first_lines(e)}{_dynamic_hint(tvars, inputs)}") from None
        compiled = time.monotonic() - t0 - imported
        stem = os.path.basename(src).split(".")[0] or "end2end"
        lib = os.path.join(work_dir, f"{stem}.so")
        tmp = tempfile.mkdtemp(prefix=".tvm-", dir=work_dir)
        try:
            part = os.path.join(tmp, "lib.so")
            try:
                ex.export_library(part)
            except Exception as e:
                raise RuntimeError(
                    f"TVM compiled {src} but could not link {lib}: {type(e).__name__}: "
                    f"{_first_lines(e)} (TVM links with the system C++ compiler: g++, clang++ or "
                    "$CXX)") from None
            os.replace(part, lib)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        seconds = time.monotonic() - t0
        log.info("TVM compiled %s for %s in %.2f s (import %.2f s, compile %.2f s)", src,
                 target, seconds, imported, compiled)
        io = {
            "format": IO_FORMAT,
            "tvm": _tvm_version(),
            "target": settings["target"],
            "opt_level": settings["opt_level"],
            "compile_seconds": round(seconds, 3),
            "inputs": [{"name": n, "dtype": t, "shape": d} for n, t, d in declared_in],
            "outputs": out_info,
        }
        io_path = os.path.join(work_dir, IO_FILE)
        with open(io_path, "w", encoding="utf-8") as f:
            json.dump(io, f, indent=1)
        return [lib, io_path]

    @classmethod
    def build_wrapper(cls, backend_files: Sequence[str], device: str = "cpu",
                      input_names: Optional[Sequence[str]] = None,
                      output_names: Optional[Sequence[str]] = None,
                      deploy_cfg: Any = None, **kwargs) -> "TVMWrapper":
        """Loads [end2end.so, tvm_io.json]."""
        _check_device(device)
        files = [os.fspath(f) for f in backend_files]
        lib = next((f for f in files if f.endswith((".so", ".dylib", ".dll"))), None)
        io_path = next((f for f in files if f.endswith(".json")), None)
        if lib is None or io_path is None:
            raise ValueError(f"the TVM backend needs the compiled library and {IO_FILE} that "
                             f"its to_backend wrote, got {files}")
        with open(io_path, encoding="utf-8") as f:
            io = json.load(f)
        if io.get("format") != IO_FORMAT:
            raise ValueError(f"{io_path} is not an rdeploy TVM signature ({IO_FORMAT}); deploy "
                             "the model again")
        be = _common.backend_config(deploy_cfg)
        return TVMWrapper(lib, io, _num_threads(be))


# Ops computed ahead when all their inputs are known (shape arithmetic), and the inputs that
# Relax's ONNX frontend needs as constants: Paddle's exports build Reshape targets with
# Shape -> Slice -> Cast -> Concat, which Relax cannot import ("Reshape requires the input new
# shape to be Shape"), even when every shape is static (measured on PP-OCR cls and rec).
FOLDABLE = {"Shape", "Size", "Gather", "Slice", "Concat", "Cast", "Unsqueeze", "Squeeze", "Mul",
            "Add", "Sub", "Div", "Identity", "ConstantOfShape", "Range", "Equal", "Where",
            "ReduceProd", "Floor", "Ceil", "Min", "Max", "Abs", "Neg", "Reshape", "Sqrt", "Not",
            "Less", "Greater"}
SHAPE_INPUTS = {"Reshape": [1], "Expand": [1], "Tile": [1], "ConstantOfShape": [0],
                "Resize": [1, 2, 3], "Upsample": [1], "Slice": [1, 2, 3, 4], "Range": [0, 1, 2],
                "Pad": [1, 2, 3], "Unsqueeze": [1], "Squeeze": [1], "TopK": [1], "Split": [1],
                "ReduceMean": [1], "ReduceSum": [1], "ReduceMax": [1], "ReduceMin": [1],
                "ReduceProd": [1], "Clip": [1, 2], "OneHot": [1]}
FOLD_MAX_ELEMS = 4096


def _with_static_inputs(onnx, model, shape_dict):
    """A copy of `model` whose graph inputs declare the static shapes it compiles for."""
    m = onnx.ModelProto()
    m.CopyFrom(model)
    for vi in m.graph.input:
        dims = shape_dict.get(vi.name)
        if dims is None:
            continue
        shape = vi.type.tensor_type.shape
        for d, v in zip(shape.dim, dims):
            d.Clear()
            d.dim_value = int(v)
    return m


def _fold_static_shapes(onnx, model) -> int:
    """Computes shape arithmetic from static shapes and writes the results the frontend needs
    as constants (in place, repeated until nothing changes); returns how many inputs it set."""
    try:
        from onnx import helper, numpy_helper
        from onnx.reference import ReferenceEvaluator
    except ImportError:  # onnx < 1.13: no reference evaluator, nothing folded
        return 0
    total = 0
    for _ in range(16):  # each round can make more shapes static
        n = _fold_round(onnx, model, helper, numpy_helper, ReferenceEvaluator)
        total += n
        if n == 0:
            break
    return total


def _fold_round(onnx, model, helper, numpy_helper, ReferenceEvaluator) -> int:
    opsets = list(model.opset_import)
    try:
        inf = onnx.shape_inference.infer_shapes(model, strict_mode=False, data_prop=True)
    except Exception:
        return 0
    static = {}
    for vi in list(inf.graph.input) + list(inf.graph.value_info) + list(inf.graph.output):
        tt = vi.type.tensor_type
        if tt.HasField("shape") and all(d.HasField("dim_value") and d.dim_value >= 0
                                        for d in tt.shape.dim):
            static[vi.name] = [int(d.dim_value) for d in tt.shape.dim]
    const = {t.name for t in model.graph.initializer}
    known = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer
             if int(np.prod(t.dims)) <= FOLD_MAX_ELEMS}

    def evaluate(node, ins):
        g = helper.make_graph(
            [node], "fold",
            [helper.make_tensor_value_info(i, helper.np_dtype_to_tensor_dtype(known[i].dtype),
                                           known[i].shape) for i in ins],
            [helper.make_tensor_value_info(o, 0, None) for o in node.output])
        m = helper.make_model(g, opset_imports=opsets)
        return ReferenceEvaluator(m).run(None, {i: known[i] for i in ins})

    for node in model.graph.node:
        if node.op_type == "Constant":
            const.update(node.output)
            try:
                known[node.output[0]] = np.asarray(evaluate(node, [])[0])
            except Exception:
                pass
            continue
        if node.op_type == "Shape" and node.input[0] in static:
            a = {x.name: helper.get_attribute_value(x) for x in node.attribute}
            s = static[node.input[0]]
            known[node.output[0]] = np.array(s[a.get("start", 0):a.get("end", len(s))], np.int64)
            continue
        if node.op_type == "Size" and node.input[0] in static:
            known[node.output[0]] = np.array(int(np.prod(static[node.input[0]])), np.int64)
            continue
        ins = [i for i in node.input if i]
        if node.op_type in FOLDABLE and ins and all(i in known for i in ins):
            try:
                outs = evaluate(node, ins)
            except Exception:
                continue
            for o, v in zip(node.output, outs):
                if np.asarray(v).size <= FOLD_MAX_ELEMS:
                    known[o] = np.asarray(v)
    n = 0
    for node in model.graph.node:
        for pos in SHAPE_INPUTS.get(node.op_type, []):
            name = node.input[pos] if pos < len(node.input) else ""
            if name and name not in const and name in known:
                folded = f"{name}__rdeploy_folded"
                if folded not in const:
                    model.graph.initializer.append(numpy_helper.from_array(known[name], folded))
                    const.add(folded)
                node.input[pos] = folded
                n += 1
    return n


def _dynamic_hint(tvars: Dict[str, Any], inputs) -> str:
    if not tvars:
        return ""
    name, _, dims = inputs[0]
    example = "[" + ", ".join(str(d) if isinstance(d, int) else "..." for d in dims) + "]"
    return (f" (dims {', '.join(sorted(tvars))} are dynamic; Relax's ONNX frontend handles fewer "
            "ops on symbolic shapes: give their sizes in backend_config.model_inputs[0]"
            f".input_shapes, e.g. dict({name}={example}))")


def _first_lines(e: Exception, n: int = 6) -> str:
    """The message of a TVM error without its C++ traceback."""
    lines = [ln for ln in str(e).splitlines() if ln.strip()]
    keep = [ln for ln in lines if not ln.lstrip().startswith(("File ", "at ", "0:", "1:"))]
    return " | ".join((keep or lines)[-n:])


def _output_info(relax, tvm, mod, outputs, names_of) -> List[Dict[str, Any]]:
    """The outputs' dtypes and dims as Relax inferred them (symbolic dims by their ONNX names),
    the model's declared ones where Relax knows less."""
    main = mod["main"]
    # TVM 0.27 calls it ret_ty (TensorType / TupleType); earlier Relax, ret_struct_info.
    ret = getattr(main, "ret_ty", None) or getattr(main, "ret_struct_info", None)
    infos = list(ret.fields) if hasattr(ret, "fields") else [ret]
    out = []
    for k, (name, dtype, dims) in enumerate(outputs):
        entry = {"name": name, "dtype": dtype, "shape": list(dims)}
        ti = infos[k] if k < len(infos) else None
        if ti is not None and hasattr(ti, "dtype") and hasattr(ti, "shape"):
            if str(ti.dtype) != dtype:
                entry["engine_dtype"] = str(ti.dtype)  # cast back to the model's type
            values = getattr(ti.shape, "values", None)
            if values is not None and len(values) == len(dims):
                got = []
                for d, v in zip(dims, values):
                    if type(v).__name__ == "IntImm":
                        got.append(int(v.value))
                    elif isinstance(d, int):
                        got.append(d)
                    elif type(v).__name__ in ("Var", "SizeVar") and str(v.name) in names_of:
                        got.append(names_of[str(v.name)] if d is None else d)
                    else:
                        got.append(d)
                entry["shape"] = got
        out.append(entry)
    return out


class TVMWrapper:
    """A compiled model: the library is shared, each thread runs its own VirtualMachine."""

    def __init__(self, lib: str, io: Dict[str, Any], num_threads: Optional[int]):
        tvm = _import_tvm()
        from tvm import relax

        self._tvm, self._relax = tvm, relax
        if num_threads:
            # Process-wide: TVM has one thread pool (mode 1 = big cores).
            tvm.get_global_func("runtime.config_threadpool")(1, num_threads)
        try:
            self._lib = tvm.runtime.load_module(lib)
        except Exception as e:
            raise RuntimeError(f"TVM cannot load {lib}: {type(e).__name__}: {_first_lines(e)} "
                               "(a library compiled by another TVM version? deploy again)"
                               ) from None
        self._dev = tvm.cpu(0)
        self._local = threading.local()
        self._in = io["inputs"]
        self._out = io["outputs"]
        self.inputs = [(x["name"], x["dtype"], x["shape"]) for x in self._in]
        self.outputs = [(x["name"], x["dtype"], x["shape"]) for x in self._out]
        self.output_names = [x["name"] for x in self._out]
        self.target = io.get("target")
        # What `rdeploy bench` prints as the engine settings.
        self.settings = {"target": self.target, "opt_level": io.get("opt_level"),
                         "num_threads": num_threads or "TVM's default"}
        self._main()  # surfaces a library without `main` now, not at the first call

    def _main(self):
        main = getattr(self._local, "main", None)
        if main is None:
            vm = self._relax.VirtualMachine(self._lib, self._dev)
            main = vm["main"]
            self._local.vm, self._local.main = vm, main
        return main

    def forward(self, inputs: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
        tvm = self._tvm
        args = []
        for spec in self._in:
            if spec["name"] not in inputs:
                raise ValueError(f"input '{spec['name']}' is missing (the model takes "
                                 f"{[s['name'] for s in self._in]})")
            a = np.ascontiguousarray(inputs[spec["name"]])
            args.append(tvm.runtime.tensor(a, self._dev))
        res = self._main()(*args)
        outs = [res] if len(self._out) == 1 else list(res)
        return {spec["name"]: o.numpy().astype(spec["dtype"], copy=False)
                for spec, o in zip(self._out, outs)}

    __call__ = forward
