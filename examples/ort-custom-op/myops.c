/*
 * A small ONNX Runtime custom-op library: domain `rdeploy.test`, operator
 *
 *   ScaledAdd(A, B) -> Y = A + alpha * B     (float32, A and B of one shape; alpha a float
 *                                             attribute, 1.0 when absent)
 *
 * ONNX Runtime loads it with RegisterCustomOpsLibrary (rdeploy: backend_config.custom_ops) and
 * calls RegisterCustomOps below. Built by rdeploy's tests (crates/conformance/build.rs); by hand:
 *
 *   cc -std=c11 -O2 -Wall -Wextra -shared -fPIC -o libmyops.so myops.c
 */
#include "ort_c_api_subset.h"

#include <stdio.h>
#include <stdlib.h>

typedef struct {
  const OrtApi* api;
  float alpha;
} ScaledAddKernel;

/* Releases what the compute function holds and returns `status`: its one exit path. */
static OrtStatus* finish(const OrtApi* api, OrtTensorTypeAndShapeInfo* a, OrtTensorTypeAndShapeInfo* b,
                         int64_t* dims, OrtStatus* status) {
  if (a) api->ReleaseTensorTypeAndShapeInfo(a);
  if (b) api->ReleaseTensorTypeAndShapeInfo(b);
  free(dims);
  return status;
}

#define TRY(call)                                   \
  do {                                              \
    OrtStatus* s_ = (call);                         \
    if (s_) return finish(api, ia, ib, dims, s_);   \
  } while (0)

static OrtStatus* ORT_API_CALL scaled_add_compute(void* op_kernel, OrtKernelContext* ctx) {
  const ScaledAddKernel* k = (const ScaledAddKernel*)op_kernel;
  const OrtApi* api = k->api;
  OrtTensorTypeAndShapeInfo* ia = NULL;
  OrtTensorTypeAndShapeInfo* ib = NULL;
  int64_t* dims = NULL;
  const OrtValue* a = NULL;
  const OrtValue* b = NULL;
  TRY(api->KernelContext_GetInput(ctx, 0, &a));
  TRY(api->KernelContext_GetInput(ctx, 1, &b));
  TRY(api->GetTensorTypeAndShape(a, &ia));
  TRY(api->GetTensorTypeAndShape(b, &ib));
  size_t rank = 0, rank_b = 0, n = 0, n_b = 0;
  TRY(api->GetDimensionsCount(ia, &rank));
  TRY(api->GetDimensionsCount(ib, &rank_b));
  TRY(api->GetTensorShapeElementCount(ia, &n));
  TRY(api->GetTensorShapeElementCount(ib, &n_b));
  /* rank 0 still needs a valid pointer for GetDimensions/GetOutput. */
  dims = (int64_t*)calloc(rank + rank_b + 1, sizeof(int64_t));
  if (!dims) return finish(api, ia, ib, dims, api->CreateStatus(ORT_FAIL, "ScaledAdd: out of memory"));
  TRY(api->GetDimensions(ia, dims, rank));
  TRY(api->GetDimensions(ib, dims + rank, rank_b));
  int same = rank == rank_b && n == n_b;
  for (size_t i = 0; same && i < rank; i++) same = dims[i] == dims[rank + i];
  if (!same) {
    return finish(api, ia, ib, dims,
                  api->CreateStatus(ORT_INVALID_ARGUMENT,
                                    "rdeploy.test::ScaledAdd: inputs A and B must have the same shape"));
  }
  OrtValue* y = NULL;
  TRY(api->KernelContext_GetOutput(ctx, 0, dims, rank, &y));
  float *pa = NULL, *pb = NULL, *py = NULL;
  /* The C API reads input data through GetTensorMutableData; the inputs are not written. */
  TRY(api->GetTensorMutableData((OrtValue*)a, (void**)&pa));
  TRY(api->GetTensorMutableData((OrtValue*)b, (void**)&pb));
  TRY(api->GetTensorMutableData(y, (void**)&py));
  for (size_t i = 0; i < n; i++) py[i] = pa[i] + k->alpha * pb[i];
  return finish(api, ia, ib, dims, NULL);
}

static OrtStatus* ORT_API_CALL scaled_add_create(const OrtCustomOp* op, const OrtApi* api,
                                                 const OrtKernelInfo* info, void** kernel) {
  (void)op;
  ScaledAddKernel* k = (ScaledAddKernel*)malloc(sizeof *k);
  if (!k) return api->CreateStatus(ORT_FAIL, "ScaledAdd: out of memory");
  k->api = api;
  k->alpha = 1.0f;
  OrtStatus* s = api->KernelInfoGetAttribute_float(info, "alpha", &k->alpha);
  if (s) {
    /* No `alpha` attribute: the default. */
    api->ReleaseStatus(s);
    k->alpha = 1.0f;
  }
  *kernel = k;
  return NULL;
}

static void ORT_API_CALL scaled_add_destroy(void* op_kernel) { free(op_kernel); }

static const char* ORT_API_CALL scaled_add_name(const OrtCustomOp* op) {
  (void)op;
  return "ScaledAdd";
}

static const char* ORT_API_CALL cpu_provider(const OrtCustomOp* op) {
  (void)op;
  return "CPUExecutionProvider";
}

static ONNXTensorElementDataType ORT_API_CALL float_type(const OrtCustomOp* op, size_t index) {
  (void)op;
  (void)index;
  return ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT;
}

static size_t ORT_API_CALL two(const OrtCustomOp* op) {
  (void)op;
  return 2;
}

static size_t ORT_API_CALL one(const OrtCustomOp* op) {
  (void)op;
  return 1;
}

static OrtCustomOpInputOutputCharacteristic ORT_API_CALL required(const OrtCustomOp* op, size_t index) {
  (void)op;
  (void)index;
  return INPUT_OUTPUT_REQUIRED;
}

static OrtMemType ORT_API_CALL default_memory(const OrtCustomOp* op, size_t index) {
  (void)op;
  (void)index;
  return OrtMemTypeDefault;
}

static int ORT_API_CALL min_arity(const OrtCustomOp* op) {
  (void)op;
  return 1;
}

static int ORT_API_CALL homogeneous(const OrtCustomOp* op) {
  (void)op;
  return 1;
}

static int ORT_API_CALL start_version(const OrtCustomOp* op) {
  (void)op;
  return 1;
}

static int ORT_API_CALL end_version(const OrtCustomOp* op) {
  (void)op;
  return 2147483647;
}

static const OrtCustomOp scaled_add_op = {
    RDEPLOY_ORT_API_VERSION,
    NULL, /* CreateKernel: CreateKernelV2 instead, which can return an error */
    scaled_add_name,
    cpu_provider,
    float_type,
    two,
    float_type,
    one,
    NULL, /* KernelCompute: KernelComputeV2 instead */
    scaled_add_destroy,
    required,
    required,
    default_memory,
    min_arity,
    homogeneous,
    min_arity,
    homogeneous,
    scaled_add_create,
    scaled_add_compute,
    NULL, /* InferOutputShapeFn: the graph declares Y's shape */
    start_version,
    end_version,
};

/*
 * ONNX Runtime's entry point. The domain must outlive every session built with `options`, and
 * the library cannot know when the last one is released, so each registration's domain (a few
 * hundred bytes) lives until the process ends, as in ONNX Runtime's own example library.
 */
RDEPLOY_EXPORT OrtStatus* ORT_API_CALL RegisterCustomOps(OrtSessionOptions* options, const OrtApiBase* base) {
  const OrtApi* api = base->GetApi(RDEPLOY_ORT_API_VERSION);
  if (!api) {
    /* Too old a runtime: version 1 of the API still creates the error. */
    const OrtApi* v1 = base->GetApi(1);
    char msg[160];
    snprintf(msg, sizeof msg, "librdeploy_test_ops needs ONNX Runtime API version %d (ONNX Runtime 1.17+), this is %s",
             RDEPLOY_ORT_API_VERSION, base->GetVersionString());
    return v1 ? v1->CreateStatus(ORT_FAIL, msg) : NULL;
  }
  OrtCustomOpDomain* domain = NULL;
  OrtStatus* s = api->CreateCustomOpDomain("rdeploy.test", &domain);
  if (s) return s;
  s = api->CustomOpDomain_Add(domain, &scaled_add_op);
  if (!s) s = api->AddCustomOpDomain(options, domain);
  if (s) api->ReleaseCustomOpDomain(domain);
  return s;
}
