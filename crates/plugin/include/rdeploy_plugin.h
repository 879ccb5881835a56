/*
 * rdeploy backend plugin ABI, version 1.
 *
 * A plugin is a shared library exporting the functions below. rdeploy loads it from
 * RDEPLOY_PLUGIN_PATH or `--plugin FILE`, calls rdeploy_plugin_abi_version() first and refuses the
 * plugin unless it returns RDEPLOY_PLUGIN_ABI_VERSION, then resolves every other function (a
 * missing one refuses the plugin, naming it). A refused plugin is listed by `rdeploy check-env`
 * with the reason; other backends keep working.
 *
 * Conventions
 * - Strings are UTF-8 and NUL-terminated. Strings passed in are valid only during the call.
 * - Fallible functions return NULL on success, or an rdeploy_error* the plugin allocated; rdeploy
 *   reads it with rdeploy_plugin_error_message() and frees it with rdeploy_plugin_error_free().
 * - Results flow back through callbacks rdeploy passes in (files, tensors): the plugin keeps
 *   ownership of what it passes to a callback, and rdeploy copies it during the callback.
 * - Deploy configs arrive as JSON text (the fully merged config tree).
 * - Element types use ONNX TensorProto codes (RDEPLOY_F32 = 1 ...). Tensors are dense, row-major,
 *   little-endian. A dim of -1 in a signature is dynamic.
 * - Threads: rdeploy calls a session from one thread at a time; different sessions may run at
 *   the same time on different threads. The other functions may be called from any thread.
 * - The plugin must not let a C++ exception or a Rust panic cross these functions (the Rust
 *   helper crate rdeploy-plugin catches panics and turns them into errors).
 */
#ifndef RDEPLOY_PLUGIN_H
#define RDEPLOY_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define RDEPLOY_PLUGIN_ABI_VERSION 1u

/* Element types: ONNX TensorProto.DataType codes. */
enum {
    RDEPLOY_F32 = 1,
    RDEPLOY_U8 = 2,
    RDEPLOY_I8 = 3,
    RDEPLOY_U16 = 4,
    RDEPLOY_I16 = 5,
    RDEPLOY_I32 = 6,
    RDEPLOY_I64 = 7,
    RDEPLOY_BOOL = 9,
    RDEPLOY_F16 = 10,
    RDEPLOY_F64 = 11,
    RDEPLOY_U32 = 12,
    RDEPLOY_U64 = 13
};

/* An error owned by the plugin. */
typedef struct rdeploy_error rdeploy_error;

/* A loaded model, owned by the plugin. */
typedef struct rdeploy_session rdeploy_session;

/* The signature of one input or output. */
typedef struct rdeploy_tensor_info {
    const char *name;
    int32_t dtype;
    size_t rank;
    const int64_t *dims; /* rank entries; -1 = dynamic */
} rdeploy_tensor_info;

/* A tensor: `data` holds `byte_size` bytes, element count = product of `shape`. */
typedef struct rdeploy_tensor {
    const char *name;
    int32_t dtype;
    size_t rank;
    const int64_t *shape;
    const void *data;
    size_t byte_size;
} rdeploy_tensor;

/* Callbacks rdeploy passes in; `ctx` is rdeploy's, pass it back unchanged. */
typedef void (*rdeploy_file_fn)(void *ctx, const char *path);
typedef void (*rdeploy_signature_fn)(void *ctx, const rdeploy_tensor_info *info);
typedef void (*rdeploy_tensor_fn)(void *ctx, const rdeploy_tensor *tensor);

/* --- Identity and availability ---------------------------------------------------------- */

/* Must return RDEPLOY_PLUGIN_ABI_VERSION as the plugin was compiled against. */
uint32_t rdeploy_plugin_abi_version(void);
/* The backend name, as written in backend_config.type (static string). */
const char *rdeploy_plugin_name(void);
/* The engine's version (static string). */
const char *rdeploy_plugin_version(void);
/* The device kinds it runs on, comma-separated ("cpu", "cpu,cuda") (static string). */
const char *rdeploy_plugin_device_kinds(void);
/* NULL when the engine can run here, else an error saying why and how to fix it. */
rdeploy_error *rdeploy_plugin_is_available(void);

/* --- Errors ------------------------------------------------------------------------------ */

const char *rdeploy_plugin_error_message(const rdeploy_error *error);
void rdeploy_plugin_error_free(rdeploy_error *error);

/* --- Conversion ---------------------------------------------------------------------------- */

/* Converts the IR file (an .onnx) into the backend's files inside work_dir, calling add_file
 * once per file written (absolute paths), in the order build-time needs them. device is an
 * rdeploy device string ("cpu", "cuda:0"). On error, leave no file behind. */
rdeploy_error *rdeploy_plugin_to_backend(const char *ir_file, const char *config_json,
                                         const char *work_dir, const char *device,
                                         rdeploy_file_fn add_file, void *ctx);

/* --- Sessions ------------------------------------------------------------------------------ */

rdeploy_error *rdeploy_plugin_session_create(const char *const *files, size_t n_files,
                                             const char *device, const char *config_json,
                                             rdeploy_session **out);
void rdeploy_plugin_session_destroy(rdeploy_session *session);

/* Calls `input` once per model input and then `output` once per model output, in order. */
rdeploy_error *rdeploy_plugin_session_signature(const rdeploy_session *session,
                                                rdeploy_signature_fn input,
                                                rdeploy_signature_fn output, void *ctx);

/* Runs the model: `inputs` in signature order, already checked by rdeploy against the
 * signature (names, dtypes, ranks, fixed dims). Calls `emit` once per output, in signature
 * order. This is the call rdeploy times as the engine's execute. */
rdeploy_error *rdeploy_plugin_session_run(rdeploy_session *session, const rdeploy_tensor *inputs,
                                          size_t n_inputs, rdeploy_tensor_fn emit, void *ctx);

#ifdef __cplusplus
}
#endif

#endif /* RDEPLOY_PLUGIN_H */
