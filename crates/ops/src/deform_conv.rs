//! `MMCVModulatedDeformConv2d`: mmcv's modulated deformable convolution (DCNv2).

use crate::common::{Dims, Op, mul};
use crate::{Attributes, Kernel, OpDef, Port};
use rdeploy_core::{DType, Result, Tensor};

const INPUTS: &[Port] = &[
    Port {
        name: "input",
        dtype: DType::F32,
        optional: false,
    },
    Port {
        name: "offset",
        dtype: DType::F32,
        optional: false,
    },
    Port {
        name: "mask",
        dtype: DType::F32,
        optional: false,
    },
    Port {
        name: "weight",
        dtype: DType::F32,
        optional: false,
    },
    Port {
        name: "bias",
        dtype: DType::F32,
        optional: true,
    },
];
const OUTPUTS: &[Port] = &[Port {
    name: "output",
    dtype: DType::F32,
    optional: false,
}];

const DOC: &str = "Modulated deformable convolution (Deformable ConvNets v2): inputs `input` \
(float32, N x C x H x W), `offset` (N x deform_groups*2*kH*kW x outH x outW; for deformable group \
d and kernel tap k = i*kW + j, channel d*2*kH*kW + 2k is the y offset and 2k+1 the x offset), \
`mask` (N x deform_groups*kH*kW x outH x outW), `weight` (C_out x C/groups x kH x kW) and optional \
`bias` (C_out); output N x C_out x outH x outW with outH = (H + 2*pad_h - (dil_h*(kH-1)+1)) / \
stride_h + 1. Each tap samples input channel c at (oh*stride_h - pad_h + i*dil_h + dy, ow*stride_w \
- pad_w + j*dil_w + dx) bilinearly (zero outside the map and for points at or beyond one pixel \
outside), multiplies by the mask, and the taps are convolved with `weight` per group. Attributes: \
`stride`, `padding`, `dilation` (INTS (h, w); one value or an INT is used for both; defaults \
[1, 1], [0, 0], [1, 1] as mmcv's ModulatedDeformConv2d), `groups` (INT, default 1), \
`deform_groups` (INT, default 1; `deformable_groups`, the name in mmcv's docs, is read when \
`deform_groups` is absent). Source: MMDeploy's csrc/mmdeploy/backend_ops/onnxruntime/\
modulated_deform_conv and backend_ops/common/modulated_deform_conv/modulated_deform_conv_cpu.h \
(mmcv 1.x's ONNX Runtime kernel is the same code). Difference: input channel c belongs to \
deformable group c / (C / deform_groups) counted over all C channels, as in mmcv's PyTorch \
kernels, torchvision and ONNX DeformConv; the ONNX Runtime kernels count within each convolution \
group, which gives different results only when groups > 1 and deform_groups > 1. Equivalent to \
ONNX DeformConv-19 with inputs reordered (X, W, offset, B, mask) and attributes strides, pads \
(4 values), dilations, group, offset_group.";

/// MMDeploy's registration.
pub(crate) const MMDEPLOY: OpDef = OpDef {
    domain: "mmdeploy",
    op_type: "MMCVModulatedDeformConv2d",
    inputs: INPUTS,
    outputs: OUTPUTS,
    standard_equivalent: Some("DeformConv-19"),
    doc: DOC,
    build: |a| build(Op("mmdeploy::MMCVModulatedDeformConv2d"), a),
};

/// mmcv's registration (mmcv 1.x exports `mmcv::MMCVModulatedDeformConv2d`; MMDeploy's
/// library registers its kernel under both domains).
pub(crate) const MMCV: OpDef = OpDef {
    domain: "mmcv",
    op_type: "MMCVModulatedDeformConv2d",
    inputs: INPUTS,
    outputs: OUTPUTS,
    standard_equivalent: Some("DeformConv-19"),
    doc: DOC,
    build: |a| build(Op("mmcv::MMCVModulatedDeformConv2d"), a),
};

const V1_INPUTS: &[Port] = &[
    Port {
        name: "input",
        dtype: DType::F32,
        optional: false,
    },
    Port {
        name: "offset",
        dtype: DType::F32,
        optional: false,
    },
    Port {
        name: "weight",
        dtype: DType::F32,
        optional: false,
    },
];

/// mmcv 1.x's deformable convolution v1 (`mmcv::MMCVDeformConv2d`).
pub(crate) const MMCV_V1: OpDef = OpDef {
    domain: "mmcv",
    op_type: "MMCVDeformConv2d",
    inputs: V1_INPUTS,
    outputs: OUTPUTS,
    standard_equivalent: Some("DeformConv-19"),
    doc: "Deformable convolution v1: MMCVModulatedDeformConv2d without mask and bias - inputs \
`input` (float32, N x C x H x W), `offset` (N x deform_groups*2*kH*kW x outH x outW, y then x \
offset per kernel tap) and `weight` (C_out x C/groups x kH x kW); output N x C_out x outH x \
outW. Attributes as MMCVModulatedDeformConv2d (`stride`, `padding`, `dilation` INTS, `groups`, \
`deform_groups` INT), plus `bias` (INT, default 0; must be 0: mmcv's DeformConv2d has no bias) \
and `im2col_step` (INT, ignored: it only splits the batch to save memory). Source: mmcv 1.7's \
mmcv/ops/csrc/onnxruntime/cpu/deform_conv.cpp and mmcv/ops/deform_conv.py's symbolic. \
Difference, as for the modulated op: deformable groups are counted over all input channels \
(mmcv's PyTorch op, ONNX DeformConv), not within each convolution group as the ONNX Runtime \
kernel does. Equivalent to ONNX DeformConv-19 (X, W, offset) without B and mask.",
    build: |a| {
        let op = Op("mmcv::MMCVDeformConv2d");
        match op.int_or(a, "bias", 0) {
            0 => build_any(op, a, false),
            v => Err(op.attr_err(
                "bias",
                format!("is {v}; expected 0 (mmcv's DeformConv2d has no bias)"),
            )),
        }
    },
};

#[derive(Debug)]
struct DeformConv {
    op: Op,
    /// DCNv2 (`MMCVModulatedDeformConv2d`: mask and bias inputs) or DCNv1 (`MMCVDeformConv2d`).
    modulated: bool,
    stride: [usize; 2],
    padding: [usize; 2],
    dilation: [usize; 2],
    groups: usize,
    deform_groups: usize,
}

fn build(op: Op, a: &dyn Attributes) -> Result<Box<dyn Kernel>> {
    build_any(op, a, true)
}

fn build_any(op: Op, a: &dyn Attributes, modulated: bool) -> Result<Box<dyn Kernel>> {
    let deform_groups = if a.int("deform_groups").is_some() {
        op.count(a, "deform_groups", Some(1))?
    } else {
        op.count(a, "deformable_groups", Some(1))?
    };
    Ok(Box::new(DeformConv {
        op,
        modulated,
        stride: op.pair_or(a, "stride", [1, 1], 1)?,
        padding: op.pair_or(a, "padding", [0, 0], 0)?,
        dilation: op.pair_or(a, "dilation", [1, 1], 1)?,
        groups: op.count(a, "groups", Some(1))?,
        deform_groups,
    }))
}

/// The geometry every check and the computation share.
#[derive(Clone, Copy, Debug)]
struct Geometry {
    n: usize,
    c: usize,
    h: usize,
    w: usize,
    c_out: usize,
    kh: usize,
    kw: usize,
    oh: usize,
    ow: usize,
}

impl DeformConv {
    fn weight_idx(&self) -> usize {
        if self.modulated { 3 } else { 2 }
    }

    /// (required, total) input counts.
    fn arity(&self) -> (usize, usize) {
        if self.modulated { (4, 5) } else { (3, 3) }
    }

    /// outH (or outW) for an input `size` along `axis` (0: height, 1: width).
    fn out_dim(&self, size: usize, k: usize, axis: usize) -> Result<usize> {
        let op = self.op;
        let what = ["height", "width"][axis];
        let too_big = || {
            op.input_err(
                "input",
                format!("a {what} the padding and dilation attributes can address"),
                format!(
                    "{what} {size}, padding {}, dilation {}",
                    self.padding[axis], self.dilation[axis]
                ),
            )
        };
        let padded = self.padding[axis]
            .checked_mul(2)
            .and_then(|p| p.checked_add(size))
            .ok_or_else(too_big)?;
        let extent = k
            .checked_sub(1)
            .and_then(|k1| k1.checked_mul(self.dilation[axis]))
            .and_then(|e| e.checked_add(1))
            .ok_or_else(too_big)?;
        if padded < extent {
            return Err(op.input_err(
                "input",
                format!(
                    "a padded {what} of at least the kernel's extent {extent} (dilation * (k - 1) + 1)"
                ),
                format!("padded {what} {padded}"),
            ));
        }
        Ok((padded - extent) / self.stride[axis] + 1)
    }

    fn check_channels(&self, c: usize, weight_c: usize, c_out: usize) -> Result<()> {
        let op = self.op;
        let g = self.groups;
        if weight_c.checked_mul(g) != Some(c) {
            return Err(op.input_err(
                "weight",
                format!("dim 1 = C / groups = {c} / {g} (input channels per group)"),
                format!("dim 1 = {weight_c}"),
            ));
        }
        if !c_out.is_multiple_of(g) {
            return Err(op.input_err(
                "weight",
                format!("output channels (dim 0) divisible by groups = {g}"),
                format!("{c_out} output channels"),
            ));
        }
        if !c.is_multiple_of(self.deform_groups) {
            return Err(op.input_err(
                "input",
                format!(
                    "channels divisible by deform_groups = {}",
                    self.deform_groups
                ),
                format!("{c} channels"),
            ));
        }
        Ok(())
    }

    fn geometry(&self, inputs: &[Option<&Tensor>]) -> Result<Geometry> {
        let op = self.op;
        let input = op.f32_input(inputs, 0, "input")?;
        let weight = op.f32_input(inputs, self.weight_idx(), "weight")?;
        let [n, c, h, w] = op.rank::<4>("input", input.shape(), "(N, C, H, W)")?;
        let [c_out, wc, kh, kw] =
            op.rank::<4>("weight", weight.shape(), "(C_out, C / groups, kH, kW)")?;
        if kh == 0 || kw == 0 {
            return Err(op.input_err(
                "weight",
                "a kernel of at least 1 x 1",
                format!("{kh} x {kw}"),
            ));
        }
        self.check_channels(c, wc, c_out)?;
        let oh = self.out_dim(h, kh, 0)?;
        let ow = self.out_dim(w, kw, 1)?;
        let g = Geometry {
            n,
            c,
            h,
            w,
            c_out,
            kh,
            kw,
            oh,
            ow,
        };
        let taps = kh * kw; // both are dims of a tensor that exists: no overflow
        let dg_taps = self.deform_groups.checked_mul(taps);
        let ports: &[(usize, &str, usize)] = if self.modulated {
            &[(1, "offset", 2), (2, "mask", 1)]
        } else {
            &[(1, "offset", 2)]
        };
        for &(idx, port, per) in ports {
            let t = op.f32_input(inputs, idx, port)?;
            let layout = if per == 2 {
                "(N, deform_groups * 2 * kH * kW, outH, outW)"
            } else {
                "(N, deform_groups * kH * kW, outH, outW)"
            };
            let shape = op.rank::<4>(port, t.shape(), layout)?;
            let want_c = dg_taps.and_then(|x| x.checked_mul(per));
            if shape[0] != n || Some(shape[1]) != want_c || shape[2] != oh || shape[3] != ow {
                let want_c = want_c.map_or_else(|| "?".to_owned(), |v| v.to_string());
                return Err(op.input_err(
                    port,
                    format!("shape [{n}, {want_c}, {oh}, {ow}] {layout}"),
                    format!("shape {:?}", t.shape()),
                ));
            }
        }
        if self.modulated
            && let Some(b) = op.f32_optional(inputs, 4, "bias")?
            && b.shape() != [c_out]
        {
            return Err(op.input_err(
                "bias",
                format!("shape [{c_out}] (C_out)"),
                format!("shape {:?}", b.shape()),
            ));
        }
        Ok(g)
    }
}

/// mmcv's `dmcn_im2col_bilinear`: zero unless -1 < y < h and -1 < x < w; corners outside the
/// map read as zero. NaN positions read as zero (the C++ cast would be undefined).
fn bilinear(plane: &[f32], h: usize, w: usize, y: f32, x: f32) -> f32 {
    if !(y > -1.0 && y < h as f32 && x > -1.0 && x < w as f32) {
        return 0.0;
    }
    let (yf, xf) = (y.floor(), x.floor());
    let (y0, x0) = (yf as i64, xf as i64);
    let at = |yy: i64, xx: i64| match (usize::try_from(yy), usize::try_from(xx)) {
        (Ok(yy), Ok(xx)) if yy < h && xx < w => plane.get(yy * w + xx).copied().unwrap_or(0.0),
        _ => 0.0,
    };
    let (lh, lw) = (y - yf, x - xf);
    let (hh, hw) = (1.0 - lh, 1.0 - lw);
    hh * hw * at(y0, x0)
        + hh * lw * at(y0, x0 + 1)
        + lh * hw * at(y0 + 1, x0)
        + lh * lw * at(y0 + 1, x0 + 1)
}

impl Kernel for DeformConv {
    fn output_shapes(&self, inputs: &[Option<Dims>]) -> Result<Vec<Dims>> {
        let op = self.op;
        let (required, total) = self.arity();
        op.arity(inputs.len(), required, total)?;
        let [n, c, h, w] = op.rank_dims::<4>(inputs, 0, "input", "(N, C, H, W)")?;
        let [on, oc, ooh, oow] = op.rank_dims::<4>(
            inputs,
            1,
            "offset",
            "(N, deform_groups * 2 * kH * kW, outH, outW)",
        )?;
        let [mn, mc, moh, mow] = if self.modulated {
            op.rank_dims::<4>(
                inputs,
                2,
                "mask",
                "(N, deform_groups * kH * kW, outH, outW)",
            )?
        } else {
            [None; 4]
        };
        let [c_out, wc, kh, kw] = op.rank_dims::<4>(
            inputs,
            self.weight_idx(),
            "weight",
            "(C_out, C / groups, kH, kW)",
        )?;
        let c_out = if self.modulated {
            let [bc] = op.rank_dims::<1>(inputs, 4, "bias", "(C_out)")?;
            op.same("bias", "C_out (weight's dim 0)", c_out, bc)?
        } else {
            c_out
        };
        if let (Some(c), Some(wc), Some(c_out)) = (c, wc, c_out) {
            self.check_channels(c, wc, c_out)?;
        }
        let taps = mul(kh, kw);
        let dg_taps = mul(Some(self.deform_groups), taps);
        op.same(
            "offset",
            "dim 1 (deform_groups * 2 * kH * kW)",
            mul(dg_taps, Some(2)),
            oc,
        )?;
        op.same("mask", "dim 1 (deform_groups * kH * kW)", dg_taps, mc)?;
        if kh == Some(0) || kw == Some(0) {
            return Err(op.input_err("weight", "a kernel of at least 1 x 1", "an empty kernel"));
        }
        let oh = match (h, kh) {
            (Some(h), Some(kh)) => Some(self.out_dim(h, kh, 0)?),
            _ => None,
        };
        let ow = match (w, kw) {
            (Some(w), Some(kw)) => Some(self.out_dim(w, kw, 1)?),
            _ => None,
        };
        let n = op.same("offset", "batch size N (input's)", n, on)?;
        let n = op.same("mask", "batch size N (input's)", n, mn)?;
        let oh = op.same("offset", "outH", oh, ooh)?;
        let oh = op.same("mask", "outH", oh, moh)?;
        let ow = op.same("offset", "outW", ow, oow)?;
        let ow = op.same("mask", "outW", ow, mow)?;
        Ok(vec![vec![n, c_out, oh, ow]])
    }

    fn compute(&self, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>> {
        let op = self.op;
        let (required, total) = self.arity();
        op.arity(inputs.len(), required, total)?;
        let g = self.geometry(inputs)?;
        let out_shape = [g.n, g.c_out, g.oh, g.ow];
        let mut out = vec![0f32; op.output_len(&out_shape)?];
        if out.is_empty() {
            return Ok(vec![op.tensor(&out_shape, out)?]);
        }
        let x = op.f32_input(inputs, 0, "input")?.as_slice::<f32>()?;
        let offset = op.f32_input(inputs, 1, "offset")?.as_slice::<f32>()?;
        let (mask, bias) = if self.modulated {
            let mask = op.f32_input(inputs, 2, "mask")?.as_slice::<f32>()?;
            let bias = op
                .f32_optional(inputs, 4, "bias")?
                .map(|b| b.as_slice::<f32>())
                .transpose()?;
            (Some(mask), bias)
        } else {
            (None, None)
        };
        let weight = op
            .f32_input(inputs, self.weight_idx(), "weight")?
            .as_slice::<f32>()?;

        let taps = g.kh * g.kw;
        let hw = g.oh * g.ow;
        let plane = g.h * g.w;
        let cpg = g.c / self.groups; // input channels per group
        let opg = g.c_out / self.groups; // output channels per group
        let cpdg = g.c / self.deform_groups; // input channels per deformable group (c > 0 here)
        let rows = cpg * taps; // the GEMM's inner dimension: weight's row length
        // The im2col buffer of one group: rows x hw.
        let mut columns = vec![0f32; op.output_len(&[rows, hw])?];
        let mut acc = vec![0f64; hw];
        let dg_stride = self.deform_groups * taps; // mask channels per batch item
        for b in 0..g.n {
            for grp in 0..self.groups {
                for ci in 0..cpg {
                    let ch = grp * cpg + ci;
                    let dg = ch / cpdg.max(1);
                    let src = &x[(b * g.c + ch) * plane..][..plane];
                    for i in 0..g.kh {
                        for j in 0..g.kw {
                            let k = i * g.kw + j;
                            let off_y =
                                &offset[((b * dg_stride + dg * taps) * 2 + 2 * k) * hw..][..hw];
                            let off_x =
                                &offset[((b * dg_stride + dg * taps) * 2 + 2 * k + 1) * hw..][..hw];
                            let m = mask.map(|m| &m[(b * dg_stride + dg * taps + k) * hw..][..hw]);
                            let col = &mut columns[(ci * taps + k) * hw..][..hw];
                            for oy in 0..g.oh {
                                // Exact integer base position, then float as in the C++ kernel.
                                let base_y = (oy * self.stride[0]) as i128
                                    - self.padding[0] as i128
                                    + (i * self.dilation[0]) as i128;
                                for ox in 0..g.ow {
                                    let base_x = (ox * self.stride[1]) as i128
                                        - self.padding[1] as i128
                                        + (j * self.dilation[1]) as i128;
                                    let p = oy * g.ow + ox;
                                    let y = base_y as f32 + off_y[p];
                                    let xx = base_x as f32 + off_x[p];
                                    let v = bilinear(src, g.h, g.w, y, xx);
                                    col[p] = m.map_or(v, |m| m[p] * v);
                                }
                            }
                        }
                    }
                }
                for oc in 0..opg {
                    let o = grp * opg + oc;
                    acc.fill(0.0);
                    let wrow = &weight[o * rows..][..rows];
                    for (r, &wv) in wrow.iter().enumerate() {
                        let wv = f64::from(wv);
                        for (a, &cv) in acc.iter_mut().zip(&columns[r * hw..][..hw]) {
                            *a += wv * f64::from(cv);
                        }
                    }
                    let bv = bias.map_or(0.0, |b| f64::from(b[o]));
                    let dst = &mut out[(b * g.c_out + o) * hw..][..hw];
                    for (d, a) in dst.iter_mut().zip(&acc) {
                        *d = (a + bv) as f32;
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

    /// Deterministic pseudo-random values in [-1, 1).
    fn values(n: usize, seed: u32) -> Vec<f32> {
        let mut s = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
        (0..n)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 17;
                s ^= s << 5;
                (s % 2000) as f32 / 1000.0 - 1.0
            })
            .collect()
    }

    /// A direct grouped convolution with zero padding, written independently of the kernel.
    #[allow(
        clippy::too_many_arguments,
        reason = "a test oracle spelling out every parameter"
    )]
    fn direct_conv(
        x: &[f32],
        [n, c, h, w]: [usize; 4],
        wt: &[f32],
        [co, _, kh, kw]: [usize; 4],
        bias: Option<&[f32]>,
        stride: [usize; 2],
        pad: [usize; 2],
        dil: [usize; 2],
        groups: usize,
    ) -> (Vec<f32>, [usize; 4]) {
        let oh = (h + 2 * pad[0] - dil[0] * (kh - 1) - 1) / stride[0] + 1;
        let ow = (w + 2 * pad[1] - dil[1] * (kw - 1) - 1) / stride[1] + 1;
        let (cpg, opg) = (c / groups, co / groups);
        let mut out = vec![0f32; n * co * oh * ow];
        for b in 0..n {
            for o in 0..co {
                let g = o / opg;
                for y in 0..oh {
                    for xo in 0..ow {
                        let mut s = bias.map_or(0.0, |bb| f64::from(bb[o]));
                        for ci in 0..cpg {
                            for i in 0..kh {
                                for j in 0..kw {
                                    let iy = (y * stride[0] + i * dil[0]) as i64 - pad[0] as i64;
                                    let ix = (xo * stride[1] + j * dil[1]) as i64 - pad[1] as i64;
                                    if iy < 0 || ix < 0 || iy >= h as i64 || ix >= w as i64 {
                                        continue;
                                    }
                                    let v = x[((b * c + g * cpg + ci) * h + iy as usize) * w
                                        + ix as usize];
                                    let wv = wt[((o * cpg + ci) * kh + i) * kw + j];
                                    s += f64::from(v) * f64::from(wv);
                                }
                            }
                        }
                        out[((b * co + o) * oh + y) * ow + xo] = s as f32;
                    }
                }
            }
        }
        (out, [n, co, oh, ow])
    }

    #[test]
    fn zero_offsets_and_unit_mask_equal_a_direct_convolution() {
        for (groups, dg, stride, pad, dil, with_bias) in [
            (1, 1, [1, 1], [0, 0], [1, 1], false),
            (1, 1, [1, 1], [1, 1], [1, 1], true),
            (2, 1, [2, 1], [1, 0], [1, 2], true),
            (2, 2, [1, 2], [2, 1], [2, 1], false),
        ] {
            let xs = [2, 4, 5, 6];
            let ws = [6, 4 / groups, 3, 2];
            let x = values(xs.iter().product(), 1);
            let wt = values(ws.iter().product(), 2);
            let bias = values(6, 3);
            let (want, os) = direct_conv(
                &x,
                xs,
                &wt,
                ws,
                with_bias.then_some(&bias[..]),
                stride,
                pad,
                dil,
                groups,
            );
            let k = (MMDEPLOY.build)(
                &AttrMap::new()
                    .with_ints("stride", &[stride[0] as i64, stride[1] as i64])
                    .with_ints("padding", &[pad[0] as i64, pad[1] as i64])
                    .with_ints("dilation", &[dil[0] as i64, dil[1] as i64])
                    .with_int("groups", groups as i64)
                    .with_int("deform_groups", dg),
            )
            .unwrap();
            let taps = 3 * 2;
            let offset = t(
                &[2, dg as usize * 2 * taps, os[2], os[3]],
                vec![0.0; 2 * dg as usize * 2 * taps * os[2] * os[3]],
            );
            let mask = t(
                &[2, dg as usize * taps, os[2], os[3]],
                vec![1.0; 2 * dg as usize * taps * os[2] * os[3]],
            );
            let xt = t(&xs, x.clone());
            let wtt = t(&ws, wt.clone());
            let bt = t(&[6], bias.clone());
            let mut ins = vec![Some(&xt), Some(&offset), Some(&mask), Some(&wtt)];
            if with_bias {
                ins.push(Some(&bt));
            }
            let out = k.compute(&ins).unwrap();
            assert_eq!(out[0].shape(), &os);
            let shapes = k
                .output_shapes(
                    &ins.iter()
                        .map(|t| t.map(|t| t.shape().iter().map(|&d| Some(d)).collect()))
                        .collect::<Vec<_>>(),
                )
                .unwrap();
            assert_eq!(
                shapes,
                vec![os.iter().map(|&d| Some(d)).collect::<Vec<_>>()]
            );
            for (a, b) in out[0].as_slice::<f32>().unwrap().iter().zip(&want) {
                // Both sum in f64; the tolerance covers the final f32 rounding only.
                assert!((a - b).abs() < 1e-5, "groups {groups}: {a} vs {b}");
            }
        }
    }

    #[test]
    fn deform_conv_v1_with_zero_offsets_is_a_convolution() {
        let xs = [1, 4, 4, 5];
        let ws = [4, 2, 2, 3];
        let x = values(80, 7);
        let wt = values(48, 8);
        let (want, os) = direct_conv(&x, xs, &wt, ws, None, [1, 2], [1, 1], [1, 1], 2);
        let k = (MMCV_V1.build)(
            &AttrMap::new()
                .with_ints("stride", &[1, 2])
                .with_ints("padding", &[1, 1])
                .with_int("groups", 2)
                .with_int("deform_groups", 2)
                .with_int("bias", 0)
                .with_int("im2col_step", 32),
        )
        .unwrap();
        let offset = t(&[1, 2 * 2 * 6, os[2], os[3]], vec![0.0; 24 * os[2] * os[3]]);
        let out = k
            .compute(&[Some(&t(&xs, x)), Some(&offset), Some(&t(&ws, wt))])
            .unwrap();
        assert_eq!(out[0].shape(), &os);
        for (a, b) in out[0].as_slice::<f32>().unwrap().iter().zip(&want) {
            assert!((a - b).abs() < 1e-5, "{a} vs {b}");
        }
        assert!((MMCV_V1.build)(&AttrMap::new().with_int("bias", 1)).is_err());
        let k = (MMCV_V1.build)(&AttrMap::new()).unwrap();
        // Three inputs exactly: a mask is not taken.
        let x = t(&[1, 1, 2, 2], vec![0.0; 4]);
        let w = t(&[1, 1, 1, 1], vec![1.0]);
        let off = t(&[1, 2, 2, 2], vec![0.0; 8]);
        assert!(k.compute(&[Some(&x), Some(&off), Some(&w)]).is_ok());
        assert!(
            k.compute(&[Some(&x), Some(&off), Some(&w), Some(&w)])
                .is_err()
        );
        assert!(k.compute(&[Some(&x), Some(&off), Some(&off)]).is_err());
    }

    #[test]
    fn offsets_shift_and_mask_scales_the_samples() {
        // 1x1 kernel of weight 1: the output is the input sampled at the offset, times the mask.
        let k = (MMCV.build)(&AttrMap::new()).unwrap();
        let x = t(&[1, 1, 2, 2], vec![1.0, 2.0, 3.0, 4.0]);
        let w = t(&[1, 1, 1, 1], vec![1.0]);
        // dy = 0.5, dx = 0.5 everywhere.
        let offset = t(&[1, 2, 2, 2], vec![0.5; 8]);
        let mask = t(&[1, 1, 2, 2], vec![1.0, 1.0, 1.0, 0.5]);
        let out = k
            .compute(&[Some(&x), Some(&offset), Some(&mask), Some(&w), None])
            .unwrap();
        // (0,0) -> centre 2.5; (0,1) -> x=1.5: half of the row (2 and 4) is outside: (2+4)/2/2;
        // (1,0) -> (3+4)/2/2; (1,1) -> 4/4, times mask 0.5.
        assert_eq!(out[0].as_slice::<f32>().unwrap(), &[2.5, 1.5, 1.75, 0.5]);
    }

    #[test]
    fn deformable_groups_count_over_all_channels() {
        // groups = 2, deform_groups = 2, C = 4: channels 0-1 use offset group 0 and channels
        // 2-3 group 1 (PyTorch's rule). Group 1 shifts by a whole pixel, group 0 does not.
        let k = (MMDEPLOY.build)(
            &AttrMap::new()
                .with_int("groups", 2)
                .with_int("deform_groups", 2),
        )
        .unwrap();
        let x = t(
            &[1, 4, 1, 2],
            vec![1.0, 2.0, 10.0, 20.0, 100.0, 200.0, 1000.0, 2000.0],
        );
        let w = t(&[2, 2, 1, 1], vec![1.0; 4]);
        let offset = t(&[1, 4, 1, 2], vec![0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 1.0]);
        let mask = t(&[1, 2, 1, 2], vec![1.0; 4]);
        let out = k
            .compute(&[Some(&x), Some(&offset), Some(&mask), Some(&w)])
            .unwrap();
        assert_eq!(
            out[0].as_slice::<f32>().unwrap(),
            &[11.0, 22.0, 2200.0, 0.0]
        );
    }

    #[test]
    fn bad_shapes_and_attributes_are_errors() {
        let k = (MMDEPLOY.build)(&AttrMap::new().with_int("groups", 2)).unwrap();
        let x = t(&[1, 4, 3, 3], vec![0.0; 36]);
        let w_bad = t(&[2, 4, 1, 1], vec![0.0; 8]); // should be C/groups = 2
        let off = t(&[1, 2, 3, 3], vec![0.0; 18]);
        let mask = t(&[1, 1, 3, 3], vec![0.0; 9]);
        let e = k
            .compute(&[Some(&x), Some(&off), Some(&mask), Some(&w_bad)])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("MMCVModulatedDeformConv2d.weight") && e.contains("C / groups"),
            "{e}"
        );
        let w = t(&[2, 2, 1, 1], vec![0.0; 4]);
        let off_bad = t(&[1, 3, 3, 3], vec![0.0; 27]);
        let e = k
            .compute(&[Some(&x), Some(&off_bad), Some(&mask), Some(&w)])
            .unwrap_err()
            .to_string();
        assert!(e.contains("offset") && e.contains("[1, 2, 3, 3]"), "{e}");
        let bias_bad = t(&[3], vec![0.0; 3]);
        assert!(
            k.compute(&[Some(&x), Some(&off), Some(&mask), Some(&w), Some(&bias_bad)])
                .is_err()
        );
        let x3 = t(&[4, 3, 3], vec![0.0; 36]);
        assert!(
            k.compute(&[Some(&x3), Some(&off), Some(&mask), Some(&w)])
                .is_err()
        );
        assert!(k.compute(&[Some(&x), Some(&off), Some(&mask)]).is_err());
        assert!(k.compute(&[Some(&x), Some(&off), None, Some(&w)]).is_err());
        // A 5x5 kernel does not fit a 3x3 map without padding.
        let w5 = t(&[2, 2, 5, 5], vec![0.0; 100]);
        let e = k
            .compute(&[Some(&x), Some(&off), Some(&mask), Some(&w5)])
            .unwrap_err()
            .to_string();
        assert!(e.contains("extent 5"), "{e}");
        // Odd channel count for two groups.
        let x5 = t(&[1, 5, 3, 3], vec![0.0; 45]);
        assert!(
            k.compute(&[Some(&x5), Some(&off), Some(&mask), Some(&w)])
                .is_err()
        );

        for attrs in [
            AttrMap::new().with_ints("stride", &[0, 1]),
            AttrMap::new().with_ints("stride", &[1, 1, 1]),
            AttrMap::new().with_ints("padding", &[-1, 0]),
            AttrMap::new().with_ints("dilation", &[1, 0]),
            AttrMap::new().with_int("groups", 0),
            AttrMap::new().with_int("deform_groups", -3),
            AttrMap::new().with_int("groups", i64::MAX),
        ] {
            assert!((MMDEPLOY.build)(&attrs).is_err(), "{attrs:?}");
        }
        // Absurd padding passes the attribute check but not the size arithmetic.
        let k = (MMDEPLOY.build)(&AttrMap::new().with_ints("padding", &[i64::MAX, 0])).unwrap();
        let w1 = t(&[1, 4, 1, 1], vec![0.0; 4]);
        assert!(
            k.compute(&[Some(&x), Some(&off), Some(&mask), Some(&w1)])
                .is_err()
        );
        assert!(
            k.output_shapes(&[
                Some(vec![Some(1), Some(4), Some(3), Some(3)]),
                None,
                None,
                Some(vec![Some(1), Some(4), Some(1), Some(1)])
            ])
            .is_err()
        );
    }

    #[test]
    fn single_int_attributes_are_pairs() {
        let k = (MMDEPLOY.build)(
            &AttrMap::new()
                .with_int("stride", 2)
                .with_ints("padding", &[1]),
        )
        .unwrap();
        let s = k
            .output_shapes(&[
                Some(vec![Some(1), Some(1), Some(5), Some(7)]),
                None,
                None,
                Some(vec![Some(1), Some(1), Some(3), Some(3)]),
            ])
            .unwrap();
        assert_eq!(s, vec![vec![Some(1), Some(1), Some(3), Some(4)]]);
    }
}
