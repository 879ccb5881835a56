"""The client half of the real-client serving tests: NVIDIA's tritonclient over HTTP and gRPC
against a running KServe v2 server that serves small-cnn.onnx, checking every output against
Python onnxruntime on the source ONNX model. Used for both servers:

- `--server triton` (crates/triton/tests/real_triton.rs): tritonserver with libtriton_rdeploy.so;
- `--server rdeploy` (crates/serve/tests/tritonclient.rs): `rdeploy serve`, plus the checks of
  its own limits (unknown version, malformed JSON, oversized bodies and messages).

Exits non-zero with the reason on the first failure; on success prints one JSON line (the last
line of stdout) with the figures: per batching model, requests sent concurrently vs the
executions the server's statistics count for them.
"""

import argparse
import faulthandler
import json
import sys
import threading

import numpy as np
import onnxruntime as ort
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

# A hung server must not hang the test: dump the stacks and exit after 10 minutes.
faulthandler.dump_traceback_later(600, exit=True)

# small-cnn in float32 on three engines against onnxruntime's CPU kernels: differences are
# rounding only (measured 6e-8 absolute on probabilities).
RTOL, ATOL = 1e-4, 1e-5


def parse_args():
    p = argparse.ArgumentParser()
    p.add_argument("--http", required=True)
    p.add_argument("--grpc", required=True)
    p.add_argument("--onnx", required=True)
    p.add_argument("--batched", required=True, help="comma-separated models with max_batch_size > 0")
    p.add_argument("--plain", required=True, help="a model with max_batch_size 0 and open dims")
    p.add_argument("--other", default="", help="comma-separated further models to check")
    p.add_argument("--threads", type=int, default=16)
    p.add_argument("--per-thread", type=int, default=4)
    p.add_argument("--server", choices=["triton", "rdeploy"], default="triton")
    p.add_argument("--max-request-bytes", type=int, default=0, help="rdeploy serve's body limit")
    return p.parse_args()


def http_infer(client, model, x, binary=True, dtype="FP32"):
    i = httpclient.InferInput("image", list(x.shape), dtype)
    i.set_data_from_numpy(x, binary_data=binary)
    o = httpclient.InferRequestedOutput("probs", binary_data=binary)
    return client.infer(model, [i], outputs=[o]).as_numpy("probs")


def grpc_infer(client, model, x, dtype="FP32"):
    i = grpcclient.InferInput("image", list(x.shape), dtype)
    i.set_data_from_numpy(x)
    o = grpcclient.InferRequestedOutput("probs")
    return client.infer(model, [i], outputs=[o]).as_numpy("probs")


def main():
    a = parse_args()
    session = ort.InferenceSession(a.onnx, providers=["CPUExecutionProvider"])

    def reference(x):
        return session.run(None, {"image": x})[0]

    def check(got, x, what):
        if got is None:
            raise AssertionError(f"{what}: no output 'probs' in the response")
        np.testing.assert_allclose(got, reference(x), rtol=RTOL, atol=ATOL, err_msg=what)

    http = httpclient.InferenceServerClient(a.http, network_timeout=120.0)
    grpc = grpcclient.InferenceServerClient(a.grpc)
    rng = np.random.default_rng(12)
    batched = [m for m in a.batched.split(",") if m]
    others = [m for m in a.other.split(",") if m]
    summary = {"checked": [], "batching": {}, "errors": {}}

    # 1. Every model, both protocols (and HTTP's JSON tensors once): outputs equal onnxruntime's.
    for model in batched + [a.plain] + others:
        if not http.is_model_ready(model) or not grpc.is_model_ready(model):
            raise AssertionError(f"model {model} is not ready")
        for rows in (1, 3):
            x = rng.standard_normal((rows, 3, 32, 32)).astype(np.float32)
            check(http_infer(http, model, x), x, f"{model} over HTTP, batch {rows}")
            check(grpc_infer(grpc, model, x), x, f"{model} over gRPC, batch {rows}")
        summary["checked"].append(model)
    x = rng.standard_normal((2, 3, 32, 32)).astype(np.float32)
    check(http_infer(http, batched[0], x, binary=False), x, f"{batched[0]} over HTTP with JSON")

    # 2. Concurrent clients on each batching model: every answer right, and Triton's dynamic
    # batcher hands the backend several requests per execution.
    for model in batched:
        before = model_stats(http, model)
        failures = []

        def client(t):
            try:
                own_http = httpclient.InferenceServerClient(a.http, network_timeout=120.0)
                own_grpc = grpcclient.InferenceServerClient(a.grpc)
                r = np.random.default_rng(1000 + t)
                for k in range(a.per_thread):
                    x = r.standard_normal((1, 3, 32, 32)).astype(np.float32)
                    if (t + k) % 2:
                        check(http_infer(own_http, model, x), x, f"{model} thread {t} HTTP")
                    else:
                        check(grpc_infer(own_grpc, model, x), x, f"{model} thread {t} gRPC")
            except Exception as e:  # noqa: BLE001 - reported below with the thread
                failures.append(f"thread {t}: {e}")

        threads = [threading.Thread(target=client, args=(t,)) for t in range(a.threads)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if failures:
            raise AssertionError(f"{model}: concurrent requests failed:\n" + "\n".join(failures))
        after = model_stats(http, model)
        sent = a.threads * a.per_thread
        inferences = after["inference_count"] - before["inference_count"]
        executions = after["execution_count"] - before["execution_count"]
        summary["batching"][model] = {
            "requests": sent,
            "inference_count": inferences,
            "execution_count": executions,
            "batch_sizes": after["batch_sizes"],
        }
        if inferences != sent:
            raise AssertionError(f"{model}: {sent} requests sent, Triton counted {inferences}")
        if not executions < inferences:
            raise AssertionError(
                f"{model}: {executions} executions for {inferences} inferences: "
                "the dynamic batcher's requests were not run together"
            )

    # 3. Bad requests get clear errors naming the tensor; the server keeps serving.
    x64 = np.zeros((1, 3, 32, 32), np.float64)
    small = np.zeros((1, 3, 16, 16), np.float32)
    bad = {
        # Triton checks requests against config.pbtxt first...
        "config_dtype_http": lambda: http_infer(http, batched[0], x64, dtype="FP64"),
        "config_dtype_grpc": lambda: grpc_infer(grpc, batched[0], x64, dtype="FP64"),
        "config_shape_http": lambda: http_infer(http, batched[0], small),
        # ...and with open dims in config.pbtxt the backend checks against the deployed model.
        "backend_shape_http": lambda: http_infer(http, a.plain, small),
        "backend_shape_grpc": lambda: grpc_infer(grpc, a.plain, small),
        "backend_rank_http": lambda: http_infer(http, a.plain, np.zeros((3, 32, 32, 1), np.float32)),
    }
    for name, call in bad.items():
        try:
            call()
        except InferenceServerException as e:
            msg = str(e)
            summary["errors"][name] = msg
            if "'image'" not in msg:
                raise AssertionError(f"{name}: the error does not name input 'image': {msg}")
            if a.server == "triton" and name.startswith("backend") and "rdeploy" not in msg:
                raise AssertionError(f"{name}: not the rdeploy backend's error: {msg}")
            continue
        raise AssertionError(f"{name}: the bad request succeeded")
    if a.server == "rdeploy":
        summary["errors"].update(rdeploy_limits(a, http, grpc, batched[0]))
    x = rng.standard_normal((2, 3, 32, 32)).astype(np.float32)
    check(http_infer(http, a.plain, x), x, f"{a.plain} after bad requests")

    print(json.dumps(summary))


def rdeploy_limits(a, http, grpc, model):
    """rdeploy serve's own answers: each bad request gets the status and a message naming it."""
    import urllib.error
    import urllib.request

    def post(path, body, headers=None):
        req = urllib.request.Request(f"http://{a.http}{path}", data=body, headers=headers or {}, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    seen = {}
    x = np.zeros((1, 3, 32, 32), np.float32)
    cases = {
        "unknown_version_http": (lambda: post(f"/v2/models/{model}/versions/9/infer", b"{}"), 404, "no version '9'"),
        "unknown_model_http": (lambda: post("/v2/models/nope/infer", b"{}"), 404, "unknown model 'nope'"),
        "malformed_json_http": (lambda: post(f"/v2/models/{model}/infer", b"{\"inputs\": [}"), 400, "malformed"),
    }
    for name, (call, status, want) in cases.items():
        got, body = call()
        msg = json.loads(body).get("error", "")
        if got != status or want not in msg:
            raise AssertionError(f"{name}: got {got} {msg!r}, expected {status} with {want!r}")
        seen[name] = msg
    # An oversized body through the official client (which reads the early 413 while sending).
    big = np.zeros((a.max_request_bytes // 12288 + 1, 3, 32, 32), np.float32)
    try:
        http_infer(http, model, big)
        raise AssertionError("oversized_http: the oversized request succeeded")
    except InferenceServerException as e:
        if "413" not in str(e.status()) or "larger than" not in str(e):
            raise AssertionError(f"oversized_http: got {e.status()} {e}, expected 413")
        seen["oversized_http"] = str(e)
    grpc_cases = {
        "unknown_version_grpc": (lambda: grpc.infer(model, [grpc_input(x)], model_version="9"), "NOT_FOUND"),
        "unknown_model_grpc": (lambda: grpc.infer("nope", [grpc_input(x)]), "NOT_FOUND"),
        "oversized_grpc": (lambda: grpc.infer(model, [grpc_input(np.zeros((a.max_request_bytes // 4 // 3072 + 1, 3, 32, 32), np.float32))]), "OUT_OF_RANGE"),
    }
    for name, (call, code) in grpc_cases.items():
        try:
            call()
        except InferenceServerException as e:
            if code not in str(e.status()):
                raise AssertionError(f"{name}: got {e.status()} {e}, expected {code}")
            seen[name] = str(e)
            continue
        raise AssertionError(f"{name}: the bad request succeeded")
    return seen


def grpc_input(x):
    i = grpcclient.InferInput("image", list(x.shape), "FP32")
    i.set_data_from_numpy(x)
    return i


def model_stats(http, model):
    s = http.get_inference_statistics(model)["model_stats"][0]
    return {
        "inference_count": int(s["inference_count"]),
        "execution_count": int(s["execution_count"]),
        "batch_sizes": {int(b["batch_size"]): int(b["compute_infer"]["count"]) for b in s["batch_stats"]},
    }


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # noqa: BLE001 - one readable line for the Rust test
        print(f"kserve_client.py: {type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(1)
