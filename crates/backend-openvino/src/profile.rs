//! OpenVINO's per-layer performance counters (`PERF_COUNT`), through its C API directly: the
//! `openvino` crate has no binding for `ov_infer_request_get_profiling_info`.
//!
//! The model is compiled again with `PERF_COUNT=YES` and the wrapper's properties, run once
//! as a warm-up, then `runs` times; each executed layer's `real_time` (microseconds) is summed
//! over the runs. Layers are OpenVINO's after its transformations (fused convolutions,
//! reorders it inserted), named and typed as the CPU plugin reports them.

use crate::NAME;
use openvino_sys as sys;
use rdeploy_core::{DType, Error, OpTime, Result, Tensor};
use std::ffi::{CStr, CString, c_char};
use std::path::Path;

/// Owns a C API object and frees it with its `ov_*_free` function.
struct Owned<T> {
    ptr: *mut T,
    free: unsafe fn(*mut T),
}

impl<T> Drop for Owned<T> {
    fn drop(&mut self) {
        if !self.ptr.is_null() {
            // SAFETY: `ptr` came from the matching OpenVINO constructor and is freed once.
            unsafe { (self.free)(self.ptr) }
        }
    }
}

fn check(status: sys::ov_status_e, what: &str) -> Result<()> {
    if status == sys::ov_status_e::OK {
        return Ok(());
    }
    // SAFETY: ov_get_last_err_msg returns a NUL-terminated thread-local string or null.
    let msg = unsafe {
        let p = sys::ov_get_last_err_msg();
        if p.is_null() {
            String::new()
        } else {
            CStr::from_ptr(p).to_string_lossy().into_owned()
        }
    };
    Err(Error::backend(
        NAME,
        format!("profiling: {what} failed ({status:?}) {msg}"),
    ))
}

fn c_string(s: &str, what: &str) -> Result<CString> {
    CString::new(s).map_err(|_| Error::backend(NAME, format!("{what} holds a NUL byte: {s:?}")))
}

fn element_type(d: DType) -> Result<sys::ov_element_type_e> {
    use sys::ov_element_type_e as E;
    Ok(match d {
        DType::F32 => E::F32,
        DType::F16 => E::F16,
        DType::F64 => E::F64,
        DType::I8 => E::I8,
        DType::I16 => E::I16,
        DType::I32 => E::I32,
        DType::I64 => E::I64,
        DType::U8 => E::U8,
        DType::U16 => E::U16,
        DType::U32 => E::U32,
        DType::U64 => E::U64,
        DType::Bool => E::OV_BOOLEAN,
        DType::BF16 => E::BF16,
        DType::F8E4M3FN => E::F8E4M3,
        DType::F8E5M2 => E::F8E5M3,
        DType::F8E8M0 => E::F8E8M0,
        DType::U4 => E::U4,
        DType::I4 => E::I4,
        DType::F4E2M1 => E::F4E2M1,
        DType::U2 => E::U2,
        other => {
            return Err(Error::backend(
                NAME,
                format!("profiling inputs of type {other} is not supported"),
            ));
        }
    })
}

/// Per-layer times of `model` (`.xml` with `weights`, or `.onnx`) on `device` with
/// `properties`, for `inputs` by tensor name.
pub(crate) fn profile(
    model: &Path,
    weights: Option<&Path>,
    device: &str,
    properties: &[(String, String)],
    inputs: &[(String, Tensor)],
    runs: usize,
) -> Result<Vec<OpTime>> {
    crate::loaded()?;
    let path = |p: &Path| c_string(&p.to_string_lossy(), "a model path");
    let (model_c, weights_c) = (path(model)?, weights.map(path).transpose()?);
    let dev = c_string(device, "the device name")?;
    let runs = runs.max(1);
    // SAFETY: every pointer passed is either a live object created just above (owned by an
    // `Owned` guard that frees it after its users) or a NUL-terminated string that outlives the
    // call; out-pointers are valid locals.
    unsafe {
        let mut core = Owned {
            ptr: std::ptr::null_mut(),
            free: sys::ov_core_free,
        };
        check(sys::ov_core_create(&mut core.ptr), "creating a core")?;
        for (k, v) in properties {
            let (kc, vc) = (c_string(k, "a property")?, c_string(v, "a property")?);
            check(
                sys::ov_core_set_property(core.ptr, dev.as_ptr(), kc.as_ptr(), vc.as_ptr()),
                &format!("setting {k}={v}"),
            )?;
        }
        let mut m = Owned {
            ptr: std::ptr::null_mut(),
            free: sys::ov_model_free,
        };
        let empty = c"";
        check(
            sys::ov_core_read_model(
                core.ptr,
                model_c.as_ptr(),
                weights_c.as_ref().map_or(empty.as_ptr(), |w| w.as_ptr()),
                &mut m.ptr,
            ),
            "reading the model",
        )?;
        let mut compiled = Owned {
            ptr: std::ptr::null_mut(),
            free: sys::ov_compiled_model_free,
        };
        // PERF_COUNT as the device's default (the run-time-linked binding has no variadic
        // compile properties).
        check(
            sys::ov_core_set_property(
                core.ptr,
                dev.as_ptr(),
                c"PERF_COUNT".as_ptr(),
                c"YES".as_ptr(),
            ),
            "setting PERF_COUNT=YES",
        )?;
        check(
            sys::ov_core_compile_model(core.ptr, m.ptr, dev.as_ptr(), 0, &mut compiled.ptr),
            "compiling",
        )?;
        let mut req = Owned {
            ptr: std::ptr::null_mut(),
            free: sys::ov_infer_request_free,
        };
        check(
            sys::ov_compiled_model_create_infer_request(compiled.ptr, &mut req.ptr),
            "creating an infer request",
        )?;
        // The inputs' bytes, owned here for as long as the tensors that point at them.
        let mut buffers: Vec<Vec<u8>> = inputs
            .iter()
            .map(|(_, t)| t.to_packed_bytes().map(|b| b.into_owned()))
            .collect::<Result<_>>()?;
        let mut tensors = Vec::new();
        for ((name, t), buf) in inputs.iter().zip(buffers.iter_mut()) {
            let name_c = c_string(name, "an input name")?;
            let dims: Vec<i64> = t.shape().iter().map(|&d| d as i64).collect();
            let mut shape = sys::ov_shape_t {
                rank: 0,
                dims: std::ptr::null_mut(),
            };
            check(
                sys::ov_shape_create(dims.len() as i64, dims.as_ptr(), &mut shape),
                "creating a shape",
            )?;
            let mut tensor = Owned {
                ptr: std::ptr::null_mut(),
                free: sys::ov_tensor_free,
            };
            let made = sys::ov_tensor_create_from_host_ptr(
                element_type(t.dtype())?,
                shape,
                buf.as_mut_ptr().cast(),
                &mut tensor.ptr,
            );
            sys::ov_shape_free(&mut shape);
            check(made, "creating an input tensor")?;
            check(
                sys::ov_infer_request_set_tensor(req.ptr, name_c.as_ptr(), tensor.ptr),
                &format!("setting input '{name}'"),
            )?;
            tensors.push(tensor);
        }
        check(sys::ov_infer_request_infer(req.ptr), "the warm-up call")?;
        let mut out: Vec<OpTime> = Vec::new();
        for _ in 0..runs {
            check(sys::ov_infer_request_infer(req.ptr), "inference")?;
            let mut list = sys::ov_profiling_info_list_t {
                profiling_infos: std::ptr::null_mut(),
                size: 0,
            };
            check(
                sys::ov_infer_request_get_profiling_info(req.ptr, &mut list),
                "reading the performance counters",
            )?;
            let infos: &[sys::ov_profiling_info_t] = if list.profiling_infos.is_null() {
                &[]
            } else {
                std::slice::from_raw_parts(list.profiling_infos, list.size)
            };
            let text = |p: *const c_char| {
                if p.is_null() {
                    String::new()
                } else {
                    CStr::from_ptr(p).to_string_lossy().into_owned()
                }
            };
            for info in infos {
                if info.status != sys::ov_profiling_info_t_Status::EXECUTED {
                    continue;
                }
                let (node, op) = (text(info.node_name), text(info.node_type));
                let ms = info.real_time as f64 / 1e3 / runs as f64;
                match out.iter_mut().find(|t| t.node == node) {
                    Some(t) => t.ms += ms,
                    None => out.push(OpTime {
                        node,
                        op_type: op,
                        ms,
                    }),
                }
            }
            sys::ov_profiling_info_list_free(&mut list);
        }
        drop(tensors);
        drop(buffers);
        Ok(out)
    }
}
