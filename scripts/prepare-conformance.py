#!/usr/bin/env python3
"""Writes ONNX's backend conformance cases to disk, one folder per case, for conformance runs.

Usage: scripts/prepare-conformance.py [--out DIR] [--suite node|models|all] [--force]

  --out DIR      where to write (default: target/conformance under the project root)
  --suite S      node (default): the node (operator) test cases of `onnx.backend.test`;
                 models: the model cases shipped inside the onnx wheel
                 (onnx/backend/test/data/{simple,pytorch-converted,pytorch-operator,light});
                 all: both
  --force        rewrite a suite even if it is already there for this onnx version

The `onnx` wheel no longer ships the node cases as files: they are built in memory by
onnx.backend.test.case.node.collect_testcases() (as onnx's own backend test runner does), and
written here with onnx's own writer (onnx/backend/test/cmd_tools.py, `generate-data`), so each
input/output .pb is a TensorProto, SequenceProto, OptionalProto or MapProto exactly as onnx's
generate-data writes it.

Layout (suite is `node` or `models`):
  DIR/<suite>/index.json                  {"suite", "onnx_version", "count", "cases": [sorted names]}
  DIR/<suite>/<case>/model.onnx
  DIR/<suite>/<case>/test_data_set_<k>/input_<i>.pb, output_<j>.pb
  DIR/<suite>/<case>/case.json            {"name", "suite", "source", "rtol", "atol", "op", "op_types",
                                           "inputs": [{"name", "kind", "elem_type", "type", ...}],
                                           "outputs": [...], ...}
`kind` is tensor|sequence|optional|map; `elem_type` is the ONNX element type name in lower case
(float, bfloat16, float8e4m3fn, string, int4, ...) of the innermost tensor; `type` spells the
whole type (e.g. optional(seq(tensor(float)))). rtol/atol are the ones onnx's runner uses for the
case (node cases carry their own; model cases take the loader's defaults or their data.json).
`op_types` lists every op the model runs (top graph first, then subgraphs), domain-qualified
when not in the default domain (e.g. ai.onnx.ml.TreeEnsemble); `op` is the single node's op for
a one-node model, else the first node's; for a function-expanded node case (`*_expanded*`),
`expanded_from` names the one-node case it expands and `function_op` that case's op.

Light models (data/light) are the runner's `real` cases run offline: the runner feeds them
arange(n)/n float32 inputs (Runner.generate_dummy_data) and compares with the shipped
light_*_output_<i>.pb; the same inputs and outputs are written here. The `real` models themselves
are downloads and are skipped.

Idempotent: a suite whose index.json matches the installed onnx version (and whose case folders
are all there) is skipped. A suite is built in a staging folder and moved into place at the end,
so an interrupted run leaves the previous copy (or nothing) rather than a half-written suite.
"""
import argparse
import json
import os
import shutil
import sys
import time
import warnings

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FORMAT = 1  # bump when the layout or case.json changes, so old copies are rebuilt
MODEL_KINDS = ("simple", "pytorch-converted", "pytorch-operator", "light")


def log(msg):
    """Progress goes to stderr; the summary of what was written goes to stdout."""
    print(msg, file=sys.stderr, flush=True)


def fail(msg):
    print(f"prepare-conformance: error: {msg}", file=sys.stderr)
    sys.exit(1)


try:
    import onnx
    from onnx import TensorProto, numpy_helper

    import numpy as np
except ImportError as e:  # depends on the environment
    fail(
        f"the `onnx` Python package cannot be imported by {sys.executable} ({e}). The conformance "
        "cases come from onnx (onnx.backend.test); run scripts/setup-venv.sh and use "
        ".venv/bin/python, or `pip install onnx` into this Python."
    )


# ---------------------------------------------------------------------------------------------
# Types and case.json


def elem_name(elem_type):
    try:
        return TensorProto.DataType.Name(elem_type).lower()
    except ValueError:
        return f"unknown({elem_type})"


def type_string(tp):
    which = tp.WhichOneof("value")
    if which == "tensor_type":
        return f"tensor({elem_name(tp.tensor_type.elem_type)})"
    if which == "sparse_tensor_type":
        return f"sparse_tensor({elem_name(tp.sparse_tensor_type.elem_type)})"
    if which == "sequence_type":
        return f"seq({type_string(tp.sequence_type.elem_type)})"
    if which == "optional_type":
        return f"optional({type_string(tp.optional_type.elem_type)})"
    if which == "map_type":
        return f"map({elem_name(tp.map_type.key_type)},{type_string(tp.map_type.value_type)})"
    return "undefined"


def innermost_elem(tp):
    which = tp.WhichOneof("value")
    if which == "tensor_type":
        return elem_name(tp.tensor_type.elem_type)
    if which == "sparse_tensor_type":
        return elem_name(tp.sparse_tensor_type.elem_type)
    if which == "sequence_type":
        return innermost_elem(tp.sequence_type.elem_type)
    if which == "optional_type":
        return innermost_elem(tp.optional_type.elem_type)
    if which == "map_type":
        return innermost_elem(tp.map_type.value_type)
    return "undefined"


KINDS = {
    "tensor_type": "tensor",
    "sequence_type": "sequence",
    "optional_type": "optional",
    "map_type": "map",
    "sparse_tensor_type": "sparse_tensor",
}


def describe_value(vi):
    tp = vi.type
    which = tp.WhichOneof("value")
    d = {
        "name": vi.name,
        "kind": KINDS.get(which, "undefined"),
        "elem_type": innermost_elem(tp),
        "type": type_string(tp),
    }
    if which == "tensor_type" and tp.tensor_type.HasField("shape"):
        d["shape"] = [
            dim.dim_value if dim.HasField("dim_value") else (dim.dim_param or None)
            for dim in tp.tensor_type.shape.dim
        ]
    if which == "map_type":
        d["key_type"] = elem_name(tp.map_type.key_type)
    return d


def qualified(node):
    return node.op_type if node.domain in ("", "ai.onnx") else f"{node.domain}.{node.op_type}"


def op_types(graph, out=None):
    """Ops of the graph's nodes in order of appearance (deduplicated), then their subgraphs'."""
    out = [] if out is None else out
    for node in graph.node:
        q = qualified(node)
        if q not in out:
            out.append(q)
    for node in graph.node:
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.GRAPH:
                op_types(attr.g, out)
            elif attr.type == onnx.AttributeProto.GRAPHS:
                for g in attr.graphs:
                    op_types(g, out)
    return out


def case_json(name, suite, source, model, rtol, atol, n_inputs, n_data_sets):
    g = model.graph
    inits = {t.name for t in g.initializer} | {t.values.name for t in g.sparse_initializer}
    fed = [vi for vi in g.input if vi.name not in inits][:n_inputs]
    return {
        "name": name,
        "suite": suite,
        "source": source,
        "rtol": float(rtol),
        "atol": float(atol),
        "op": qualified(g.node[0]) if g.node else "",
        "op_types": op_types(g),
        "inputs": [describe_value(vi) for vi in fed],
        "outputs": [describe_value(vi) for vi in g.output],
        "opset_imports": {(o.domain or "ai.onnx"): o.version for o in model.opset_import},
        "ir_version": model.ir_version,
        "data_sets": n_data_sets,
    }


def write_json(path, obj):
    with open(path, "w") as f:
        json.dump(obj, f, indent=1, sort_keys=False)
        f.write("\n")


# ---------------------------------------------------------------------------------------------
# Writers


def write_with_onnx(cases, out_root):
    """onnx's own writer: cmd_tools.generate_data writes out_root/<case.kind>/<case.name>/ for
    the cases that onnx.backend.test.case.model.collect_testcases() returns; hand it ours."""
    import types

    import onnx.backend.test.cmd_tools as cmd_tools

    saved = cmd_tools.model_test
    cmd_tools.model_test = types.SimpleNamespace(collect_testcases=lambda: list(cases))
    try:
        cmd_tools.generate_data(argparse.Namespace(output=out_root))
    finally:
        cmd_tools.model_test = saved


def _value_proto(value, vi):
    # The same choices as onnx/backend/test/cmd_tools.py generate_data.
    tp = vi.type
    if tp.HasField("map_type"):
        return numpy_helper.from_dict(value, vi.name)
    if tp.HasField("sequence_type"):
        return numpy_helper.from_list(value, vi.name)
    if tp.HasField("optional_type"):
        return numpy_helper.from_optional(value, vi.name)
    assert tp.HasField("tensor_type")
    if isinstance(value, TensorProto):
        return value
    return numpy_helper.from_array(value, vi.name)


def write_mirrored(cases, out_root):
    """Fallback when onnx's cmd_tools cannot be driven (its API changed): the same files."""
    for case in cases:
        d = os.path.join(out_root, case.kind, case.name)
        if os.path.exists(d):
            shutil.rmtree(d)
        os.makedirs(d)
        with open(os.path.join(d, "model.onnx"), "wb") as f:
            f.write(case.model.SerializeToString())
        for i, (inputs, outputs) in enumerate(case.data_sets):
            ds = os.path.join(d, f"test_data_set_{i}")
            os.makedirs(ds)
            for j, v in enumerate(inputs):
                with open(os.path.join(ds, f"input_{j}.pb"), "wb") as f:
                    f.write(_value_proto(v, case.model.graph.input[j]).SerializeToString())
            for j, v in enumerate(outputs):
                with open(os.path.join(ds, f"output_{j}.pb"), "wb") as f:
                    f.write(_value_proto(v, case.model.graph.output[j]).SerializeToString())


def link_or_copy(src, dst):
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


# ---------------------------------------------------------------------------------------------
# Suites


def build_node(stage):
    from onnx.backend.test.case.node import collect_testcases

    t = time.time()
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        # The case generators cast out-of-range values on purpose (saturation tests).
        warnings.simplefilter("ignore")
        cases = collect_testcases()
    # collect_testcases() appends to a module-level list: copy, and guard against duplicates.
    by_name = {}
    for c in cases:
        by_name.setdefault(c.name, c)
    cases = [by_name[n] for n in sorted(by_name)]
    log(f"  collected {len(cases)} node cases from onnx.backend.test ({time.time() - t:.1f}s)")

    writer = write_with_onnx
    chunk = 200
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for start in range(0, len(cases), chunk):
            part = cases[start : start + chunk]
            try:
                writer(part, stage)
            except (AttributeError, TypeError, ImportError) as e:
                if writer is write_mirrored:
                    raise
                log(f"  onnx's cmd_tools writer is not usable ({e!r}); using the mirrored writer")
                writer = write_mirrored
                writer(part, stage)
            log(f"  wrote {min(start + chunk, len(cases))}/{len(cases)}")

    # node cases that are one node: the op of each, for the `_expanded` variants
    single = {c.name: qualified(c.model.graph.node[0]) for c in cases if len(c.model.graph.node) == 1}
    names = []
    for c in cases:
        d = os.path.join(stage, "node", c.name)
        n_inputs = len(c.data_sets[0][0]) if c.data_sets else 0
        cj = case_json(c.name, "node", "node", c.model, c.rtol, c.atol, n_inputs, len(c.data_sets))
        if "_expanded" in c.name:
            base = c.name.split("_expanded")[0]
            if base in single:
                cj["expanded_from"] = base
                cj["function_op"] = single[base]
        write_json(os.path.join(d, "case.json"), cj)
        names.append(c.name)
    return names


def count_files(d, prefix):
    return len([f for f in os.listdir(d) if f.startswith(prefix) and f.endswith(".pb")])


def build_models(stage):
    from onnx.backend.test.loader import DATA_DIR, load_model_tests
    from onnx.backend.test.runner import Runner

    out = os.path.join(stage, "models")
    os.makedirs(out, exist_ok=True)
    names = []
    for kind in MODEL_KINDS[:-1]:
        tests = sorted(load_model_tests(kind=kind), key=lambda t: t.name)
        for t in tests:
            if t.model_dir is None:
                continue
            d = os.path.join(out, t.name)
            if os.path.exists(d):
                fail(f"model case {t.name} is in two of {MODEL_KINDS}")
            shutil.copytree(t.model_dir, d, copy_function=link_or_copy)
            data_sets = sorted(x for x in os.listdir(d) if x.startswith("test_data_set"))
            n_in = count_files(os.path.join(d, data_sets[0]), "input_") if data_sets else 0
            model = onnx.load(os.path.join(d, "model.onnx"), load_external_data=False)
            cj = case_json(t.name, "models", kind, model, t.rtol, t.atol, n_in, len(data_sets))
            write_json(os.path.join(d, "case.json"), cj)
            names.append(t.name)
        log(f"  {kind}: {len(tests)} cases")

    # data/light: the runner's `real` cases, run on the light models with dummy inputs.
    n_light = 0
    light_dir = os.path.join(DATA_DIR, "light")
    for t in sorted(load_model_tests(kind="real"), key=lambda t: t.name):
        prefix = "onnx/backend/test/data/light/"
        if not (t.url or "").startswith(prefix):
            continue
        src = os.path.join(light_dir, os.path.basename(t.url))
        if not os.path.exists(src):
            log(f"  light: {src} missing, {t.name} skipped")
            continue
        d = os.path.join(out, t.name)
        if os.path.exists(d):
            fail(f"light case {t.name} clashes with another model case")
        ds = os.path.join(d, "test_data_set_0")
        os.makedirs(ds)
        link_or_copy(src, os.path.join(d, "model.onnx"))
        model = onnx.load(src)
        inits = {i.name for i in model.graph.initializer}
        feeds, n_in = {}, 0
        for x in model.graph.input:
            if x.name in inits:
                continue
            value = Runner.generate_dummy_data(x, seed=0, name=t.model_name, random=False)
            feeds[x.name] = value
            with open(os.path.join(ds, f"input_{n_in}.pb"), "wb") as f:
                f.write(numpy_helper.from_array(value).SerializeToString())
            n_in += 1
        stem = os.path.splitext(src)[0]
        expected = [f"{stem}_output_{i}.pb" for i in range(len(model.graph.output))]
        if all(os.path.exists(p) for p in expected):
            for i, p in enumerate(expected):
                link_or_copy(p, os.path.join(ds, f"output_{i}.pb"))
        else:  # as the runner does when the light outputs are not shipped
            from onnx.reference import ReferenceEvaluator

            outs = ReferenceEvaluator(model).run(None, feeds)
            for i, o in enumerate(outs):
                with open(os.path.join(ds, f"output_{i}.pb"), "wb") as f:
                    f.write(numpy_helper.from_array(o).SerializeToString())
        cj = case_json(t.name, "models", "light", model, t.rtol, t.atol, n_in, 1)
        write_json(os.path.join(d, "case.json"), cj)
        names.append(t.name)
        n_light += 1
    log(f"  light: {n_light} cases")
    return sorted(names)


BUILDERS = {"node": build_node, "models": build_models}


def up_to_date(suite_dir):
    try:
        with open(os.path.join(suite_dir, "index.json")) as f:
            index = json.load(f)
    except (OSError, ValueError):
        return None
    if index.get("onnx_version") != onnx.__version__ or index.get("format") != FORMAT:
        return None
    for name in index.get("cases", []):
        if not os.path.exists(os.path.join(suite_dir, name, "case.json")):
            return None
    return index


def summarize(suite_dir, names):
    kinds, elems = {}, {}
    for name in names:
        with open(os.path.join(suite_dir, name, "case.json")) as f:
            cj = json.load(f)
        values = cj["inputs"] + cj["outputs"]
        for k in sorted({v["kind"] for v in values} - {"tensor"}):
            kinds[k] = kinds.get(k, 0) + 1
        for e in sorted({v["elem_type"] for v in values}):
            elems[e] = elems.get(e, 0) + 1
    kinds_s = ", ".join(f"{k} {n}" for k, n in sorted(kinds.items())) or "none"
    print(f"  cases with non-tensor inputs/outputs: {kinds_s}")
    print(
        "  cases per element type: "
        + ", ".join(f"{e} {n}" for e, n in sorted(elems.items(), key=lambda x: (-x[1], x[0])))
    )


def remove_stale(out, suite):
    """Staging/old copies left by a run that was killed (its process is gone)."""
    for entry in os.listdir(out):
        for prefix in (f".staging-{suite}-", f".old-{suite}-"):
            pid = entry[len(prefix) :]
            if entry.startswith(prefix) and pid.isdigit():
                try:
                    os.kill(int(pid), 0)
                except ProcessLookupError:
                    shutil.rmtree(os.path.join(out, entry), ignore_errors=True)
                except OSError:
                    pass


def prepare(out, suite, force):
    suite_dir = os.path.join(out, suite)
    t = time.time()
    index = None if force else up_to_date(suite_dir)
    if index is not None:
        print(f"{suite}: {index['count']} cases in {suite_dir} are up to date (onnx {onnx.__version__}); --force to redo")
        return index["count"]
    log(f"{suite}: writing into {suite_dir} (onnx {onnx.__version__})")
    os.makedirs(out, exist_ok=True)
    remove_stale(out, suite)
    stage = os.path.join(out, f".staging-{suite}-{os.getpid()}")
    if os.path.exists(stage):
        shutil.rmtree(stage)
    os.makedirs(stage)
    try:
        names = BUILDERS[suite](stage)
        index = {"suite": suite, "onnx_version": onnx.__version__, "format": FORMAT, "count": len(names), "cases": sorted(names)}
        write_json(os.path.join(stage, suite, "index.json"), index)
        if os.path.exists(suite_dir):
            old = os.path.join(out, f".old-{suite}-{os.getpid()}")
            os.rename(suite_dir, old)
            os.rename(os.path.join(stage, suite), suite_dir)
            shutil.rmtree(old)
        else:
            os.rename(os.path.join(stage, suite), suite_dir)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    summarize(suite_dir, index["cases"])
    print(f"{suite}: {index['count']} cases written to {suite_dir} in {time.time() - t:.1f}s")
    return index["count"]


def main():
    p = argparse.ArgumentParser(
        prog="prepare-conformance.py",
        description="Write onnx's backend conformance cases (node and/or wheel-shipped model cases) to disk.",
    )
    p.add_argument("--out", default=os.path.join(ROOT, "target", "conformance"), help="output folder (default: %(default)s)")
    p.add_argument("--suite", choices=("node", "models", "all"), default="node", help="which cases (default: node)")
    p.add_argument("--force", action="store_true", help="rewrite even if up to date")
    args = p.parse_args()
    t = time.time()
    suites = ("node", "models") if args.suite == "all" else (args.suite,)
    total = sum(prepare(os.path.abspath(args.out), s, args.force) for s in suites)
    if len(suites) > 1:
        print(f"all: {total} cases in {time.time() - t:.1f}s")


if __name__ == "__main__":
    main()
