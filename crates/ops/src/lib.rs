//! MMDeploy's and mmcv's ONNX custom operators in pure Rust, engine-neutral: each op is an
//! [`OpDef`] (name, ports, attributes parsed by `build`) and a [`Kernel`] (shape inference and
//! float32 compute on [`rdeploy_core::Tensor`]s), so an ONNX Runtime adapter (ort's custom-op
//! API) and a tract adapter (tract's op registration) run the same code.
//!
//! ```
//! use rdeploy_core::Tensor;
//! use rdeploy_ops::AttrMap;
//!
//! let def = rdeploy_ops::find("mmcv", "NonMaxSuppression").expect("registered");
//! let kernel = (def.build)(&AttrMap::new().with_float("iou_threshold", 0.5))?;
//! let boxes = Tensor::from_shape_vec(&[2, 4], vec![0f32, 0., 10., 10., 1., 1., 10., 10.])?;
//! let scores = Tensor::from_shape_vec(&[2], vec![0.6f32, 0.9])?;
//! let out = kernel.compute(&[Some(&boxes), Some(&scores)])?;
//! assert_eq!(out[0].as_slice::<i64>()?, &[1]); // the higher score wins, the other overlaps
//! # Ok::<(), rdeploy_core::Error>(())
//! ```
//!
//! The operators ([`all`] lists them, with each one's ports and a paragraph of semantics):
//!
//! | domain | op_type | what |
//! |---|---|---|
//! | `mmdeploy`, `mmcv` | `grid_sampler` | bilinear / nearest / bicubic sampling, zeros / border / reflection padding |
//! | `mmdeploy`, `mmcv` | `MMCVModulatedDeformConv2d` | modulated deformable convolution (DCNv2) |
//! | `mmcv` | `MMCVDeformConv2d` | deformable convolution (DCNv1) |
//! | `mmcv` | `MMCVRoiAlign` | RoIAlign, `avg` and `max` pooling |
//! | `mmdeploy`, `mmcv` | `MMCVRoIAlignRotated` | RoIAlign over rotated boxes |
//! | `mmcv` | `NonMaxSuppression` | NMS over one set of boxes |
//! | `mmcv` | `SoftNonMaxSuppression` | Soft-NMS (naive, linear, gaussian) |
//! | `mmdeploy` | `NMSRotated` | batched, per-class NMS of rotated boxes |
//! | `mmdeploy` | `NMSMatch` | batched, per-class NMS listing which box suppressed which |
//! | `mmcv` | `MMCVCornerPool` | CornerNet's corner pooling |
//! | `mmcv` | `cummax`, `cummin` | running maximum / minimum with indices |
//!
//! Design: the semantics are those of MMDeploy's ONNX Runtime kernels
//! (`csrc/mmdeploy/backend_ops/onnxruntime/*`, 1.3.1) and mmcv 1.7's
//! (`mmcv/ops/csrc/onnxruntime/cpu/*`; mmcv 2 dropped them);
//! where they read out of bounds, have undefined behaviour or disagree with the PyTorch
//! operator the model was exported from, the op's doc says what this crate does instead. Inputs
//! are validated (ranks, channel counts, index ranges) and attributes are parsed once, at build
//! time, so a malformed model fails with an error naming the op, the input or attribute and
//! what was expected, never with a panic. Attributes an exporter always writes but the source
//! gives a default for (PyTorch's or mmcv's Python signature) take that default when absent.
//! The tests check every op against independent numpy references
//! (`tests/data/generated/custom-ops`, from `scripts/make_custom_op_models.py`).

#![deny(unsafe_code)]

mod common;
mod deform_conv;
mod grid_sample;
mod nms;
mod roi_align;
mod rotated;
mod scan;

use rdeploy_core::{DType, Result, Tensor};
use std::collections::BTreeMap;

/// Attribute access, implemented by each engine adapter (ORT kernel info, tract's NodeProto).
///
/// Each accessor returns `None` when the node has no attribute of that name, or has one of
/// another type; the op then uses its documented default or reports the attribute as missing.
pub trait Attributes {
    /// An `INT` attribute.
    fn int(&self, name: &str) -> Option<i64>;
    /// A `FLOAT` attribute.
    fn float(&self, name: &str) -> Option<f32>;
    /// An `INTS` attribute.
    fn ints(&self, name: &str) -> Option<Vec<i64>>;
    /// A `FLOATS` attribute.
    fn floats(&self, name: &str) -> Option<Vec<f32>>;
    /// A `STRING` attribute (UTF-8).
    fn string(&self, name: &str) -> Option<String>;
}

/// One input or output of an op.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Port {
    /// The name used in MMDeploy's and mmcv's op documentation, and in error messages.
    pub name: &'static str,
    /// The element type the kernel takes or produces.
    pub dtype: DType,
    /// Whether the input may be absent (an empty name in the ONNX node, or a shorter input
    /// list). Outputs are never optional.
    pub optional: bool,
}

/// An op's static description.
#[derive(Clone, Copy)]
pub struct OpDef {
    /// The ONNX domain: `"mmdeploy"` or `"mmcv"`.
    pub domain: &'static str,
    /// The ONNX op type, e.g. `"grid_sampler"`.
    pub op_type: &'static str,
    /// The inputs, in ONNX order.
    pub inputs: &'static [Port],
    /// The outputs, in ONNX order.
    pub outputs: &'static [Port],
    /// The standard ONNX op (`Name-opset`) computing the same thing, possibly after moving
    /// inputs or attributes around (the op's `doc` says how), e.g. `Some("GridSample-16")`.
    pub standard_equivalent: Option<&'static str>,
    /// One paragraph: attributes, shapes, semantics, and the source they were taken from.
    pub doc: &'static str,
    /// Parses and validates the node's attributes into a [`Kernel`].
    ///
    /// # Errors
    /// [`rdeploy_core::Error::Backend`] naming the op and attribute when an attribute without
    /// a default is missing or a value is out of range (an unknown mode, a zero stride...).
    pub build: fn(&dyn Attributes) -> Result<Box<dyn Kernel>>,
}

impl OpDef {
    /// `domain::op_type`, the name used in messages.
    pub fn qualified_name(&self) -> String {
        format!("{}::{}", self.domain, self.op_type)
    }
}

impl std::fmt::Debug for OpDef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpDef")
            .field("domain", &self.domain)
            .field("op_type", &self.op_type)
            .field("inputs", &self.inputs)
            .field("outputs", &self.outputs)
            .field("standard_equivalent", &self.standard_equivalent)
            .finish_non_exhaustive()
    }
}

/// A configured op instance (attributes parsed and validated at build time).
///
/// Kernels are immutable and `Send + Sync`: one instance may run on many threads at once.
pub trait Kernel: Send + Sync {
    /// Output shapes from input shapes; `None` for a data-dependent dim (NMS's selected count)
    /// or an unknown input dim.
    ///
    /// `inputs[i]` is `None` when input `i`'s rank is unknown (or the optional input is
    /// absent); inputs past the end of the slice are absent.
    ///
    /// # Errors
    /// [`rdeploy_core::Error::InputMismatch`] when known dims contradict each other or the op
    /// (wrong rank, mismatched channels or batch, kernel larger than the padded input...);
    /// [`rdeploy_core::Error::Backend`] when an output's rank follows an input of unknown rank
    /// (`cummax`, `cummin`) or the input count is wrong.
    fn output_shapes(
        &self,
        inputs: &[Option<Vec<Option<usize>>>],
    ) -> Result<Vec<Vec<Option<usize>>>>;

    /// Computes the outputs. `inputs[i]` is `None` for an absent optional input.
    ///
    /// # Errors
    /// [`rdeploy_core::Error::InputMismatch`] naming the input when a required input is
    /// missing, has another dtype or a shape the op cannot take, or holds an index out of range
    /// (a RoI's batch index); [`rdeploy_core::Error::Backend`] when the output would not fit in
    /// memory.
    fn compute(&self, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>>;
}

/// Every op this crate implements, one entry per (domain, op type).
pub fn all() -> &'static [OpDef] {
    &OPS
}

/// `domain::op_type` of every op this crate implements (what engines list in `check-env`).
pub fn qualified_names() -> Vec<String> {
    OPS.iter().map(OpDef::qualified_name).collect()
}

/// The op registered as `domain::op_type` (exact, case-sensitive names as in the ONNX node).
pub fn find(domain: &str, op_type: &str) -> Option<&'static OpDef> {
    OPS.iter()
        .find(|d| d.domain == domain && d.op_type == op_type)
}

static OPS: [OpDef; 15] = [
    grid_sample::MMDEPLOY,
    grid_sample::MMCV,
    deform_conv::MMDEPLOY,
    deform_conv::MMCV,
    deform_conv::MMCV_V1,
    roi_align::ROI_ALIGN,
    roi_align::ROTATED_MMDEPLOY,
    roi_align::ROTATED_MMCV,
    nms::NMS,
    nms::SOFT_NMS,
    nms::NMS_ROTATED,
    nms::NMS_MATCH,
    scan::CORNER_POOL,
    scan::CUMMAX,
    scan::CUMMIN,
];

/// A simple [`Attributes`] implementation over owned values, for tests and for adapters that
/// decode a node's attributes up front.
///
/// ```
/// use rdeploy_ops::{AttrMap, Attributes};
/// let a = AttrMap::new().with_int("groups", 2).with_ints("stride", &[1, 1]).with_string("mode", "avg");
/// assert_eq!(a.int("groups"), Some(2));
/// assert_eq!(a.float("groups"), None); // another type reads as absent
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AttrMap {
    values: BTreeMap<String, AttrValue>,
}

/// One attribute value of an [`AttrMap`].
#[derive(Clone, Debug, PartialEq)]
pub enum AttrValue {
    /// `INT`.
    Int(i64),
    /// `FLOAT`.
    Float(f32),
    /// `INTS`.
    Ints(Vec<i64>),
    /// `FLOATS`.
    Floats(Vec<f32>),
    /// `STRING`.
    String(String),
}

impl AttrMap {
    /// An empty map.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `name` to `value`, replacing any previous value.
    pub fn set(mut self, name: &str, value: AttrValue) -> Self {
        self.values.insert(name.to_owned(), value);
        self
    }

    /// Sets an `INT` attribute.
    pub fn with_int(self, name: &str, v: i64) -> Self {
        self.set(name, AttrValue::Int(v))
    }

    /// Sets a `FLOAT` attribute.
    pub fn with_float(self, name: &str, v: f32) -> Self {
        self.set(name, AttrValue::Float(v))
    }

    /// Sets an `INTS` attribute.
    pub fn with_ints(self, name: &str, v: &[i64]) -> Self {
        self.set(name, AttrValue::Ints(v.to_vec()))
    }

    /// Sets a `FLOATS` attribute.
    pub fn with_floats(self, name: &str, v: &[f32]) -> Self {
        self.set(name, AttrValue::Floats(v.to_vec()))
    }

    /// Sets a `STRING` attribute.
    pub fn with_string(self, name: &str, v: &str) -> Self {
        self.set(name, AttrValue::String(v.to_owned()))
    }
}

impl Attributes for AttrMap {
    fn int(&self, name: &str) -> Option<i64> {
        match self.values.get(name) {
            Some(AttrValue::Int(v)) => Some(*v),
            _ => None,
        }
    }

    fn float(&self, name: &str) -> Option<f32> {
        match self.values.get(name) {
            Some(AttrValue::Float(v)) => Some(*v),
            _ => None,
        }
    }

    fn ints(&self, name: &str) -> Option<Vec<i64>> {
        match self.values.get(name) {
            Some(AttrValue::Ints(v)) => Some(v.clone()),
            _ => None,
        }
    }

    fn floats(&self, name: &str) -> Option<Vec<f32>> {
        match self.values.get(name) {
            Some(AttrValue::Floats(v)) => Some(v.clone()),
            _ => None,
        }
    }

    fn string(&self, name: &str) -> Option<String> {
        match self.values.get(name) {
            Some(AttrValue::String(v)) => Some(v.clone()),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_names_are_unique_and_findable() {
        let mut seen = std::collections::BTreeSet::new();
        for d in all() {
            assert!(
                seen.insert(d.qualified_name()),
                "{} twice",
                d.qualified_name()
            );
            assert!(std::ptr::eq(find(d.domain, d.op_type).unwrap(), d));
            assert!(d.domain == "mmdeploy" || d.domain == "mmcv");
            assert!(!d.doc.is_empty() && !d.inputs.is_empty() && !d.outputs.is_empty());
            // Optional inputs come last, so an adapter can pass a shorter list.
            let first_optional = d.inputs.iter().position(|p| p.optional);
            if let Some(i) = first_optional {
                assert!(d.inputs[i..].iter().all(|p| p.optional), "{}", d.op_type);
            }
        }
        assert!(find("mmdeploy", "NonMaxSuppression").is_none());
        assert!(find("mmcv", "grid_sampler").is_some());
        assert!(find("mmdeploy", "grid_sampler").is_some());
    }

    #[test]
    fn attr_map_reads_each_type_and_treats_other_types_as_absent() {
        let a = AttrMap::new()
            .with_int("i", 3)
            .with_float("f", 0.5)
            .with_ints("is", &[1, 2])
            .with_floats("fs", &[1.5])
            .with_string("s", "max");
        assert_eq!(Attributes::int(&a, "i"), Some(3));
        assert_eq!(Attributes::float(&a, "f"), Some(0.5));
        assert_eq!(Attributes::ints(&a, "is"), Some(vec![1, 2]));
        assert_eq!(Attributes::floats(&a, "fs"), Some(vec![1.5]));
        assert_eq!(Attributes::string(&a, "s").as_deref(), Some("max"));
        assert_eq!(Attributes::int(&a, "f"), None);
        assert_eq!(Attributes::string(&a, "missing"), None);
    }
}
