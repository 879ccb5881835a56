//! `MMCVRoiAlign` (mmcv) and `MMCVRoIAlignRotated` (MMDeploy and mmcv): bilinear RoI pooling
//! over axis-aligned and rotated boxes.

use crate::common::{Bilinear, Dims, Op};
use crate::{Attributes, Kernel, OpDef, Port};
use rdeploy_core::{DType, Result, Tensor};

const INPUTS: &[Port] = &[
    Port {
        name: "input",
        dtype: DType::F32,
        optional: false,
    },
    Port {
        name: "rois",
        dtype: DType::F32,
        optional: false,
    },
];
const OUTPUTS: &[Port] = &[Port {
    name: "feat",
    dtype: DType::F32,
    optional: false,
}];

/// Sample points one RoI may take (bins x samples per bin); a larger adaptive grid means a
/// RoI far larger than any feature map, refused rather than looped over for minutes.
const MAX_SAMPLES_PER_ROI: usize = 1 << 24;

/// The value max pooling gives a bin without samples (mmcv's initial `maxval`).
const EMPTY_MAX: f32 = -10000.0;

/// mmcv's registration of RoIAlign.
pub(crate) const ROI_ALIGN: OpDef = OpDef {
    domain: "mmcv",
    op_type: "MMCVRoiAlign",
    inputs: INPUTS,
    outputs: OUTPUTS,
    standard_equivalent: Some("RoiAlign-16"),
    doc: "RoIAlign: pools `input` (float32, N x C x H x W) over each RoI of `rois` (float32, \
num_rois x 5, rows [batch_index, x1, y1, x2, y2] in input-image coordinates) into `feat` \
(num_rois x C x output_height x output_width). Box corners are scaled by `spatial_scale` and, when \
`aligned` = 1, shifted by -0.5 pixel; with `aligned` = 0 the box is at least 1 x 1. Each bin takes \
sampling_ratio x sampling_ratio bilinear samples at sub-bin centres (`sampling_ratio` <= 0: \
ceil(roi size / output size) per axis), then their mean (`mode` \"avg\") or maximum (\"max\"; a \
bin without samples gives -10000). A sample more than one pixel outside the map is 0; one within \
a pixel outside, or past the last pixel centre, is clamped to the border. The batch index is \
truncated toward zero and must name an input image. Attributes: `output_height`, `output_width` \
(INT, required), `spatial_scale` (FLOAT, default 1.0), `sampling_ratio` (INT, default 0), `mode` \
(STRING \"avg\" (default) or \"max\"), `aligned` (INT 0/1, default 1); defaults from \
mmcv.ops.roi_align. Source: mmcv 1.7's mmcv/ops/csrc/onnxruntime/cpu/roi_align.cpp (Caffe2's \
RoIAlign). In avg mode equivalent to ONNX RoiAlign-16 with rois split into boxes and \
batch_indices and coordinate_transformation_mode half_pixel (aligned = 1) or output_half_pixel \
(aligned = 0); ONNX's max mode is defined differently.",
    build: build_roi_align,
};

const ROTATED_DOC: &str = "RoIAlign over rotated boxes: pools `input` (float32, N x C x H x W) \
over each RoI of `rois` (float32, num_rois x 6, rows [batch_index, center_x, center_y, width, \
height, theta], theta in radians, counterclockwise unless `clockwise` = 1) into `feat` (num_rois x \
C x output_height x output_width). Centre and size are scaled by `spatial_scale`; `aligned` = 1 \
shifts the centre by -0.5 pixel, `aligned` = 0 makes the box at least 1 x 1. Each bin's sample \
points (sampling_ratio per axis, or ceil(roi size / output size) when <= 0) are laid out in the \
box's frame, rotated by theta about its centre, sampled bilinearly (a point more than one pixel \
outside the map is 0, nearer ones clamp to the border) and averaged. The batch index is truncated \
toward zero and must name an input image. Attributes: `output_height`, `output_width` (INT, \
required), `spatial_scale` (FLOAT, required), `sampling_ratio` (INT, default 0), `aligned` (INT \
0/1, default 1), `clockwise` (INT 0/1, default 0); defaults from mmcv.ops.roi_align_rotated. \
Source: MMDeploy's csrc/mmdeploy/backend_ops/onnxruntime/roi_align_rotated (detectron2's \
ROIAlignRotated; mmcv 1.7's kernel is the same code). No standard ONNX equivalent.";

/// MMDeploy's registration of rotated RoIAlign.
pub(crate) const ROTATED_MMDEPLOY: OpDef = OpDef {
    domain: "mmdeploy",
    op_type: "MMCVRoIAlignRotated",
    inputs: INPUTS,
    outputs: OUTPUTS,
    standard_equivalent: None,
    doc: ROTATED_DOC,
    build: |a| build_rotated(Op("mmdeploy::MMCVRoIAlignRotated"), a),
};

/// mmcv 1.x's registration of rotated RoIAlign (`mmcv::MMCVRoIAlignRotated`), same semantics.
pub(crate) const ROTATED_MMCV: OpDef = OpDef {
    domain: "mmcv",
    op_type: "MMCVRoIAlignRotated",
    inputs: INPUTS,
    outputs: OUTPUTS,
    standard_equivalent: None,
    doc: ROTATED_DOC,
    build: |a| build_rotated(Op("mmcv::MMCVRoIAlignRotated"), a),
};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Pool {
    Avg,
    Max,
}

/// Axis-aligned boxes (`MMCVRoiAlign`) or rotated ones (`MMCVRoIAlignRotated`).
#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    Aligned(Pool),
    Rotated { clockwise: bool },
}

#[derive(Debug)]
struct RoiAlign {
    op: Op,
    kind: Kind,
    out_h: usize,
    out_w: usize,
    spatial_scale: f32,
    /// Samples per bin and axis; 0: adaptive.
    sampling_ratio: usize,
    aligned: bool,
}

fn common(op: Op, a: &dyn Attributes, kind: Kind, spatial_scale: f32) -> Result<Box<dyn Kernel>> {
    if spatial_scale <= 0.0 {
        return Err(op.attr_err(
            "spatial_scale",
            format!("is {spatial_scale}; expected a positive scale"),
        ));
    }
    let sampling_ratio = op.int_or(a, "sampling_ratio", 0);
    // <= 0 is adaptive, as in the C++ (`sampling_ratio > 0 ? ... : ceil(...)`); mmcv's own
    // fallback to ONNX RoiAlign clamps negative values to 0 too.
    let sampling_ratio = if sampling_ratio <= 0 {
        0
    } else {
        usize::try_from(sampling_ratio)
            .ok()
            .filter(|&s| s <= 1 << 12)
            .ok_or_else(|| {
                op.attr_err(
                    "sampling_ratio",
                    format!("is {sampling_ratio}; expected at most 4096 samples per axis"),
                )
            })?
    };
    Ok(Box::new(RoiAlign {
        op,
        kind,
        out_h: op.count(a, "output_height", None)?,
        out_w: op.count(a, "output_width", None)?,
        spatial_scale,
        sampling_ratio,
        aligned: op.bool_or(a, "aligned", true)?,
    }))
}

fn build_roi_align(a: &dyn Attributes) -> Result<Box<dyn Kernel>> {
    let op = Op("mmcv::MMCVRoiAlign");
    let pool = match a.string("mode").as_deref() {
        None | Some("avg") => Pool::Avg,
        Some("max") => Pool::Max,
        Some(m) => {
            return Err(op.attr_err("mode", format!("is {m:?}; expected \"avg\" or \"max\"")));
        }
    };
    let scale = op.float_or(a, "spatial_scale", 1.0)?;
    common(op, a, Kind::Aligned(pool), scale)
}

fn build_rotated(op: Op, a: &dyn Attributes) -> Result<Box<dyn Kernel>> {
    let clockwise = op.bool_or(a, "clockwise", false)?;
    let scale = op.float_req(a, "spatial_scale")?;
    common(op, a, Kind::Rotated { clockwise }, scale)
}

/// One RoI's frame: where bin (ph, pw)'s sample (iy, ix) lies in the feature map.
struct Frame {
    start_h: f32,
    start_w: f32,
    bin_h: f32,
    bin_w: f32,
    grid_h: usize,
    grid_w: usize,
    /// Rotation (cos, sin) and centre for rotated boxes.
    rotation: Option<(f32, f32, f32, f32)>,
}

impl Frame {
    fn point(&self, ph: usize, pw: usize, iy: usize, ix: usize) -> (f32, f32) {
        let yy = self.start_h
            + ph as f32 * self.bin_h
            + (iy as f32 + 0.5) * self.bin_h / self.grid_h as f32;
        let xx = self.start_w
            + pw as f32 * self.bin_w
            + (ix as f32 + 0.5) * self.bin_w / self.grid_w as f32;
        match self.rotation {
            None => (yy, xx),
            // Counterclockwise rotation by theta in (y, x) order, then translation to the centre.
            Some((cos, sin, ch, cw)) => (yy * cos - xx * sin + ch, yy * sin + xx * cos + cw),
        }
    }
}

/// Samples per axis: the fixed ratio, or ceil(size / bins) (NaN and negative sizes: none).
fn grid(ratio: usize, size: f32, bins: usize) -> usize {
    if ratio > 0 {
        return ratio;
    }
    let g = (size / bins as f32).ceil();
    if g.is_nan() || g <= 0.0 {
        0
    } else if g > MAX_SAMPLES_PER_ROI as f32 {
        MAX_SAMPLES_PER_ROI + 1 // over budget whatever the other axis: refused by the caller
    } else {
        g as usize
    }
}

impl RoiAlign {
    fn roi_cols(&self) -> usize {
        match self.kind {
            Kind::Aligned(_) => 5,
            Kind::Rotated { .. } => 6,
        }
    }

    fn roi_layout(&self) -> &'static str {
        match self.kind {
            Kind::Aligned(_) => "(num_rois, 5) [batch_index, x1, y1, x2, y2]",
            Kind::Rotated { .. } => "(num_rois, 6) [batch_index, cx, cy, w, h, theta]",
        }
    }

    fn frame(&self, r: usize, roi: &[f32]) -> Result<Frame> {
        let scale = self.spatial_scale;
        let offset = if self.aligned { 0.5 } else { 0.0 };
        let (mut roi_w, mut roi_h, start_w, start_h, rotation);
        match self.kind {
            Kind::Aligned(_) => {
                let x1 = roi[1] * scale - offset;
                let y1 = roi[2] * scale - offset;
                roi_w = roi[3] * scale - offset - x1;
                roi_h = roi[4] * scale - offset - y1;
                start_w = x1;
                start_h = y1;
                rotation = None;
            }
            Kind::Rotated { clockwise } => {
                let cw = roi[1] * scale - offset;
                let ch = roi[2] * scale - offset;
                roi_w = roi[3] * scale;
                roi_h = roi[4] * scale;
                let theta = if clockwise { -roi[5] } else { roi[5] };
                start_w = 0.0; // set below, once the size is final
                start_h = 0.0;
                rotation = Some((theta.cos(), theta.sin(), ch, cw));
            }
        }
        if !self.aligned {
            // mmcv: "for backward-compatibility only".
            roi_w = roi_w.max(1.0);
            roi_h = roi_h.max(1.0);
        }
        let (start_h, start_w) = match rotation {
            None => (start_h, start_w),
            // The sample grid is laid out relative to the box centre, then rotated.
            Some(_) => (-roi_h / 2.0, -roi_w / 2.0),
        };
        let frame = Frame {
            start_h,
            start_w,
            bin_h: roi_h / self.out_h as f32,
            bin_w: roi_w / self.out_w as f32,
            grid_h: grid(self.sampling_ratio, roi_h, self.out_h),
            grid_w: grid(self.sampling_ratio, roi_w, self.out_w),
            rotation,
        };
        let samples = frame
            .grid_h
            .checked_mul(frame.grid_w)
            .and_then(|s| s.checked_mul(self.out_h))
            .and_then(|s| s.checked_mul(self.out_w));
        let within = |g: usize| g <= MAX_SAMPLES_PER_ROI;
        if samples.is_none_or(|s| !within(s)) || !within(frame.grid_h) || !within(frame.grid_w) {
            return Err(self.op.input_err(
                "rois",
                format!(
                    "RoIs whose adaptive sampling grid stays within {MAX_SAMPLES_PER_ROI} points"
                ),
                format!(
                    "RoI {r} {roi:?}: {} x {} samples per bin for {} x {} bins",
                    frame.grid_h, frame.grid_w, self.out_h, self.out_w
                ),
            ));
        }
        Ok(frame)
    }
}

impl Kernel for RoiAlign {
    fn output_shapes(&self, inputs: &[Option<Dims>]) -> Result<Vec<Dims>> {
        let op = self.op;
        op.arity(inputs.len(), 2, 2)?;
        let [_, c, _, _] = op.rank_dims::<4>(inputs, 0, "input", "(N, C, H, W)")?;
        let [r, cols] = op.rank_dims::<2>(inputs, 1, "rois", self.roi_layout())?;
        op.same("rois", "columns", Some(self.roi_cols()), cols)?;
        Ok(vec![vec![r, c, Some(self.out_h), Some(self.out_w)]])
    }

    fn compute(&self, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>> {
        let op = self.op;
        op.arity(inputs.len(), 2, 2)?;
        let input = op.f32_input(inputs, 0, "input")?;
        let rois_t = op.f32_input(inputs, 1, "rois")?;
        let [n, c, h, w] = op.rank::<4>("input", input.shape(), "(N, C, H, W)")?;
        let [num_rois, cols] = op.rank::<2>("rois", rois_t.shape(), self.roi_layout())?;
        op.same("rois", "columns", Some(self.roi_cols()), Some(cols))?;
        let out_shape = [num_rois, c, self.out_h, self.out_w];
        let mut out = vec![0f32; op.output_len(&out_shape)?];
        if out.is_empty() {
            return Ok(vec![op.tensor(&out_shape, out)?]);
        }
        let x = input.as_slice::<f32>()?;
        let rois = rois_t.as_slice::<f32>()?;
        let plane = h * w;
        let mut samples: Vec<Bilinear> = Vec::new();
        for (r, roi) in rois.chunks_exact(cols).enumerate() {
            // `int roi_batch_ind = offset_rois[0]` in the C++: truncation toward zero.
            let bf = roi[0].trunc();
            if !(bf >= 0.0 && bf < n as f32) {
                return Err(op.input_err(
                    "rois",
                    format!("batch indices (column 0) from 0 to {}", n.saturating_sub(1)),
                    format!("{} in RoI {r}", roi[0]),
                ));
            }
            let b = (bf as usize).min(n - 1);
            let frame = self.frame(r, roi)?;
            let count = (frame.grid_h * frame.grid_w).max(1) as f32;
            for ph in 0..self.out_h {
                for pw in 0..self.out_w {
                    samples.clear();
                    // An empty axis means no samples at all (not grid_h empty passes).
                    let rows = if frame.grid_w == 0 { 0 } else { frame.grid_h };
                    for iy in 0..rows {
                        for ix in 0..frame.grid_w {
                            let (y, xx) = frame.point(ph, pw, iy, ix);
                            samples.push(Bilinear::at(y, xx, h, w));
                        }
                    }
                    for ch in 0..c {
                        let src = &x[(b * c + ch) * plane..][..plane];
                        let v = match self.kind {
                            Kind::Aligned(Pool::Max) => samples
                                .iter()
                                .map(|s| s.sample(src))
                                .fold(EMPTY_MAX, |m, v| if v > m { v } else { m }),
                            _ => {
                                // f32 sum, as the C++ kernels accumulate.
                                let sum: f32 = samples.iter().map(|s| s.sample(src)).sum();
                                sum / count
                            }
                        };
                        out[((r * c + ch) * self.out_h + ph) * self.out_w + pw] = v;
                    }
                }
            }
        }
        Ok(vec![op.tensor(&out_shape, out)?])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::AttrMap;

    fn t(shape: &[usize], v: Vec<f32>) -> Tensor {
        Tensor::from_shape_vec(shape, v).unwrap()
    }

    fn roi_align(mode: &str, aligned: i64, ratio: i64) -> Box<dyn Kernel> {
        (ROI_ALIGN.build)(
            &AttrMap::new()
                .with_int("output_height", 2)
                .with_int("output_width", 2)
                .with_float("spatial_scale", 0.5)
                .with_int("sampling_ratio", ratio)
                .with_string("mode", mode)
                .with_int("aligned", aligned),
        )
        .unwrap()
    }

    fn rotated(clockwise: i64, aligned: i64) -> Box<dyn Kernel> {
        (ROTATED_MMDEPLOY.build)(
            &AttrMap::new()
                .with_int("output_height", 2)
                .with_int("output_width", 2)
                .with_float("spatial_scale", 1.0)
                .with_int("sampling_ratio", 2)
                .with_int("aligned", aligned)
                .with_int("clockwise", clockwise),
        )
        .unwrap()
    }

    fn run(k: &dyn Kernel, x: &Tensor, rois: &Tensor) -> Vec<f32> {
        k.compute(&[Some(x), Some(rois)]).unwrap()[0]
            .as_slice::<f32>()
            .unwrap()
            .to_vec()
    }

    #[test]
    fn a_constant_map_pools_to_the_constant() {
        let x = t(&[2, 3, 6, 8], vec![7.0; 2 * 3 * 48]);
        let rois = t(
            &[2, 5],
            vec![0.0, 2.0, 2.0, 12.0, 10.0, 1.0, 0.0, 0.0, 5.0, 3.0],
        );
        for mode in ["avg", "max"] {
            for aligned in [0, 1] {
                for ratio in [0, 1, 3] {
                    let out = run(roi_align(mode, aligned, ratio).as_ref(), &x, &rois);
                    assert_eq!(out.len(), 2 * 3 * 4);
                    assert!(
                        out.iter().all(|v| (v - 7.0).abs() < 1e-5),
                        "{mode}/{aligned}/{ratio}: {out:?}"
                    );
                }
            }
        }
        let rois6 = t(
            &[2, 6],
            vec![0.0, 4.0, 3.0, 4.0, 2.0, 0.7, 1.0, 2.0, 2.0, 2.0, 2.0, -1.2],
        );
        for clockwise in [0, 1] {
            for aligned in [0, 1] {
                let out = run(rotated(clockwise, aligned).as_ref(), &x, &rois6);
                assert!(out.iter().all(|v| (v - 7.0).abs() < 1e-5), "{out:?}");
            }
        }
    }

    #[test]
    fn bins_average_their_samples_and_max_takes_the_largest() {
        // One 4x4 channel holding x + 10 y; RoI = the whole map at scale 1, aligned: bins are
        // 2x2 pixel blocks and one sample per bin sits at its centre.
        let x = t(
            &[1, 1, 4, 4],
            (0..16)
                .map(|i| (i % 4) as f32 + 10.0 * (i / 4) as f32)
                .collect(),
        );
        let rois = t(&[1, 5], vec![0.0, 0.0, 0.0, 4.0, 4.0]);
        let k = (ROI_ALIGN.build)(
            &AttrMap::new()
                .with_int("output_height", 2)
                .with_int("output_width", 2)
                .with_int("sampling_ratio", 1),
        )
        .unwrap();
        // Bin (0,0) centre at pixel (0.5, 0.5): the mean of pixels 0, 1, 10, 11.
        assert_eq!(run(k.as_ref(), &x, &rois), vec![5.5, 7.5, 25.5, 27.5]);
        // Adaptive: 2 x 2 samples at pixels 0 and 1 (exact): avg = 5.5, max = 11.
        assert_eq!(
            run(
                roi_align("max", 1, 0).as_ref(),
                &x,
                &t(&[1, 5], vec![0.0, 0.0, 0.0, 8.0, 8.0])
            )[0],
            11.0
        );
        assert_eq!(
            run(
                roi_align("avg", 1, 0).as_ref(),
                &x,
                &t(&[1, 5], vec![0.0, 0.0, 0.0, 8.0, 8.0])
            )[0],
            5.5
        );
    }

    #[test]
    fn rotation_by_half_a_turn_flips_the_bins() {
        let x = t(&[1, 1, 4, 4], (0..16).map(|i| i as f32).collect());
        // Box centred on the map's centre (2, 2 after the -0.5 shift: pixel 1.5), 2 x 2.
        let upright = t(&[1, 6], vec![0.0, 2.0, 2.0, 2.0, 2.0, 0.0]);
        let turned = t(&[1, 6], vec![0.0, 2.0, 2.0, 2.0, 2.0, std::f32::consts::PI]);
        let k = rotated(0, 1);
        let a = run(k.as_ref(), &x, &upright);
        let b = run(k.as_ref(), &x, &turned);
        assert_eq!(a, vec![5.0, 6.0, 9.0, 10.0]);
        for (u, v) in a.iter().rev().zip(&b) {
            assert!((u - v).abs() < 1e-4, "{a:?} vs {b:?}");
        }
        // A quarter turn counterclockwise (in (y, x) order) vs clockwise give mirrored bins.
        let quarter = t(
            &[1, 6],
            vec![0.0, 2.0, 2.0, 2.0, 2.0, std::f32::consts::FRAC_PI_2],
        );
        let ccw = run(rotated(0, 1).as_ref(), &x, &quarter);
        let cw = run(rotated(1, 1).as_ref(), &x, &quarter);
        assert!(
            (ccw[0] - 9.0).abs() < 1e-4 && (cw[0] - 6.0).abs() < 1e-4,
            "{ccw:?} {cw:?}"
        );
    }

    #[test]
    fn samples_outside_the_map_are_zero() {
        let x = t(&[1, 1, 2, 2], vec![1.0; 4]);
        let far = t(&[1, 5], vec![0.0, 100.0, 100.0, 104.0, 104.0]);
        assert_eq!(run(roi_align("avg", 1, 2).as_ref(), &x, &far), vec![0.0; 4]);
        assert_eq!(run(roi_align("max", 1, 2).as_ref(), &x, &far), vec![0.0; 4]);
        // An empty aligned box has no samples: avg 0, max mmcv's -10000.
        let empty = t(&[1, 5], vec![0.0, 1.0, 1.0, 1.0, 1.0]);
        assert_eq!(
            run(roi_align("avg", 1, 0).as_ref(), &x, &empty),
            vec![0.0; 4]
        );
        assert_eq!(
            run(roi_align("max", 1, 0).as_ref(), &x, &empty),
            vec![EMPTY_MAX; 4]
        );
        let nan = t(&[1, 5], vec![0.0, f32::NAN, 0.0, 1.0, 1.0]);
        assert!(
            run(roi_align("avg", 0, 0).as_ref(), &x, &nan)
                .iter()
                .all(|v| !v.is_nan())
        );
    }

    #[test]
    fn shapes_are_inferred_and_checked() {
        let k = roi_align("avg", 1, 0);
        let s = k
            .output_shapes(&[
                Some(vec![None, Some(256), None, None]),
                Some(vec![Some(100), Some(5)]),
            ])
            .unwrap();
        assert_eq!(s, vec![vec![Some(100), Some(256), Some(2), Some(2)]]);
        assert!(k.output_shapes(&[None, Some(vec![None, Some(6)])]).is_err());
        let k = rotated(0, 1);
        assert!(k.output_shapes(&[None, Some(vec![None, Some(6)])]).is_ok());
        assert!(k.output_shapes(&[None, Some(vec![None, Some(5)])]).is_err());
        assert!(k.output_shapes(&[Some(vec![None; 3]), None]).is_err());
    }

    #[test]
    fn bad_inputs_and_attributes_are_errors() {
        let k = roi_align("avg", 1, 0);
        let x = t(&[1, 1, 2, 2], vec![1.0; 4]);
        for bad in [-1.0, 1.0, f32::NAN, 1e20] {
            let rois = t(&[1, 5], vec![bad, 0.0, 0.0, 1.0, 1.0]);
            let e = k.compute(&[Some(&x), Some(&rois)]).unwrap_err().to_string();
            assert!(
                e.contains("MMCVRoiAlign.rois") && e.contains("batch"),
                "{e}"
            );
        }
        // 0.9 truncates to batch 0, as in the C++.
        assert!(
            k.compute(&[Some(&x), Some(&t(&[1, 5], vec![0.9, 0.0, 0.0, 1.0, 1.0]))])
                .is_ok()
        );
        let e = k
            .compute(&[Some(&x), Some(&t(&[1, 4], vec![0.0; 4]))])
            .unwrap_err()
            .to_string();
        assert!(e.contains("columns = 5"), "{e}");
        assert!(
            k.compute(&[
                Some(&t(&[1, 2, 2], vec![0.0; 4])),
                Some(&t(&[1, 5], vec![0.0; 5]))
            ])
            .is_err()
        );
        // An absurdly large RoI with an adaptive grid is refused, not looped over.
        let huge = t(&[1, 5], vec![0.0, 0.0, 0.0, 1e30, 1e30]);
        assert!(k.compute(&[Some(&x), Some(&huge)]).is_err());
        // No RoIs: an empty output.
        let out = k.compute(&[Some(&x), Some(&t(&[0, 5], vec![]))]).unwrap();
        assert_eq!(out[0].shape(), &[0, 1, 2, 2]);

        let base = || {
            AttrMap::new()
                .with_int("output_height", 2)
                .with_int("output_width", 2)
        };
        for attrs in [
            AttrMap::new().with_int("output_width", 2),
            base().with_int("output_height", 0),
            base().with_int("output_width", 1 << 40),
            base().with_string("mode", "sum"),
            base().with_float("spatial_scale", 0.0),
            base().with_float("spatial_scale", f32::INFINITY),
            base().with_int("aligned", 3),
            base().with_int("sampling_ratio", 1 << 20),
        ] {
            let e = (ROI_ALIGN.build)(&attrs).err().map(|e| e.to_string());
            assert!(
                e.as_deref()
                    .is_some_and(|e| e.contains("mmcv::MMCVRoiAlign")),
                "{attrs:?}: {e:?}"
            );
        }
        // Negative sampling ratios are adaptive, as in the C++.
        assert!((ROI_ALIGN.build)(&base().with_int("sampling_ratio", -1)).is_ok());
        // Rotated: spatial_scale is required, clockwise is 0/1.
        assert!((ROTATED_MMCV.build)(&base()).is_err());
        assert!(
            (ROTATED_MMCV.build)(
                &base()
                    .with_float("spatial_scale", 1.0)
                    .with_int("clockwise", 2)
            )
            .is_err()
        );
        assert!((ROTATED_MMCV.build)(&base().with_float("spatial_scale", 1.0)).is_ok());
    }
}
