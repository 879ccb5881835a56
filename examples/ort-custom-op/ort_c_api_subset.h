/*
 * The part of ONNX Runtime's C API (onnxruntime_c_api.h) that myops.c uses, declared here
 * because neither the onnxruntime wheel nor the `ort` crates ship the header.
 *
 * ABI rules this relies on (ONNX Runtime's compatibility promise): OrtApi is a struct of
 * function pointers that only ever grows at the end, and OrtCustomOp fields are read only up
 * to the `version` the op declares. So a prefix of OrtApi, with the functions not used here
 * kept as placeholder slots of the same size, is the real layout; every slot below carries its
 * index and name in the real header. The order was taken from the `ort-sys` crate's bindings
 * (generated from the real header), and `layout_check.c` prints the offsets this file gives,
 * which rdeploy's test `custom_op_header_matches_ort_sys` compares with `ort_sys` field by
 * field, so a wrong slot fails a test instead of calling the wrong function.
 *
 * Use the real onnxruntime_c_api.h for anything beyond this example.
 */
#ifndef RDEPLOY_ORT_C_API_SUBSET_H
#define RDEPLOY_ORT_C_API_SUBSET_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The API version this file describes: ONNX Runtime 1.17's (every function used here is older).
 * A newer runtime serves older versions of the struct unchanged. */
#define RDEPLOY_ORT_API_VERSION 17

#if defined(_WIN32)
#define ORT_API_CALL __stdcall
#define RDEPLOY_EXPORT __declspec(dllexport)
#else
#define ORT_API_CALL
#define RDEPLOY_EXPORT __attribute__((visibility("default")))
#endif

typedef struct OrtStatus OrtStatus;
typedef struct OrtSessionOptions OrtSessionOptions;
typedef struct OrtCustomOpDomain OrtCustomOpDomain;
typedef struct OrtKernelInfo OrtKernelInfo;
typedef struct OrtKernelContext OrtKernelContext;
typedef struct OrtValue OrtValue;
typedef struct OrtTensorTypeAndShapeInfo OrtTensorTypeAndShapeInfo;
typedef struct OrtShapeInferContext OrtShapeInferContext;
typedef struct OrtCustomOp OrtCustomOp;

typedef enum OrtErrorCode {
  ORT_OK = 0,
  ORT_FAIL = 1,
  ORT_INVALID_ARGUMENT = 2
  /* ... further codes are not used here */
} OrtErrorCode;

typedef enum ONNXTensorElementDataType {
  ONNX_TENSOR_ELEMENT_DATA_TYPE_UNDEFINED = 0,
  ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT = 1
  /* ... further types are not used here */
} ONNXTensorElementDataType;

typedef enum OrtCustomOpInputOutputCharacteristic {
  INPUT_OUTPUT_REQUIRED = 0,
  INPUT_OUTPUT_OPTIONAL = 1,
  INPUT_OUTPUT_VARIADIC = 2
} OrtCustomOpInputOutputCharacteristic;

typedef enum OrtMemType {
  OrtMemTypeCPUInput = -2,
  OrtMemTypeCPUOutput = -1,
  OrtMemTypeDefault = 0
} OrtMemType;

/* A function of the real API that this file does not use: a pointer of the same size. */
#define ORT_SLOT(name) void (*name)(void);

typedef struct OrtApi {
  /* 0 */ OrtStatus*(ORT_API_CALL* CreateStatus)(OrtErrorCode code, const char* msg);
  /* 1 */ ORT_SLOT(GetErrorCode)
  /* 2 */ ORT_SLOT(GetErrorMessage)
  /* 3 */ ORT_SLOT(CreateEnv)
  /* 4 */ ORT_SLOT(CreateEnvWithCustomLogger)
  /* 5 */ ORT_SLOT(EnableTelemetryEvents)
  /* 6 */ ORT_SLOT(DisableTelemetryEvents)
  /* 7 */ ORT_SLOT(CreateSession)
  /* 8 */ ORT_SLOT(CreateSessionFromArray)
  /* 9 */ ORT_SLOT(Run)
  /* 10 */ ORT_SLOT(CreateSessionOptions)
  /* 11 */ ORT_SLOT(SetOptimizedModelFilePath)
  /* 12 */ ORT_SLOT(CloneSessionOptions)
  /* 13 */ ORT_SLOT(SetSessionExecutionMode)
  /* 14 */ ORT_SLOT(EnableProfiling)
  /* 15 */ ORT_SLOT(DisableProfiling)
  /* 16 */ ORT_SLOT(EnableMemPattern)
  /* 17 */ ORT_SLOT(DisableMemPattern)
  /* 18 */ ORT_SLOT(EnableCpuMemArena)
  /* 19 */ ORT_SLOT(DisableCpuMemArena)
  /* 20 */ ORT_SLOT(SetSessionLogId)
  /* 21 */ ORT_SLOT(SetSessionLogVerbosityLevel)
  /* 22 */ ORT_SLOT(SetSessionLogSeverityLevel)
  /* 23 */ ORT_SLOT(SetSessionGraphOptimizationLevel)
  /* 24 */ ORT_SLOT(SetIntraOpNumThreads)
  /* 25 */ ORT_SLOT(SetInterOpNumThreads)
  /* 26 */ OrtStatus*(ORT_API_CALL* CreateCustomOpDomain)(const char* domain, OrtCustomOpDomain** out);
  /* 27 */ OrtStatus*(ORT_API_CALL* CustomOpDomain_Add)(OrtCustomOpDomain* custom_op_domain, const OrtCustomOp* op);
  /* 28 */ OrtStatus*(ORT_API_CALL* AddCustomOpDomain)(OrtSessionOptions* options, OrtCustomOpDomain* custom_op_domain);
  /* 29 */ ORT_SLOT(RegisterCustomOpsLibrary)
  /* 30 */ ORT_SLOT(SessionGetInputCount)
  /* 31 */ ORT_SLOT(SessionGetOutputCount)
  /* 32 */ ORT_SLOT(SessionGetOverridableInitializerCount)
  /* 33 */ ORT_SLOT(SessionGetInputTypeInfo)
  /* 34 */ ORT_SLOT(SessionGetOutputTypeInfo)
  /* 35 */ ORT_SLOT(SessionGetOverridableInitializerTypeInfo)
  /* 36 */ ORT_SLOT(SessionGetInputName)
  /* 37 */ ORT_SLOT(SessionGetOutputName)
  /* 38 */ ORT_SLOT(SessionGetOverridableInitializerName)
  /* 39 */ ORT_SLOT(CreateRunOptions)
  /* 40 */ ORT_SLOT(RunOptionsSetRunLogVerbosityLevel)
  /* 41 */ ORT_SLOT(RunOptionsSetRunLogSeverityLevel)
  /* 42 */ ORT_SLOT(RunOptionsSetRunTag)
  /* 43 */ ORT_SLOT(RunOptionsGetRunLogVerbosityLevel)
  /* 44 */ ORT_SLOT(RunOptionsGetRunLogSeverityLevel)
  /* 45 */ ORT_SLOT(RunOptionsGetRunTag)
  /* 46 */ ORT_SLOT(RunOptionsSetTerminate)
  /* 47 */ ORT_SLOT(RunOptionsUnsetTerminate)
  /* 48 */ ORT_SLOT(CreateTensorAsOrtValue)
  /* 49 */ ORT_SLOT(CreateTensorWithDataAsOrtValue)
  /* 50 */ ORT_SLOT(IsTensor)
  /* 51 */ OrtStatus*(ORT_API_CALL* GetTensorMutableData)(OrtValue* value, void** out);
  /* 52 */ ORT_SLOT(FillStringTensor)
  /* 53 */ ORT_SLOT(GetStringTensorDataLength)
  /* 54 */ ORT_SLOT(GetStringTensorContent)
  /* 55 */ ORT_SLOT(CastTypeInfoToTensorInfo)
  /* 56 */ ORT_SLOT(GetOnnxTypeFromTypeInfo)
  /* 57 */ ORT_SLOT(CreateTensorTypeAndShapeInfo)
  /* 58 */ ORT_SLOT(SetTensorElementType)
  /* 59 */ ORT_SLOT(SetDimensions)
  /* 60 */ ORT_SLOT(GetTensorElementType)
  /* 61 */ OrtStatus*(ORT_API_CALL* GetDimensionsCount)(const OrtTensorTypeAndShapeInfo* info, size_t* out);
  /* 62 */ OrtStatus*(ORT_API_CALL* GetDimensions)(const OrtTensorTypeAndShapeInfo* info, int64_t* dim_values, size_t dim_values_length);
  /* 63 */ ORT_SLOT(GetSymbolicDimensions)
  /* 64 */ OrtStatus*(ORT_API_CALL* GetTensorShapeElementCount)(const OrtTensorTypeAndShapeInfo* info, size_t* out);
  /* 65 */ OrtStatus*(ORT_API_CALL* GetTensorTypeAndShape)(const OrtValue* value, OrtTensorTypeAndShapeInfo** out);
  /* 66 */ ORT_SLOT(GetTypeInfo)
  /* 67 */ ORT_SLOT(GetValueType)
  /* 68 */ ORT_SLOT(CreateMemoryInfo)
  /* 69 */ ORT_SLOT(CreateCpuMemoryInfo)
  /* 70 */ ORT_SLOT(CompareMemoryInfo)
  /* 71 */ ORT_SLOT(MemoryInfoGetName)
  /* 72 */ ORT_SLOT(MemoryInfoGetId)
  /* 73 */ ORT_SLOT(MemoryInfoGetMemType)
  /* 74 */ ORT_SLOT(MemoryInfoGetType)
  /* 75 */ ORT_SLOT(AllocatorAlloc)
  /* 76 */ ORT_SLOT(AllocatorFree)
  /* 77 */ ORT_SLOT(AllocatorGetInfo)
  /* 78 */ ORT_SLOT(GetAllocatorWithDefaultOptions)
  /* 79 */ ORT_SLOT(AddFreeDimensionOverride)
  /* 80 */ ORT_SLOT(GetValue)
  /* 81 */ ORT_SLOT(GetValueCount)
  /* 82 */ ORT_SLOT(CreateValue)
  /* 83 */ ORT_SLOT(CreateOpaqueValue)
  /* 84 */ ORT_SLOT(GetOpaqueValue)
  /* 85 */ OrtStatus*(ORT_API_CALL* KernelInfoGetAttribute_float)(const OrtKernelInfo* info, const char* name, float* out);
  /* 86 */ ORT_SLOT(KernelInfoGetAttribute_int64)
  /* 87 */ ORT_SLOT(KernelInfoGetAttribute_string)
  /* 88 */ ORT_SLOT(KernelContext_GetInputCount)
  /* 89 */ ORT_SLOT(KernelContext_GetOutputCount)
  /* 90 */ OrtStatus*(ORT_API_CALL* KernelContext_GetInput)(const OrtKernelContext* context, size_t index, const OrtValue** out);
  /* 91 */ OrtStatus*(ORT_API_CALL* KernelContext_GetOutput)(OrtKernelContext* context, size_t index, const int64_t* dim_values, size_t dim_count, OrtValue** out);
  /* 92 */ ORT_SLOT(ReleaseEnv)
  /* 93 */ void(ORT_API_CALL* ReleaseStatus)(OrtStatus* input);
  /* 94 */ ORT_SLOT(ReleaseMemoryInfo)
  /* 95 */ ORT_SLOT(ReleaseSession)
  /* 96 */ ORT_SLOT(ReleaseValue)
  /* 97 */ ORT_SLOT(ReleaseRunOptions)
  /* 98 */ ORT_SLOT(ReleaseTypeInfo)
  /* 99 */ void(ORT_API_CALL* ReleaseTensorTypeAndShapeInfo)(OrtTensorTypeAndShapeInfo* input);
  /* 100 */ ORT_SLOT(ReleaseSessionOptions)
  /* 101 */ void(ORT_API_CALL* ReleaseCustomOpDomain)(OrtCustomOpDomain* input);
  /* ... later functions are not used here */
} OrtApi;

typedef struct OrtApiBase {
  const OrtApi*(ORT_API_CALL* GetApi)(uint32_t version);
  const char*(ORT_API_CALL* GetVersionString)(void);
} OrtApiBase;

/* A custom operator, as of API version 17 (fields past GetEndVersion came in later versions and
 * are not read for an op that declares version 17). */
struct OrtCustomOp {
  uint32_t version;
  void*(ORT_API_CALL* CreateKernel)(const struct OrtCustomOp* op, const OrtApi* api,
                                    const OrtKernelInfo* info);
  const char*(ORT_API_CALL* GetName)(const struct OrtCustomOp* op);
  const char*(ORT_API_CALL* GetExecutionProviderType)(const struct OrtCustomOp* op);
  ONNXTensorElementDataType(ORT_API_CALL* GetInputType)(const struct OrtCustomOp* op, size_t index);
  size_t(ORT_API_CALL* GetInputTypeCount)(const struct OrtCustomOp* op);
  ONNXTensorElementDataType(ORT_API_CALL* GetOutputType)(const struct OrtCustomOp* op, size_t index);
  size_t(ORT_API_CALL* GetOutputTypeCount)(const struct OrtCustomOp* op);
  void(ORT_API_CALL* KernelCompute)(void* op_kernel, OrtKernelContext* context);
  void(ORT_API_CALL* KernelDestroy)(void* op_kernel);
  OrtCustomOpInputOutputCharacteristic(ORT_API_CALL* GetInputCharacteristic)(
      const struct OrtCustomOp* op, size_t index);
  OrtCustomOpInputOutputCharacteristic(ORT_API_CALL* GetOutputCharacteristic)(
      const struct OrtCustomOp* op, size_t index);
  OrtMemType(ORT_API_CALL* GetInputMemoryType)(const struct OrtCustomOp* op, size_t index);
  int(ORT_API_CALL* GetVariadicInputMinArity)(const struct OrtCustomOp* op);
  int(ORT_API_CALL* GetVariadicInputHomogeneity)(const struct OrtCustomOp* op);
  int(ORT_API_CALL* GetVariadicOutputMinArity)(const struct OrtCustomOp* op);
  int(ORT_API_CALL* GetVariadicOutputHomogeneity)(const struct OrtCustomOp* op);
  OrtStatus*(ORT_API_CALL* CreateKernelV2)(const struct OrtCustomOp* op, const OrtApi* api,
                                          const OrtKernelInfo* info, void** kernel);
  OrtStatus*(ORT_API_CALL* KernelComputeV2)(void* op_kernel, OrtKernelContext* context);
  OrtStatus*(ORT_API_CALL* InferOutputShapeFn)(const struct OrtCustomOp* op,
                                              OrtShapeInferContext* ctx);
  int(ORT_API_CALL* GetStartVersion)(const struct OrtCustomOp* op);
  int(ORT_API_CALL* GetEndVersion)(const struct OrtCustomOp* op);
};

#ifdef __cplusplus
}
#endif

#endif /* RDEPLOY_ORT_C_API_SUBSET_H */
