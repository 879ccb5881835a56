//! The C types and function signatures of `rdeploy_plugin.h`, version 1.

use rdeploy_core::{DType, Tensor};
use std::ffi::{CString, c_char, c_void};

/// An error allocated by the plugin (opaque).
#[repr(C)]
pub struct RdError {
    _private: [u8; 0],
}

/// A session allocated by the plugin (opaque).
#[repr(C)]
pub struct RdSession {
    _private: [u8; 0],
}

/// `rdeploy_tensor_info`: one input or output of a session's signature.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct RdTensorInfo {
    /// NUL-terminated name.
    pub name: *const c_char,
    /// ONNX element type code.
    pub dtype: i32,
    /// Number of dims.
    pub rank: usize,
    /// `rank` dims; -1 = dynamic.
    pub dims: *const i64,
}

/// `rdeploy_tensor`: a dense row-major little-endian tensor, laid out as ONNX `raw_data`
/// (4-bit types two per byte, 2-bit types four per byte, the first element in the lowest bits).
/// Strings do not cross the ABI.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct RdTensor {
    /// NUL-terminated name.
    pub name: *const c_char,
    /// ONNX element type code.
    pub dtype: i32,
    /// Number of dims.
    pub rank: usize,
    /// `rank` dims.
    pub shape: *const i64,
    /// `byte_size` bytes of data.
    pub data: *const c_void,
    /// Bytes at `data`.
    pub byte_size: usize,
}

impl RdTensor {
    /// Copies the tensor into an rdeploy [`Tensor`], checking its element type and data.
    ///
    /// # Safety
    /// `shape` holds `rank` dims and `data` holds `byte_size` bytes, valid for the call.
    ///
    /// # Errors
    /// What is wrong with it (element type, missing data, size not matching the shape).
    pub unsafe fn to_tensor(&self) -> Result<Tensor, String> {
        let dtype = DType::from_onnx_code(self.dtype)
            .ok_or_else(|| format!("element type code {} is not one rdeploy holds", self.dtype))?;
        if self.byte_size > 0 && self.data.is_null() {
            return Err("it has no data".into());
        }
        let shape: Vec<usize> = if self.rank == 0 || self.shape.is_null() {
            vec![]
        } else {
            // SAFETY: `shape` holds `rank` dims, per the contract.
            unsafe { std::slice::from_raw_parts(self.shape, self.rank) }
                .iter()
                .map(|&d| d.max(0) as usize)
                .collect()
        };
        let bytes: &[u8] = if self.byte_size == 0 {
            &[]
        } else {
            // SAFETY: `data` holds `byte_size` bytes, per the contract.
            unsafe { std::slice::from_raw_parts(self.data.cast::<u8>(), self.byte_size) }
        };
        Tensor::from_packed_bytes(dtype, &shape, bytes).map_err(|e| e.to_string())
    }
}

/// An rdeploy [`Tensor`] laid out for the C ABI: owns the name and shape storage that
/// [`raw`](ExportTensor::raw) points into, and borrows the tensor's data.
pub struct ExportTensor<'a> {
    name: CString,
    shape: Vec<i64>,
    tensor: &'a Tensor,
    bytes: std::borrow::Cow<'a, [u8]>,
}

impl<'a> ExportTensor<'a> {
    /// Lays out `tensor` under `name`.
    ///
    /// # Errors
    /// When the name contains a NUL byte, or the tensor holds strings.
    pub fn new(name: &str, tensor: &'a Tensor) -> Result<Self, String> {
        Ok(ExportTensor {
            name: CString::new(name).map_err(|_| format!("tensor name '{name}' contains NUL"))?,
            shape: tensor.shape().iter().map(|&d| d as i64).collect(),
            bytes: tensor.to_packed_bytes().map_err(|e| {
                format!("tensor '{name}': {e} (the plugin ABI carries numeric tensors only)")
            })?,
            tensor,
        })
    }

    /// The `rdeploy_tensor`, valid while `self` lives.
    pub fn raw(&self) -> RdTensor {
        let bytes = &self.bytes;
        RdTensor {
            name: self.name.as_ptr(),
            dtype: self.tensor.dtype().onnx_code(),
            rank: self.shape.len(),
            shape: self.shape.as_ptr(),
            data: bytes.as_ptr().cast(),
            byte_size: bytes.len(),
        }
    }
}

/// `rdeploy_file_fn`.
pub type FileFn = unsafe extern "C" fn(ctx: *mut c_void, path: *const c_char);
/// `rdeploy_signature_fn`.
pub type SignatureFn = unsafe extern "C" fn(ctx: *mut c_void, info: *const RdTensorInfo);
/// `rdeploy_tensor_fn`.
pub type TensorFn = unsafe extern "C" fn(ctx: *mut c_void, tensor: *const RdTensor);

/// `rdeploy_plugin_abi_version`.
pub type AbiVersionFn = unsafe extern "C" fn() -> u32;
/// `rdeploy_plugin_name`, `rdeploy_plugin_version`, `rdeploy_plugin_device_kinds`.
pub type StaticStrFn = unsafe extern "C" fn() -> *const c_char;
/// `rdeploy_plugin_is_available`.
pub type IsAvailableFn = unsafe extern "C" fn() -> *mut RdError;
/// `rdeploy_plugin_error_message`.
pub type ErrorMessageFn = unsafe extern "C" fn(error: *const RdError) -> *const c_char;
/// `rdeploy_plugin_error_free`.
pub type ErrorFreeFn = unsafe extern "C" fn(error: *mut RdError);
/// `rdeploy_plugin_to_backend`.
pub type ToBackendFn = unsafe extern "C" fn(
    ir_file: *const c_char,
    config_json: *const c_char,
    work_dir: *const c_char,
    device: *const c_char,
    add_file: FileFn,
    ctx: *mut c_void,
) -> *mut RdError;
/// `rdeploy_plugin_session_create`.
pub type SessionCreateFn = unsafe extern "C" fn(
    files: *const *const c_char,
    n_files: usize,
    device: *const c_char,
    config_json: *const c_char,
    out: *mut *mut RdSession,
) -> *mut RdError;
/// `rdeploy_plugin_session_destroy`.
pub type SessionDestroyFn = unsafe extern "C" fn(session: *mut RdSession);
/// `rdeploy_plugin_session_signature`.
pub type SessionSignatureFn = unsafe extern "C" fn(
    session: *const RdSession,
    input: SignatureFn,
    output: SignatureFn,
    ctx: *mut c_void,
) -> *mut RdError;
/// `rdeploy_plugin_session_run`.
pub type SessionRunFn = unsafe extern "C" fn(
    session: *mut RdSession,
    inputs: *const RdTensor,
    n_inputs: usize,
    emit: TensorFn,
    ctx: *mut c_void,
) -> *mut RdError;

/// Every function of ABI version 1 (besides `rdeploy_plugin_abi_version`, checked first).
#[derive(Clone, Copy, Debug)]
pub struct Functions {
    /// `rdeploy_plugin_name`.
    pub name: StaticStrFn,
    /// `rdeploy_plugin_version`.
    pub version: StaticStrFn,
    /// `rdeploy_plugin_device_kinds`.
    pub device_kinds: StaticStrFn,
    /// `rdeploy_plugin_is_available`.
    pub is_available: IsAvailableFn,
    /// `rdeploy_plugin_error_message`.
    pub error_message: ErrorMessageFn,
    /// `rdeploy_plugin_error_free`.
    pub error_free: ErrorFreeFn,
    /// `rdeploy_plugin_to_backend`.
    pub to_backend: ToBackendFn,
    /// `rdeploy_plugin_session_create`.
    pub session_create: SessionCreateFn,
    /// `rdeploy_plugin_session_destroy`.
    pub session_destroy: SessionDestroyFn,
    /// `rdeploy_plugin_session_signature`.
    pub session_signature: SessionSignatureFn,
    /// `rdeploy_plugin_session_run`.
    pub session_run: SessionRunFn,
}
