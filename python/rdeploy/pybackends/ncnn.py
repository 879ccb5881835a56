"""ncnn as an rdeploy backend written in Python (MMDeploy's ``NCNNManager`` shape).

``to_backend`` converts the ONNX IR with pnnx, ncnn's converter (the ``pnnx`` wheel's binary;
torch is not needed), into ``end2end.ncnn.param`` / ``end2end.ncnn.bin`` plus ``ncnn_io.json``,
which maps pnnx's blob names (``in0``, ``out0``...) to the model's names, dtypes and shapes.
``build_wrapper`` runs them with the ``ncnn`` Python package, one extractor per call.

Config keys (MMDeploy's ``configs/_base_/backends/ncnn.py``, docs/backends/ncnn.md):
``backend_config.precision`` ('FP32' default, 'FP16'; 'INT8' is refused: it needs a
calibration table), ``use_vulkan`` (refused unless ncnn finds a Vulkan GPU),
``common_config.num_threads``, and the shapes to convert at in ``model_inputs[0].input_shapes``
(a shape, or dict(min_shape=, opt_shape=, max_shape=): a range converts with pnnx's
``inputshape2`` and keeps those dims dynamic).

ncnn Mats carry no batch dim: the wrapper runs each item of dim 0 and stacks the results.
"""

import importlib.metadata
import importlib.util
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from . import _common
from ._common import dims_text

log = logging.getLogger("rdeploy.pybackends.ncnn")

IO_FILE = "ncnn_io.json"
IO_FORMAT = "rdeploy-ncnn-io/1"
# The opset pnnx reads correctly: below 13 an ONNX Softmax without `axis` means axis=1 over
# the flattened tail, and pnnx applies the opset-13 default (-1): on a [1, 1000, 1, 1] tensor
# every output becomes 1.0 (measured).
MIN_OPSET = 13
OPSET_WHY = ("pnnx reads opset < 13 Softmax with opset 13's default axis, e.g. every output "
             "of a softmax over [1, 1000, 1, 1] becomes 1.0")
# pnnx's inputshape type suffixes; ncnn computes in float32 and reads index inputs as int32.
PNNX_TYPES = {"float32": "f32", "float16": "f16", "float64": "f64", "int64": "i64",
              "int32": "i32", "int16": "i16", "int8": "i8", "uint8": "u8"}
NCNN_DTYPES = {"float32": np.float32, "float16": np.float32, "float64": np.float32,
               "int64": np.int32, "int32": np.int32, "int16": np.int32, "int8": np.int32,
               "uint8": np.int32}
PNNX_TIMEOUT_S = 1800


def _pnnx_package_binary() -> Optional[str]:
    """The binary inside the pnnx wheel (found without importing pnnx, which imports torch)."""
    try:
        spec = importlib.util.find_spec("pnnx")
    except (ImportError, ValueError):
        return None
    for folder in (spec.submodule_search_locations or []) if spec else []:
        exe = os.path.join(folder, "pnnx.exe" if os.name == "nt" else "pnnx")
        if os.path.isfile(exe):
            return exe
    return None


def _is_console_script(path: str) -> bool:
    """The wheel's `bin/pnnx` is a Python script that imports pnnx, hence torch: skip it."""
    try:
        with open(path, "rb") as f:
            head = f.read(1024)
    except OSError:
        return False
    return head.startswith(b"#!") and b"import" in head


def find_pnnx() -> Tuple[Optional[str], List[str]]:
    """The pnnx converter binary and the places looked in: `RDEPLOY_PNNX` (overrides), next to
    the Python interpreter, the pnnx wheel's own binary, `PATH`."""
    env = os.environ.get("RDEPLOY_PNNX")
    if env:
        ok = os.path.isfile(env) and os.access(env, os.X_OK)
        return (os.path.abspath(env) if ok else None), [f"RDEPLOY_PNNX={env}"]
    tried = []
    beside = os.path.join(os.path.dirname(sys.executable), "pnnx")
    for cand in (beside, _pnnx_package_binary(), shutil.which("pnnx")):
        if not cand or cand in tried:
            continue
        tried.append(cand)
        if os.path.isfile(cand) and os.access(cand, os.X_OK) and not _is_console_script(cand):
            return cand, tried
    return None, tried


def _pnnx_version(path: str) -> str:
    if path == _pnnx_package_binary():
        try:
            return importlib.metadata.version("pnnx")
        except importlib.metadata.PackageNotFoundError:
            pass
    return f"at {path}"


def why_unavailable() -> Optional[str]:
    """Why the ncnn backend cannot be used here, in one line; None when it can. Running a work
    dir needs only the `ncnn` package (a serving image need not carry pnnx); converting needs
    pnnx too (`why_cannot_convert`)."""
    try:
        import ncnn  # noqa: F401  (fast: no GPU probing at import)
    except ImportError as e:
        return f"the `ncnn` Python package is not installed: pip install ncnn ({e})"
    except Exception as e:  # a broken install raises OSError and friends
        return f"the `ncnn` Python package cannot be imported: {type(e).__name__}: {e}"
    return None


def why_cannot_convert() -> Optional[str]:
    """Why `to_backend` cannot run here (ncnn or the pnnx converter missing); None when it can."""
    why = why_unavailable()
    if why is not None:
        return why
    exe, tried = find_pnnx()
    if exe is None:
        return ("the pnnx converter binary was not found (looked in: " + ", ".join(tried) +
                "): pip install pnnx (its binary is enough, torch is not needed), or set "
                "RDEPLOY_PNNX to the binary")
    return None


def _precision(be: Dict[str, Any]) -> str:
    p = be.get("precision")
    if p is None:
        return "fp32"
    norm = str(p).upper()
    if norm == "FP32":
        return "fp32"
    if norm == "FP16":
        return "fp16"
    if norm == "INT8":
        raise ValueError(
            "backend_config.precision='INT8' is refused: ncnn int8 needs a calibration table "
            "computed from real inputs (MMDeploy's ncnn2table + ncnn2int8), which rdeploy does "
            "not produce; use precision='FP32' or 'FP16'")
    raise ValueError(f"backend_config.precision={p!r}: ncnn takes 'FP32' (default) or 'FP16'")


def _use_vulkan(be: Dict[str, Any]) -> bool:
    v = be.get("use_vulkan", False)
    if v is None or v is False:
        return False
    if v is not True:
        raise ValueError(f"backend_config.use_vulkan must be True or False, not {v!r}")
    import ncnn

    count = ncnn.get_gpu_count() if hasattr(ncnn, "get_gpu_count") else 0
    if count <= 0:
        raise ValueError(
            "backend_config.use_vulkan=True but ncnn finds no Vulkan GPU here "
            "(ncnn.get_gpu_count() is 0: no Vulkan driver or device); set use_vulkan=False to "
            "run on the CPU")
    return True


def _num_threads(be: Dict[str, Any]) -> Optional[int]:
    common = be.get("common_config") or {}
    if not isinstance(common, dict):
        raise ValueError("backend_config.common_config must be a dict")
    n = common.get("num_threads")
    if n is None:
        # Several workers (backend_config.python_worker.pool_size) each with ncnn's default
        # thread count oversubscribe the cores, and ncnn's OpenMP threads spin: measured 16-30
        # calls/s against 2500-4500 with the cores shared out. Share them out by default.
        pool = (be.get("python_worker") or {}).get("pool_size") if isinstance(
            be.get("python_worker"), dict) else None
        if isinstance(pool, int) and not isinstance(pool, bool) and pool > 1:
            return max(1, (os.cpu_count() or 1) // pool)
        return None
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"backend_config.common_config.num_threads must be a positive int, "
                         f"not {n!r}")
    return n


def _check_device(device: str) -> None:
    if str(device).split(":")[0] != "cpu":
        raise ValueError(f"the ncnn backend runs on cpu (Vulkan GPUs through "
                         f"backend_config.use_vulkan), not on device '{device}'")


def _plan_inputs(inputs, shapes, path) -> List[Dict[str, Any]]:
    """Per input: its blob, the shape pnnx converts at (batch 1), the second shape for dims
    that vary, and the dims the converted model takes."""
    plan = []
    for i, (name, dtype, dims) in enumerate(inputs):
        if dtype not in PNNX_TYPES:
            raise ValueError(f"{path}: input '{name}' is {dtype}; ncnn takes float and integer "
                             "index inputs only")
        if not 2 <= len(dims) <= 5:
            raise ValueError(
                f"{path}: input '{name}' {dims_text(dims)} has rank {len(dims)}; ncnn Mats carry "
                "no batch dim and at most 4 others (w, h, d, c), so rdeploy feeds dim 0 item by "
                "item: ranks 2 to 5 are supported")
        d0 = dims[0]
        if isinstance(d0, int) and d0 != 1:
            raise ValueError(
                f"{path}: input '{name}' {dims_text(dims)} has a fixed first dim of {d0}; ncnn "
                "Mats carry no batch dim, so rdeploy runs ncnn one batch item at a time over a "
                "dynamic dim 0: when dim 0 is the batch, say so with onnx_config.dynamic_axes = "
                f"dict({name}={{0: 'batch'}}, <outputs>={{0: 'batch'}}), or export the model with "
                "batch 1")
        r = shapes.get(name)
        varying = [a for a in (r.varying_axes() if r else []) if a > 0]
        convert, second, declared = [1], [1], [d0]
        for j, d in enumerate(dims[1:], start=1):
            if isinstance(d, int):
                convert.append(d)
                second.append(d)
                declared.append(d)
            elif r is not None:
                convert.append(r.opt[j])
                if j in varying:
                    second.append(r.max[j] if r.max[j] != r.opt[j] else r.min[j])
                    declared.append(d)
                else:
                    second.append(r.opt[j])
                    declared.append(r.opt[j])
            else:
                raise ValueError(
                    f"{path}: dim {j} of input '{name}' {dims_text(dims)} is dynamic and pnnx "
                    "converts at a fixed shape: set backend_config.model_inputs[0].input_shapes"
                    f" = dict({name}=[...]) (or dict(min_shape=, opt_shape=, max_shape=) to keep "
                    "it dynamic)")
        plan.append({"name": name, "blob": f"in{i}", "dtype": dtype, "shape": declared,
                     "batched": not isinstance(d0, int), "converted_at": convert,
                     "second_shape": second if varying else None})
    return plan


def _shape_arg(shapes: Sequence[Sequence[int]], dtypes: Sequence[str]) -> str:
    return ",".join("[" + ",".join(str(d) for d in s) + "]" + PNNX_TYPES[t]
                    for s, t in zip(shapes, dtypes))


def _param_layers(param_path: str) -> List[Tuple[str, str, List[str], List[str]]]:
    """(type, name, bottoms, tops) of each layer in an ncnn .param file."""
    layers = []
    with open(param_path, encoding="utf-8") as f:
        lines = f.read().splitlines()
    for line in lines[2:]:
        parts = line.split()
        if len(parts) < 4:
            continue
        nb, nt = int(parts[2]), int(parts[3])
        layers.append((parts[0], parts[1], parts[4:4 + nb], parts[4 + nb:4 + nb + nt]))
    return layers


def _tail(text: str, lines: int = 8) -> str:
    """pnnx's messages that say what went wrong (else its last lines), without colour codes
    and tables."""
    clean = [re.sub(r"\x1b\[[0-9;]*m", "", ln).strip() for ln in text.splitlines()]
    clean = [ln for ln in clean if ln and not ln.startswith(("│", "├", "┌", "└", "#####"))]
    important = [ln for ln in clean if re.search(
        r"error|fail|expect|not supported|unsupported|ignore|exceed|cannot|invalid", ln, re.I)]
    return " | ".join((important or clean)[-lines:])


def _exit_text(rc: int) -> str:
    return f"crashed with signal {-rc}" if rc < 0 else f"exit code {rc}"


class NcnnManager:
    """MMDeploy's manager shape for ncnn: classmethods, no state."""

    device_kinds = ["cpu"]

    @classmethod
    def why_unavailable(cls) -> Optional[str]:
        return why_unavailable()

    @classmethod
    def is_available(cls, with_custom_ops: bool = False) -> bool:
        return why_unavailable() is None

    @classmethod
    def get_version(cls) -> str:
        why = why_unavailable()
        if why is not None:
            return "None"
        try:
            v = importlib.metadata.version("ncnn")
        except importlib.metadata.PackageNotFoundError:
            import ncnn

            v = getattr(ncnn, "__version__", "unknown")
        exe, tried = find_pnnx()
        if exe is None:
            return f"{v} (pnnx not found, needed to deploy: looked in {', '.join(tried)})"
        return f"{v} (pnnx {_pnnx_version(exe)})"

    @classmethod
    def ir_passes(cls, deploy_cfg: Any) -> List[Any]:
        """Graph passes rdeploy runs on the IR first: opset 13 (see OPSET_WHY)."""
        return [{"name": "opset_upgrade", "options": {"below": MIN_OPSET, "target": MIN_OPSET}}]

    @classmethod
    def to_backend(cls, ir_files: Sequence[str], work_dir: str, deploy_cfg: Any,
                   log_level: int = logging.INFO, device: str = "cpu", **kwargs) -> List[str]:
        """Converts the one ONNX file with pnnx; returns [param, bin, ncnn_io.json]."""
        _check_device(device)
        if len(ir_files) != 1:
            raise ValueError(f"the ncnn backend converts one ONNX file, got {len(ir_files)}")
        why = why_cannot_convert()
        if why is not None:
            raise RuntimeError(why)
        src = os.path.abspath(os.fspath(ir_files[0]))
        work_dir = os.path.abspath(os.fspath(work_dir))
        os.makedirs(work_dir, exist_ok=True)
        be = _common.backend_config(deploy_cfg)
        precision = _precision(be)
        _use_vulkan(be)
        _num_threads(be)
        reference_check = be.get("reference_check", True)
        if not isinstance(reference_check, bool):
            raise ValueError(f"backend_config.reference_check must be True or False, not "
                             f"{reference_check!r}")
        onnx = _common.require_onnx("ncnn", "read the model's inputs, outputs and opset")
        model = onnx.load(src)
        opset = _common.default_opset(model)
        model = _common.upgrade_opset(model, MIN_OPSET, src, "ncnn", OPSET_WHY, log)
        inputs, outputs = _common.signature(model, src)
        shapes = _common.config_shapes(deploy_cfg)
        _common.resolve_shapes(inputs, shapes, "ncnn", src)
        plan = _plan_inputs(inputs, shapes, src)
        out_dims = _common.infer_output_dims(
            onnx, model, {p["name"]: p["shape"] for p in plan}, outputs, log)
        pnnx, _ = find_pnnx()
        stem = os.path.basename(src).split(".")[0] or "end2end"
        param = os.path.join(work_dir, f"{stem}.ncnn.param")
        binf = os.path.join(work_dir, f"{stem}.ncnn.bin")
        io_path = os.path.join(work_dir, IO_FILE)
        tmp = tempfile.mkdtemp(prefix=".pnnx-", dir=work_dir)
        try:
            model_file = os.path.join(tmp, "model.onnx")
            if _common.default_opset(model) == opset:
                shutil.copyfile(src, model_file)  # unchanged: no re-serialisation
            else:
                onnx.save(model, model_file)
            # Relative names in pnnx's folder: pnnx splits its arguments at '=' and ','.
            args = [pnnx, "model.onnx",
                    "inputshape=" + _shape_arg([p["converted_at"] for p in plan],
                                               [p["dtype"] for p in plan]),
                    # f32 weights in the .bin for both precisions: with FP16 ncnn converts them
                    # at load. pnnx's fp16=1 (its default) stores them as float16, which broke
                    # PP-OCRv4's detector (max |diff| 1.0, where f32 weights and fp16 storage
                    # at run time give 4e-3).
                    "fp16=0",
                    "ncnnparam=model.ncnn.param", "ncnnbin=model.ncnn.bin",
                    "ncnnpy=model_ncnn.py", "pnnxparam=model.pnnx.param",
                    "pnnxbin=model.pnnx.bin", "pnnxpy=model_pnnx.py",
                    "pnnxonnx=model.pnnx.onnx"]
            if any(p["second_shape"] for p in plan):
                args.insert(3, "inputshape2=" + _shape_arg(
                    [p["second_shape"] or p["converted_at"] for p in plan],
                    [p["dtype"] for p in plan]))
            t0 = time.monotonic()
            try:
                proc = subprocess.run(args, cwd=tmp, stdin=subprocess.DEVNULL,
                                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                      timeout=PNNX_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                raise RuntimeError(f"pnnx did not finish converting {src} within "
                                   f"{PNNX_TIMEOUT_S} s") from None
            seconds = time.monotonic() - t0
            text = proc.stdout.decode("utf-8", "replace")
            made = os.path.join(tmp, "model.ncnn.param")
            if proc.returncode != 0 or not os.path.isfile(made):
                raise RuntimeError(
                    f"pnnx failed converting {src} ({_exit_text(proc.returncode)}; arguments: "
                    f"{' '.join(args[1:4])}): {_tail(text) or 'no message'}")
            _check_param(made, plan, len(outputs), src, text)
            checked = _check_run(made, os.path.join(tmp, "model.ncnn.bin"), plan, outputs,
                                 precision, model_file if reference_check else None, src)
            os.replace(made, param)
            os.replace(os.path.join(tmp, "model.ncnn.bin"), binf)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        log.info("pnnx converted %s in %.2f s (%s); checked against %s", src, seconds,
                 precision, checked or "nothing (onnxruntime not importable or check off)")
        io = {
            "format": IO_FORMAT,
            "converter": f"pnnx {_pnnx_version(pnnx)}",
            "source_opset": opset,
            "precision": precision,
            "convert_seconds": round(seconds, 3),
            "inputs": [{k: p[k] for k in ("name", "blob", "dtype", "shape", "batched",
                                         "converted_at")} for p in plan],
            "outputs": [{"name": n, "blob": f"out{i}", "dtype": t, "shape": d}
                        for i, ((n, t, _), d) in enumerate(zip(outputs, out_dims))],
        }
        with open(io_path, "w", encoding="utf-8") as f:
            json.dump(io, f, indent=1)
        return [param, binf, io_path]

    @classmethod
    def build_wrapper(cls, backend_files: Sequence[str], device: str = "cpu",
                      input_names: Optional[Sequence[str]] = None,
                      output_names: Optional[Sequence[str]] = None,
                      deploy_cfg: Any = None, **kwargs) -> "NcnnWrapper":
        """Loads [param, bin, ncnn_io.json] (MMDeploy's [param, bin] works too: blobs are then
        the model's names and rdeploy reads the signature from the work dir)."""
        _check_device(device)
        files = [os.fspath(f) for f in backend_files]

        def pick(ext: str, position: int) -> Optional[str]:
            """By extension, else by MMDeploy's position."""
            return next((f for f in files if f.endswith(ext)),
                        files[position] if len(files) > position else None)

        param, binf = pick(".param", 0), pick(".bin", 1)
        if param is None or binf is None:
            raise ValueError(f"the ncnn backend needs a .param and a .bin file, got {files}")
        io_path = next((f for f in files if f.endswith(".json")), None)
        io = None
        if io_path is not None:
            with open(io_path, encoding="utf-8") as f:
                io = json.load(f)
            if io.get("format") != IO_FORMAT:
                raise ValueError(f"{io_path} is not an rdeploy ncnn signature ({IO_FORMAT}); "
                                 "deploy the model again")
        be = _common.backend_config(deploy_cfg)
        precision = _precision(be) if be.get("precision") is not None else (
            io or {}).get("precision", "fp32")
        return NcnnWrapper(param, binf, io, precision, _use_vulkan(be), _num_threads(be),
                           list(input_names or []), list(output_names or []))


def _check_param(param: str, plan, n_outputs: int, src: str, pnnx_text: str) -> None:
    """The converted graph has ncnn layers only and the blobs the signature maps."""
    import ncnn

    layers = _param_layers(param)
    unknown = sorted({t for t, _, _, _ in layers if ncnn.create_layer(t) is None})
    if unknown:
        raise RuntimeError(
            f"pnnx converted {src} but left operators ncnn has no layer for: "
            f"{', '.join(unknown)}; such models do not run on ncnn (pnnx: {_tail(pnnx_text, 8)})")
    inputs = [tops[0] for t, _, _, tops in layers if t == "Input" and tops]
    tops = {b for _, _, _, ts in layers for b in ts}
    want_in = [p["blob"] for p in plan]
    want_out = [f"out{i}" for i in range(n_outputs)]
    if inputs != want_in or not all(b in tops for b in want_out):
        raise RuntimeError(
            f"pnnx's graph for {src} has inputs {inputs} and no "
            f"{[b for b in want_out if b not in tops]} among its blobs; rdeploy expects "
            f"{want_in} for the model's inputs and {want_out} for its outputs (an input the "
            "model does not use is dropped by pnnx: remove it from the model)")


# The converted model runs once in a child process, on seeded random inputs at its converted
# shape, beside onnxruntime on the ONNX file when onnxruntime is importable. A child process,
# because pnnx sometimes writes layers ncnn crashes on (a Slice without its slices, measured on
# ONNX's test_GLU_dim) and a crash here would take the interpreter down; the comparison,
# because pnnx also mis-converts silently (LogSoftmax and keepdims ReduceMean over the wrong
# axis of 4-D tensors: NaN or wrong values, measured on ONNX's test cases).
_CHECK = r"""
import json, sys
import numpy as np
import ncnn
param, binf, spec = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
net = ncnn.Net()
fp16 = spec["precision"] == "fp16"
net.opt.use_vulkan_compute = False
net.opt.use_fp16_storage = net.opt.use_fp16_packed = net.opt.use_fp16_arithmetic = fp16
net.opt.use_bf16_storage = False
net.opt.num_threads = 1
assert net.load_param(param) == 0 and net.load_model(binf) == 0, "ncnn cannot load the files"
ex = net.create_extractor()
rng = np.random.default_rng(0)
feeds = {}
items = []  # ncnn.Mat(array) borrows the array's memory: keep each alive
for name, blob, shape, dtype in spec["inputs"]:
    if dtype.startswith(("int", "uint")):
        x = np.zeros(shape, dtype)
        item = np.ascontiguousarray(x[0], dtype=np.int32)
    else:
        x = rng.standard_normal(shape).astype(dtype)
        item = np.ascontiguousarray(x[0], dtype=np.float32)
    feeds[name] = x
    items.append(item)
    ex.input(blob, ncnn.Mat(item).clone())
got = []
for blob in spec["outputs"]:
    rc, mat = ex.extract(blob)
    assert rc == 0, f"extract({blob}) returned {rc}"
    got.append(np.array(mat).astype(np.float64))
report = {"reference": None, "outputs": []}
if spec.get("onnx"):
    try:
        import onnxruntime as ort
    except ImportError:
        ort = None
    if ort is not None:
        so = ort.SessionOptions()
        so.intra_op_num_threads = 1
        sess = ort.InferenceSession(spec["onnx"], so, providers=["CPUExecutionProvider"])
        refs = sess.run(None, feeds)
        report["reference"] = "onnxruntime " + ort.__version__
        for y, r in zip(got, refs):
            r = np.asarray(r, np.float64)
            entry = {"ncnn_shape": list(y.shape), "ref_shape": list(r.shape)}
            if y.size == r.size:
                y, r = y.reshape(-1), r.reshape(-1)
                finite = np.isfinite(r)
                d = np.abs(y[finite] - r[finite])
                entry.update(max_abs=float(d.max()) if d.size else 0.0,
                             ref_max=float(np.abs(r[finite]).max()) if d.size else 0.0,
                             nonfinite=int((~np.isfinite(y[finite])).sum()))
            report["outputs"].append(entry)
print("RDEPLOY-CHECK " + json.dumps(report))
"""
# What the check accepts, as a fraction of the output's largest magnitude (at least 1): far
# above float32 kernel differences (1e-6 here) and fp16 storage's (up to 4.4e-3), far below what
# a mis-conversion does.
CHECK_TOL = {"fp32": 1e-3, "fp16": 5e-2}


def _check_run(param: str, binf: str, plan, outputs, precision: str, onnx_file: Optional[str],
               src: str) -> Optional[str]:
    """Runs the converted model once (see _CHECK); returns what was compared, for the log."""
    spec = {"precision": precision, "onnx": onnx_file,
            "inputs": [(p["name"], p["blob"], p["converted_at"], p["dtype"]) for p in plan],
            "outputs": [f"out{i}" for i in range(len(outputs))]}
    try:
        proc = subprocess.run([sys.executable, "-c", _CHECK, param, binf, json.dumps(spec)],
                              stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, timeout=PNNX_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"ncnn did not finish running the model pnnx converted from {src} "
                           f"within {PNNX_TIMEOUT_S} s") from None
    text = proc.stdout.decode("utf-8", "replace")
    line = next((ln for ln in text.splitlines() if ln.startswith("RDEPLOY-CHECK ")), None)
    if proc.returncode != 0 or line is None:
        layers = sorted({t for t, _, _, _ in _param_layers(param)} - {"Input"})
        raise RuntimeError(
            f"ncnn {_exit_text(proc.returncode)} running the model pnnx converted from {src} "
            f"once at its converted shape, so the conversion is refused (layers: "
            f"{', '.join(layers)}): {_tail(text, 3)}")
    report = json.loads(line[len("RDEPLOY-CHECK "):])
    if report["reference"] is None:
        return None
    tol = CHECK_TOL[precision]
    notes = []
    for (name, _, _), e in zip(outputs, report["outputs"]):
        if "max_abs" not in e:
            raise RuntimeError(
                f"pnnx mis-converted {src}: ncnn's output '{name}' has shape {e['ncnn_shape']} "
                f"per batch item where {report['reference']} gives {e['ref_shape']} (checked "
                "at the converted shape; backend_config.reference_check=False skips the check)")
        limit = tol * max(1.0, e["ref_max"])
        if e["nonfinite"] or e["max_abs"] > limit:
            what = (f"{e['nonfinite']} NaN/inf values" if e["nonfinite"] else
                    f"max |diff| {e['max_abs']:.3g} (limit {limit:.3g} for {precision})")
            raise RuntimeError(
                f"pnnx mis-converted {src}: on seeded random inputs ncnn's output '{name}' differs "
                f"from {report['reference']} on the ONNX model: {what}; such ncnn files are "
                "refused (backend_config.reference_check=False skips the check)")
        notes.append(f"{name}: max |diff| {e['max_abs']:.3g}")
    return f"{report['reference']}: " + ", ".join(notes)


def _fit(arr: np.ndarray, dims: Sequence[Any]) -> Optional[np.ndarray]:
    """`arr` reshaped to `dims` (ints, None for unknown) when its elements fit; ncnn drops size-1
    dims and flattens some outputs."""
    want = [d if isinstance(d, int) else None for d in dims]
    if arr.ndim == len(want) and all(d is None or d == s for d, s in zip(want, arr.shape)):
        return arr
    unknown = [i for i, d in enumerate(want) if d is None]
    known = int(np.prod([d for d in want if d is not None], dtype=np.int64))
    if not unknown:
        return arr.reshape(want) if arr.size == known else None
    if len(unknown) == 1:
        if known and arr.size % known == 0:
            return arr.reshape([d if d is not None else arr.size // known for d in want])
        return None
    # Several unknown dims: match ncnn's non-1 dims, in order, to the slots that are not 1.
    core = [s for s in arr.shape if s != 1]
    slots = [i for i, d in enumerate(want) if d != 1]
    if len(core) != len(slots):
        return None
    shape = [1] * len(want)
    for i, s in zip(slots, core):
        if want[i] is not None and want[i] != s:
            return None
        shape[i] = s
    return arr.reshape(shape)


class NcnnWrapper:
    """A loaded ncnn model. The Net is shared (ncnn allows concurrent extractors); each call
    makes its own extractor per batch item."""

    def __init__(self, param: str, binf: str, io: Optional[Dict[str, Any]], precision: str,
                 use_vulkan: bool, num_threads: Optional[int], input_names: List[str],
                 output_names: List[str]):
        import ncnn

        self._ncnn = ncnn
        net = ncnn.Net()
        opt = net.opt
        opt.use_vulkan_compute = use_vulkan
        # ncnn defaults to fp16 storage and arithmetic where the CPU has them (this x86 does):
        # FP32 turns them off explicitly.
        fp16 = precision == "fp16"
        opt.use_fp16_storage = fp16
        opt.use_fp16_packed = fp16
        opt.use_fp16_arithmetic = fp16
        opt.use_bf16_storage = False
        if num_threads:
            opt.num_threads = num_threads
        # What `rdeploy bench` prints as the engine settings.
        self.settings = {"precision": precision, "num_threads": opt.num_threads,
                         "use_vulkan": use_vulkan}
        rc = net.load_param(param)
        if rc != 0:
            raise RuntimeError(f"ncnn cannot load {param} (load_param returned {rc}): the file "
                               "is damaged or uses a layer this ncnn does not have; deploy again")
        rc = net.load_model(binf)
        if rc != 0:
            raise RuntimeError(f"ncnn cannot load {binf} (load_model returned {rc}): the weights "
                               f"do not match {param}; deploy again")
        self._net = net
        self.precision = precision
        if io is not None:
            self._in = io["inputs"]
            self._out = io["outputs"]
        else:  # MMDeploy's files: blobs carry the model's names; shapes unknown here.
            names = input_names or list(net.input_names())
            outs = output_names or list(net.output_names())
            self._in = [{"name": n, "blob": n, "dtype": "float32", "shape": None, "batched": True}
                        for n in names]
            self._out = [{"name": n, "blob": n, "dtype": "float32", "shape": None} for n in outs]
        if io is not None:
            self.inputs = [(x["name"], x["dtype"], x["shape"]) for x in self._in]
            self.outputs = [(x["name"], x["dtype"], x["shape"]) for x in self._out]
        self.output_names = [x["name"] for x in self._out]

    def forward(self, inputs: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
        ncnn = self._ncnn
        arrays, n, first = [], None, None
        for spec in self._in:
            if spec["name"] not in inputs:
                raise ValueError(f"input '{spec['name']}' is missing (the model takes "
                                 f"{[s['name'] for s in self._in]})")
            a = np.asarray(inputs[spec["name"]])
            if spec["batched"]:
                if n is None:
                    n, first = a.shape[0], spec["name"]
                elif a.shape[0] != n:
                    raise ValueError(f"inputs '{first}' and '{spec['name']}' have batch sizes {n} "
                                     f"and {a.shape[0]}; ncnn runs each batch item in turn, so "
                                     "they must agree")
            arrays.append(a)
        n = 1 if n is None else n
        items: List[List[np.ndarray]] = [[] for _ in self._out]
        for b in range(n):
            ex = self._net.create_extractor()
            for spec, a in zip(self._in, arrays):
                # `item` stays referenced until clone() has copied it: ncnn.Mat(array)
                # borrows the array's memory (a temporary would be freed first). clone(),
                # because ncnn's in-place layers may write into an input Mat.
                item = np.ascontiguousarray(a[b] if spec["batched"] else a[0],
                                            dtype=NCNN_DTYPES.get(spec["dtype"], np.float32))
                ex.input(spec["blob"], ncnn.Mat(item).clone())
            for k, spec in enumerate(self._out):
                rc, mat = ex.extract(spec["blob"])
                if rc != 0:
                    raise RuntimeError(f"ncnn failed computing output '{spec['name']}' (blob "
                                       f"{spec['blob']}, extract returned {rc})")
                y = np.array(mat)
                if spec["shape"] is not None:
                    fitted = _fit(y, spec["shape"][1:])
                    if fitted is None:
                        raise RuntimeError(
                            f"ncnn returned output '{spec['name']}' as {list(y.shape)} per batch "
                            f"item, which does not fit the model's {dims_text(spec['shape'])}")
                    y = fitted
                items[k].append(y)
            del ex
        return {spec["name"]: np.stack(ys).astype(spec["dtype"], copy=False)
                for spec, ys in zip(self._out, items)}

    __call__ = forward
