//! MMDeploy's and mmcv's ONNX custom ops (`rdeploy-ops` kernels) as ONNX Runtime custom
//! operators, through ort's custom-operator API: the `mmdeploy` and `mmcv` domains every
//! session gets, so models MMDeploy exported for ONNX Runtime run without MMDeploy's compiled
//! op library (`libmmdeploy_onnxruntime_ops.so`).

use ort::operator::{
    BoxedKernel, ComputeContext, KernelContext, Operator, OperatorDomain, OperatorInput,
    OperatorOutput,
};
use ort::value::TensorElementType;
use rdeploy_core::{DType, Tensor};
use rdeploy_ops::OpDef;

/// The op domains rdeploy provides (each op of `rdeploy_ops::all()` under its domain).
///
/// # Errors
/// ONNX Runtime's error creating a domain.
pub(crate) fn domains() -> ort::Result<Vec<OperatorDomain>> {
    let mut names: Vec<&str> = rdeploy_ops::all().iter().map(|d| d.domain).collect();
    names.dedup();
    names.sort_unstable();
    names.dedup();
    names
        .into_iter()
        .map(|domain| {
            let mut d = OperatorDomain::new(domain)?;
            for def in rdeploy_ops::all().iter().filter(|d| d.domain == domain) {
                d = d.add(RdeployOp(def))?;
            }
            Ok(d)
        })
        .collect()
}

/// The names `domain::op_type` of the ops [`domains`] provides, for `check-env`.
pub(crate) fn names() -> Vec<String> {
    rdeploy_ops::qualified_names()
}

fn element_type(d: DType) -> TensorElementType {
    match d {
        DType::I64 => TensorElementType::Int64,
        DType::I32 => TensorElementType::Int32,
        _ => TensorElementType::Float32,
    }
}

struct RdeployOp(&'static OpDef);

/// Attribute reads from ONNX Runtime's kernel info (a missing or differently typed attribute
/// reads as absent).
struct OrtAttributes<'a, 'b>(&'a KernelContext<'b>);

impl rdeploy_ops::Attributes for OrtAttributes<'_, '_> {
    fn int(&self, name: &str) -> Option<i64> {
        self.0.get::<i64>(name)
    }
    fn float(&self, name: &str) -> Option<f32> {
        self.0.get::<f32>(name)
    }
    fn ints(&self, name: &str) -> Option<Vec<i64>> {
        self.0.get::<Vec<i64>>(name)
    }
    fn floats(&self, name: &str) -> Option<Vec<f32>> {
        self.0.get::<Vec<f32>>(name)
    }
    fn string(&self, name: &str) -> Option<String> {
        self.0.get::<String>(name)
    }
}

impl Operator for RdeployOp {
    type Kernel<'attr> = BoxedKernel<'attr>;

    fn name(&self) -> &str {
        self.0.op_type
    }

    fn inputs(&self) -> impl IntoIterator<Item = OperatorInput> {
        self.0
            .inputs
            .iter()
            .map(|p| {
                if p.optional {
                    OperatorInput::optional(element_type(p.dtype))
                } else {
                    OperatorInput::required(element_type(p.dtype))
                }
            })
            .collect::<Vec<_>>()
    }

    fn outputs(&self) -> impl IntoIterator<Item = OperatorOutput> {
        self.0
            .outputs
            .iter()
            .map(|p| OperatorOutput::required(element_type(p.dtype)))
            .collect::<Vec<_>>()
    }

    fn create_kernel<'attr>(
        &self,
        kctx: &KernelContext<'attr>,
    ) -> ort::Result<Self::Kernel<'attr>> {
        let def = self.0;
        let kernel = (def.build)(&OrtAttributes(kctx))
            .map_err(|e| ort::Error::new(format!("{}: {}", def.qualified_name(), e.report())))?;
        Ok(Box::new(move |ctx: &ComputeContext| {
            compute(def, kernel.as_ref(), ctx)
                .map_err(|e| ort::Error::new(format!("{}: {}", def.qualified_name(), e)))
        }))
    }
}

/// Copies ONNX Runtime's inputs into tensors, runs the kernel, copies the outputs back.
fn compute(
    def: &OpDef,
    kernel: &dyn rdeploy_ops::Kernel,
    ctx: &ComputeContext,
) -> Result<(), String> {
    let n = ctx.num_inputs().map_err(|e| e.to_string())?;
    let mut inputs: Vec<Option<Tensor>> = Vec::with_capacity(n);
    for i in 0..n {
        let Some(v) = ctx.input(i).map_err(|e| e.to_string())? else {
            inputs.push(None);
            continue;
        };
        let want = def.inputs.get(i).map(|p| p.dtype).unwrap_or(DType::F32);
        let t = match want {
            DType::I64 => {
                let (shape, data) = v.try_extract_tensor::<i64>().map_err(|e| e.to_string())?;
                Tensor::from_shape_vec(&dims(shape)?, data.to_vec())
            }
            DType::I32 => {
                let (shape, data) = v.try_extract_tensor::<i32>().map_err(|e| e.to_string())?;
                Tensor::from_shape_vec(&dims(shape)?, data.to_vec())
            }
            _ => {
                let (shape, data) = v.try_extract_tensor::<f32>().map_err(|e| e.to_string())?;
                Tensor::from_shape_vec(&dims(shape)?, data.to_vec())
            }
        }
        .map_err(|e| e.to_string())?;
        inputs.push(Some(t));
    }
    let refs: Vec<Option<&Tensor>> = inputs.iter().map(Option::as_ref).collect();
    let outputs = kernel.compute(&refs).map_err(|e| e.report())?;
    for (i, t) in outputs.iter().enumerate() {
        let shape: Vec<i64> = t.shape().iter().map(|d| *d as i64).collect();
        let Some(mut o) = ctx.output(i, shape).map_err(|e| e.to_string())? else {
            continue;
        };
        match t.dtype() {
            DType::I64 => {
                let (_, dst) = o
                    .try_extract_tensor_mut::<i64>()
                    .map_err(|e| e.to_string())?;
                dst.copy_from_slice(t.as_slice::<i64>().map_err(|e| e.to_string())?);
            }
            DType::I32 => {
                let (_, dst) = o
                    .try_extract_tensor_mut::<i32>()
                    .map_err(|e| e.to_string())?;
                dst.copy_from_slice(t.as_slice::<i32>().map_err(|e| e.to_string())?);
            }
            _ => {
                let (_, dst) = o
                    .try_extract_tensor_mut::<f32>()
                    .map_err(|e| e.to_string())?;
                dst.copy_from_slice(t.as_slice::<f32>().map_err(|e| e.to_string())?);
            }
        }
    }
    Ok(())
}

fn dims(shape: &ort::value::Shape) -> Result<Vec<usize>, String> {
    shape
        .iter()
        .map(|d| usize::try_from(*d).map_err(|_| format!("negative dim in {shape:?}")))
        .collect()
}
