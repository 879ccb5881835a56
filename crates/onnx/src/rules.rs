//! The rewrite rules rdeploy ships (see `docs/rewrites.md`): MMDeploy's and mmcv's ONNX custom
//! ops mapped to the standard ops with the same semantics, for the engines that have those
//! ops. Engines without them run rdeploy's own kernels of the custom ops (`rdeploy-ops`).
//!
//! Semantics and attribute conventions: MMDeploy's `docs/en/06-custom-ops/onnxruntime.md` and
//! ONNX Runtime kernels (`csrc/mmdeploy/backend_ops/onnxruntime/`), mmcv 1.x's
//! `mmcv/ops/csrc/onnxruntime/cpu/`, and the ONNX operator specification of each standard op.

use crate::node::{self, attr_float, attr_int, attr_ints, attr_string};
use crate::rewrite::{Pattern, Rewrite, RewriteCx};
use rdeploy_core::onnx::proto::NodeProto;
use rdeploy_core::onnx::proto::attribute_proto::AttributeType;
use rdeploy_core::{Error, Result};
use std::sync::Arc;

/// Engines whose ONNX importers have the standard ops these rules produce.
const STANDARD_OP_ENGINES: &[&str] = &["onnxruntime", "openvino"];

/// Every built-in rule, in the order they are tried.
pub fn builtin() -> Vec<Arc<dyn Rewrite>> {
    vec![
        Arc::new(GridSamplerToGridSample { domain: "mmdeploy" }),
        Arc::new(GridSamplerToGridSample { domain: "mmcv" }),
        Arc::new(ModulatedDeformConvToDeformConv { domain: "mmdeploy" }),
        Arc::new(ModulatedDeformConvToDeformConv { domain: "mmcv" }),
        Arc::new(MmcvRoiAlignToRoiAlign),
        Arc::new(MmcvNmsToNonMaxSuppression),
        Arc::new(DecomposeLpPool),
        Arc::new(DecomposeCenterCropPad),
    ]
}

/// Engines without `LpPool` and `CenterCropPad` (tract 0.23; measured by the ONNX node suite).
const LACK_LP_POOL: &[&str] = &["tract"];

/// Fails naming the first of `attrs` (name, expected type) that `n` has with another type.
fn typed(n: &NodeProto, attrs: &[(&str, AttributeType)]) -> Result<()> {
    for (name, t) in attrs {
        if let Some(m) = node::mistyped(n, name, *t) {
            return Err(bad(n, m));
        }
    }
    Ok(())
}

fn bad(n: &NodeProto, msg: impl std::fmt::Display) -> Error {
    // The rewrite pass puts the model file in place of "<graph>".
    Error::model("<graph>", format!("{}: {msg}", node::describe(n)))
}

/// `grid_sampler` (mmdeploy / mmcv) -> `GridSample`-16: the same bilinear/nearest/bicubic
/// sampling with zeros/border/reflection padding (enum attributes become strings).
struct GridSamplerToGridSample {
    domain: &'static str,
}

impl Rewrite for GridSamplerToGridSample {
    fn name(&self) -> &str {
        match self.domain {
            "mmcv" => "mmcv_grid_sampler_to_grid_sample",
            _ => "grid_sampler_to_grid_sample",
        }
    }
    fn pattern(&self) -> Pattern {
        Pattern::custom(self.domain, "grid_sampler")
    }
    fn backends(&self) -> &[&str] {
        STANDARD_OP_ENGINES
    }
    fn needs_opset(&self) -> Option<i64> {
        Some(16)
    }
    fn description(&self) -> &str {
        "grid_sampler(input, grid) -> GridSample-16 (interpolation_mode/padding_mode enums to strings)"
    }
    fn rewrite(&self, n: &NodeProto, cx: &mut RewriteCx<'_>) -> Result<Option<Vec<NodeProto>>> {
        if n.input.len() != 2 || n.output.len() != 1 {
            return Err(bad(n, "expected inputs (input, grid) and one output"));
        }
        typed(
            n,
            &[
                ("interpolation_mode", AttributeType::Int),
                ("padding_mode", AttributeType::Int),
                ("align_corners", AttributeType::Int),
            ],
        )?;
        // Opset 20 renamed the modes (bilinear -> linear, bicubic -> cubic).
        let new_names = cx.opset >= 20;
        let mode = match attr_int(n, "interpolation_mode").unwrap_or(0) {
            0 if new_names => "linear",
            0 => "bilinear",
            1 => "nearest",
            2 if new_names => "cubic",
            2 => "bicubic",
            m => return Err(bad(n, format!("interpolation_mode {m} is not 0, 1 or 2"))),
        };
        let padding = match attr_int(n, "padding_mode").unwrap_or(0) {
            0 => "zeros",
            1 => "border",
            2 => "reflection",
            m => return Err(bad(n, format!("padding_mode {m} is not 0, 1 or 2"))),
        };
        let ac = attr_int(n, "align_corners").unwrap_or(0);
        if !(0..=1).contains(&ac) {
            return Err(bad(n, format!("align_corners {ac} is not 0 or 1")));
        }
        Ok(Some(vec![node::node(
            "GridSample",
            n.name(),
            &[&n.input[0], &n.input[1]],
            &[&n.output[0]],
            vec![
                node::string("mode", mode),
                node::string("padding_mode", padding),
                node::int("align_corners", ac),
            ],
        )]))
    }
}

/// `MMCVModulatedDeformConv2d` -> `DeformConv`-19 (inputs reordered: X, W, offset, B, mask;
/// symmetric `padding` to `pads`). The offset layout (group, kh, kw, (dy, dx)) is the same.
struct ModulatedDeformConvToDeformConv {
    domain: &'static str,
}

impl Rewrite for ModulatedDeformConvToDeformConv {
    fn name(&self) -> &str {
        match self.domain {
            "mmcv" => "mmcv_modulated_deform_conv_to_deform_conv",
            _ => "modulated_deform_conv_to_deform_conv",
        }
    }
    fn pattern(&self) -> Pattern {
        Pattern::custom(self.domain, "MMCVModulatedDeformConv2d")
    }
    fn backends(&self) -> &[&str] {
        // OpenVINO's ONNX importer has no DeformConv-19 (2026.4: "No conversion rule found").
        &["onnxruntime"]
    }
    fn needs_opset(&self) -> Option<i64> {
        Some(19)
    }
    fn description(&self) -> &str {
        "MMCVModulatedDeformConv2d(input, offset, mask, weight, bias) -> DeformConv-19(input, weight, offset, bias, mask)"
    }
    fn rewrite(&self, n: &NodeProto, _cx: &mut RewriteCx<'_>) -> Result<Option<Vec<NodeProto>>> {
        if !(4..=5).contains(&n.input.len()) || n.output.len() != 1 {
            return Err(bad(
                n,
                "expected inputs (input, offset, mask, weight[, bias]) and one output",
            ));
        }
        typed(
            n,
            &[
                ("stride", AttributeType::Ints),
                ("padding", AttributeType::Ints),
                ("dilation", AttributeType::Ints),
                ("groups", AttributeType::Int),
                ("deform_groups", AttributeType::Int),
            ],
        )?;
        let pair = |name: &str, default: i64| -> Result<Vec<i64>> {
            let v = attr_ints(n, name).unwrap_or_else(|| vec![default, default]);
            match v.len() {
                1 => Ok(vec![v[0], v[0]]),
                2 => Ok(v),
                _ => Err(bad(
                    n,
                    format!("`{name}` must have 1 or 2 values, got {v:?}"),
                )),
            }
        };
        let (stride, padding, dilation) = (
            pair("stride", 1)?,
            pair("padding", 0)?,
            pair("dilation", 1)?,
        );
        let groups = attr_int(n, "groups").unwrap_or(1);
        let deform_groups = attr_int(n, "deform_groups")
            .or_else(|| attr_int(n, "deformable_groups"))
            .unwrap_or(1);
        let bias = n.input.get(4).cloned().unwrap_or_default();
        Ok(Some(vec![node::node(
            "DeformConv",
            n.name(),
            &[&n.input[0], &n.input[3], &n.input[1], &bias, &n.input[2]],
            &[&n.output[0]],
            vec![
                node::ints("strides", &stride),
                node::ints("pads", &[padding[0], padding[1], padding[0], padding[1]]),
                node::ints("dilations", &dilation),
                node::int("group", groups),
                node::int("offset_group", deform_groups),
            ],
        )]))
    }
}

/// `mmcv::MMCVRoiAlign` in `avg` mode -> `RoiAlign`-16: rois `[K, 5]` (batch index, x1, y1,
/// x2, y2) split into `batch_indices` (int64) and boxes; `aligned=1` is
/// `coordinate_transformation_mode='half_pixel'`, `aligned=0` is `'output_half_pixel'`.
/// `max` mode is left to rdeploy's kernel (RoiAlign's `max` pools differently).
struct MmcvRoiAlignToRoiAlign;

impl Rewrite for MmcvRoiAlignToRoiAlign {
    fn name(&self) -> &str {
        "mmcv_roi_align_to_roi_align"
    }
    fn pattern(&self) -> Pattern {
        Pattern::custom("mmcv", "MMCVRoiAlign")
    }
    fn backends(&self) -> &[&str] {
        STANDARD_OP_ENGINES
    }
    fn needs_opset(&self) -> Option<i64> {
        Some(16)
    }
    fn description(&self) -> &str {
        "MMCVRoiAlign(input, rois[K,5]) in avg mode -> RoiAlign-16(input, rois[:,1:5], int64(rois[:,0]))"
    }
    fn rewrite(&self, n: &NodeProto, cx: &mut RewriteCx<'_>) -> Result<Option<Vec<NodeProto>>> {
        if n.input.len() != 2 || n.output.len() != 1 {
            return Err(bad(n, "expected inputs (input, rois) and one output"));
        }
        let mode = attr_string(n, "mode").unwrap_or_else(|| "avg".into());
        if mode != "avg" {
            return Ok(None);
        }
        let rois = n.input[1].clone();
        let (idx_f, idx, boxes) = (
            cx.fresh(&format!("{rois}_batch_f")),
            cx.fresh(&format!("{rois}_batch")),
            cx.fresh(&format!("{rois}_boxes")),
        );
        let zero = cx.add_constant(
            "zero",
            &rdeploy_core::Tensor::zeros(rdeploy_core::DType::I64, &[]),
        );
        let (start, end, axis) = (
            cx.add_i64("start", &[1]),
            cx.add_i64("end", &[5]),
            cx.add_i64("axis", &[1]),
        );
        let aligned = attr_int(n, "aligned").unwrap_or(1);
        Ok(Some(vec![
            // Column 0 ([K]): the batch index, as float; RoiAlign takes it as int64.
            node::node(
                "Gather",
                "",
                &[&rois, &zero],
                &[&idx_f],
                vec![node::int("axis", 1)],
            ),
            node::node("Cast", "", &[&idx_f], &[&idx], vec![node::int("to", 7)]),
            node::node(
                "Slice",
                "",
                &[&rois, &start, &end, &axis],
                &[&boxes],
                vec![],
            ),
            node::node(
                "RoiAlign",
                n.name(),
                &[&n.input[0], &boxes, &idx],
                &[&n.output[0]],
                vec![
                    node::int("output_height", attr_int(n, "output_height").unwrap_or(1)),
                    node::int("output_width", attr_int(n, "output_width").unwrap_or(1)),
                    node::int("sampling_ratio", attr_int(n, "sampling_ratio").unwrap_or(0)),
                    node::float(
                        "spatial_scale",
                        attr_float(n, "spatial_scale").unwrap_or(1.0),
                    ),
                    node::string("mode", "avg"),
                    node::string(
                        "coordinate_transformation_mode",
                        if aligned != 0 {
                            "half_pixel"
                        } else {
                            "output_half_pixel"
                        },
                    ),
                ],
            ),
        ]))
    }
}

/// `mmcv::NonMaxSuppression` with `offset=0` -> `NonMaxSuppression`-11 over one batch and
/// class, keeping the box column of its `[K, 3]` output: the same greedy suppression by IoU
/// in descending score order (`offset=1`, the +1 pixel area rule, stays with rdeploy's kernel).
struct MmcvNmsToNonMaxSuppression;

impl Rewrite for MmcvNmsToNonMaxSuppression {
    fn name(&self) -> &str {
        "mmcv_nms_to_non_max_suppression"
    }
    fn pattern(&self) -> Pattern {
        Pattern::custom("mmcv", "NonMaxSuppression")
    }
    fn backends(&self) -> &[&str] {
        // Only where rdeploy has no kernel: ONNX Runtime runs rdeploy's, identical to tract's
        // on degenerate input too (inverted boxes, NaN scores), which the standard op orders
        // and normalises differently.
        &["openvino"]
    }
    fn needs_opset(&self) -> Option<i64> {
        Some(11)
    }
    fn description(&self) -> &str {
        "mmcv::NonMaxSuppression(boxes[N,4], scores[N]) with offset=0 -> NonMaxSuppression-11 on [1,N,4]/[1,1,N], box column"
    }
    fn rewrite(&self, n: &NodeProto, cx: &mut RewriteCx<'_>) -> Result<Option<Vec<NodeProto>>> {
        if n.input.len() != 2 || n.output.len() != 1 {
            return Err(bad(n, "expected inputs (boxes, scores) and one output"));
        }
        if attr_int(n, "offset").unwrap_or(0) != 0 {
            return Ok(None);
        }
        typed(
            n,
            &[
                ("iou_threshold", AttributeType::Float),
                ("offset", AttributeType::Int),
            ],
        )?;
        // mmcv's kernel's default; the standard op takes [0, 1] only.
        let iou = attr_float(n, "iou_threshold").unwrap_or(0.0);
        if !(0.0..=1.0).contains(&iou) {
            return Ok(None);
        }
        let (b, s) = (n.input[0].clone(), n.input[1].clone());
        let (b3, s3, sel, col) = (
            cx.fresh(&format!("{b}_b")),
            cx.fresh(&format!("{s}_bc")),
            cx.fresh("nms_selected"),
            cx.fresh("nms_box_col"),
        );
        let max_out = cx.add_i64("max_output_boxes", &[i64::from(i32::MAX)]);
        let iou_t = cx.add_f32("iou_threshold", &[iou]);
        let two = cx.add_i64("two", &[2]);
        let flat = cx.add_i64("shape", &[-1]);
        Ok(Some(vec![
            cx.unsqueeze(&b, &[0], &b3, cx.opset),
            cx.unsqueeze(&s, &[0, 1], &s3, cx.opset),
            node::node(
                "NonMaxSuppression",
                n.name(),
                &[&b3, &s3, &max_out, &iou_t],
                &[&sel],
                vec![node::int("center_point_box", 0)],
            ),
            node::node(
                "Gather",
                "",
                &[&sel, &two],
                &[&col],
                vec![node::int("axis", 1)],
            ),
            node::node("Reshape", "", &[&col, &flat], &[&n.output[0]], vec![]),
        ]))
    }
}

/// `LpPool` -> `Abs`, `Pow(p)`, `AveragePool(count_include_pad=1)`, `Mul(kernel size)`,
/// `Pow(1/p)`: the p-norm of each window, `(sum |x|^p)^(1/p)`, from primitives every engine
/// has. Declined (the node kept) for `ceil_mode=1` or dilations, whose windows `AveragePool`
/// counts differently.
struct DecomposeLpPool;

impl Rewrite for DecomposeLpPool {
    fn name(&self) -> &str {
        "decompose_lp_pool"
    }
    fn pattern(&self) -> Pattern {
        Pattern::op("LpPool")
    }
    fn backends(&self) -> &[&str] {
        LACK_LP_POOL
    }
    fn description(&self) -> &str {
        "LpPool -> Abs, Pow(p), AveragePool(count_include_pad=1), Mul(window size), Pow(1/p) for engines without LpPool"
    }
    fn rewrite(&self, n: &NodeProto, cx: &mut RewriteCx<'_>) -> Result<Option<Vec<NodeProto>>> {
        if n.input.len() != 1 || n.output.len() != 1 {
            return Ok(None);
        }
        let Some(kernel) = attr_ints(n, "kernel_shape") else {
            return Ok(None);
        };
        if attr_int(n, "ceil_mode").unwrap_or(0) != 0
            || attr_ints(n, "dilations").is_some_and(|d| d.iter().any(|v| *v != 1))
        {
            return Err(bad(
                n,
                "LpPool with ceil_mode=1 or dilations has no exact decomposition into primitive ops, and this backend has no LpPool kernel; deploy it on onnxruntime or openvino",
            ));
        }
        // Opset 1 wrote p as a float; later opsets as an int.
        let p = attr_int(n, "p")
            .map(|p| p as f32)
            .or_else(|| attr_float(n, "p"))
            .unwrap_or(2.0);
        if p <= 0.0 {
            return Err(bad(n, format!("p = {p} is not positive")));
        }
        let size: i64 = kernel.iter().product();
        let x = n.input[0].clone();
        let (pc, inv, k) = (
            cx.add_scalar_like("p", &x, p)?,
            cx.add_scalar_like("inv_p", &x, 1.0 / p)?,
            cx.add_scalar_like("window", &x, size as f32)?,
        );
        let x = &x;
        let (a, ap, avg, sum) = (
            cx.fresh(&format!("{x}_abs")),
            cx.fresh(&format!("{x}_pow")),
            cx.fresh(&format!("{x}_avg")),
            cx.fresh(&format!("{x}_sum")),
        );
        let mut pool_attrs = vec![
            node::ints("kernel_shape", &kernel),
            node::int("count_include_pad", 1),
        ];
        for name in ["pads", "strides"] {
            if let Some(v) = attr_ints(n, name) {
                pool_attrs.push(node::ints(name, &v));
            }
        }
        if let Some(a) = attr_string(n, "auto_pad") {
            pool_attrs.push(node::string("auto_pad", &a));
        }
        Ok(Some(vec![
            node::node("Abs", "", &[x], &[&a], vec![]),
            node::node("Pow", "", &[&a, &pc], &[&ap], vec![]),
            node::node("AveragePool", n.name(), &[&ap], &[&avg], pool_attrs),
            node::node("Mul", "", &[&avg, &k], &[&sum], vec![]),
            node::node("Pow", "", &[&sum, &inv], &[&n.output[0]], vec![]),
        ]))
    }
}

/// `CenterCropPad` (opset 18) with a constant `shape` and known input dims -> `Slice` (crop)
/// and `Pad` (pad), centred as the specification's reference does: a crop starts at
/// `(dim - target) // 2`, a pad puts `(target - dim) // 2` before.
struct DecomposeCenterCropPad;

impl Rewrite for DecomposeCenterCropPad {
    fn name(&self) -> &str {
        "decompose_center_crop_pad"
    }
    fn pattern(&self) -> Pattern {
        Pattern::op("CenterCropPad")
    }
    fn backends(&self) -> &[&str] {
        LACK_LP_POOL
    }
    fn description(&self) -> &str {
        "CenterCropPad with a constant shape and static input dims -> Slice + Pad"
    }
    fn rewrite(&self, n: &NodeProto, cx: &mut RewriteCx<'_>) -> Result<Option<Vec<NodeProto>>> {
        if n.input.len() != 2 || n.output.len() != 1 {
            return Ok(None);
        }
        let (Some(target), Some(dims)) = (cx.constant(&n.input[1]), cx.shape(&n.input[0])) else {
            return Ok(None);
        };
        let target: Vec<i64> = target.to_f64_vec().iter().map(|v| *v as i64).collect();
        if target.iter().any(|t| *t < 0) {
            return Err(bad(
                n,
                format!("target shape {target:?} has a negative size"),
            ));
        }
        let rank = dims.len() as i64;
        let axes: Vec<i64> = match attr_ints(n, "axes") {
            Some(a) => a
                .iter()
                .map(|a| if *a < 0 { a + rank } else { *a })
                .collect(),
            None => (0..rank).collect(),
        };
        if axes.len() != target.len() || axes.iter().any(|a| !(0..rank).contains(a)) {
            return Err(bad(
                n,
                format!("shape {target:?} does not fit axes {axes:?} of a rank-{rank} input"),
            ));
        }
        let mut starts = Vec::new();
        let mut ends = Vec::new();
        let mut slice_axes = Vec::new();
        let mut pads = vec![0i64; 2 * dims.len()];
        for (a, t) in axes.iter().zip(&target) {
            let Some(d) = dims[*a as usize] else {
                return Ok(None);
            };
            let d = d as i64;
            if *t < d {
                let s = (d - t) / 2;
                starts.push(s);
                ends.push(s + t);
                slice_axes.push(*a);
            } else if *t > d {
                let before = (t - d) / 2;
                pads[*a as usize] = before;
                pads[*a as usize + dims.len()] = t - d - before;
            }
        }
        let x = n.input[0].clone();
        let y = n.output[0].clone();
        let mut out = Vec::new();
        let mut cur = x.clone();
        let need_pad = pads.iter().any(|p| *p != 0);
        if !starts.is_empty() {
            let next = if need_pad {
                cx.fresh(&format!("{x}_cropped"))
            } else {
                y.clone()
            };
            let (s, e, a) = (
                cx.add_i64("starts", &starts),
                cx.add_i64("ends", &ends),
                cx.add_i64("axes", &slice_axes),
            );
            out.push(node::node(
                "Slice",
                n.name(),
                &[&cur, &s, &e, &a],
                &[&next],
                vec![],
            ));
            cur = next;
        }
        if need_pad {
            let p = cx.add_i64("pads", &pads);
            out.push(node::node(
                "Pad",
                &node::suffixed(n.name(), "pad"),
                &[&cur, &p],
                &[&y],
                vec![],
            ));
        }
        if out.is_empty() {
            out.push(node::node("Identity", n.name(), &[&x], &[&y], vec![]));
        }
        Ok(Some(out))
    }
}
