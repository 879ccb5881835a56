//! Non-maximum suppression: mmcv's `NonMaxSuppression` (one set of boxes), MMDeploy's
//! `NMSRotated` (batched, per class, rotated boxes) and `NMSMatch` (batched, per class, listing
//! the suppressed boxes).

use crate::common::{Dims, Op, order_desc};
use crate::rotated::{RotatedBox, iou as rotated_iou};
use crate::{Attributes, Kernel, OpDef, Port};
use rdeploy_core::{DType, Result, Tensor};

const fn port(name: &'static str, dtype: DType) -> Port {
    Port {
        name,
        dtype,
        optional: false,
    }
}

/// mmcv's registration of NMS.
pub(crate) const NMS: OpDef = OpDef {
    domain: "mmcv",
    op_type: "NonMaxSuppression",
    inputs: &[port("bboxes", DType::F32), port("scores", DType::F32)],
    outputs: &[port("indices", DType::I64)],
    standard_equivalent: None,
    doc: "NMS over one set of boxes: `bboxes` (float32, num_boxes x 4, rows [x1, y1, x2, y2]) \
and `scores` (float32, num_boxes) give `indices` (int64, num_selected): the kept boxes' indices \
in descending score order (ties in index order; NaN scores last). Walking boxes by descending \
score, each kept box suppresses every later box whose IoU with it is greater than \
`iou_threshold`; widths and heights are x2 - x1 + `offset` (IoU from the clipped intersection; a \
0/0 IoU suppresses nothing). Attributes: `iou_threshold` (FLOAT, default 0, mmcv's docs), \
`offset` (INT 0 or 1, default 0, mmcv.ops.nms). Source: mmcv 1.7's mmcv/ops/csrc/onnxruntime/cpu/\
nms.cpp, exported by mmcv.ops.nms when mmcv's ONNX Runtime ops are loaded (its docs say int32 \
indices; the kernel writes int64, as here). No score threshold or top-k: mmcv applies those \
around the op. Without custom ops mmcv exports standard NonMaxSuppression (opset 10+) instead, \
whose output layout differs.",
    build: build_nms,
};

/// MMDeploy's rotated NMS.
pub(crate) const NMS_ROTATED: OpDef = OpDef {
    domain: "mmdeploy",
    op_type: "NMSRotated",
    inputs: &[port("boxes", DType::F32), port("scores", DType::F32)],
    outputs: &[port("indices", DType::I64)],
    standard_equivalent: None,
    doc: "Batched, per-class NMS of rotated boxes: `boxes` (float32, batch x num_boxes x 5, \
rows [center_x, center_y, width, height, angle in radians]) and `scores` (float32, batch x \
num_classes x num_boxes) give `indices` (int64, num_selected x 3, rows [batch, class, box]), \
ordered by batch, then class, then descending score (ties in index order; NaN scores last). In \
each (batch, class), walking boxes by descending score, each kept box suppresses later boxes \
whose rotated IoU (polygon intersection over union) is greater than `iou_threshold`; kept boxes \
with score <= `score_threshold` are then dropped (equivalent to filtering first, as MMDeploy's \
PyTorch forward does, since sub-threshold boxes only follow). Boxes under 1e-14 in area overlap \
nothing. Attributes: `iou_threshold`, `score_threshold` (FLOAT, both required; MMDeploy's \
exporter always writes them). Source: MMDeploy's csrc/mmdeploy/backend_ops/onnxruntime/\
nms_rotated/nms_rotated.cpp (its docs still describe unbatched inputs; the kernel and exporter \
are batched) with detectron2's rotated IoU.",
    build: build_nms_rotated,
};

/// MMDeploy's NMS listing which box suppressed which.
pub(crate) const NMS_MATCH: OpDef = OpDef {
    domain: "mmdeploy",
    op_type: "NMSMatch",
    inputs: &[
        port("boxes", DType::F32),
        port("scores", DType::F32),
        port("iou_threshold", DType::F32),
        port("score_threshold", DType::F32),
    ],
    outputs: &[port("indices", DType::I64)],
    standard_equivalent: None,
    doc: "Batched, per-class NMS that reports matches: `boxes` (float32, batch x num_boxes x 4, \
rows [x1, y1, x2, y2]), `scores` (float32, batch x num_classes x num_boxes), and one-element \
float32 tensors `iou_threshold` and `score_threshold` (inputs, not attributes: MMDeploy's \
exporter passes them as Constants and its kernel reads them as inputs, whatever its docs say) \
give `indices` (int64, num_matches x 4, rows [batch, class, kept box, suppressed box]). In each \
(batch, class), walking boxes by descending score (ties in index order; NaN scores last), each \
box not yet suppressed suppresses every later unsuppressed box whose IoU with it is >= \
`iou_threshold` (areas (x2 - x1) * (y2 - y1), IoU = inter / (union + 1e-10) in double); its \
matches are output, in score order, when its score is > `score_threshold` (a box below it still \
suppresses). No attributes. Source: MMDeploy's csrc/mmdeploy/backend_ops/onnxruntime/nms_match/\
nms_match.cpp.",
    build: |_| {
        Ok(Box::new(NmsMatch {
            op: Op("mmdeploy::NMSMatch"),
        }))
    },
};

/// mmcv's Soft-NMS.
pub(crate) const SOFT_NMS: OpDef = OpDef {
    domain: "mmcv",
    op_type: "SoftNonMaxSuppression",
    inputs: &[port("boxes", DType::F32), port("scores", DType::F32)],
    outputs: &[port("dets", DType::F32), port("indices", DType::I64)],
    standard_equivalent: None,
    doc: "Soft-NMS: `boxes` (float32, num_boxes x 4, [x1, y1, x2, y2]) and `scores` (float32, \
num_boxes) give `dets` (float32, num_kept x 5, [x1, y1, x2, y2, score when taken]) and \
`indices` (int64, num_kept), in the order boxes are taken. Repeatedly the box with the highest \
current score among the remaining ones is taken (the first of equal scores in the kernel's \
working order); every box still remaining has its score multiplied by a weight of its IoU with \
it (widths x2 - x1 + `offset`): `method` 0 naive: 0 when IoU >= `iou_threshold`; 1 linear: \
1 - IoU when IoU >= `iou_threshold`; 2 gaussian: exp(-IoU^2 / `sigma`); a box whose score drops \
below `min_score` is discarded (the last box moves into its place, as in the kernel, which \
decides later tie orders). Attributes (defaults from mmcv.ops.soft_nms): `iou_threshold` FLOAT \
0.3, `sigma` FLOAT 0.5 (> 0 for method 2), `min_score` FLOAT 0.001, `method` INT 1, `offset` INT \
0 or 1, default 0. Source: mmcv 1.7's mmcv/ops/csrc/onnxruntime/cpu/soft_nms.cpp.",
    build: build_soft_nms,
};

#[derive(Debug)]
struct SoftNms {
    op: Op,
    iou_threshold: f32,
    sigma: f32,
    min_score: f32,
    method: i64,
    offset: f32,
}

fn build_soft_nms(a: &dyn Attributes) -> Result<Box<dyn Kernel>> {
    let op = Op("mmcv::SoftNonMaxSuppression");
    let method = op.int_or(a, "method", 1);
    if !(0..=2).contains(&method) {
        return Err(op.attr_err(
            "method",
            format!("is {method}; expected 0 (naive), 1 (linear) or 2 (gaussian)"),
        ));
    }
    let sigma = op.float_or(a, "sigma", 0.5)?;
    if method == 2 && sigma <= 0.0 {
        return Err(op.attr_err(
            "sigma",
            format!("is {sigma}; the gaussian method (2) divides by it: expected > 0"),
        ));
    }
    let offset = match op.int_or(a, "offset", 0) {
        0 => 0.0,
        1 => 1.0,
        v => return Err(op.attr_err("offset", format!("is {v}; expected 0 or 1"))),
    };
    Ok(Box::new(SoftNms {
        op,
        iou_threshold: op.float_or(a, "iou_threshold", 0.3)?,
        sigma,
        min_score: op.float_or(a, "min_score", 0.001)?,
        method,
        offset,
    }))
}

impl Kernel for SoftNms {
    fn output_shapes(&self, inputs: &[Option<Dims>]) -> Result<Vec<Dims>> {
        let op = self.op;
        op.arity(inputs.len(), 2, 2)?;
        let [n, four] = op.rank_dims::<2>(inputs, 0, "boxes", "(num_boxes, 4)")?;
        op.same("boxes", "dim 1", Some(4), four)?;
        let [sn] = op.rank_dims::<1>(inputs, 1, "scores", "(num_boxes)")?;
        op.same("scores", "num_boxes (boxes' dim 0)", n, sn)?;
        Ok(vec![vec![None, Some(5)], vec![None]])
    }

    fn compute(&self, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>> {
        let op = self.op;
        op.arity(inputs.len(), 2, 2)?;
        let boxes_t = op.f32_input(inputs, 0, "boxes")?;
        let scores_t = op.f32_input(inputs, 1, "scores")?;
        let [n, four] = op.rank::<2>("boxes", boxes_t.shape(), "(num_boxes, 4)")?;
        op.same("boxes", "dim 1", Some(4), Some(four))?;
        let [sn] = op.rank::<1>("scores", scores_t.shape(), "(num_boxes)")?;
        op.same("scores", "num_boxes (boxes' dim 0)", Some(n), Some(sn))?;
        // The kernel's working arrays, permuted in place as boxes are taken and discarded.
        let mut bx: Vec<[f32; 4]> = boxes_t
            .as_slice::<f32>()?
            .chunks_exact(4)
            .map(|b| [b[0], b[1], b[2], b[3]])
            .collect();
        let mut sc = scores_t.as_slice::<f32>()?.to_vec();
        let off = self.offset;
        let mut areas: Vec<f32> = bx
            .iter()
            .map(|b| (b[2] - b[0] + off) * (b[3] - b[1] + off))
            .collect();
        let mut inds: Vec<i64> = (0..n as i64).collect();
        let mut dets: Vec<f32> = Vec::new();
        let mut count = n;
        let mut i = 0;
        while i < count {
            let mut max_pos = i;
            for pos in i + 1..count {
                if sc[max_pos] < sc[pos] {
                    max_pos = pos;
                }
            }
            bx.swap(i, max_pos);
            sc.swap(i, max_pos);
            areas.swap(i, max_pos);
            inds.swap(i, max_pos);
            let taken = bx[i];
            dets.extend(taken);
            dets.push(sc[i]);
            let mut pos = i + 1;
            while pos < count {
                let b = bx[pos];
                let w = (taken[2].min(b[2]) - taken[0].max(b[0]) + off).max(0.0);
                let h = (taken[3].min(b[3]) - taken[1].max(b[1]) + off).max(0.0);
                let inter = w * h;
                let ovr = inter / (areas[i] + areas[pos] - inter);
                let weight = match self.method {
                    0 if ovr >= self.iou_threshold => 0.0,
                    1 if ovr >= self.iou_threshold => 1.0 - ovr,
                    2 => (-(ovr * ovr) / self.sigma).exp(),
                    _ => 1.0,
                };
                sc[pos] *= weight;
                if sc[pos] < self.min_score {
                    let last = count - 1;
                    bx[pos] = bx[last];
                    sc[pos] = sc[last];
                    areas[pos] = areas[last];
                    inds[pos] = inds[last];
                    count = last;
                } else {
                    pos += 1;
                }
            }
            i += 1;
        }
        inds.truncate(count);
        Ok(vec![
            op.tensor(&[count, 5], dets)?,
            op.tensor(&[count], inds)?,
        ])
    }
}

#[derive(Debug)]
struct Nms {
    op: Op,
    iou_threshold: f32,
    offset: f32,
}

fn build_nms(a: &dyn Attributes) -> Result<Box<dyn Kernel>> {
    let op = Op("mmcv::NonMaxSuppression");
    let offset = match op.int_or(a, "offset", 0) {
        0 => 0.0,
        1 => 1.0,
        v => return Err(op.attr_err("offset", format!("is {v}; expected 0 or 1"))),
    };
    Ok(Box::new(Nms {
        op,
        iou_threshold: op.float_or(a, "iou_threshold", 0.0)?,
        offset,
    }))
}

impl Kernel for Nms {
    fn output_shapes(&self, inputs: &[Option<Dims>]) -> Result<Vec<Dims>> {
        let op = self.op;
        op.arity(inputs.len(), 2, 2)?;
        let [n, four] = op.rank_dims::<2>(inputs, 0, "bboxes", "(num_boxes, 4)")?;
        op.same("bboxes", "dim 1", Some(4), four)?;
        let [sn] = op.rank_dims::<1>(inputs, 1, "scores", "(num_boxes)")?;
        op.same("scores", "num_boxes (bboxes' dim 0)", n, sn)?;
        Ok(vec![vec![None]])
    }

    fn compute(&self, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>> {
        let op = self.op;
        op.arity(inputs.len(), 2, 2)?;
        let boxes_t = op.f32_input(inputs, 0, "bboxes")?;
        let scores_t = op.f32_input(inputs, 1, "scores")?;
        let [n, four] = op.rank::<2>("bboxes", boxes_t.shape(), "(num_boxes, 4)")?;
        op.same("bboxes", "dim 1", Some(4), Some(four))?;
        let [sn] = op.rank::<1>("scores", scores_t.shape(), "(num_boxes)")?;
        op.same("scores", "num_boxes (bboxes' dim 0)", Some(n), Some(sn))?;
        let boxes = boxes_t.as_slice::<f32>()?;
        let scores = scores_t.as_slice::<f32>()?;
        let bx = |i: usize| &boxes[i * 4..i * 4 + 4];
        let off = self.offset;
        let area: Vec<f32> = (0..n)
            .map(|i| {
                let b = bx(i);
                (b[2] - b[0] + off) * (b[3] - b[1] + off)
            })
            .collect();
        let order = order_desc(scores);
        // Indexed by position in `order`, as the C++.
        let mut select = vec![true; n];
        for pi in 0..n {
            if !select[pi] {
                continue;
            }
            let i = order[pi];
            let a = bx(i);
            for pj in pi + 1..n {
                if !select[pj] {
                    continue;
                }
                let j = order[pj];
                let b = bx(j);
                let w = (a[2].min(b[2]) - a[0].max(b[0]) + off).max(0.0);
                let h = (a[3].min(b[3]) - a[1].max(b[1]) + off).max(0.0);
                let inter = w * h;
                let ovr = inter / (area[i] + area[j] - inter);
                if ovr > self.iou_threshold {
                    select[pj] = false;
                }
            }
        }
        let keep: Vec<i64> = (0..n)
            .filter(|&p| select[p])
            .map(|p| order[p] as i64)
            .collect();
        Ok(vec![op.tensor(&[keep.len()], keep)?])
    }
}

#[derive(Debug)]
struct NmsRotated {
    op: Op,
    iou_threshold: f32,
    score_threshold: f32,
}

fn build_nms_rotated(a: &dyn Attributes) -> Result<Box<dyn Kernel>> {
    let op = Op("mmdeploy::NMSRotated");
    Ok(Box::new(NmsRotated {
        op,
        iou_threshold: op.float_req(a, "iou_threshold")?,
        score_threshold: op.float_req(a, "score_threshold")?,
    }))
}

/// Shapes of batched boxes (batch x num_boxes x `coords`) and scores (batch x classes x
/// num_boxes), checked against each other: (batch, boxes, classes).
fn batched_shapes(
    op: Op,
    boxes: &Tensor,
    scores: &Tensor,
    coords: usize,
    box_layout: &str,
) -> Result<(usize, usize, usize)> {
    let [b, n, k] = op.rank::<3>("boxes", boxes.shape(), box_layout)?;
    op.same("boxes", "the last dim", Some(coords), Some(k))?;
    let [sb, classes, sn] =
        op.rank::<3>("scores", scores.shape(), "(batch, num_classes, num_boxes)")?;
    op.same("scores", "batch (boxes' dim 0)", Some(b), Some(sb))?;
    op.same("scores", "num_boxes (boxes' dim 1)", Some(n), Some(sn))?;
    Ok((b, n, classes))
}

/// The same check on inference dims.
fn batched_dims(op: Op, inputs: &[Option<Dims>], coords: usize, box_layout: &str) -> Result<()> {
    let [b, n, k] = op.rank_dims::<3>(inputs, 0, "boxes", box_layout)?;
    op.same("boxes", "the last dim", Some(coords), k)?;
    let [sb, _, sn] = op.rank_dims::<3>(inputs, 1, "scores", "(batch, num_classes, num_boxes)")?;
    op.same("scores", "batch (boxes' dim 0)", b, sb)?;
    op.same("scores", "num_boxes (boxes' dim 1)", n, sn)?;
    Ok(())
}

const ROTATED_LAYOUT: &str = "(batch, num_boxes, 5) [cx, cy, w, h, angle]";
const MATCH_LAYOUT: &str = "(batch, num_boxes, 4) [x1, y1, x2, y2]";

impl Kernel for NmsRotated {
    fn output_shapes(&self, inputs: &[Option<Dims>]) -> Result<Vec<Dims>> {
        self.op.arity(inputs.len(), 2, 2)?;
        batched_dims(self.op, inputs, 5, ROTATED_LAYOUT)?;
        Ok(vec![vec![None, Some(3)]])
    }

    fn compute(&self, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>> {
        let op = self.op;
        op.arity(inputs.len(), 2, 2)?;
        let boxes_t = op.f32_input(inputs, 0, "boxes")?;
        let scores_t = op.f32_input(inputs, 1, "scores")?;
        let (batch, n, classes) = batched_shapes(op, boxes_t, scores_t, 5, ROTATED_LAYOUT)?;
        let boxes = boxes_t.as_slice::<f32>()?;
        let scores = scores_t.as_slice::<f32>()?;
        let mut rows: Vec<i64> = Vec::new();
        let mut select = vec![true; n];
        for b in 0..batch {
            let bb = &boxes[b * n * 5..][..n * 5];
            let rb = |i: usize| RotatedBox {
                cx: bb[i * 5],
                cy: bb[i * 5 + 1],
                w: bb[i * 5 + 2],
                h: bb[i * 5 + 3],
                a: bb[i * 5 + 4],
            };
            for c in 0..classes {
                let sc = &scores[(b * classes + c) * n..][..n];
                let order = order_desc(sc);
                select.fill(true);
                for pi in 0..n {
                    if !select[pi] {
                        continue;
                    }
                    let bi = rb(order[pi]);
                    for pj in pi + 1..n {
                        if select[pj] && rotated_iou(&bi, &rb(order[pj])) > self.iou_threshold {
                            select[pj] = false;
                        }
                    }
                }
                for (p, &i) in order.iter().enumerate() {
                    if select[p] && sc[i] > self.score_threshold {
                        rows.extend([b as i64, c as i64, i as i64]);
                    }
                }
            }
        }
        Ok(vec![op.tensor(&[rows.len() / 3, 3], rows)?])
    }
}

#[derive(Debug)]
struct NmsMatch {
    op: Op,
}

/// A one-element float32 threshold input.
fn threshold(op: Op, inputs: &[Option<&Tensor>], idx: usize, port: &str) -> Result<f32> {
    let t = op.f32_input(inputs, idx, port)?;
    match t.as_slice::<f32>()? {
        [v] if !v.is_nan() => Ok(*v),
        [v] => Err(op.input_err(port, "a number", v.to_string())),
        _ => Err(op.input_err(
            port,
            "one value (shape [1] or [])",
            format!("shape {:?}", t.shape()),
        )),
    }
}

impl Kernel for NmsMatch {
    fn output_shapes(&self, inputs: &[Option<Dims>]) -> Result<Vec<Dims>> {
        let op = self.op;
        op.arity(inputs.len(), 4, 4)?;
        batched_dims(op, inputs, 4, MATCH_LAYOUT)?;
        for (idx, port) in [(2, "iou_threshold"), (3, "score_threshold")] {
            if let Some(Some(d)) = inputs.get(idx)
                && d.iter().any(|x| x.is_some_and(|v| v != 1))
            {
                return Err(op.input_err(
                    port,
                    "one value (shape [1] or [])",
                    format!("shape {}", crate::common::fmt_dims(d)),
                ));
            }
        }
        Ok(vec![vec![None, Some(4)]])
    }

    fn compute(&self, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>> {
        let op = self.op;
        op.arity(inputs.len(), 4, 4)?;
        let boxes_t = op.f32_input(inputs, 0, "boxes")?;
        let scores_t = op.f32_input(inputs, 1, "scores")?;
        let (batch, n, classes) = batched_shapes(op, boxes_t, scores_t, 4, MATCH_LAYOUT)?;
        let iou_thr = f64::from(threshold(op, inputs, 2, "iou_threshold")?);
        let score_thr = threshold(op, inputs, 3, "score_threshold")?;
        let boxes = boxes_t.as_slice::<f32>()?;
        let scores = scores_t.as_slice::<f32>()?;
        let mut rows: Vec<i64> = Vec::new();
        // Indexed by box index (not score position), as the C++.
        let mut select = vec![true; n];
        let mut matched: Vec<usize> = Vec::new();
        for b in 0..batch {
            let bx = |i: usize| &boxes[(b * n + i) * 4..][..4];
            for c in 0..classes {
                let sc = &scores[(b * classes + c) * n..][..n];
                let order = order_desc(sc);
                select.fill(true);
                for (pi, &i) in order.iter().enumerate() {
                    if !select[i] {
                        continue;
                    }
                    matched.clear();
                    for &j in &order[pi + 1..] {
                        if select[j] && match_iou(bx(i), bx(j)) >= iou_thr {
                            select[j] = false;
                            matched.push(j);
                        }
                    }
                    if sc[i] > score_thr {
                        for &j in &matched {
                            rows.extend([b as i64, c as i64, i as i64, j as i64]);
                        }
                    }
                }
            }
        }
        Ok(vec![op.tensor(&[rows.len() / 4, 4], rows)?])
    }
}

/// NMSMatch's IoU: float areas and intersection, division in double with a 1e-10 guard.
fn match_iou(a: &[f32], b: &[f32]) -> f64 {
    let w = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
    let h = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    let area_a = (a[2] - a[0]) * (a[3] - a[1]);
    let area_b = (b[2] - b[0]) * (b[3] - b[1]);
    let inter = w * h;
    f64::from(inter) / (f64::from(area_a + area_b - inter) + 1e-10)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::AttrMap;

    fn t(shape: &[usize], v: Vec<f32>) -> Tensor {
        Tensor::from_shape_vec(shape, v).unwrap()
    }

    fn ids(out: &[Tensor]) -> Vec<i64> {
        out[0].as_slice::<i64>().unwrap().to_vec()
    }

    #[test]
    fn nms_keeps_the_higher_score_of_two_overlapping_boxes() {
        let k = (NMS.build)(&AttrMap::new().with_float("iou_threshold", 0.5)).unwrap();
        // Boxes 0 and 2 overlap (IoU 81/100), box 1 is apart; box 2 scores higher than 0.
        let boxes = t(
            &[3, 4],
            vec![0., 0., 10., 10., 20., 20., 30., 30., 1., 1., 10., 10.],
        );
        let scores = t(&[3], vec![0.6, 0.5, 0.9]);
        let out = k.compute(&[Some(&boxes), Some(&scores)]).unwrap();
        assert_eq!(ids(&out), vec![2, 1]);
        assert_eq!(out[0].dtype(), DType::I64);
        // With a threshold above their IoU, both stay.
        let k = (NMS.build)(&AttrMap::new().with_float("iou_threshold", 0.9)).unwrap();
        assert_eq!(
            ids(&k.compute(&[Some(&boxes), Some(&scores)]).unwrap()),
            vec![2, 0, 1]
        );
        // offset = 1: widths 11, touching boxes overlap.
        let touching = t(&[2, 4], vec![0., 0., 9., 9., 10., 0., 19., 9.]);
        let s2 = t(&[2], vec![0.9, 0.8]);
        let k0 = (NMS.build)(&AttrMap::new()).unwrap();
        assert_eq!(
            ids(&k0.compute(&[Some(&touching), Some(&s2)]).unwrap()),
            vec![0, 1]
        );
        let shifted = t(&[2, 4], vec![0., 0., 9., 9., 9., 0., 18., 9.]);
        assert_eq!(
            ids(&k0.compute(&[Some(&shifted), Some(&s2)]).unwrap()),
            vec![0, 1]
        );
        let k1 = (NMS.build)(&AttrMap::new().with_int("offset", 1)).unwrap();
        assert_eq!(
            ids(&k1.compute(&[Some(&shifted), Some(&s2)]).unwrap()),
            vec![0]
        );
    }

    #[test]
    fn nms_handles_empty_and_degenerate_input() {
        let k = (NMS.build)(&AttrMap::new().with_float("iou_threshold", 0.3)).unwrap();
        let out = k
            .compute(&[Some(&t(&[0, 4], vec![])), Some(&t(&[0], vec![]))])
            .unwrap();
        assert_eq!(out[0].shape(), &[0]);
        // Zero-area boxes: IoU 0/0 suppresses nothing; NaN scores sort last.
        let boxes = t(
            &[3, 4],
            vec![1., 1., 1., 1., 1., 1., 1., 1., f32::NAN, 0., 1., 1.],
        );
        let scores = t(&[3], vec![f32::NAN, 0.2, 0.1]);
        assert_eq!(
            ids(&k.compute(&[Some(&boxes), Some(&scores)]).unwrap()),
            vec![1, 2, 0]
        );
    }

    #[test]
    fn nms_rejects_bad_shapes_and_attributes() {
        let k = (NMS.build)(&AttrMap::new()).unwrap();
        let b = t(&[2, 4], vec![0.0; 8]);
        let e = k
            .compute(&[Some(&b), Some(&t(&[3], vec![0.0; 3]))])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("mmcv::NonMaxSuppression.scores") && e.contains("num_boxes"),
            "{e}"
        );
        assert!(
            k.compute(&[
                Some(&t(&[2, 5], vec![0.0; 10])),
                Some(&t(&[2], vec![0.0; 2]))
            ])
            .is_err()
        );
        assert!(
            k.compute(&[Some(&t(&[8], vec![0.0; 8])), Some(&t(&[2], vec![0.0; 2]))])
                .is_err()
        );
        assert!(
            k.output_shapes(&[Some(vec![Some(2), Some(4)]), Some(vec![Some(3)])])
                .is_err()
        );
        assert_eq!(k.output_shapes(&[None, None]).unwrap(), vec![vec![None]]);
        assert!((NMS.build)(&AttrMap::new().with_int("offset", 2)).is_err());
        assert!((NMS.build)(&AttrMap::new().with_float("iou_threshold", f32::NAN)).is_err());
    }

    #[test]
    fn soft_nms_decays_overlapping_scores() {
        // IoU(a, b) = 81 / 100.
        let boxes = t(
            &[3, 4],
            vec![0., 0., 10., 10., 1., 1., 10., 10., 50., 50., 60., 60.],
        );
        let scores = t(&[3], vec![0.8, 0.9, 0.5]);
        let run = |attrs: AttrMap| {
            let o = (SOFT_NMS.build)(&attrs)
                .unwrap()
                .compute(&[Some(&boxes), Some(&scores)])
                .unwrap();
            (o[0].as_slice::<f32>().unwrap().to_vec(), ids(&o[1..]))
        };
        // Linear (default): box 0 keeps 0.8 * (1 - 0.81), taken after the far box.
        let (dets, idx) = run(AttrMap::new());
        assert_eq!(idx, vec![1, 2, 0]);
        assert_eq!(&dets[..5], &[1., 1., 10., 10., 0.9]);
        assert!((dets[14] - 0.8 * 0.19).abs() < 1e-6, "{dets:?}");
        // Naive: weight 0 drops it.
        assert_eq!(run(AttrMap::new().with_int("method", 0)).1, vec![1, 2]);
        // Gaussian: exp(-0.81^2 / 0.5).
        let (dets, _) = run(AttrMap::new().with_int("method", 2));
        assert!((dets[14] - 0.8 * (-0.6561f32 / 0.5).exp()).abs() < 1e-6);
        // min_score above the decayed score drops it too.
        assert_eq!(
            run(AttrMap::new().with_float("min_score", 0.2)).1,
            vec![1, 2]
        );
        for bad in [
            AttrMap::new().with_int("method", 3),
            AttrMap::new()
                .with_int("method", 2)
                .with_float("sigma", 0.0),
            AttrMap::new().with_int("offset", -1),
        ] {
            assert!((SOFT_NMS.build)(&bad).is_err(), "{bad:?}");
        }
        let k = (SOFT_NMS.build)(&AttrMap::new()).unwrap();
        assert!(
            k.compute(&[Some(&boxes), Some(&t(&[2], vec![0.0; 2]))])
                .is_err()
        );
        let o = k
            .compute(&[Some(&t(&[0, 4], vec![])), Some(&t(&[0], vec![]))])
            .unwrap();
        assert_eq!((o[0].shape(), o[1].shape()), (&[0, 5][..], &[0][..]));
    }

    fn rotated(iou: f32, score: f32) -> Box<dyn Kernel> {
        (NMS_ROTATED.build)(
            &AttrMap::new()
                .with_float("iou_threshold", iou)
                .with_float("score_threshold", score),
        )
        .unwrap()
    }

    #[test]
    fn nms_rotated_suppresses_per_batch_and_class() {
        // Batch 0: box 0 and box 1 are the same 4 x 2 box turned by 0 and by a tiny angle
        // (IoU ~ 1); box 2 is the same box turned by 90 degrees (IoU 4/12 with box 0).
        let boxes = t(
            &[2, 3, 5],
            vec![
                0.,
                0.,
                4.,
                2.,
                0.,
                0.,
                0.,
                4.,
                2.,
                0.01,
                0.,
                0.,
                4.,
                2.,
                std::f32::consts::FRAC_PI_2, //
                0.,
                0.,
                1.,
                1.,
                0.,
                5.,
                5.,
                1.,
                1.,
                0.,
                0.,
                0.,
                1.,
                1.,
                0.,
            ],
        );
        // Two classes; class 1 of batch 0 prefers box 1.
        let scores = t(
            &[2, 2, 3],
            vec![0.9, 0.8, 0.7, 0.1, 0.95, 0.3, 0.5, 0.6, 0.7, 0.0, 0.0, 0.0],
        );
        let k = rotated(0.5, 0.05);
        let out = k.compute(&[Some(&boxes), Some(&scores)]).unwrap();
        assert_eq!(out[0].shape()[1], 3);
        assert_eq!(
            ids(&out),
            vec![
                0, 0, 0, 0, 0, 2, // class 0: box 0 beats box 1; box 2 overlaps only 1/3
                0, 1, 1, 0, 1, 2, // class 1: box 1 first; box 0 suppressed
                1, 0, 2, 1, 0,
                1, // batch 1, class 0: box 2 (0.7) suppresses box 0; box 1 is apart
                   // batch 1, class 1: all scores 0 <= 0.05: nothing
            ]
        );
        // A threshold below 1/3 also removes the crossed box.
        let out = rotated(0.3, 0.0)
            .compute(&[Some(&boxes), Some(&scores)])
            .unwrap();
        assert_eq!(&ids(&out)[..3], &[0, 0, 0]);
        assert_eq!(ids(&out).len() % 3, 0);
        assert!(!ids(&out).chunks(3).any(|r| r == [0, 0, 2]));
    }

    #[test]
    fn nms_rotated_rejects_bad_input() {
        let k = rotated(0.5, 0.0);
        let b = t(&[1, 2, 5], vec![0.0; 10]);
        let e = k
            .compute(&[Some(&b), Some(&t(&[1, 1, 3], vec![0.0; 3]))])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("NMSRotated.scores") && e.contains("num_boxes"),
            "{e}"
        );
        let e = k
            .compute(&[
                Some(&t(&[2, 5], vec![0.0; 10])),
                Some(&t(&[1, 1, 2], vec![0.0; 2])),
            ])
            .unwrap_err()
            .to_string();
        assert!(e.contains("3-D"), "{e}");
        assert!(
            k.compute(&[
                Some(&t(&[1, 2, 4], vec![0.0; 8])),
                Some(&t(&[1, 1, 2], vec![0.0; 2]))
            ])
            .is_err()
        );
        assert!(
            k.compute(&[Some(&b), Some(&t(&[2, 1, 2], vec![0.0; 4]))])
                .is_err()
        );
        assert_eq!(
            k.output_shapes(&[Some(vec![None, Some(7), Some(5)]), None])
                .unwrap(),
            vec![vec![None, Some(3)]]
        );
        assert!(
            k.output_shapes(&[Some(vec![None, Some(7), Some(4)]), None])
                .is_err()
        );
        assert!((NMS_ROTATED.build)(&AttrMap::new().with_float("iou_threshold", 0.5)).is_err());
        // Empty batch and no boxes: an empty [0, 3] output.
        let out = k
            .compute(&[Some(&t(&[1, 0, 5], vec![])), Some(&t(&[1, 4, 0], vec![]))])
            .unwrap();
        assert_eq!(out[0].shape(), &[0, 3]);
    }

    fn thr(v: f32) -> Tensor {
        t(&[1], vec![v])
    }

    #[test]
    fn nms_match_lists_who_suppressed_whom() {
        let k = (NMS_MATCH.build)(&AttrMap::new()).unwrap();
        // Boxes 0, 1, 2 overlap pairwise (IoU 81/119 >= 0.5 for 0-1, 0-2 similar); box 3 apart.
        let boxes = t(
            &[1, 4, 4],
            vec![
                0., 0., 10., 10., 1., 1., 11., 11., 0., 1., 10., 11., 50., 50., 60., 60.,
            ],
        );
        let scores = t(&[1, 2, 4], vec![0.9, 0.8, 0.7, 0.6, 0.01, 0.3, 0.2, 0.9]);
        let out = k
            .compute(&[
                Some(&boxes),
                Some(&scores),
                Some(&thr(0.5)),
                Some(&thr(0.05)),
            ])
            .unwrap();
        assert_eq!(
            ids(&out),
            vec![
                0, 0, 0, 1, 0, 0, 0, 2, // class 0: box 0 (0.9) takes 1 and 2 in score order
                0, 1, 1, 2, 0, 1, 1,
                0, // class 1: box 3 (0.9) matches nothing; box 1 (0.3)
                   // takes 2 (0.2) then 0 (0.01)
            ]
        );
        // A kept box below the score threshold is not reported, but still suppresses.
        let out = k
            .compute(&[
                Some(&boxes),
                Some(&scores),
                Some(&thr(0.5)),
                Some(&thr(0.95)),
            ])
            .unwrap();
        assert_eq!(out[0].shape(), &[0, 4]);
    }

    #[test]
    fn nms_match_rejects_bad_input() {
        let k = (NMS_MATCH.build)(&AttrMap::new()).unwrap();
        let b = t(&[1, 2, 4], vec![0.0; 8]);
        let s = t(&[1, 1, 2], vec![0.0; 2]);
        let two = t(&[2], vec![0.5, 0.5]);
        let e = k
            .compute(&[Some(&b), Some(&s), Some(&two), Some(&thr(0.0))])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("NMSMatch.iou_threshold") && e.contains("one value"),
            "{e}"
        );
        assert!(
            k.compute(&[Some(&b), Some(&s), Some(&thr(f32::NAN)), Some(&thr(0.0))])
                .is_err()
        );
        assert!(k.compute(&[Some(&b), Some(&s), Some(&thr(0.5))]).is_err());
        assert!(
            k.compute(&[Some(&b), Some(&s), None, Some(&thr(0.5))])
                .is_err()
        );
        assert!(
            k.compute(&[
                Some(&t(&[1, 2, 5], vec![0.0; 10])),
                Some(&s),
                Some(&thr(0.5)),
                Some(&thr(0.5))
            ])
            .is_err()
        );
        let scalar = t(&[], vec![0.5]);
        assert!(
            k.compute(&[Some(&b), Some(&s), Some(&scalar), Some(&scalar)])
                .is_ok()
        );
        assert!(
            k.output_shapes(&[None, None, Some(vec![Some(2)]), None])
                .is_err()
        );
        assert_eq!(
            k.output_shapes(&[None, None, None, None]).unwrap(),
            vec![vec![None, Some(4)]]
        );
    }
}
