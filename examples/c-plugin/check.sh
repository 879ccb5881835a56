#!/usr/bin/env bash
# Builds the C plugin with the system C compiler and runs it end to end through a stock rdeploy
# binary: check-env lists it, deploy + infer an MLP (outputs checked against numpy's float64
# reference), `rdeploy compare` against tract passes, and an unsupported model is refused with
# the operator named and no work dir left behind.
#
# usage: examples/c-plugin/check.sh [path/to/rdeploy]   (run from the project root, with the
#        test data prepared by scripts/prepare-test-data.py and the venv's python3 on PATH)
set -euo pipefail
cd "$(dirname "$0")/../.."
rdeploy="${1:-target/debug/rdeploy}"
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
here=examples/c-plugin
data="${RDEPLOY_TEST_DATA:-tests/data/generated}"

cc -std=c11 -O2 -Wall -Wextra -Werror -shared -fPIC -Icrates/plugin/include \
  -o "$out/libcref.so" "$here/cref_plugin.c" -lm
echo "built $out/libcref.so"

fail() { echo "c-plugin check FAILED: $*" >&2; exit 1; }

line="$("$rdeploy" --plugin "$out/libcref.so" check-env | grep '^cref:' || true)"
[[ "$line" == $'cref:\t0.1.0 (plugin '* ]] || fail "check-env with --plugin: '$line'"
line="$(RDEPLOY_PLUGIN_PATH="$out" "$rdeploy" check-env | grep '^cref:' || true)"
[[ "$line" == $'cref:\t0.1.0'* ]] || fail "check-env with RDEPLOY_PLUGIN_PATH: '$line'"

export RDEPLOY_PLUGIN_PATH="$out"
"$rdeploy" deploy "$here/configs/cref.py" "$data/mlp/model.onnx" --work-dir "$out/work"
"$rdeploy" infer "$out/work" --input "x=$data/mlp/test_data_set_0/input_0.pb" --output-dir "$out/y"
python3 - "$out/y/probs.npy" "$data/mlp/test_data_set_0/output_0.pb" <<'PY'
import sys
import numpy as np
from onnx import TensorProto, numpy_helper
got = np.load(sys.argv[1])
t = TensorProto()
t.ParseFromString(open(sys.argv[2], "rb").read())
want = numpy_helper.to_array(t)
# float32 arithmetic against numpy's float64 reference: rtol 1e-5, atol 1e-6.
np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
print(f"cref matches the float64 reference: max |diff| {np.abs(got - want).max():.2e}")
PY
"$rdeploy" compare "$data/mlp/model.onnx" --backends tract,cref --shape batch=7 \
  || fail "compare tract,cref on the MLP"
"$rdeploy" compare "$data/onnx-backend/test_operator_addmm/model.onnx" --backends tract,cref \
  || fail "compare tract,cref on test_operator_addmm"

if err="$("$rdeploy" deploy "$here/configs/cref.py" tests/data/small-cnn.onnx --work-dir "$out/cnn" 2>&1)"; then
  fail "deploying a CNN on cref should fail"
fi
[[ "$err" == *"operator Conv is not supported by cref"* ]] || fail "unsupported op message: $err"
[[ ! -e "$out/cnn/deploy.json" ]] || fail "a failed deploy left a manifest"
echo "c-plugin check passed"
