//! Triton's C API, the part this backend uses: our own declarations, written from the public
//! headers `tritonserver.h` and `tritonbackend.h` (triton-inference-server/core,
//! `TRITONBACKEND_API_VERSION` 1.19, the version of Triton 2.51).
//!
//! The functions live in `libtritonserver`, which the `tritonserver` executable links. This
//! library does not link it (its file name varies between builds: the pip wheel's is
//! `libtritonserver-717102f0.so`); [`api`] resolves each function by name in the server process
//! on first use, so the crate also links into test executables that never call them.
//!
//! C enums are `int`-sized; they are plain integer aliases here so that a value a newer server
//! sends is a number to match on, never an invalid Rust enum.

#![allow(
    non_camel_case_types,
    non_snake_case,
    reason = "the names are Triton's, as in its C headers"
)]

use std::ffi::{c_char, c_void};
use std::marker::{PhantomData, PhantomPinned};
use std::sync::OnceLock;

macro_rules! opaque {
    ($($(#[$m:meta])* $name:ident),* $(,)?) => {$(
        $(#[$m])*
        #[repr(C)]
        pub struct $name {
            _data: [u8; 0],
            _marker: PhantomData<(*mut u8, PhantomPinned)>,
        }
    )*};
}

opaque!(
    /// An error object (`nullptr` means success).
    TRITONSERVER_Error,
    /// A serialized message (the model configuration as JSON).
    TRITONSERVER_Message,
    /// The backend.
    TRITONBACKEND_Backend,
    /// What `TRITONBACKEND_GetBackendAttribute` fills in.
    TRITONBACKEND_BackendAttribute,
    /// A model (one version of it).
    TRITONBACKEND_Model,
    /// One instance of a model.
    TRITONBACKEND_ModelInstance,
    /// An inference request.
    TRITONBACKEND_Request,
    /// An inference response.
    TRITONBACKEND_Response,
    /// An input tensor of a request.
    TRITONBACKEND_Input,
    /// An output tensor of a response.
    TRITONBACKEND_Output,
);

/// `TRITONSERVER_Error_Code`.
pub type TRITONSERVER_Error_Code = u32;
/// An internal error.
pub const TRITONSERVER_ERROR_INTERNAL: TRITONSERVER_Error_Code = 1;
/// Something asked for was not found.
pub const TRITONSERVER_ERROR_NOT_FOUND: TRITONSERVER_Error_Code = 2;
/// A bad argument (a request's tensor, a model config value).
pub const TRITONSERVER_ERROR_INVALID_ARG: TRITONSERVER_Error_Code = 3;
/// Unsupported (a GPU instance, a string tensor).
pub const TRITONSERVER_ERROR_UNSUPPORTED: TRITONSERVER_Error_Code = 5;

/// `TRITONSERVER_DataType`; the codes' names, in order, are in [`DATATYPE_NAMES`].
pub type TRITONSERVER_DataType = u32;

/// The KServe v2 name of each `TRITONSERVER_DataType` code, indexed by the code
/// (`TRITONSERVER_TYPE_INVALID` = 0, `TRITONSERVER_TYPE_BOOL` = 1, ... `TRITONSERVER_TYPE_BF16`).
pub const DATATYPE_NAMES: [&str; 15] = [
    "INVALID", "BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64",
    "FP16", "FP32", "FP64", "BYTES", "BF16",
];

/// `TRITONSERVER_MemoryType`.
pub type TRITONSERVER_MemoryType = u32;
/// Host memory.
pub const TRITONSERVER_MEMORY_CPU: TRITONSERVER_MemoryType = 0;
/// Pinned host memory (readable as host memory).
pub const TRITONSERVER_MEMORY_CPU_PINNED: TRITONSERVER_MemoryType = 1;

/// `TRITONSERVER_InstanceGroupKind`.
pub type TRITONSERVER_InstanceGroupKind = u32;
/// `KIND_AUTO`.
pub const TRITONSERVER_INSTANCEGROUPKIND_AUTO: TRITONSERVER_InstanceGroupKind = 0;
/// `KIND_CPU`.
pub const TRITONSERVER_INSTANCEGROUPKIND_CPU: TRITONSERVER_InstanceGroupKind = 1;
/// `KIND_GPU`.
pub const TRITONSERVER_INSTANCEGROUPKIND_GPU: TRITONSERVER_InstanceGroupKind = 2;

/// `TRITONSERVER_LogLevel`.
pub type TRITONSERVER_LogLevel = u32;
/// Information.
pub const TRITONSERVER_LOG_INFO: TRITONSERVER_LogLevel = 0;
/// A warning.
pub const TRITONSERVER_LOG_WARN: TRITONSERVER_LogLevel = 1;
/// An error.
pub const TRITONSERVER_LOG_ERROR: TRITONSERVER_LogLevel = 2;

/// `TRITONBACKEND_ArtifactType`: the model repository is a local folder.
pub const TRITONBACKEND_ARTIFACT_FILESYSTEM: u32 = 0;
/// `TRITONSERVER_REQUEST_RELEASE_ALL`.
pub const TRITONSERVER_REQUEST_RELEASE_ALL: u32 = 1;
/// `TRITONSERVER_RESPONSE_COMPLETE_FINAL`.
pub const TRITONSERVER_RESPONSE_COMPLETE_FINAL: u32 = 1;

/// The backend API major version these declarations follow.
pub const TRITONBACKEND_API_VERSION_MAJOR: u32 = 1;
/// The backend API minor version these declarations were written from; a server must have at
/// least this one (the headers' rule).
pub const TRITONBACKEND_API_VERSION_MINOR: u32 = 19;

type Err = *mut TRITONSERVER_Error;

macro_rules! api {
    ($( $(#[$m:meta])* fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)?; )*) => {
        /// Triton's C API functions this backend calls, resolved in the server process.
        pub struct Api {
            $( $(#[$m])* pub $name: unsafe extern "C" fn($($ty),*) $(-> $ret)?, )*
        }

        impl Api {
            fn resolve(lib: &libloading::os::unix::Library) -> Result<Api, String> {
                Ok(Api {$(
                    // SAFETY: the symbol is Triton's C function of that name; its type is
                    // declared above from the header's prototype.
                    $name: *unsafe {
                        lib.get::<unsafe extern "C" fn($($ty),*) $(-> $ret)?>(
                            concat!(stringify!($name), "\0").as_bytes(),
                        )
                    }
                    .map_err(|e| format!("{}: {e}", stringify!($name)))?,
                )*})
            }
        }
    };
}

api! {
    /// Creates an error object.
    fn TRITONSERVER_ErrorNew(code: TRITONSERVER_Error_Code, msg: *const c_char) -> Err;
    /// Frees an error object.
    fn TRITONSERVER_ErrorDelete(error: Err);
    /// An error's message (owned by the error).
    fn TRITONSERVER_ErrorMessage(error: Err) -> *const c_char;
    /// Writes to Triton's log.
    fn TRITONSERVER_LogMessage(
        level: TRITONSERVER_LogLevel,
        filename: *const c_char,
        line: i32,
        msg: *const c_char,
    ) -> Err;
    /// Whether a log level is on.
    fn TRITONSERVER_LogIsEnabled(level: TRITONSERVER_LogLevel) -> bool;
    /// A message's JSON text (owned by the message).
    fn TRITONSERVER_MessageSerializeToJson(
        message: *mut TRITONSERVER_Message,
        base: *mut *const c_char,
        byte_size: *mut usize,
    ) -> Err;
    /// Frees a message.
    fn TRITONSERVER_MessageDelete(message: *mut TRITONSERVER_Message) -> Err;

    /// The backend API version of the running server.
    fn TRITONBACKEND_ApiVersion(major: *mut u32, minor: *mut u32) -> Err;
    /// The backend's name.
    fn TRITONBACKEND_BackendName(backend: *mut TRITONBACKEND_Backend, name: *mut *const c_char) -> Err;
    /// Adds a preferred instance group kind.
    fn TRITONBACKEND_BackendAttributeAddPreferredInstanceGroup(
        attributes: *mut TRITONBACKEND_BackendAttribute,
        kind: TRITONSERVER_InstanceGroupKind,
        count: u64,
        device_ids: *const u64,
        id_count: u64,
    ) -> Err;
    /// The model's name.
    fn TRITONBACKEND_ModelName(model: *mut TRITONBACKEND_Model, name: *mut *const c_char) -> Err;
    /// The model's version.
    fn TRITONBACKEND_ModelVersion(model: *mut TRITONBACKEND_Model, version: *mut u64) -> Err;
    /// Where the model's folder is.
    fn TRITONBACKEND_ModelRepository(
        model: *mut TRITONBACKEND_Model,
        artifact_type: *mut u32,
        location: *mut *const c_char,
    ) -> Err;
    /// The model configuration (the caller frees the message).
    fn TRITONBACKEND_ModelConfig(
        model: *mut TRITONBACKEND_Model,
        config_version: u32,
        model_config: *mut *mut TRITONSERVER_Message,
    ) -> Err;
    /// Attaches the backend's state to a model.
    fn TRITONBACKEND_ModelSetState(model: *mut TRITONBACKEND_Model, state: *mut c_void) -> Err;
    /// The backend's state of a model.
    fn TRITONBACKEND_ModelState(model: *mut TRITONBACKEND_Model, state: *mut *mut c_void) -> Err;
    /// The model of an instance.
    fn TRITONBACKEND_ModelInstanceModel(
        instance: *mut TRITONBACKEND_ModelInstance,
        model: *mut *mut TRITONBACKEND_Model,
    ) -> Err;
    /// An instance's name.
    fn TRITONBACKEND_ModelInstanceName(
        instance: *mut TRITONBACKEND_ModelInstance,
        name: *mut *const c_char,
    ) -> Err;
    /// The kind of device an instance runs on.
    fn TRITONBACKEND_ModelInstanceKind(
        instance: *mut TRITONBACKEND_ModelInstance,
        kind: *mut TRITONSERVER_InstanceGroupKind,
    ) -> Err;
    /// The device id of an instance.
    fn TRITONBACKEND_ModelInstanceDeviceId(
        instance: *mut TRITONBACKEND_ModelInstance,
        device_id: *mut i32,
    ) -> Err;
    /// Attaches the backend's state to an instance.
    fn TRITONBACKEND_ModelInstanceSetState(
        instance: *mut TRITONBACKEND_ModelInstance,
        state: *mut c_void,
    ) -> Err;
    /// The backend's state of an instance.
    fn TRITONBACKEND_ModelInstanceState(
        instance: *mut TRITONBACKEND_ModelInstance,
        state: *mut *mut c_void,
    ) -> Err;
    /// Per-request statistics (before the request is released).
    fn TRITONBACKEND_ModelInstanceReportStatistics(
        instance: *mut TRITONBACKEND_ModelInstance,
        request: *mut TRITONBACKEND_Request,
        success: bool,
        exec_start_ns: u64,
        compute_start_ns: u64,
        compute_end_ns: u64,
        exec_end_ns: u64,
    ) -> Err;
    /// Statistics of one execution over a batch.
    fn TRITONBACKEND_ModelInstanceReportBatchStatistics(
        instance: *mut TRITONBACKEND_ModelInstance,
        batch_size: u64,
        exec_start_ns: u64,
        compute_start_ns: u64,
        compute_end_ns: u64,
        exec_end_ns: u64,
    ) -> Err;
    /// A request's id (empty when the client gave none).
    fn TRITONBACKEND_RequestId(request: *mut TRITONBACKEND_Request, id: *mut *const c_char) -> Err;
    /// How many inputs a request has.
    fn TRITONBACKEND_RequestInputCount(request: *mut TRITONBACKEND_Request, count: *mut u32) -> Err;
    /// A request's input by position.
    fn TRITONBACKEND_RequestInputByIndex(
        request: *mut TRITONBACKEND_Request,
        index: u32,
        input: *mut *mut TRITONBACKEND_Input,
    ) -> Err;
    /// How many outputs a request asks for.
    fn TRITONBACKEND_RequestOutputCount(request: *mut TRITONBACKEND_Request, count: *mut u32) -> Err;
    /// The name of an output a request asks for.
    fn TRITONBACKEND_RequestOutputName(
        request: *mut TRITONBACKEND_Request,
        index: u32,
        name: *mut *const c_char,
    ) -> Err;
    /// Gives a request back to Triton.
    fn TRITONBACKEND_RequestRelease(request: *mut TRITONBACKEND_Request, release_flags: u32) -> Err;
    /// An input's name, datatype, shape, size and buffer count.
    fn TRITONBACKEND_InputProperties(
        input: *mut TRITONBACKEND_Input,
        name: *mut *const c_char,
        datatype: *mut TRITONSERVER_DataType,
        shape: *mut *const i64,
        dims_count: *mut u32,
        byte_size: *mut u64,
        buffer_count: *mut u32,
    ) -> Err;
    /// One buffer of an input's data.
    fn TRITONBACKEND_InputBuffer(
        input: *mut TRITONBACKEND_Input,
        index: u32,
        buffer: *mut *const c_void,
        buffer_byte_size: *mut u64,
        memory_type: *mut TRITONSERVER_MemoryType,
        memory_type_id: *mut i64,
    ) -> Err;
    /// A response for a request.
    fn TRITONBACKEND_ResponseNew(
        response: *mut *mut TRITONBACKEND_Response,
        request: *mut TRITONBACKEND_Request,
    ) -> Err;
    /// Adds an output tensor to a response.
    fn TRITONBACKEND_ResponseOutput(
        response: *mut TRITONBACKEND_Response,
        output: *mut *mut TRITONBACKEND_Output,
        name: *const c_char,
        datatype: TRITONSERVER_DataType,
        shape: *const i64,
        dims_count: u32,
    ) -> Err;
    /// The buffer to write an output's data into.
    fn TRITONBACKEND_OutputBuffer(
        output: *mut TRITONBACKEND_Output,
        buffer: *mut *mut c_void,
        buffer_byte_size: u64,
        memory_type: *mut TRITONSERVER_MemoryType,
        memory_type_id: *mut i64,
    ) -> Err;
    /// Sends a response (ownership passes to Triton; the error stays the caller's).
    fn TRITONBACKEND_ResponseSend(
        response: *mut TRITONBACKEND_Response,
        send_flags: u32,
        error: Err,
    ) -> Err;
}

/// Triton's API, resolved in this process on first use.
///
/// # Errors
/// When a function is missing: this library is not running inside a Triton server (or one
/// too old).
pub fn api() -> Result<&'static Api, String> {
    static API: OnceLock<Result<Api, String>> = OnceLock::new();
    API.get_or_init(|| {
        let this = libloading::os::unix::Library::this();
        Api::resolve(&this).map_err(|e| {
            format!("Triton's C API is not in this process (libtriton_rdeploy.so runs inside tritonserver): {e}")
        })
    })
    .as_ref()
    .map_err(Clone::clone)
}
