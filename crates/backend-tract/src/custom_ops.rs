//! MMDeploy's and mmcv's ONNX custom ops (`rdeploy-ops` kernels) as tract ops, registered in
//! tract's ONNX op table, so models MMDeploy exported run on the embedded engine.
//!
//! tract looks ops up by type alone; the builder here picks the kernel by the node's domain
//! and type, and hands a node of another domain that shares a type (the standard
//! `NonMaxSuppression`) to tract's own builder.

use rdeploy_core::{DType, Tensor};
use rdeploy_ops::OpDef;
use std::sync::{Arc, OnceLock};
use tract_onnx::model::{OnnxOpRegister, ParsingContext};
use tract_onnx::pb::NodeProto;
use tract_onnx::prelude::*;
use tract_onnx::tract_hir::internal::*;

type OpBuilder =
    fn(&ParsingContext, &NodeProto) -> TractResult<(Box<dyn InferenceOp>, Vec<String>)>;

/// tract's own builders of op types rdeploy also registers (by type), for nodes of other
/// domains.
static ORIGINAL: OnceLock<Vec<(String, OpBuilder)>> = OnceLock::new();

/// Adds every `rdeploy-ops` op type to `reg`.
pub(crate) fn register(reg: &mut OnnxOpRegister) {
    let originals = ORIGINAL.get_or_init(|| {
        rdeploy_ops::all()
            .iter()
            .filter_map(|d| Some((d.op_type.to_string(), *reg.0.get(d.op_type)?)))
            .collect()
    });
    let _ = originals;
    for def in rdeploy_ops::all() {
        reg.insert(def.op_type, build);
    }
}

/// The names `domain::op_type` of the ops registered, for `check-env`.
pub(crate) fn names() -> Vec<String> {
    rdeploy_ops::qualified_names()
}

fn build(
    ctx: &ParsingContext,
    node: &NodeProto,
) -> TractResult<(Box<dyn InferenceOp>, Vec<String>)> {
    let domain = match node.domain.as_str() {
        "ai.onnx" => "",
        d => d,
    };
    let Some(def) = rdeploy_ops::find(domain, &node.op_type) else {
        if let Some((_, b)) = ORIGINAL
            .get()
            .and_then(|o| o.iter().find(|(n, _)| *n == node.op_type))
        {
            return b(ctx, node);
        }
        bail!(
            "{}::{} is not an op rdeploy provides for tract (it has: {})",
            domain,
            node.op_type,
            names().join(", ")
        );
    };
    let kernel = (def.build)(&TractAttributes(node)).map_err(|e| anyhow!(e.report()))?;
    // A symbol per output dim the kernel cannot tell from input dims (NMS's count).
    let symbols = def
        .outputs
        .iter()
        .map(|_| {
            (0..8)
                .map(|_| ctx.template.symbols.new_with_prefix("rd"))
                .collect()
        })
        .collect();
    let present: Vec<bool> = (0..def.inputs.len())
        .map(|i| node.input.get(i).is_some_and(|s| !s.is_empty()))
        .collect();
    Ok((
        expand(RdeployExpansion {
            op: RdeployOp {
                def,
                kernel: Arc::from(kernel),
                symbols,
                present,
            },
        }),
        vec![],
    ))
}

struct TractAttributes<'a>(&'a NodeProto);

impl rdeploy_ops::Attributes for TractAttributes<'_> {
    fn int(&self, name: &str) -> Option<i64> {
        self.0.get_attr_opt::<i64>(name).ok().flatten()
    }
    fn float(&self, name: &str) -> Option<f32> {
        self.0.get_attr_opt::<f32>(name).ok().flatten()
    }
    fn ints(&self, name: &str) -> Option<Vec<i64>> {
        self.0.get_attr_opt_vec::<i64>(name).ok().flatten()
    }
    fn floats(&self, name: &str) -> Option<Vec<f32>> {
        self.0.get_attr_opt_vec::<f32>(name).ok().flatten()
    }
    fn string(&self, name: &str) -> Option<String> {
        self.0.get_attr_opt::<String>(name).ok().flatten()
    }
}

fn datum(d: DType) -> DatumType {
    match d {
        DType::I64 => i64::datum_type(),
        DType::I32 => i32::datum_type(),
        _ => f32::datum_type(),
    }
}

/// One configured custom op in a tract graph.
#[derive(Clone)]
struct RdeployOp {
    def: &'static OpDef,
    kernel: Arc<dyn rdeploy_ops::Kernel>,
    symbols: Vec<Vec<Symbol>>,
    /// Which of the op's inputs the node gives (absent optional inputs are not wired).
    present: Vec<bool>,
}

impl std::fmt::Debug for RdeployOp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.def.qualified_name())
    }
}

impl PartialEq for RdeployOp {
    fn eq(&self, other: &Self) -> bool {
        std::ptr::eq(self, other)
    }
}
impl Eq for RdeployOp {}

impl std::hash::Hash for RdeployOp {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.def.qualified_name().hash(state);
    }
}

impl RdeployOp {
    /// The output facts from the inputs' dims: the kernel's dims where it knows them, else
    /// this op's symbols (resolved when the op runs).
    fn facts(&self, inputs: &[Option<Vec<Option<usize>>>]) -> TractResult<TVec<TypedFact>> {
        let shapes = self
            .kernel
            .output_shapes(&self.spread(inputs))
            .map_err(|e| anyhow!(e.report()))?;
        Ok(shapes
            .iter()
            .zip(self.def.outputs)
            .enumerate()
            .map(|(k, (dims, port))| {
                let dims: TVec<TDim> = dims
                    .iter()
                    .enumerate()
                    .map(|(j, d)| match d {
                        Some(n) => n.to_dim(),
                        None => self.symbols[k]
                            .get(j)
                            .map(|s| s.to_dim())
                            .unwrap_or_else(|| TDim::from(0)),
                    })
                    .collect();
                datum(port.dtype).fact(dims)
            })
            .collect())
    }

    /// Wired inputs to the op's input positions (absent optional ones as `None`).
    fn spread<T: Clone>(&self, wired: &[Option<T>]) -> Vec<Option<T>> {
        let mut it = wired.iter();
        self.present
            .iter()
            .map(|p| {
                if *p {
                    it.next().cloned().flatten()
                } else {
                    None
                }
            })
            .collect()
    }
}

impl Op for RdeployOp {
    fn name(&self) -> StaticName {
        self.def.qualified_name().into()
    }

    fn mints_runtime_symbols(&self) -> bool {
        true
    }

    op_as_typed_op!();
}

impl EvalOp for RdeployOp {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let tensors: Vec<Option<Tensor>> = inputs
            .iter()
            .zip(
                self.present
                    .iter()
                    .enumerate()
                    .filter(|(_, p)| **p)
                    .map(|(i, _)| i),
            )
            .map(|(t, i)| {
                let want = self
                    .def
                    .inputs
                    .get(i)
                    .map(|p| p.dtype)
                    .unwrap_or(DType::F32);
                let shape = t.shape().to_vec();
                let r = match want {
                    DType::I64 => Tensor::from_shape_vec(&shape, plain::<i64>(t)?),
                    DType::I32 => Tensor::from_shape_vec(&shape, plain::<i32>(t)?),
                    _ => Tensor::from_shape_vec(&shape, plain::<f32>(t)?),
                };
                r.map(Some).map_err(|e| anyhow!(e.report()))
            })
            .collect::<TractResult<_>>()?;
        let spread = self.spread(&tensors);
        let refs: Vec<Option<&Tensor>> = spread.iter().map(Option::as_ref).collect();
        let outs = self
            .kernel
            .compute(&refs)
            .map_err(|e| anyhow!("{}: {}", self.def.qualified_name(), e.report()))?;
        outs.into_iter()
            .map(|t| {
                let shape = t.shape().to_vec();
                let tt = match t.dtype() {
                    DType::I64 => tract_onnx::prelude::Tensor::from_shape(
                        &shape,
                        t.as_slice::<i64>().map_err(|e| anyhow!(e.report()))?,
                    )?,
                    DType::I32 => tract_onnx::prelude::Tensor::from_shape(
                        &shape,
                        t.as_slice::<i32>().map_err(|e| anyhow!(e.report()))?,
                    )?,
                    _ => tract_onnx::prelude::Tensor::from_shape(
                        &shape,
                        t.as_slice::<f32>().map_err(|e| anyhow!(e.report()))?,
                    )?,
                };
                Ok(tt.into_tvalue())
            })
            .collect()
    }
}

impl TypedOp for RdeployOp {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        let dims: Vec<Option<Vec<Option<usize>>>> = inputs
            .iter()
            .map(|f| Some(f.shape.iter().map(|d| d.to_usize().ok()).collect()))
            .collect();
        self.facts(&dims)
    }

    as_op!();
}

/// The inference-model form: types and ranks for tract's analysis, then the typed op.
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
struct RdeployExpansion {
    op: RdeployOp,
}

impl Expansion for RdeployExpansion {
    fn name(&self) -> StaticName {
        self.op.def.qualified_name().into()
    }

    fn nboutputs(&self) -> TractResult<usize> {
        Ok(self.op.def.outputs.len())
    }

    fn rules<'r, 'p: 'r, 's: 'r>(
        &'s self,
        s: &mut Solver<'r>,
        inputs: &'p [TensorProxy],
        outputs: &'p [TensorProxy],
    ) -> InferenceResult {
        check_output_arity(outputs, self.op.def.outputs.len())?;
        for (o, port) in outputs.iter().zip(self.op.def.outputs) {
            s.equals(&o.datum_type, datum(port.dtype))?;
        }
        let op = self.op.clone();
        s.given_all(inputs.iter().map(|i| &i.shape), move |s, shapes| {
            let dims: Vec<Option<Vec<Option<usize>>>> = shapes
                .iter()
                .map(|sh| Some(sh.iter().map(|d| d.to_usize().ok()).collect()))
                .collect();
            let facts = op.facts(&dims)?;
            for (o, f) in outputs.iter().zip(facts) {
                s.equals(&o.shape, f.shape.to_tvec())?;
            }
            Ok(())
        })
    }

    fn wire(
        &self,
        name: &str,
        model: &mut TypedModel,
        inputs: &[OutletId],
    ) -> TractResult<TVec<OutletId>> {
        model.wire_node(name, self.op.clone(), inputs)
    }
}

/// A tract tensor's elements as `T` (cast when another type), in row-major order.
fn plain<T: Datum + Copy>(t: &tract_onnx::prelude::Tensor) -> TractResult<Vec<T>> {
    let c = t.cast_to::<T>()?;
    Ok(c.to_plain_array_view::<T>()?.iter().copied().collect())
}
