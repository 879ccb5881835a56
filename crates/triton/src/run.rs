//! Running the requests of one `TRITONBACKEND_ModelInstanceExecute` call, away from the C API
//! so that it is tested without a server.
//!
//! With batching (`max_batch_size > 0`) every request's tensors carry the batch dim first;
//! requests whose other dims agree are joined along dim 0, run in one engine call, and the
//! outputs split back by each request's row count. Without batching each request runs alone.
//! A request that fails validation gets its own error and does not stop the others.

use rdeploy::core::validate_inputs;
use rdeploy::{NamedTensors, Tensor, Wrapper};
use rdeploy_serving::batch;

/// Why a request got no outputs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RequestError {
    /// The request does not fit the model (dtype, shape, memory type): the client's to fix.
    Invalid(String),
    /// Running it failed (the engine's error).
    Failed(String),
}

impl RequestError {
    /// The message for the client.
    pub fn message(&self) -> &str {
        match self {
            RequestError::Invalid(m) | RequestError::Failed(m) => m,
        }
    }
}

impl std::fmt::Display for RequestError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.message())
    }
}

/// Per request: its named outputs, or why it has none.
pub type RequestResult = Result<NamedTensors, RequestError>;

/// What running a set of requests gave.
#[derive(Debug)]
pub struct Executed {
    /// Per request, in order: the named outputs, or the error to answer with.
    pub results: Vec<RequestResult>,
    /// When the first engine call started (the clock's reading before anything ran if none did).
    pub compute_start_ns: u64,
    /// When the last engine call ended.
    pub compute_end_ns: u64,
    /// The rows run: the sum of batch dims (with batching) or the number of requests that
    /// were valid (without).
    pub batch_size: u64,
    /// How many engine calls ran.
    pub engine_calls: usize,
}

/// A validated request: inputs in the wrapper's order, with its row count.
struct Valid {
    index: usize,
    inputs: Vec<Tensor>,
    rows: usize,
}

/// One buffer of a request's input, as Triton hands it over.
#[derive(Clone, Copy, Debug)]
pub enum Buffer<'a> {
    /// Bytes in host memory (Triton's CPU or pinned memory).
    Host(&'a [u8]),
    /// Bytes in GPU memory (the device id), which this backend does not read.
    Device(i64),
}

/// A request's input tensor from Triton's description of it: its `TRITONSERVER_DataType`
/// code, shape, announced byte size and buffers (one or more, joined in order).
///
/// # Errors
/// [`RequestError::Invalid`] naming the input for a datatype rdeploy does not run (`BYTES`),
/// a negative dim, a buffer in GPU memory, or bytes that do not fill the shape;
/// [`RequestError::Failed`] when Triton fails to hand over a buffer.
pub fn input_tensor<'a>(
    name: &str,
    datatype: u32,
    shape: &[i64],
    byte_size: u64,
    buffers: impl ExactSizeIterator<Item = Result<Buffer<'a>, String>>,
) -> Result<Tensor, RequestError> {
    let invalid = |msg: String| RequestError::Invalid(format!("input '{name}': {msg}"));
    let dtype = crate::model::dtype_of_code(name, datatype).map_err(RequestError::Invalid)?;
    let dims: Vec<usize> = shape
        .iter()
        .map(|&d| usize::try_from(d))
        .collect::<Result<_, _>>()
        .map_err(|_| invalid(format!("shape {shape:?} has a negative dim")))?;
    let size = usize::try_from(byte_size)
        .map_err(|_| invalid(format!("{byte_size} bytes do not fit in memory")))?;
    let mut data = Vec::new();
    data.try_reserve_exact(size)
        .map_err(|_| invalid(format!("cannot allocate {size} bytes")))?;
    let count = buffers.len();
    for (b, buffer) in buffers.enumerate() {
        match buffer.map_err(|e| RequestError::Failed(format!("input '{name}': {e}")))? {
            Buffer::Device(id) => {
                return Err(invalid(format!(
                    "buffer {b} of {count} is in GPU memory (device {id}); the rdeploy backend \
                     reads inputs from CPU memory only (send the data in the request, or in \
                     system shared memory)"
                )));
            }
            Buffer::Host(bytes) => {
                if data.len() + bytes.len() > size {
                    return Err(invalid(format!(
                        "its buffers hold more than the {size} bytes announced"
                    )));
                }
                data.extend_from_slice(bytes);
            }
        }
    }
    rdeploy_serving::datatype::tensor_from_wire(dtype, &dims, &data).map_err(invalid)
}

/// Runs `requests` (each already read into named tensors, or the error reading it) on
/// `wrapper`, batching them along dim 0 when `batching`. `clock` gives the nanosecond
/// timestamps Triton's statistics take.
pub fn run(
    wrapper: &dyn Wrapper,
    batching: bool,
    requests: Vec<RequestResult>,
    clock: fn() -> u64,
) -> Executed {
    let mut results: Vec<RequestResult> = Vec::with_capacity(requests.len());
    let mut valid = Vec::new();
    for (index, r) in requests.into_iter().enumerate() {
        match r.and_then(|inputs| validate(wrapper, inputs, batching)) {
            Ok((inputs, rows)) => {
                valid.push(Valid {
                    index,
                    inputs,
                    rows,
                });
                results.push(Err(RequestError::Failed("not run".into())));
            }
            Err(e) => results.push(Err(e)),
        }
    }
    let batch_size = valid.iter().map(|v| v.rows as u64).sum();
    let groups = if batching {
        group_by_trailing_dims(valid)
    } else {
        valid.into_iter().map(|v| vec![v]).collect()
    };
    let compute_start_ns = clock();
    let engine_calls = groups.len();
    for group in groups {
        for (index, r) in run_group(wrapper, group) {
            results[index] = r;
        }
    }
    Executed {
        results,
        compute_start_ns,
        compute_end_ns: clock(),
        batch_size,
        engine_calls,
    }
}

/// Checks a request's inputs against the model, returning them in model order with the
/// request's row count (its batch dim when batching, else 1).
fn validate(
    wrapper: &dyn Wrapper,
    inputs: NamedTensors,
    batching: bool,
) -> Result<(Vec<Tensor>, usize), RequestError> {
    let ordered =
        validate_inputs(wrapper.inputs(), inputs).map_err(|e| RequestError::Invalid(e.report()))?;
    if !batching {
        return Ok((ordered, 1));
    }
    let mut rows: Option<(usize, &str)> = None;
    for (spec, t) in wrapper.inputs().iter().zip(&ordered) {
        let Some(&n) = t.shape().first() else {
            return Err(RequestError::Invalid(format!(
                "input '{}' is a scalar, but the model batches (max_batch_size > 0) and takes \
                 the batch dim first",
                spec.name
            )));
        };
        match rows {
            None => rows = Some((n, &spec.name)),
            Some((m, other)) if m != n => {
                return Err(RequestError::Invalid(format!(
                    "input '{}' has {n} rows in its batch dim (dim 0) and input '{other}' has \
                     {m}; every input of a request must have the same batch size",
                    spec.name
                )));
            }
            Some(_) => {}
        }
    }
    Ok((ordered, rows.map_or(1, |(n, _)| n)))
}

/// Groups requests whose inputs agree in every dim after the batch dim, in arrival order.
fn group_by_trailing_dims(valid: Vec<Valid>) -> Vec<Vec<Valid>> {
    let key = |v: &Valid| -> Vec<Vec<usize>> {
        v.inputs
            .iter()
            .map(|t| t.shape().get(1..).unwrap_or_default().to_vec())
            .collect()
    };
    let mut groups: Vec<(Vec<Vec<usize>>, Vec<Valid>)> = Vec::new();
    for v in valid {
        let k = key(&v);
        match groups.iter_mut().find(|(gk, _)| *gk == k) {
            Some((_, g)) => g.push(v),
            None => groups.push((k, vec![v])),
        }
    }
    groups.into_iter().map(|(_, g)| g).collect()
}

/// One engine call for a group of requests; per request, its outputs or the error.
fn run_group(wrapper: &dyn Wrapper, group: Vec<Valid>) -> Vec<(usize, RequestResult)> {
    let indices: Vec<usize> = group.iter().map(|v| v.index).collect();
    let fail = |msg: String| -> Vec<(usize, RequestResult)> {
        indices
            .iter()
            .map(|&i| (i, Err(RequestError::Failed(msg.clone()))))
            .collect()
    };
    let names: Vec<String> = wrapper.outputs().iter().map(|o| o.name.clone()).collect();
    let [_] = group.as_slice() else {
        return run_batch(wrapper, group, &names).unwrap_or_else(fail);
    };
    let Some(one) = group.into_iter().next() else {
        return Vec::new();
    };
    let r = execute(wrapper, one.inputs)
        .map(|outs| names.iter().cloned().zip(outs).collect())
        .map_err(RequestError::Failed);
    vec![(one.index, r)]
}

/// Joins the group's inputs, runs them once and splits the outputs back.
fn run_batch(
    wrapper: &dyn Wrapper,
    group: Vec<Valid>,
    names: &[String],
) -> Result<Vec<(usize, RequestResult)>, String> {
    let n = group.len();
    let rows: Vec<usize> = group.iter().map(|v| v.rows).collect();
    let total: usize = rows.iter().sum();
    let mut columns: Vec<Vec<Tensor>> = wrapper.inputs().iter().map(|_| Vec::new()).collect();
    let mut indices = Vec::with_capacity(n);
    for v in group {
        indices.push(v.index);
        for (col, t) in columns.iter_mut().zip(v.inputs) {
            col.push(t);
        }
    }
    let joined = columns
        .iter()
        .zip(wrapper.inputs())
        .map(|(col, spec)| {
            batch::concat(col).map_err(|e| format!("input '{}': {}", spec.name, e.report()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let outputs = execute(wrapper, joined).map_err(|e| format!("a batch of {n} requests: {e}"))?;
    let mut per_request: Vec<NamedTensors> = (0..n).map(|_| Vec::new()).collect();
    for (name, out) in names.iter().zip(outputs) {
        if out.shape().first() != Some(&total) {
            return Err(format!(
                "output '{name}' has shape {:?} for a batch of {total} rows: the model does not \
                 keep the batch dim first in its outputs, so it cannot serve with \
                 max_batch_size > 0 (set max_batch_size: 0)",
                out.shape()
            ));
        }
        let pieces = batch::split(out, &rows).map_err(|e| format!("output '{name}': {e}"))?;
        for (slot, piece) in per_request.iter_mut().zip(pieces) {
            slot.push((name.clone(), piece));
        }
    }
    Ok(indices
        .into_iter()
        .zip(per_request)
        .map(|(i, outs)| (i, Ok(outs)))
        .collect())
}

/// The engine call, with engine panics turned into errors and the output count checked.
fn execute(wrapper: &dyn Wrapper, inputs: Vec<Tensor>) -> Result<Vec<Tensor>, String> {
    let outs = rdeploy::guard::catch_engine_panic(wrapper.backend(), "running the model", || {
        wrapper.execute(inputs)
    })
    .map_err(|e| e.report())?;
    if outs.len() != wrapper.outputs().len() {
        return Err(format!(
            "{}: the engine returned {} outputs, the model declares {}",
            wrapper.backend(),
            outs.len(),
            wrapper.outputs().len()
        ));
    }
    Ok(outs)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use super::*;
    use rdeploy::{DType, Device, Dim, Signature, TensorInfo};
    use std::sync::Mutex;

    /// Doubles its input `x` [batch, 2] into `y`, recording the batch of each call.
    struct Double {
        sig: Signature,
        calls: Mutex<Vec<usize>>,
    }

    impl Double {
        fn new() -> Double {
            let info = |name: &str| TensorInfo {
                name: name.into(),
                dtype: DType::F32,
                shape: Some(vec![Dim::Symbolic("batch".into()), Dim::Fixed(2)]),
            };
            Double {
                sig: Signature {
                    inputs: vec![info("x")],
                    outputs: vec![info("y")],
                    device: Device::cpu(),
                },
                calls: Mutex::new(Vec::new()),
            }
        }
    }

    impl Wrapper for Double {
        fn backend(&self) -> &str {
            "double"
        }
        fn signature(&self) -> &Signature {
            &self.sig
        }
        fn execute(&self, inputs: Vec<Tensor>) -> rdeploy::Result<Vec<Tensor>> {
            let x = inputs[0].view::<f32>()?;
            self.calls.lock().unwrap().push(x.shape()[0]);
            Ok(vec![Tensor::from_array(x.mapv(|v| v * 2.0))])
        }
    }

    fn req(rows: usize, start: f32) -> RequestResult {
        let data = (0..rows * 2).map(|i| start + i as f32).collect();
        Ok(vec![(
            "x".into(),
            Tensor::from_shape_vec(&[rows, 2], data).unwrap(),
        )])
    }

    fn clock() -> u64 {
        7
    }

    fn y(r: &RequestResult) -> Vec<f32> {
        let outs = r.as_ref().unwrap();
        assert_eq!(outs[0].0, "y");
        outs[0].1.as_slice::<f32>().unwrap().to_vec()
    }

    #[test]
    fn an_input_is_joined_from_its_buffers() {
        let bytes: Vec<u8> = [1.0f32, 2.0, 3.0, 4.0]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let parts = [
            Ok(Buffer::Host(&bytes[..6])),
            Ok(Buffer::Host(&[])),
            Ok(Buffer::Host(&bytes[6..])),
        ];
        let t = input_tensor("x", 11, &[2, 2], 16, parts.into_iter()).unwrap();
        assert_eq!(t.as_slice::<f32>().unwrap(), &[1.0, 2.0, 3.0, 4.0]);
    }

    #[test]
    fn inputs_triton_cannot_hand_over_as_host_numbers_are_refused() {
        let e = |r: Result<Tensor, RequestError>| r.unwrap_err().to_string();
        let host = |b: &'static [u8]| Ok(Buffer::Host(b));
        let gpu = input_tensor(
            "x",
            11,
            &[1],
            4,
            [host(&[0, 0]), Ok(Buffer::Device(1))].into_iter(),
        );
        assert!(e(gpu.clone()).contains("input 'x': buffer 1 of 2 is in GPU memory"));
        assert!(matches!(gpu, Err(RequestError::Invalid(_))));
        // BYTES: length-prefixed strings; a length past the buffer is refused.
        let empty = input_tensor("s", 13, &[1], 4, [host(&[0; 4])].into_iter()).unwrap();
        assert_eq!(empty.dtype(), rdeploy::DType::Str);
        let cut = input_tensor("s", 13, &[1], 4, [host(&[5, 0, 0, 0])].into_iter());
        assert!(e(cut).contains("input 's'"));
        let short = input_tensor("x", 11, &[2], 8, [host(&[0; 4])].into_iter());
        assert!(e(short).contains("input 'x'"));
        let long = input_tensor("x", 11, &[1], 4, [host(&[0; 8])].into_iter());
        assert!(e(long).contains("more than the 4 bytes"));
        let negative = input_tensor("x", 11, &[-1], 0, std::iter::empty());
        assert!(e(negative).contains("negative"));
        let failed = input_tensor("x", 11, &[1], 4, [Err("gone".to_string())].into_iter());
        assert_eq!(
            failed.unwrap_err(),
            RequestError::Failed("input 'x': gone".into())
        );
    }

    #[test]
    fn batching_joins_requests_into_one_call_and_splits_the_outputs() {
        let w = Double::new();
        let e = run(&w, true, vec![req(1, 0.0), req(2, 10.0)], clock);
        assert_eq!(*w.calls.lock().unwrap(), vec![3]);
        assert_eq!((e.engine_calls, e.batch_size), (1, 3));
        assert_eq!(y(&e.results[0]), vec![0.0, 2.0]);
        assert_eq!(y(&e.results[1]), vec![20.0, 22.0, 24.0, 26.0]);
    }

    #[test]
    fn without_batching_each_request_runs_alone() {
        let w = Double::new();
        let e = run(&w, false, vec![req(1, 0.0), req(2, 10.0)], clock);
        assert_eq!(*w.calls.lock().unwrap(), vec![1, 2]);
        assert_eq!(e.engine_calls, 2);
        assert_eq!(y(&e.results[1]), vec![20.0, 22.0, 24.0, 26.0]);
    }

    #[test]
    fn a_bad_request_gets_its_own_error_and_the_others_run() {
        let w = Double::new();
        let wrong_dtype = Ok(vec![(
            "x".into(),
            Tensor::from_shape_vec(&[1, 2], vec![1.0f64, 2.0]).unwrap(),
        )]);
        let wrong_shape = Ok(vec![(
            "x".into(),
            Tensor::from_shape_vec(&[1, 3], vec![1.0f32, 2.0, 3.0]).unwrap(),
        )]);
        let unreadable = Err(RequestError::Invalid("input 'x': in GPU memory".into()));
        let e = run(
            &w,
            true,
            vec![
                req(1, 0.0),
                wrong_dtype,
                wrong_shape,
                unreadable,
                req(1, 5.0),
            ],
            clock,
        );
        assert_eq!(*w.calls.lock().unwrap(), vec![2]);
        assert_eq!(y(&e.results[4]), vec![10.0, 12.0]);
        let err = |i: usize| e.results[i].as_ref().unwrap_err().to_string();
        assert!(
            err(1).contains("'x'") && err(1).contains("f64"),
            "{}",
            err(1)
        );
        assert!(err(2).contains("'x'") && err(2).contains('3'), "{}", err(2));
        assert_eq!(err(3), "input 'x': in GPU memory");
    }

    #[test]
    fn an_engine_panic_is_an_error_for_its_batch() {
        struct Panics(Double);
        impl Wrapper for Panics {
            fn backend(&self) -> &str {
                "panics"
            }
            fn signature(&self) -> &Signature {
                &self.0.sig
            }
            fn execute(&self, _: Vec<Tensor>) -> rdeploy::Result<Vec<Tensor>> {
                panic!("kernel bug")
            }
        }
        let w = Panics(Double::new());
        let e = run(&w, true, vec![req(1, 0.0), req(1, 1.0)], clock);
        for r in &e.results {
            let msg = r.as_ref().unwrap_err().to_string();
            assert!(
                msg.contains("kernel bug") && msg.contains("2 requests"),
                "{msg}"
            );
        }
    }

    #[test]
    fn an_output_without_the_batch_dim_is_refused() {
        struct Sums(Double);
        impl Wrapper for Sums {
            fn backend(&self) -> &str {
                "sums"
            }
            fn signature(&self) -> &Signature {
                &self.0.sig
            }
            fn execute(&self, inputs: Vec<Tensor>) -> rdeploy::Result<Vec<Tensor>> {
                let s: f32 = inputs[0].view::<f32>()?.sum();
                Ok(vec![Tensor::from_shape_vec(&[1], vec![s])?])
            }
        }
        let w = Sums(Double::new());
        let e = run(&w, true, vec![req(1, 0.0), req(1, 1.0)], clock);
        let msg = e.results[0].as_ref().unwrap_err().to_string();
        assert!(
            msg.contains("output 'y'") && msg.contains("max_batch_size"),
            "{msg}"
        );
    }
}
