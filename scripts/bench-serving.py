#!/usr/bin/env python3
"""Load test, side by side on loopback: `rdeploy serve` vs Triton with rdeploy's backend
(libtriton_rdeploy.so) vs Triton's Python backend running Python onnxruntime.

Same model, same engine (ONNX Runtime) and the same engine threads everywhere; the same
request (KServe v2 HTTP infer with the binary tensor data extension) is sent by `wrk` (Debian's
HTTP load generator) at each concurrency level, with dynamic batching on and off. Before the
load, each server's answer is checked against Python onnxruntime with tritonclient.

    .venv/bin/python scripts/bench-serving.py [--model M.onnx] [--levels 1,4,16,64]
        [--duration 30] [--threads 1] [--json out.json] [--markdown out.md]

Needs: target/release/rdeploy and target/release/libtriton_rdeploy.so (cargo build --release
-p rdeploy-cli -p rdeploy-triton), scripts/install-triton.sh (tritonserver, tritonclient), wrk
(apt-get install wrk). Triton's Python backend needs numpy < 2 where model.py imports from:
this script makes .venv-triton-py (numpy 1.26, onnxruntime) for it on first use.
"""

import argparse
import json
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
PY_ENV = ROOT / ".venv-triton-py"
PY_ENV_PACKAGES = ["numpy==1.26.4", "onnxruntime==1.32.0"]

MODEL_PY = '''
import json, os
import numpy as np
import onnxruntime as ort
import triton_python_backend_utils as pb_utils

class TritonPythonModel:
    def initialize(self, args):
        cfg = json.loads(args["model_config"])
        here = os.path.join(args["model_repository"], args["model_version"])
        so = ort.SessionOptions()
        so.intra_op_num_threads = int(cfg["parameters"]["threads"]["string_value"])
        so.inter_op_num_threads = 1
        self.sess = ort.InferenceSession(os.path.join(here, "model.onnx"), so,
                                         providers=["CPUExecutionProvider"])
        self.inp = cfg["input"][0]["name"]
        self.outs = [o["name"] for o in cfg["output"]]

    def execute(self, requests):
        # Dynamic batching hands several requests at once: one engine call for all of them.
        xs = [pb_utils.get_input_tensor_by_name(r, self.inp).as_numpy() for r in requests]
        ys = self.sess.run(self.outs, {self.inp: np.concatenate(xs)})
        responses, at = [], 0
        for x in xs:
            n = x.shape[0]
            responses.append(pb_utils.InferenceResponse(
                [pb_utils.Tensor(name, y[at:at + n]) for name, y in zip(self.outs, ys)]))
            at += n
        return responses
'''

WRK_LUA = '''
wrk.method = "POST"
local f = assert(io.open("{body}", "rb"))
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/octet-stream"
wrk.headers["Inference-Header-Content-Length"] = "{header_len}"
local non2xx = 0
function response(status, headers, body)
  if status ~= 200 then non2xx = non2xx + 1 end
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'RESULT {{"requests": %d, "duration_us": %d, "p50_us": %d, "p90_us": %d, "p99_us": %d, ' ..
    '"mean_us": %f, "connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.mean, e.connect, e.read, e.write, e.status, e.timeout))
end
'''


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, **kw)


def ensure_python_backend_env():
    if not (PY_ENV / "bin" / "python").exists():
        print(f"making {PY_ENV} for Triton's Python backend (numpy < 2) ...", file=sys.stderr)
        run([sys.executable, "-m", "venv", str(PY_ENV)])
    run([str(PY_ENV / "bin" / "python"), "-m", "pip", "install", "--quiet",
         "--disable-pip-version-check", *PY_ENV_PACKAGES])


def triton_paths():
    # pytriton is installed with --no-deps for its server binary only: find it, never import it.
    import importlib.util
    spec = importlib.util.find_spec("pytriton")
    if spec is None:
        raise SystemExit("nvidia-pytriton is missing: run scripts/install-triton.sh")
    root = pathlib.Path(spec.submodule_search_locations[0]) / "tritonserver"
    return root, root.parent.parent / "nvidia_pytriton.libs"


def wait_ready(port, proc, what, timeout=180):
    import urllib.request
    start = time.time()
    while time.time() - start < timeout:
        if proc.poll() is not None:
            raise SystemExit(f"{what} exited with {proc.returncode} before it was ready")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/health/ready", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise SystemExit(f"{what} not ready after {timeout} s")


def check_outputs(port, model, onnx, shape):
    import numpy as np
    import onnxruntime as ort
    import tritonclient.http as th
    x = np.random.default_rng(0).random(shape, dtype=np.float32)
    sess = ort.InferenceSession(str(onnx), providers=["CPUExecutionProvider"])
    want = sess.run(None, {sess.get_inputs()[0].name: x})
    c = th.InferenceServerClient(f"127.0.0.1:{port}")
    i = th.InferInput(sess.get_inputs()[0].name, list(shape), "FP32")
    i.set_data_from_numpy(x)
    r = c.infer(model, [i])
    for o, w in zip(sess.get_outputs(), want):
        np.testing.assert_allclose(r.as_numpy(o.name), w, rtol=1e-4, atol=1e-5)


def body_file(tmp, input_name, shape, output_names):
    import numpy as np
    x = np.random.default_rng(1).random(shape, dtype=np.float32)
    header = json.dumps({
        "inputs": [{"name": input_name, "datatype": "FP32", "shape": list(shape),
                    "parameters": {"binary_data_size": x.nbytes}}],
        "outputs": [{"name": n, "parameters": {"binary_data": True}} for n in output_names],
    }).encode()
    path = tmp / "body.bin"
    path.write_bytes(header + x.tobytes())
    return path, len(header)


def load(port, model, lua, conns, duration):
    threads = min(conns, 2)
    out = subprocess.run(
        ["wrk", "-t", str(threads), "-c", str(conns), "-d", f"{max(1, round(duration))}s", "--timeout", "30s",
         "-s", str(lua), f"http://127.0.0.1:{port}/v2/models/{model}/infer"],
        capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"wrk failed: {out.stderr or out.stdout}")
    out = out.stdout
    line = next(l for l in out.splitlines() if l.startswith("RESULT "))
    r = json.loads(line[len("RESULT "):])
    r["throughput"] = r["requests"] / (r["duration_us"] / 1e6)
    r["failed"] = r["connect"] + r["read"] + r["write"] + r["status"] + r["timeout"]
    return r


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", type=pathlib.Path, default=ROOT / "target/bench-models/resnet18.onnx")
    ap.add_argument("--levels", default="1,2,4,8,16,32,64")
    ap.add_argument("--duration", type=int, default=30, help="seconds per level and server")
    ap.add_argument("--threads", type=int, default=1, help="engine intra-op threads, everywhere")
    ap.add_argument("--max-batch-size", type=int, default=8)
    ap.add_argument("--queue-delay-us", type=int, default=2000)
    ap.add_argument("--rdeploy", type=pathlib.Path, default=ROOT / "target/release/rdeploy")
    ap.add_argument("--backend-lib", type=pathlib.Path,
                    default=ROOT / "target/release/libtriton_rdeploy.so")
    ap.add_argument("--json", type=pathlib.Path)
    ap.add_argument("--markdown", type=pathlib.Path)
    a = ap.parse_args()
    levels = [int(x) for x in a.levels.split(",")]
    for need in (a.rdeploy, a.backend_lib, a.model):
        if not need.exists():
            raise SystemExit(f"{need} is missing (see this script's docstring)")
    if not shutil.which("wrk"):
        raise SystemExit("wrk is missing: apt-get install wrk")
    ensure_python_backend_env()
    triton_root, triton_libs = triton_paths()
    import onnx
    m = onnx.load(str(a.model), load_external_data=False)
    inp = m.graph.input[0]
    dims = [d.dim_value or 1 for d in inp.type.tensor_type.shape.dim]
    outputs = [o.name for o in m.graph.output]

    tmp = pathlib.Path(tempfile.mkdtemp(prefix="bench-serving-"))
    procs = []
    try:
        cfg = tmp / "ort.py"
        cfg.write_text("backend_config = dict(type='onnxruntime', common_config=dict("
                       f"intra_op_num_threads={a.threads}, inter_op_num_threads=1))\n")
        onnx_cfg = tmp / "dyn.py"
        onnx_cfg.write_text(f"_base_ = ['{cfg}']\nonnx_config = dict(dynamic_axes={{'{inp.name}': {{0: 'batch'}}, "
                            + ", ".join(f"'{o}': {{0: 'batch'}}" for o in outputs) + "})\n")
        wd = tmp / "wd"
        run([str(a.rdeploy), "--log-level", "warn", "deploy", str(onnx_cfg), str(a.model), "--work-dir", str(wd)],
            stdout=subprocess.DEVNULL)
        repo = tmp / "repo"
        for name, batching in (("rd_batch", True), ("rd_nobatch", False)):
            run([str(a.rdeploy), "export", "triton", str(wd), "--repo", str(repo), "--name", name,
                 "--max-batch-size", str(a.max_batch_size), "--max-queue-delay-us",
                 str(a.queue_delay_us)] + (["--dynamic-batching"] if batching else []),
                stdout=subprocess.DEVNULL)
        # Triton's Python backend entries: the same ONNX file, same threads, same batching.
        triton_repo = tmp / "triton-repo"
        shutil.copytree(repo, triton_repo)
        for name, batching in (("py_batch", True), ("py_nobatch", False)):
            d = triton_repo / name
            (d / "1").mkdir(parents=True)
            shutil.copy(wd / "end2end.onnx", d / "1" / "model.onnx")
            (d / "1" / "model.py").write_text(MODEL_PY)
            rd = (repo / "rd_batch" / "config.pbtxt").read_text()
            io = rd[rd.index("input"):rd.index("instance_group")]
            (d / "config.pbtxt").write_text(
                f'name: "{name}"\nbackend: "python"\nmax_batch_size: {a.max_batch_size}\n{io}'
                'instance_group: [{ count: 1 kind: KIND_CPU }]\n'
                f'parameters: {{ key: "threads" value: {{ string_value: "{a.threads}" }} }}\n'
                + (f"dynamic_batching {{ max_queue_delay_microseconds: {a.queue_delay_us} }}\n"
                   if batching else ""))
        backends = tmp / "backends"
        (backends / "rdeploy").mkdir(parents=True)
        shutil.copy(a.backend_lib, backends / "rdeploy" / "libtriton_rdeploy.so")
        shutil.copytree(triton_root / "backends" / "python", backends / "python")
        shutil.copy(triton_root / "python_backend_stubs" / "3.11" / "triton_python_backend_stub",
                    backends / "python" / "triton_python_backend_stub")

        env = dict(os.environ, VIRTUAL_ENV=str(ROOT / ".venv"))
        rd_http = free_port()
        rd = subprocess.Popen([str(a.rdeploy), "serve", str(repo), "--port", str(rd_http),
                               "--grpc-port", str(free_port()), "--queue-size", "1024"],
                              env=env, stdout=subprocess.DEVNULL, stderr=open(tmp / "rdeploy.log", "w"))
        procs.append(rd)
        tr_http = free_port()
        tenv = dict(env,
                    LD_LIBRARY_PATH=f"{triton_libs}:{env.get('LD_LIBRARY_PATH', '')}",
                    PATH=f"{PY_ENV / 'bin'}:{env['PATH']}",
                    PYTHONPATH=str(next((PY_ENV / "lib").glob("python3*/site-packages"))))
        tr = subprocess.Popen([str(triton_root / "bin" / "tritonserver"),
                               f"--model-repository={triton_repo}",
                               f"--backend-directory={backends}",
                               f"--http-port={tr_http}", f"--grpc-port={free_port()}",
                               f"--metrics-port={free_port()}"],
                              env=tenv, stdout=open(tmp / "triton.log", "w"), stderr=subprocess.STDOUT)
        procs.append(tr)
        wait_ready(rd_http, rd, "rdeploy serve")
        wait_ready(tr_http, tr, f"tritonserver (log: {tmp / 'triton.log'})")

        shape = [1] + dims[1:]
        servers = [("rdeploy serve", rd_http, "rd"), ("Triton + rdeploy backend", tr_http, "rd"),
                   ("Triton + Python backend (onnxruntime)", tr_http, "py")]
        for _, port, prefix in servers:
            for suffix in ("batch", "nobatch"):
                check_outputs(port, f"{prefix}_{suffix}", a.model, shape)
        body, header_len = body_file(tmp, inp.name, shape, outputs)
        lua = tmp / "infer.lua"
        lua.write_text(WRK_LUA.format(body=body, header_len=header_len))

        rows = []
        total = len(levels) * len(servers) * 2
        done = 0
        for batching in ("batch", "nobatch"):
            for c in levels:
                # Interleaved: each level runs on every server before the next level.
                for label, port, prefix in servers:
                    r = load(port, f"{prefix}_{batching}", lua, c, a.duration)
                    r.update(server=label, batching=batching == "batch", concurrency=c)
                    rows.append(r)
                    done += 1
                    print(f"[{done}/{total}] {label:40s} batching={batching:7s} c={c:3d} "
                          f"{r['throughput']:8.1f} req/s  p50 {r['p50_us'] / 1000:7.2f} ms  "
                          f"p99 {r['p99_us'] / 1000:7.2f} ms  failed {r['failed']}", file=sys.stderr)
        meta = {"model": str(a.model.name), "input_shape": shape, "engine_threads": a.threads,
                "max_batch_size": a.max_batch_size, "max_queue_delay_us": a.queue_delay_us,
                "duration_s": a.duration, "levels": levels}
        if a.json:
            a.json.write_text(json.dumps({"settings": meta, "rows": rows}, indent=2))
        md = [f"Model {meta['model']} {shape}, ONNX Runtime with {a.threads} intra-op thread(s) in every "
              f"server, max_batch_size {a.max_batch_size}, max_queue_delay {a.queue_delay_us} us, "
              f"wrk {a.duration:g} s per level, KServe v2 HTTP with binary tensors.", "",
              "| batching | clients | server | req/s | p50 ms | p99 ms | failed |",
              "|---|---|---|---|---|---|---|"]
        for r in rows:
            md.append(f"| {'on' if r['batching'] else 'off'} | {r['concurrency']} | {r['server']} | "
                      f"{r['throughput']:.1f} | {r['p50_us'] / 1000:.2f} | {r['p99_us'] / 1000:.2f} | "
                      f"{r['failed']} |")
        text = "\n".join(md) + "\n"
        if a.markdown:
            a.markdown.write_text(text)
        print(text)
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
