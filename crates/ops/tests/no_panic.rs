//! Property tests over every op: random attributes, random small shapes (consistent or not)
//! and random values (NaN, infinities, huge numbers included) give results or errors, never a
//! panic; and where compute succeeds, its output shapes agree with `output_shapes`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is a test failure"
)]

use proptest::prelude::*;
use rdeploy_core::{DType, Tensor};
use rdeploy_ops::{AttrMap, AttrValue, Kernel, OpDef};

const NAMES: &[&str] = &[
    "interpolation_mode",
    "padding_mode",
    "align_corners",
    "stride",
    "padding",
    "dilation",
    "groups",
    "deform_groups",
    "output_height",
    "output_width",
    "spatial_scale",
    "sampling_ratio",
    "mode",
    "aligned",
    "clockwise",
    "iou_threshold",
    "score_threshold",
    "offset",
    "sigma",
    "min_score",
    "method",
    "dim",
    "bias",
    "im2col_step",
];

fn value() -> impl Strategy<Value = f32> {
    prop_oneof![
        8 => -3.0f32..12.0,
        1 => Just(f32::NAN),
        1 => Just(f32::INFINITY),
        1 => Just(f32::NEG_INFINITY),
        1 => Just(1e30f32),
        1 => Just(-1e30f32),
        1 => Just(0.0f32),
    ]
}

fn attr() -> impl Strategy<Value = Option<AttrValue>> {
    prop_oneof![
        3 => Just(None),
        4 => (-1i64..4).prop_map(|v| Some(AttrValue::Int(v))),
        1 => Just(Some(AttrValue::Int(i64::MAX))),
        1 => Just(Some(AttrValue::Int(i64::MIN))),
        2 => prop::collection::vec(-1i64..4, 0..4).prop_map(|v| Some(AttrValue::Ints(v))),
        3 => value().prop_map(|v| Some(AttrValue::Float(v))),
        2 => prop::sample::select(vec!["avg", "max", "sum", ""])
            .prop_map(|s| Some(AttrValue::String(s.to_owned()))),
    ]
}

fn attrs() -> impl Strategy<Value = AttrMap> {
    prop::collection::vec(attr(), NAMES.len()).prop_map(|vals| {
        let mut m = AttrMap::new();
        for (name, v) in NAMES.iter().zip(vals) {
            if let Some(v) = v {
                m = m.set(name, v);
            }
        }
        m
    })
}

fn tensor_of(shape: Vec<usize>) -> impl Strategy<Value = Tensor> {
    let n: usize = shape.iter().product();
    prop::collection::vec(value(), n).prop_map(move |v| Tensor::from_shape_vec(&shape, v).unwrap())
}

fn any_tensor() -> impl Strategy<Value = Option<Tensor>> {
    prop_oneof![
        1 => Just(None),
        1 => Just(Some(Tensor::zeros(DType::I64, &[1, 4]))),
        8 => prop::collection::vec(0usize..4, 0..5).prop_flat_map(tensor_of).prop_map(Some),
    ]
}

fn op() -> impl Strategy<Value = &'static OpDef> {
    prop::sample::select(rdeploy_ops::all().iter().collect::<Vec<_>>())
}

/// Runs the kernel and, when it succeeds, checks `output_shapes` agrees on the known dims.
fn run(k: &dyn Kernel, inputs: &[Option<Tensor>]) {
    let refs: Vec<Option<&Tensor>> = inputs.iter().map(Option::as_ref).collect();
    let dims: Vec<Option<Vec<Option<usize>>>> = inputs
        .iter()
        .map(|t| {
            t.as_ref()
                .map(|t| t.shape().iter().map(|&d| Some(d)).collect())
        })
        .collect();
    let inferred = k.output_shapes(&dims);
    if let Ok(outs) = k.compute(&refs) {
        let inferred = inferred.expect("compute succeeded, so shape inference must too");
        assert_eq!(inferred.len(), outs.len());
        for (want, got) in inferred.iter().zip(&outs) {
            assert_eq!(want.len(), got.shape().len());
            for (w, g) in want.iter().zip(got.shape()) {
                if let Some(w) = w {
                    assert_eq!(w, g, "inferred {want:?}, computed {:?}", got.shape());
                }
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn random_everything_never_panics(
        def in op(),
        attrs in attrs(),
        inputs in prop::collection::vec(any_tensor(), 0..6),
    ) {
        if let Ok(k) = (def.build)(&attrs) {
            run(k.as_ref(), &inputs);
            let dims: Vec<_> = inputs.iter().map(|t| t.as_ref().map(|t| t.shape().iter().map(|&d| Some(d)).collect())).collect();
            let _ = k.output_shapes(&dims);
        }
    }

    #[test]
    fn grid_sampler_with_consistent_shapes(
        mode in 0i64..3, padding in 0i64..3, align in 0i64..2,
        (input, grid) in (0usize..3, 0usize..3, 0usize..5, 0usize..5, 0usize..4, 0usize..4)
            .prop_flat_map(|(n, c, h, w, oh, ow)| (tensor_of(vec![n, c, h, w]), tensor_of(vec![n, oh, ow, 2]))),
    ) {
        let def = rdeploy_ops::find("mmdeploy", "grid_sampler").unwrap();
        let k = (def.build)(&AttrMap::new().with_int("interpolation_mode", mode).with_int("padding_mode", padding).with_int("align_corners", align)).unwrap();
        let out = k.compute(&[Some(&input), Some(&grid)]).unwrap();
        prop_assert_eq!(out[0].shape(), &[input.shape()[0], input.shape()[1], grid.shape()[1], grid.shape()[2]]);
    }

    #[test]
    fn deform_conv_with_consistent_shapes(
        (groups, dg, cpg, opg) in (1usize..3, 1usize..3, 1usize..3, 1usize..3),
        (kh, kw, h, w) in (1usize..4, 1usize..4, 1usize..6, 1usize..6),
        (stride, pad, dil) in ((1usize..3, 1usize..3), (0usize..2, 0usize..2), (1usize..3, 1usize..3)),
        seed_values in prop::collection::vec(value(), 64),
        with_bias in any::<bool>(),
    ) {
        let c = groups * cpg * dg;
        let c_out = groups * opg;
        let ext_h = dil.0 * (kh - 1) + 1;
        let ext_w = dil.1 * (kw - 1) + 1;
        prop_assume!(h + 2 * pad.0 >= ext_h && w + 2 * pad.1 >= ext_w);
        let oh = (h + 2 * pad.0 - ext_h) / stride.0 + 1;
        let ow = (w + 2 * pad.1 - ext_w) / stride.1 + 1;
        let fill = |shape: &[usize]| {
            let n: usize = shape.iter().product();
            Tensor::from_shape_vec(shape, (0..n).map(|i| seed_values[i % seed_values.len()]).collect()).unwrap()
        };
        let x = fill(&[1, c, h, w]);
        let offset = fill(&[1, dg * 2 * kh * kw, oh, ow]);
        let mask = fill(&[1, dg * kh * kw, oh, ow]);
        let weight = fill(&[c_out, c / groups, kh, kw]);
        let bias = fill(&[c_out]);
        let def = rdeploy_ops::find("mmcv", "MMCVModulatedDeformConv2d").unwrap();
        let k = (def.build)(&AttrMap::new()
            .with_ints("stride", &[stride.0 as i64, stride.1 as i64])
            .with_ints("padding", &[pad.0 as i64, pad.1 as i64])
            .with_ints("dilation", &[dil.0 as i64, dil.1 as i64])
            .with_int("groups", groups as i64)
            .with_int("deform_groups", dg as i64)).unwrap();
        let mut inputs = vec![Some(x), Some(offset), Some(mask), Some(weight)];
        if with_bias {
            inputs.push(Some(bias));
        }
        let refs: Vec<Option<&Tensor>> = inputs.iter().map(Option::as_ref).collect();
        let out = k.compute(&refs).unwrap();
        prop_assert_eq!(out[0].shape(), &[1, c_out, oh, ow]);
        run(k.as_ref(), &inputs);
    }

    #[test]
    fn roi_align_with_consistent_shapes(
        max in any::<bool>(), aligned in 0i64..2, ratio in -1i64..3,
        (out_h, out_w) in (1i64..3, 1i64..3),
        scale in prop_oneof![Just(1.0f32), Just(0.5f32), Just(0.125f32)],
        (input, rois) in (1usize..3, 0usize..3, 0usize..5, 0usize..5, 0usize..4, any::<bool>())
            .prop_flat_map(|(n, c, h, w, r, rot)| {
                let cols = if rot { 6 } else { 5 };
                (tensor_of(vec![n, c, h, w]), prop::collection::vec(value(), r * cols).prop_map(move |mut v| {
                    for row in v.chunks_mut(cols) {
                        row[0] = (row[0].abs() as usize % n) as f32; // valid batch index
                    }
                    Tensor::from_shape_vec(&[r, cols], v).unwrap()
                }))
            }),
    ) {
        let rotated = rois.shape()[1] == 6;
        let (def, attrs) = if rotated {
            (rdeploy_ops::find("mmdeploy", "MMCVRoIAlignRotated").unwrap(), AttrMap::new().with_int("clockwise", aligned))
        } else {
            (rdeploy_ops::find("mmcv", "MMCVRoiAlign").unwrap(), AttrMap::new().with_string("mode", if max { "max" } else { "avg" }))
        };
        let attrs = attrs.with_int("output_height", out_h).with_int("output_width", out_w).with_float("spatial_scale", scale)
            .with_int("sampling_ratio", ratio).with_int("aligned", aligned);
        let k = (def.build)(&attrs).unwrap();
        let r = k.compute(&[Some(&input), Some(&rois)]);
        // Only the RoI-size guard or the column count may refuse (NaN batch indices were fixed above,
        // huge boxes may exceed the sampling budget).
        if let Ok(out) = r {
            prop_assert_eq!(out[0].shape(), &[rois.shape()[0], input.shape()[1], out_h as usize, out_w as usize]);
        }
        run(k.as_ref(), &[Some(input), Some(rois)]);
    }

    #[test]
    fn nms_ops_with_consistent_shapes(
        (b, c, n) in (0usize..3, 0usize..3, 0usize..6),
        seed in prop::collection::vec(value(), 96),
        iou in 0.0f32..1.0, score in 0.0f32..1.0,
    ) {
        let fill = |shape: &[usize]| {
            let len: usize = shape.iter().product();
            Tensor::from_shape_vec(shape, (0..len).map(|i| seed[i % seed.len()]).collect()).unwrap()
        };
        let attrs = AttrMap::new().with_float("iou_threshold", iou).with_float("score_threshold", score);
        let rot = rdeploy_ops::find("mmdeploy", "NMSRotated").unwrap();
        let out = (rot.build)(&attrs).unwrap().compute(&[Some(&fill(&[b, n, 5])), Some(&fill(&[b, c, n]))]).unwrap();
        prop_assert_eq!(out[0].shape()[1], 3);
        let m = rdeploy_ops::find("mmdeploy", "NMSMatch").unwrap();
        let thr = |v: f32| Tensor::from_shape_vec(&[1], vec![v]).unwrap();
        let out = (m.build)(&attrs).unwrap()
            .compute(&[Some(&fill(&[b, n, 4])), Some(&fill(&[b, c, n])), Some(&thr(iou)), Some(&thr(score))])
            .unwrap();
        prop_assert_eq!(out[0].shape()[1], 4);
        let nms = rdeploy_ops::find("mmcv", "NonMaxSuppression").unwrap();
        let out = (nms.build)(&attrs).unwrap().compute(&[Some(&fill(&[n, 4])), Some(&fill(&[n]))]).unwrap();
        let kept = out[0].as_slice::<i64>().unwrap();
        prop_assert!(kept.len() <= n && kept.iter().all(|&i| (0..n as i64).contains(&i)));
        let soft = rdeploy_ops::find("mmcv", "SoftNonMaxSuppression").unwrap();
        for method in 0..3 {
            let attrs = AttrMap::new().with_float("iou_threshold", iou).with_float("min_score", score).with_int("method", method);
            let out = (soft.build)(&attrs).unwrap().compute(&[Some(&fill(&[n, 4])), Some(&fill(&[n]))]).unwrap();
            let kept = out[1].as_slice::<i64>().unwrap();
            prop_assert_eq!(out[0].shape(), &[kept.len(), 5]);
            let mut sorted = kept.to_vec();
            sorted.sort_unstable();
            sorted.dedup();
            prop_assert!(sorted.len() == kept.len() && kept.iter().all(|&i| (0..n as i64).contains(&i)));
        }
    }
}
