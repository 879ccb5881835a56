#!/usr/bin/env python3
"""Runs the prepared ONNX conformance cases with an engine's OWN Python API: the "native rate"
reference that rdeploy's own conformance results are compared with.

Usage: scripts/conformance-native.py --engine onnxruntime|openvino [--dir target/conformance]
           [--suite node|models] [--filter REGEX] [--jobs N] [--timeout S] [--json OUT.json]
           [--threads T] [--ov-config KEY=VALUE ...] [--plain-io] [--verbose]

The cases come from scripts/prepare-conformance.py (run it first). Engines:
  onnxruntime  onnxruntime.InferenceSession(model, providers=["CPUExecutionProvider"])
  openvino     openvino.Core().compile_model(read_model(model), "CPU"), with the CPU plugin's
               defaults unless --ov-config is given (e.g. INFERENCE_PRECISION_HINT=f32)
Each case runs in a worker process of a pool of --jobs workers (default 2); a worker that crashes
or runs one case longer than --timeout seconds (default 60) is killed and replaced, and the case
is classified `crash` or `timeout`. Per-session threads: --threads (default: cores / jobs).

Classes:
  pass         every data set's outputs match (rules below)
  wrong        an output differs (the JSON has the message and the largest absolute difference)
  unsupported  the engine refuses the model when loading/compiling it
  error        the engine fails while running it (or its inputs cannot be given to the engine)
  timeout      the case ran longer than --timeout
  crash        the worker process died

Comparison: onnx's backend test runner (onnx.backend.test.runner.Runner.assert_similar_outputs):
the same number of outputs; per tensor, the same shape; strings (object arrays) exactly equal;
otherwise the same dtype and np.testing.assert_allclose(out, ref, rtol, atol) with the case's
rtol/atol (so integers and bools too go through assert_allclose, as in the runner; NaN == NaN),
and for bfloat16 rtol = max(rtol, 2**-6) in float32. Sequences are compared element by element,
optionals by value. Where the runner's own code cannot compare two values that are equal (a
sequence of 0-d tensors, an empty optional) this script compares them by those same rules; each
case's JSON also records `onnx_runner`: the verdict of the runner's own function on the same
values, and the summary counts where the two differ.

Input/output types that numpy or the engine's Python binding cannot hold directly (bfloat16,
float8*, float4e2m1, int4/uint4, int2/uint2; numpy holds them as ml_dtypes arrays) are passed as
the engine's own typed tensors (onnxruntime.OrtValue, openvino.Tensor) filled with the same raw
bytes ONNX's TensorProto uses, and outputs are read back the same way by the model's declared
output type. Cases that needed this are listed in the JSON (`adapted`) and counted in the summary.
--plain-io turns this off (the arrays go to the binding as they are: onnxruntime then rejects
ml_dtypes inputs and bfloat16/float8/int4 outputs, and hands float8 outputs back as uint8).

Measured on this project's 2-core machine (onnx 1.23.2, 1,884 node cases, --jobs 2):
  onnxruntime 1.32.0           1740 pass (1589 with --plain-io; onnx's own runner with
                               onnxruntime.backend: 1588), ~3 s
  openvino 2026.4.1, CPU default precision (bf16 on CPUs with AVX512-BF16/AMX, like this one)
                               1229 pass (1131 with --plain-io), 20-60 s
  openvino, --ov-config INFERENCE_PRECISION_HINT=f32
                               1462 pass (1364 with --plain-io)
The 4 StringNormalizer cases fail to load in onnxruntime where the en_US.UTF-8 locale is not
installed (as here).
"""
import argparse
import ctypes
import json
import multiprocessing as mp
import multiprocessing.connection as mpc
import os
import re
import sys
import time
import traceback

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLASSES = ("pass", "wrong", "unsupported", "error", "timeout", "crash")

# ONNX element types numpy or the engines' bindings cannot take as plain arrays.
EXOTIC = {
    "bfloat16", "float8e4m3fn", "float8e4m3fnuz", "float8e5m2", "float8e5m2fnuz", "float8e8m0",
    "float4e2m1", "int4", "uint4", "int2", "uint2",
}
OV_TYPES = {
    "bfloat16": "bf16", "float8e4m3fn": "f8e4m3", "float8e5m2": "f8e5m2", "float8e8m0": "f8e8m0",
    "float4e2m1": "f4e2m1", "int4": "i4", "uint4": "u4", "uint2": "u2",
}


def log(msg):
    """Progress goes to stderr; results (the summary, -v's per-case lines) go to stdout."""
    print(msg, file=sys.stderr, flush=True)


def short(msg, n=400):
    msg = re.sub(r"\s+", " ", str(msg)).strip()
    return msg if len(msg) <= n else msg[: n - 3] + "..."


# ---------------------------------------------------------------------------------------------
# Data: loading (as the runner's _load_proto) and raw-byte conversion for the exotic types


def load_value(path, kind):
    import onnx
    from onnx import numpy_helper

    with open(path, "rb") as f:
        data = f.read()
    if kind == "sequence":
        p = onnx.SequenceProto()
        p.ParseFromString(data)
        return numpy_helper.to_list(p)
    if kind == "optional":
        p = onnx.OptionalProto()
        p.ParseFromString(data)
        return numpy_helper.to_optional(p)
    if kind == "map":
        p = onnx.MapProto()
        p.ParseFromString(data)
        return numpy_helper.to_dict(p)
    p = onnx.TensorProto()
    p.ParseFromString(data)
    return numpy_helper.to_array(p)


def load_data_sets(case_dir, case):
    sets = []
    for ds in sorted(d for d in os.listdir(case_dir) if d.startswith("test_data_set_")):
        ds = os.path.join(case_dir, ds)
        n_in = len([f for f in os.listdir(ds) if re.fullmatch(r"input_\d+\.pb", f)])
        n_out = len([f for f in os.listdir(ds) if re.fullmatch(r"output_\d+\.pb", f)])
        ins = [load_value(os.path.join(ds, f"input_{i}.pb"), case["inputs"][i]["kind"]) for i in range(n_in)]
        outs = [load_value(os.path.join(ds, f"output_{i}.pb"), case["outputs"][i]["kind"]) for i in range(n_out)]
        sets.append((ins, outs))
    return sets


def onnx_type_id(elem_name):
    from onnx import TensorProto

    return TensorProto.DataType.Value(elem_name.upper())


def to_raw(arr, elem_name):
    """The bytes of arr as ONNX stores a tensor of that type (sub-byte types packed)."""
    from onnx import numpy_helper

    t = numpy_helper.from_array(arr)
    if not t.HasField("raw_data") or t.data_type != onnx_type_id(elem_name):
        raise ValueError(f"cannot get the raw bytes of a {arr.dtype} array as {elem_name}")
    return t.raw_data


def from_raw(raw, elem_name, shape):
    """The array onnx.numpy_helper gives for a TensorProto of that type, shape and raw bytes."""
    from onnx import TensorProto, numpy_helper

    t = TensorProto()
    t.data_type = onnx_type_id(elem_name)
    t.dims.extend(int(d) for d in shape)
    t.raw_data = bytes(raw)
    return numpy_helper.to_array(t)


def n_bytes(elem_name, shape):
    import numpy as np

    n = int(np.prod(shape, dtype=np.int64)) if len(shape) else 1
    bits = {"int4": 4, "uint4": 4, "float4e2m1": 4, "int2": 2, "uint2": 2}.get(elem_name)
    if bits:
        return (n * bits + 7) // 8
    return n * (2 if elem_name == "bfloat16" else 1)


# ---------------------------------------------------------------------------------------------
# Comparison: onnx's runner rules


def max_abs_diff(ref, out):
    import numpy as np

    try:
        if ref.dtype == object or out.dtype == object or ref.shape != out.shape:
            return None
        r = ref.astype(np.float64)
        o = out.astype(np.float64)
        if r.size == 0:
            return 0.0
        d = np.abs(o - r)
        both_nan = np.isnan(r) & np.isnan(o)
        same_inf = np.isinf(r) & (r == o)
        d = np.where(both_nan | same_inf, 0.0, d)
        d = np.where(np.isnan(d), np.inf, d)
        return float(d.max())
    except Exception:  # noqa: BLE001
        return None


class Mismatch(Exception):
    def __init__(self, msg, diff=None):
        super().__init__(msg)
        self.diff = diff


def compare_value(ref, out, rtol, atol, where, notes=None):
    import numpy as np

    if ref is None:
        if out is not None:
            raise Mismatch(f"{where}: expected an empty optional, got {type(out).__name__}")
        return
    if out is None:
        raise Mismatch(f"{where}: expected a value, got an empty optional / None")
    if isinstance(ref, dict):
        if not isinstance(out, dict) or sorted(ref) != sorted(out):
            raise Mismatch(f"{where}: map keys differ")
        for k in ref:
            compare_value(ref[k], out[k], rtol, atol, f"{where}[{k!r}]", notes)
        return
    if isinstance(ref, (list, tuple)):
        if not isinstance(out, (list, tuple)):
            raise Mismatch(f"{where}: expected a sequence, got {type(out).__name__}")
        if len(out) != len(ref):
            raise Mismatch(f"{where}: sequence length {len(out)} != expected {len(ref)}")
        for j, (r, o) in enumerate(zip(ref, out)):
            compare_value(r, o, rtol, atol, f"{where}[{j}]", notes)
        return
    if isinstance(out, (list, tuple, dict)):
        raise Mismatch(f"{where}: expected a tensor, got {type(out).__name__}")
    if isinstance(out, np.generic):
        out = np.asarray(out)
    if not isinstance(out, np.ndarray):
        raise Mismatch(f"{where}: expected a tensor, got {type(out).__name__}")
    if tuple(out.shape) != tuple(ref.shape):
        raise Mismatch(f"{where}: shape {tuple(out.shape)} != expected {tuple(ref.shape)}")
    if ref.dtype == object:  # strings
        try:
            np.testing.assert_array_equal(out, ref)
        except AssertionError as e:
            raise Mismatch(f"{where}: strings differ: {short(e, 200)}") from None
        return
    if out.dtype != ref.dtype:
        raise Mismatch(f"{where}: dtype {out.dtype} != expected {ref.dtype}")
    o, r, tol = out, ref, rtol
    if out.dtype.name == "bfloat16":
        tol = max(rtol, 2**-6)
        o, r = out.astype(np.float32), ref.astype(np.float32)
    try:
        np.testing.assert_allclose(o, r, rtol=tol, atol=atol)
    except AssertionError as e:
        raise Mismatch(f"{where}: {short(e, 300)}", max_abs_diff(ref, out)) from None
    except TypeError as e:  # a dtype assert_allclose cannot handle (float8, int4, ...)
        o, r = out.astype(np.float32), ref.astype(np.float32)
        try:
            np.testing.assert_allclose(o, r, rtol=tol, atol=atol)
        except AssertionError as e2:
            raise Mismatch(f"{where}: {short(e2, 300)}", max_abs_diff(ref, out)) from None
        del e
    if notes is not None and out.dtype.kind in "iub" and not np.array_equal(out, ref):
        # integers/bools go through assert_allclose in onnx's runner: equal within rtol, not exactly
        notes.append(f"{where}: integers within rtol but not equal (max abs diff {max_abs_diff(ref, out)})")


def onnx_runner_verdict(refs, outs, rtol, atol):
    """The verdict of onnx's own Runner.assert_similar_outputs on the same values."""
    try:
        from onnx.backend.test.runner import Runner

        Runner.assert_similar_outputs(refs, outs, rtol=rtol, atol=atol)
        return "pass"
    except Exception as e:  # noqa: BLE001
        return f"fail: {type(e).__name__}: {short(e, 160)}"


# ---------------------------------------------------------------------------------------------
# Engines (run inside the workers)


class LoadError(Exception):
    pass


class OrtEngine:
    name = "onnxruntime"

    def __init__(self, threads, _config, typed_io):
        import onnxruntime as ort

        self.ort = ort
        self.typed_io = typed_io
        self.version = ort.__version__
        self.threads = threads
        self.settings = {"providers": ["CPUExecutionProvider"], "intra_op_num_threads": threads}

    def load(self, model_path, case):
        so = self.ort.SessionOptions()
        so.intra_op_num_threads = self.threads
        so.inter_op_num_threads = 1
        so.log_severity_level = 3
        try:
            self.sess = self.ort.InferenceSession(model_path, so, providers=["CPUExecutionProvider"])
        except Exception as e:  # noqa: BLE001
            raise LoadError(short(e)) from None
        self.case = case

    def run(self, inputs, adapted):
        case = self.case
        names = [v["name"] for v in case["inputs"][: len(inputs)]]
        out_names = [v["name"] for v in case["outputs"]]
        exotic = any(
            v["kind"] == "tensor" and v["elem_type"] in EXOTIC
            for v in case["inputs"][: len(inputs)] + case["outputs"]
        )
        if not exotic or not self.typed_io:
            return self.sess.run(out_names, dict(zip(names, inputs)))
        # typed OrtValues in, raw bytes out, for the types numpy cannot hand to onnxruntime
        OrtValue = self.ort.OrtValue
        feeds = {}
        for v, x in zip(case["inputs"], inputs):
            if v["kind"] != "tensor":
                raise RuntimeError(f"input {v['name']}: a {v['kind']} next to {'/'.join(sorted(EXOTIC))} tensors")
            if v["elem_type"] in EXOTIC:
                val = OrtValue.ortvalue_from_shape_and_type(list(x.shape), onnx_type_id(v["elem_type"]))
                raw = to_raw(x, v["elem_type"])
                if len(raw) != n_bytes(v["elem_type"], list(x.shape)):
                    raise RuntimeError(f"input {v['name']}: {len(raw)} bytes for a {v['elem_type']} tensor of shape {list(x.shape)}")
                if len(raw):
                    ctypes.memmove(val.data_ptr(), raw, len(raw))
                feeds[v["name"]] = val
                adapted.append(f"input {v['name']}: {v['elem_type']} as OrtValue")
            else:
                feeds[v["name"]] = OrtValue.ortvalue_from_numpy(x)
        res = self.sess.run_with_ort_values(out_names, feeds)
        outs = []
        for v, o in zip(case["outputs"], res):
            if v["kind"] == "tensor" and v["elem_type"] in EXOTIC:
                shape = list(o.shape())
                nb = n_bytes(v["elem_type"], shape)
                raw = ctypes.string_at(o.data_ptr(), nb) if nb else b""
                outs.append(from_raw(raw, v["elem_type"], shape))
                adapted.append(f"output {v['name']}: {v['elem_type']} from raw bytes")
            else:
                outs.append(o.numpy())
        return outs


class OvEngine:
    name = "openvino"

    def __init__(self, threads, config, typed_io):
        import openvino as ov

        self.ov = ov
        self.typed_io = typed_io
        self.version = ov.__version__ if hasattr(ov, "__version__") else ov.get_version()
        self.core = ov.Core()
        self.config = {"INFERENCE_NUM_THREADS": threads, **config}
        precision = config.get("INFERENCE_PRECISION_HINT") or self.core.get_property("CPU", "INFERENCE_PRECISION_HINT").to_string()
        # On CPUs with native bf16 (AVX512-BF16, AMX) the CPU plugin's default is bf16, not f32.
        self.settings = {"device": "CPU", **{k: str(v) for k, v in self.config.items()}, "INFERENCE_PRECISION_HINT": precision}

    def load(self, model_path, case):
        try:
            model = self.core.read_model(model_path)
            self.compiled = self.core.compile_model(model, "CPU", self.config)
        except Exception as e:  # noqa: BLE001
            raise LoadError(short(e)) from None
        self.case = case

    @staticmethod
    def _port(ports, name):
        for p in ports:
            if name in p.get_names():
                return p
        return None

    def run(self, inputs, adapted):
        import numpy as np

        ov, case, c = self.ov, self.case, self.compiled
        req = c.create_infer_request()
        for v, x in zip(case["inputs"], inputs):
            port = self._port(c.inputs, v["name"])
            if port is None:  # OpenVINO dropped an input the graph does not use (CastLike's `target_type`)
                continue
            if v["kind"] != "tensor":
                raise RuntimeError(f"input {v['name']}: OpenVINO takes tensors only, this is a {v['kind']}")
            if v["elem_type"] in EXOTIC and self.typed_io:
                if v["elem_type"] not in OV_TYPES:
                    raise RuntimeError(f"input {v['name']}: OpenVINO has no {v['elem_type']} element type")
                t = ov.Tensor(getattr(ov.Type, OV_TYPES[v["elem_type"]]), ov.Shape(list(x.shape)))
                raw = to_raw(x, v["elem_type"])
                buf = t.data.reshape(-1).view(np.uint8)
                if len(raw) != buf.size:
                    raise RuntimeError(f"input {v['name']}: {len(raw)} bytes for an OpenVINO tensor of {buf.size}")
                buf[:] = np.frombuffer(raw, np.uint8)
                adapted.append(f"input {v['name']}: {v['elem_type']} as ov.Tensor {OV_TYPES[v['elem_type']]}")
            else:
                # np.array(order="C") keeps 0-d arrays 0-d (np.ascontiguousarray makes them 1-d)
                t = ov.Tensor(np.array(x if x.dtype != object else x.astype(str), order="C"))
            req.set_tensor(port, t)
        req.infer()
        outs = []
        for i, v in enumerate(case["outputs"]):
            port = self._port(c.outputs, v["name"])
            if port is None:
                if len(c.outputs) != len(case["outputs"]):
                    raise RuntimeError(f"output {v['name']} is not among the compiled model's outputs")
                port = c.outputs[i]
            t = req.get_tensor(port)
            shape = list(t.shape)
            if (
                self.typed_io
                and v["kind"] == "tensor"
                and v["elem_type"] in OV_TYPES
                and t.element_type == getattr(ov.Type, OV_TYPES[v["elem_type"]])
            ):
                raw = t.data.reshape(-1).view(np.uint8).tobytes() if n_bytes(v["elem_type"], shape) else b""
                outs.append(from_raw(raw, v["elem_type"], shape))
                adapted.append(f"output {v['name']}: {v['elem_type']} from raw bytes")
            elif t.element_type == ov.Type.string:
                outs.append(np.array(t.str_data, dtype=object).reshape(shape))
            else:
                outs.append(np.array(t.data, copy=True).reshape(shape))
        return outs


ENGINES = {"onnxruntime": OrtEngine, "openvino": OvEngine}


def run_case(engine, case_dir):
    t0 = time.time()
    with open(os.path.join(case_dir, "case.json")) as f:
        case = json.load(f)
    res = {"name": case["name"], "op": case.get("op"), "function_op": case.get("function_op")}
    adapted = []
    try:
        sets = load_data_sets(case_dir, case)
    except Exception as e:  # noqa: BLE001
        return {**res, "status": "error", "detail": f"cannot read the case's data: {short(e)}"}
    try:
        engine.load(os.path.join(case_dir, "model.onnx"), case)
    except LoadError as e:
        return {**res, "status": "unsupported", "detail": str(e), "seconds": round(time.time() - t0, 3)}
    verdicts, notes = [], []
    for k, (ins, refs) in enumerate(sets):
        try:
            outs = list(engine.run(ins, adapted))
        except Exception as e:  # noqa: BLE001
            return {**res, "status": "error", "detail": f"data set {k}: {short(e)}", "adapted": adapted or None,
                    "seconds": round(time.time() - t0, 3)}
        verdicts.append(onnx_runner_verdict(refs, outs, case["rtol"], case["atol"]))
        try:
            if len(outs) != len(refs):
                raise Mismatch(f"{len(outs)} outputs, expected {len(refs)}")
            for i, (r, o) in enumerate(zip(refs, outs)):
                compare_value(r, o, case["rtol"], case["atol"], f"data set {k} output {i} ({case['outputs'][i]['name']})", notes)
        except Mismatch as e:
            return {**res, "status": "wrong", "detail": str(e), "max_abs_diff": e.diff, "adapted": adapted or None,
                    "onnx_runner": verdicts[-1], "seconds": round(time.time() - t0, 3)}
    runner = next((v for v in verdicts if v != "pass"), "pass")
    return {**res, "status": "pass", "adapted": adapted or None, "onnx_runner": runner,
            "inexact_int": notes or None, "seconds": round(time.time() - t0, 3)}


def worker_main(conn, engine_name, threads, config, typed_io, log_path):
    # The engine's own messages go to a per-worker log that the parent reads when a case crashes.
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    import warnings

    warnings.simplefilter("ignore")
    try:
        engine = ENGINES[engine_name](threads, config, typed_io)
    except Exception as e:  # noqa: BLE001
        conn.send({"init_error": f"{type(e).__name__}: {e}"})
        return
    conn.send({"ready": engine.version, "settings": engine.settings})
    while True:
        msg = conn.recv()
        if msg is None:
            return
        os.ftruncate(2, 0)
        os.lseek(2, 0, os.SEEK_SET)
        try:
            res = run_case(engine, msg)
        except Exception as e:  # noqa: BLE001
            res = {"name": os.path.basename(msg), "status": "error",
                   "detail": "runner failure: " + short("".join(traceback.format_exception_only(e)))}
        conn.send(res)


# ---------------------------------------------------------------------------------------------
# Pool


class Worker:
    def __init__(self, ctx, idx, args, log_dir):
        self.log = os.path.join(log_dir, f"worker-{idx}.log")
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(
            target=worker_main,
            args=(child, args.engine, args.threads, dict(args.ov_config), not args.plain_io, self.log),
            daemon=True,
        )
        self.proc.start()
        child.close()
        self.ready = False
        self.case = None  # (name, case_dir)
        self.deadline = None
        self.started = None

    def kill(self):
        if self.proc.is_alive():
            self.proc.kill()
        self.proc.join(5)
        self.conn.close()

    def log_tail(self, n=600):
        try:
            with open(self.log, errors="replace") as f:
                return short(f.read()[-n:], n)
        except OSError:
            return ""


def run_all(args, cases, suite_dir, on_result):
    import tempfile

    ctx = mp.get_context("fork")
    log_dir = tempfile.mkdtemp(prefix="conformance-native-")
    pending = list(cases)
    n_workers = max(1, min(args.jobs, len(pending)))
    idx = 0
    workers = []
    version = (None, None)
    init_failures = 0

    def spawn():
        nonlocal idx
        idx += 1
        return Worker(ctx, idx, args, log_dir)

    for _ in range(n_workers):
        workers.append(spawn())
    try:
        while pending or any(w.case for w in workers):
            for w in workers:
                if w.ready and w.case is None and pending:
                    name = pending.pop(0)
                    w.case = name
                    w.started = time.time()
                    w.deadline = w.started + args.timeout
                    w.conn.send(os.path.join(suite_dir, name))
            now = time.time()
            deadlines = [w.deadline for w in workers if w.case]
            wait = max(0.0, min(deadlines) - now) if deadlines else 5.0
            ready = mpc.wait([w.conn for w in workers] + [w.proc.sentinel for w in workers], timeout=min(wait, 5.0))
            for i, w in enumerate(list(workers)):
                died = False
                result = None
                if w.conn in ready or w.proc.sentinel in ready:
                    try:
                        if w.conn.poll():
                            msg = w.conn.recv()
                            if "ready" in msg:
                                w.ready = True
                                version = (msg["ready"], msg.get("settings"))
                                continue
                            if "init_error" in msg:
                                raise SystemExit(f"conformance-native: cannot start {args.engine}: {msg['init_error']}")
                            result = msg
                        elif not w.proc.is_alive():
                            died = True
                    except (EOFError, OSError):
                        died = True
                if result is not None:
                    result["seconds_wall"] = round(time.time() - w.started, 3)
                    w.case = None
                    on_result(result)
                    continue
                if died:
                    w.proc.join(1)
                    code = w.proc.exitcode
                    if w.case:
                        detail = f"worker died (exit code {code})"
                        tail = w.log_tail()
                        on_result({"name": w.case, "status": "crash", "detail": detail + (f"; log: {tail}" if tail else ""),
                                   "seconds_wall": round(time.time() - w.started, 3)})
                    elif not w.ready:
                        init_failures += 1
                        if init_failures > 3:
                            raise SystemExit(f"conformance-native: workers die while starting {args.engine}: {w.log_tail()}")
                    w.kill()
                    workers[i] = spawn()
                    continue
                if w.case and time.time() > w.deadline:
                    on_result({"name": w.case, "status": "timeout", "detail": f"longer than {args.timeout:g}s",
                               "seconds_wall": round(time.time() - w.started, 3)})
                    w.kill()
                    workers[i] = spawn()
    finally:
        for w in workers:
            try:
                w.conn.send(None)
            except (OSError, ValueError):
                pass
        for w in workers:
            w.proc.join(2)
            w.kill()
        import shutil

        shutil.rmtree(log_dir, ignore_errors=True)
    return version


# ---------------------------------------------------------------------------------------------


def parse_kv(s):
    if "=" not in s:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {s!r}")
    k, v = s.split("=", 1)
    return k, v


def main():
    p = argparse.ArgumentParser(
        prog="conformance-native.py",
        description="Run the prepared ONNX conformance cases with an engine's own Python API (the native pass rate).",
    )
    p.add_argument("--engine", required=True, choices=sorted(ENGINES))
    p.add_argument("--dir", default=os.path.join(ROOT, "target", "conformance"), help="prepared cases (default: %(default)s)")
    p.add_argument("--suite", default="node", choices=("node", "models"))
    p.add_argument("--filter", help="only the cases whose name matches this regex (re.search)")
    p.add_argument("--jobs", type=int, default=2, help="worker processes (default: %(default)s)")
    p.add_argument("--timeout", type=float, default=60.0, help="seconds per case (default: %(default)s)")
    p.add_argument("--threads", type=int, default=None, help="engine threads per worker (default: cores / jobs)")
    p.add_argument("--ov-config", type=parse_kv, action="append", default=[], metavar="KEY=VALUE",
                   help="OpenVINO compile_model property, e.g. INFERENCE_PRECISION_HINT=f32 (repeatable)")
    p.add_argument("--plain-io", action="store_true",
                   help="hand every input to the engine as the numpy array onnx loads (ml_dtypes for bfloat16, "
                        "float8, int4, ...) and take outputs as the binding returns them: no typed-tensor adaptation")
    p.add_argument("--json", help="write the per-case results and the summary to this file")
    p.add_argument("--verbose", "-v", action="store_true", help="print every case, not only the failures' count")
    args = p.parse_args()
    if args.threads is None:
        args.threads = max(1, (os.cpu_count() or 1) // max(1, args.jobs))

    try:
        import numpy  # noqa: F401
        import onnx  # noqa: F401
    except ImportError as e:
        sys.exit(f"conformance-native: the `onnx` and `numpy` packages cannot be imported by {sys.executable} ({e}); "
                 "use the project's .venv/bin/python (scripts/setup-venv.sh)")
    suite_dir = os.path.join(args.dir, args.suite)
    index_path = os.path.join(suite_dir, "index.json")
    if not os.path.exists(index_path):
        sys.exit(f"conformance-native: {index_path} not found: run scripts/prepare-conformance.py --suite {args.suite} first")
    with open(index_path) as f:
        index = json.load(f)
    cases = index["cases"]
    if args.filter:
        rx = re.compile(args.filter)
        cases = [c for c in cases if rx.search(c)]
    if not cases:
        sys.exit("conformance-native: no case matches")

    log(f"{args.engine}: {len(cases)} {args.suite} cases (onnx {index.get('onnx_version')}), "
        f"{args.jobs} workers x {args.threads} threads, timeout {args.timeout:g}s")
    t0 = time.time()
    results = []
    last = [t0]

    def on_result(r):
        results.append(r)
        if args.verbose:
            d = f"  {r.get('detail', '')}" if r["status"] != "pass" else ""
            print(f"  {r['status']:<11} {r['name']}{d}", flush=True)
        elif time.time() - last[0] > 10 or len(results) == len(cases):
            last[0] = time.time()
            counts = {c: sum(1 for x in results if x["status"] == c) for c in CLASSES}
            log(f"  {len(results)}/{len(cases)}  " + " ".join(f"{c} {n}" for c, n in counts.items() if n))

    version, settings = run_all(args, cases, suite_dir, on_result)
    elapsed = time.time() - t0

    results.sort(key=lambda r: r["name"])
    counts = {c: sum(1 for r in results if r["status"] == c) for c in CLASSES}
    adapted_pass = sum(1 for r in results if r["status"] == "pass" and r.get("adapted"))
    runner_differs = [r["name"] for r in results if r.get("onnx_runner") and (r["onnx_runner"] == "pass") != (r["status"] == "pass")]
    print(f"{args.engine} {version}: {counts['pass']}/{len(results)} pass "
          f"({100.0 * counts['pass'] / len(results):.1f}%) in {elapsed:.0f}s")
    print("  " + ", ".join(f"{c} {counts[c]}" for c in CLASSES))
    print("  settings: " + ", ".join(f"{k}={v}" for k, v in (settings or {}).items()))
    inexact = sum(1 for r in results if r.get("inexact_int"))
    if inexact:
        print(f"  {inexact} of the passes have integer outputs equal only within rtol (as onnx's runner allows), not exactly")
    if adapted_pass:
        print(f"  {adapted_pass} of the passes fed/read bfloat16/float8/4-bit/2-bit tensors as typed engine tensors")
    if runner_differs:
        print(f"  {len(runner_differs)} case(s) where onnx's own Runner.assert_similar_outputs decides otherwise: "
              + ", ".join(runner_differs[:10]) + (" ..." if len(runner_differs) > 10 else ""))
    if args.json:
        summary = {
            "engine": args.engine,
            "engine_version": version,
            "suite": args.suite,
            "onnx_version": index.get("onnx_version"),
            "filter": args.filter,
            "jobs": args.jobs,
            "threads": args.threads,
            "timeout": args.timeout,
            "ov_config": dict(args.ov_config) or None,
            "typed_io": not args.plain_io,
            "engine_settings": settings,
            "seconds": round(elapsed, 1),
            "total": len(results),
            "counts": counts,
            "adapted_pass": adapted_pass,
            "inexact_int_pass": sum(1 for r in results if r.get("inexact_int")),
            "onnx_runner_differs": runner_differs,
        }
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        for r in results:  # strict JSON: no Infinity/NaN words
            d = r.get("max_abs_diff")
            if isinstance(d, float) and d != d or d in (float("inf"), float("-inf")):
                r["max_abs_diff"] = str(d)
        with open(args.json, "w") as f:
            json.dump({"summary": summary, "cases": results}, f, indent=1, allow_nan=False)
            f.write("\n")
        print(f"  per-case results: {args.json}")


if __name__ == "__main__":
    main()
