/*
 * Prints the layout ort_c_api_subset.h gives, one `name value` line each: byte offsets of the
 * OrtApi / OrtApiBase / OrtCustomOp fields myops.c uses, and the enum values it passes. rdeploy's
 * test `custom_op_header_matches_ort_sys` compares every line with the `ort-sys` bindings.
 */
#include "ort_c_api_subset.h"

#include <stdio.h>

#define API(f) printf("OrtApi.%s %zu\n", #f, offsetof(OrtApi, f));
#define BASE(f) printf("OrtApiBase.%s %zu\n", #f, offsetof(OrtApiBase, f));
#define OP(f) printf("OrtCustomOp.%s %zu\n", #f, offsetof(OrtCustomOp, f));

int main(void) {
  API(CreateStatus)
  API(CreateCustomOpDomain)
  API(CustomOpDomain_Add)
  API(AddCustomOpDomain)
  API(GetTensorMutableData)
  API(GetDimensionsCount)
  API(GetDimensions)
  API(GetTensorShapeElementCount)
  API(GetTensorTypeAndShape)
  API(KernelInfoGetAttribute_float)
  API(KernelContext_GetInput)
  API(KernelContext_GetOutput)
  API(ReleaseStatus)
  API(ReleaseTensorTypeAndShapeInfo)
  API(ReleaseCustomOpDomain)
  BASE(GetApi)
  BASE(GetVersionString)
  OP(version)
  OP(CreateKernel)
  OP(GetName)
  OP(GetExecutionProviderType)
  OP(GetInputType)
  OP(GetInputTypeCount)
  OP(GetOutputType)
  OP(GetOutputTypeCount)
  OP(KernelCompute)
  OP(KernelDestroy)
  OP(GetInputCharacteristic)
  OP(GetOutputCharacteristic)
  OP(GetInputMemoryType)
  OP(GetVariadicInputMinArity)
  OP(GetVariadicInputHomogeneity)
  OP(GetVariadicOutputMinArity)
  OP(GetVariadicOutputHomogeneity)
  OP(CreateKernelV2)
  OP(KernelComputeV2)
  OP(InferOutputShapeFn)
  OP(GetStartVersion)
  OP(GetEndVersion)
  printf("enum.ORT_FAIL %d\n", (int)ORT_FAIL);
  printf("enum.ORT_INVALID_ARGUMENT %d\n", (int)ORT_INVALID_ARGUMENT);
  printf("enum.ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT %d\n", (int)ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT);
  printf("enum.INPUT_OUTPUT_REQUIRED %d\n", (int)INPUT_OUTPUT_REQUIRED);
  printf("enum.OrtMemTypeDefault %d\n", (int)OrtMemTypeDefault);
  return 0;
}
