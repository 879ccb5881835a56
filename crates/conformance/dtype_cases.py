"""Writes ONNX's own node test cases whose inputs or outputs have the element types rdeploy
added (string, bfloat16, float8, float8e8m0, int4, uint4, float4e2m1, int2, uint2) in ONNX's
backend-test layout: <out>/<case>/model.onnx and test_data_set_N/{input,output}_K.pb, as onnx's
`backend-test-tools generate-data` does.

Usage: python dtype_cases.py OUT_DIR [OP_TYPE...]   (no op types: every op)
Prints the names of the cases written, one a line.
"""

import os
import sys

import onnx.backend.test.case.node as node
from onnx import TensorProto, numpy_helper

NEW_TYPES = {
    TensorProto.STRING, TensorProto.BFLOAT16, TensorProto.FLOAT8E4M3FN,
    TensorProto.FLOAT8E4M3FNUZ, TensorProto.FLOAT8E5M2, TensorProto.FLOAT8E5M2FNUZ,
    TensorProto.FLOAT8E8M0, TensorProto.UINT4, TensorProto.INT4, TensorProto.FLOAT4E2M1,
    TensorProto.UINT2, TensorProto.INT2,
}


def elem_types(values):
    for v in values:
        if v.type.HasField("tensor_type"):
            yield v.type.tensor_type.elem_type
        else:
            yield None  # sequences, maps, optionals: not tensors


def main():
    import warnings

    warnings.simplefilter("ignore")
    out, ops = sys.argv[1], set(sys.argv[2:])
    for case in node.collect_testcases(None):
        g = case.model.graph
        if ops and not ops.intersection(n.op_type for n in g.node):
            continue
        if True:
            types = list(elem_types(list(g.input) + list(g.output)))
            if None in types or not NEW_TYPES.intersection(types):
                continue
            d = os.path.join(out, case.name)
            os.makedirs(d, exist_ok=True)
            with open(os.path.join(d, "model.onnx"), "wb") as f:
                f.write(case.model.SerializeToString())
            for i, (inputs, outputs) in enumerate(case.data_sets):
                ds = os.path.join(d, f"test_data_set_{i}")
                os.makedirs(ds, exist_ok=True)
                for prefix, values, infos in (("input", inputs, g.input), ("output", outputs, g.output)):
                    for j, v in enumerate(values):
                        t = v if isinstance(v, TensorProto) else numpy_helper.from_array(v, infos[j].name)
                        with open(os.path.join(ds, f"{prefix}_{j}.pb"), "wb") as f:
                            f.write(t.SerializeToString())
            print(case.name)


if __name__ == "__main__":
    main()
