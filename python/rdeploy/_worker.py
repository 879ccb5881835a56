"""The worker process that hosts a backend written in Python for rdeploy's binary.

The `rdeploy` command, `rdeploy serve` and the Triton backend run Python backends (the
managers of the ``rdeploy.backends`` entry-point group, such as ncnn and TVM) by starting
``python -m rdeploy._worker`` in the active environment. One worker holds one loaded wrapper.

Protocol (one request at a time, private to rdeploy; both ends ship together):

* Control: one JSON object per line. Requests arrive on stdin; replies go to the file
  descriptor that was stdout when the worker started. Stdout is then pointed at stderr, so
  prints and C libraries writing to stdout cannot corrupt the replies.
* Tensors: a shared-memory file created by rdeploy (``shm`` in the ``load`` request; rdeploy
  unlinks it once both ends have it open). A request's ``inputs`` give each tensor's name,
  NumPy dtype, shape and byte offset; the worker views them in place (no copy, no pickling),
  writes the outputs after them (64-byte aligned), growing the file when they do not fit, and
  replies with their offsets and the file's size.
* Every reply has ``ok``; a failure gives ``error`` (``TypeName: message``) and ``traceback``.

Requests (``op``): ``check`` (is_available/get_version), ``ir_passes``, ``to_backend``,
``load`` (build_wrapper), ``forward``. Each names the manager as ``module:attribute`` (the
entry point's value).
"""

import importlib
import json
import mmap
import os
import signal
import sys
import time
import traceback

ALIGN = 64


def _align(n):
    return (n + ALIGN - 1) // ALIGN * ALIGN


def _load_manager(entry):
    """The manager object an entry point value (``package.module:Class``) names."""
    module, _, attr = entry.partition(":")
    obj = importlib.import_module(module)
    for part in filter(None, attr.split(".")):
        obj = getattr(obj, part)
    return obj


def _spec_list(value):
    """A wrapper's ``inputs``/``outputs`` attribute as JSON: [name, dtype, shape] lists."""
    out = []
    for item in value:
        name, dtype, shape = item
        dims = None
        if shape is not None:
            dims = [d if isinstance(d, int) or d is None else str(d) for d in shape]
        out.append([str(name), str(dtype), dims])
    return out


def _settings(wrapper):
    """A wrapper's optional ``settings`` (a dict, pairs, or a method returning either): the
    engine settings in effect, which ``rdeploy bench`` prints."""
    st = getattr(wrapper, "settings", None)
    if callable(st):
        st = st()
    if not st:
        return []
    items = st.items() if isinstance(st, dict) else st
    return [[str(k), str(v)] for k, v in items]


def _call(f, what):
    """``f()``, with a failure named after the method that raised it."""
    try:
        return f()
    except Exception as e:
        raise RuntimeError(f"{what} raised {type(e).__name__}: {e}") from e


def _one_line(v):
    """A value as one line of text (check-env prints one line per backend)."""
    return " ".join(str(v).split())


class Worker:
    def __init__(self):
        self.manager = None
        self.entry = None
        self.wrapper = None
        self.output_names = []
        self.fd = None
        self.mm = None
        self.size = 0

    def manager_for(self, entry):
        if self.entry != entry:
            self.manager = _load_manager(entry)
            self.entry = entry
        return self.manager

    def check(self, req):
        try:
            m = self.manager_for(req["entry"])
        except BaseException as e:  # noqa: BLE001 - a module that fails to import (even with
            # sys.exit) makes the backend unavailable, with the reason
            if isinstance(e, KeyboardInterrupt):
                raise
            return {"available": False, "reason": f"cannot import {req['entry']}: {type(e).__name__}: {e}",
                    "python": sys.executable}
        available = _call(m.is_available, "is_available()")
        if not isinstance(available, bool):
            raise TypeError(f"is_available() returned {available!r:.80}, not True or False")
        reply = {"available": available, "python": sys.executable}
        if available:
            get_version = getattr(m, "get_version", None)
            reply["version"] = _one_line(_call(get_version, "get_version()")) if get_version else "unknown"
        else:
            why = getattr(m, "why_unavailable", None)
            reply["reason"] = (_one_line(_call(why, "why_unavailable()")) if why
                               else "the Python backend's is_available() returned False")
        kinds = getattr(m, "device_kinds", None)
        if kinds is not None:
            reply["device_kinds"] = [str(k) for k in kinds]
        return reply

    def ir_passes(self, req):
        m = self.manager_for(req["entry"])
        f = getattr(m, "ir_passes", None)
        if f is None:
            return {"passes": []}
        passes = []
        for p in f(req["deploy_cfg"]) or []:
            if isinstance(p, str):
                passes.append({"name": p, "options": None})
            elif isinstance(p, dict) and isinstance(p.get("name"), str):
                passes.append({"name": p["name"], "options": p.get("options")})
            else:
                raise TypeError(f"ir_passes() must return pass names or dict(name=..., options=...), got {p!r}")
        return {"passes": passes}

    def to_backend(self, req):
        m = self.manager_for(req["entry"])
        files = m.to_backend(req["ir_files"], req["work_dir"], req["deploy_cfg"], req.get("log_level", 20),
                             req["device"])
        if files is None:
            files = []
        if isinstance(files, (str, bytes)):
            raise TypeError(f"to_backend must return a list of file paths, not {files!r:.120}")
        return {"files": [os.fspath(f) for f in files]}

    def load(self, req):
        # The shared memory first, unlinked at once: nothing is left in /dev/shm if either
        # process dies while the model loads.
        self.fd = os.open(req["shm"], os.O_RDWR)
        try:
            os.unlink(req["shm"])
        except OSError:
            pass
        self.remap()
        m = self.manager_for(req["entry"])
        w = m.build_wrapper(req["backend_files"], req["device"], req["input_names"], req["output_names"],
                            req["deploy_cfg"])
        if not hasattr(w, "forward"):
            raise TypeError(f"build_wrapper returned {w!r:.120}, which has no forward(dict) method")
        self.wrapper = w
        reply = {}
        if hasattr(w, "inputs") and hasattr(w, "outputs"):
            reply["inputs"] = _spec_list(w.inputs)
            reply["outputs"] = _spec_list(w.outputs)
        reply["settings"] = _settings(w)
        return reply

    def set_outputs(self, req):
        self.output_names = list(req["output_names"])
        return {}

    def remap(self):
        size = os.fstat(self.fd).st_size
        if self.mm is None or size != self.size:
            # Views of the old map (a wrapper may keep its inputs) keep it alive until dropped.
            self.mm = mmap.mmap(self.fd, size) if size else None
            self.size = size

    def forward(self, req):
        import numpy as np

        self.remap()
        inputs = {}
        for t in req["inputs"]:
            dtype = _dtype(t["dtype"])
            shape = tuple(t["shape"])
            count = 1
            for d in shape:
                count *= d
            if count == 0:
                inputs[t["name"]] = np.zeros(shape, dtype)
            else:
                inputs[t["name"]] = np.frombuffer(self.mm, dtype, count, t["offset"]).reshape(shape)
        start = time.perf_counter_ns()
        out = self.wrapper.forward(inputs)
        execute_ns = time.perf_counter_ns() - start
        del inputs
        arrays = []
        for i, name in enumerate(self.output_names):
            if isinstance(out, dict):
                if name not in out:
                    raise KeyError(f"forward() returned no output named '{name}' (it returned {sorted(out)})")
                a = out[name]
            else:
                a = out[i]
            if hasattr(a, "numpy") and not isinstance(a, np.ndarray):  # torch tensors
                a = a.detach().cpu().numpy() if hasattr(a, "detach") else a.numpy()
            if a is None:
                raise TypeError(f"forward() returned None for output '{name}', not an array")
            a = np.asarray(a)
            if a.dtype.kind not in "biuf" and a.dtype.name not in _ML_DTYPES:
                raise TypeError(f"forward() returned output '{name}' as {a.dtype} "
                                f"({type(out[name] if isinstance(out, dict) else out[i]).__name__}), "
                                "not an array of numbers or booleans")
            if not a.dtype.isnative:  # big-endian arrays: the bytes go out in the machine's order
                a = a.astype(a.dtype.newbyteorder("="))
            arrays.append(np.ascontiguousarray(a))
        offset = _align(req["inputs_end"])
        end = offset + sum(_align(a.nbytes) for a in arrays)
        if end > self.size:
            os.ftruncate(self.fd, max(end, self.size + self.size // 2))
            self.remap()
        outputs = []
        for name, a in zip(self.output_names, arrays):
            if a.nbytes:
                dst = np.frombuffer(self.mm, np.uint8, a.nbytes, offset)
                dst[:] = a.reshape(-1).view(np.uint8)
            outputs.append({"name": name, "dtype": a.dtype.name, "shape": list(a.shape), "offset": offset})
            offset += _align(a.nbytes)
        return {"outputs": outputs, "size": self.size, "execute_ns": execute_ns}


def _watch_parent():
    """Ends this process when rdeploy does, even in the middle of a call: a stuck engine call
    would otherwise keep an orphaned worker alive (a killed rdeploy cannot stop it)."""
    import threading

    parent = os.getppid()

    def watch():
        while True:
            time.sleep(0.5)
            if os.getppid() != parent:
                # The worker leads its own process group: processes the backend started go too.
                try:
                    os.killpg(os.getpgrp(), signal.SIGKILL)
                finally:
                    os._exit(1)

    threading.Thread(target=watch, name="rdeploy-parent-watch", daemon=True).start()


def main():
    replies = os.fdopen(os.dup(1), "wb", buffering=0)
    requests = os.fdopen(os.dup(0), "rb")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    # A backend reading stdin must not take the requests: it reads an empty file.
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    sys.stdin = open(os.devnull)
    # Log records reach rdeploy's log at their level (tagged lines on stderr); other output on
    # stderr is kept for error messages and logged at debug level.
    import logging

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("rdeploy-log %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.INFO, handlers=[handler])
    _watch_parent()
    worker = Worker()
    handlers = {
        "check": worker.check,
        "ir_passes": worker.ir_passes,
        "to_backend": worker.to_backend,
        "load": worker.load,
        "set_outputs": worker.set_outputs,
        "forward": worker.forward,
    }
    for line in requests:
        if not line.strip():
            continue
        try:
            req = json.loads(line)
            handler = handlers.get(req.get("op"))
            if handler is None:
                raise ValueError(f"unknown request {req.get('op')!r}")
            reply = handler(req)
            reply["ok"] = True
        except BaseException as e:  # noqa: BLE001 - every failure goes back to rdeploy
            if isinstance(e, KeyboardInterrupt):
                raise
            reply = {"ok": False, "error": f"{type(e).__name__}: {e}", "traceback": traceback.format_exc()}
        try:
            data = json.dumps(reply)
        except (TypeError, ValueError) as e:
            data = json.dumps({"ok": False, "error": f"TypeError: the reply cannot be sent: {e}", "traceback": ""})
        replies.write(data.encode() + b"\n")


# Element types NumPy has only through ml_dtypes; rdeploy passes them by these names.
_ML_DTYPES = ("bfloat16", "float8_e4m3fn", "float8_e4m3fnuz", "float8_e5m2", "float8_e5m2fnuz",
              "float8_e8m0fnu", "int4", "uint4", "float4_e2m1fn", "int2", "uint2")


def _dtype(name):
    """NumPy's dtype for rdeploy's numpy name, through ml_dtypes for bfloat16, float8, 4- and 2-bit."""
    import numpy as np

    if name in _ML_DTYPES:
        try:
            import ml_dtypes
        except ImportError as e:
            raise TypeError(f"{name} inputs need the ml_dtypes package (pip install ml_dtypes)") from e
        if not hasattr(ml_dtypes, name):
            raise TypeError(f"{name} inputs need ml_dtypes >= 0.5 (this is {ml_dtypes.__version__}; pip install -U ml_dtypes)")
        return np.dtype(getattr(ml_dtypes, name))
    return np.dtype(name)


if __name__ == "__main__":
    main()
