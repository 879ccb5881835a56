"""rdeploy's test backends written in Python (a test-only pip package).

``ortpy`` runs a model with the ``onnxruntime`` Python package: ``to_backend`` copies the ONNX
file into the work dir, the wrapper runs an ``InferenceSession`` (one intra-op thread). Faults
for rdeploy's worker tests come from the deploy config: ``backend_config.fault_file`` names a
file read before every call; its content picks what ``forward`` does: ``raise`` (a Python
exception), ``crash`` (the process kills itself mid-call), ``hang`` (sleeps for an hour),
``pid`` (writes the worker's pid to ``<fault_file>.pid``, then sleeps 30 s so a test can kill
it), ``spawn`` (starts a child that sleeps an hour, writes its pid to ``<fault_file>.child``,
then hangs), ``bigendian`` (returns big-endian outputs), ``badutf8`` (writes bytes that are not
UTF-8 to stderr, then prints and runs normally), ``hugeerror`` (raises with a 5 MB message), or
anything else / no file: run normally.
"""
import os
import shutil
import signal
import time

__version__ = "0.3.0"


class OrtPyWrapper:
    def __init__(self, path, fault_file):
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        opts.inter_op_num_threads = 1
        self.session = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
        self.output_names = [o.name for o in self.session.get_outputs()]
        self.fault_file = fault_file

    def fault(self):
        if not self.fault_file:
            return
        try:
            with open(self.fault_file) as f:
                what = f.read().strip()
        except FileNotFoundError:
            return
        if what == "raise":
            raise ValueError("injected failure: the test asked forward() to raise")
        if what == "crash":
            os.kill(os.getpid(), signal.SIGKILL)
        if what == "hang":
            time.sleep(3600)
        if what == "spawn":
            import subprocess

            child = subprocess.Popen(["sleep", "3600"])
            with open(self.fault_file + ".child", "w") as f:
                f.write(str(child.pid))
            time.sleep(3600)
        if what == "badutf8":
            import sys

            sys.stderr.buffer.write(b"caf\xe9 \xff\xfe not utf-8\n")
            sys.stderr.flush()
            print("a print after the bad bytes", file=sys.stderr, flush=True)
        if what == "hugeerror":
            raise ValueError("x" * 5_000_000)
        if what == "pid":
            with open(self.fault_file + ".pid", "w") as f:
                f.write(str(os.getpid()))
            time.sleep(30)

    def forward(self, inputs):
        self.fault()
        outs = self.session.run(self.output_names, inputs)
        if self.fault_file and os.path.exists(self.fault_file):
            with open(self.fault_file) as f:
                if f.read().strip() == "bigendian":
                    outs = [o.astype(o.dtype.newbyteorder(">")) for o in outs]
        return dict(zip(self.output_names, outs))


class OrtPyManager:
    """ONNX Runtime from Python, as a backend written in Python."""

    @classmethod
    def is_available(cls):
        try:
            import onnxruntime  # noqa: F401
        except ImportError:
            return False
        return True

    @classmethod
    def why_unavailable(cls):
        return "the onnxruntime Python package is not installed: pip install onnxruntime"

    @classmethod
    def get_version(cls):
        import onnxruntime

        return onnxruntime.__version__

    @classmethod
    def to_backend(cls, ir_files, work_dir, deploy_cfg, log_level=20, device="cpu"):
        (onnx_file,) = ir_files
        out = os.path.join(work_dir, "ortpy.onnx")
        shutil.copyfile(onnx_file, out)
        return [out]

    @classmethod
    def build_wrapper(cls, backend_files, device="cpu", input_names=None, output_names=None, deploy_cfg=None):
        fault = ((deploy_cfg or {}).get("backend_config") or {}).get("fault_file")
        return OrtPyWrapper(backend_files[0], fault)
