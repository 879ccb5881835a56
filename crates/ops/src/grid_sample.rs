//! `grid_sampler`: PyTorch's `grid_sample` (4-D), as MMDeploy and mmcv export it.

use crate::common::{Dims, Op};
use crate::{Attributes, Kernel, OpDef, Port};
use rdeploy_core::{DType, Result, Tensor};

const INPUTS: &[Port] = &[
    Port {
        name: "input",
        dtype: DType::F32,
        optional: false,
    },
    Port {
        name: "grid",
        dtype: DType::F32,
        optional: false,
    },
];
const OUTPUTS: &[Port] = &[Port {
    name: "output",
    dtype: DType::F32,
    optional: false,
}];

const DOC: &str = "Samples `input` (float32, N x C x inH x inW) at the normalised locations of \
`grid` (float32, N x outH x outW x 2, last axis (x, y) in [-1, 1]) into `output` (N x C x outH x \
outW), as torch.nn.functional.grid_sample does. Attributes (all INT, defaults from PyTorch): \
`interpolation_mode` 0 bilinear (default), 1 nearest (ties to even), 2 bicubic (A = -0.75); \
`padding_mode` 0 zeros (default), 1 border, 2 reflection; `align_corners` 0 (default) or 1 - with \
1, -1 and 1 are the centres of the corner pixels, with 0 their outer edges. Source: MMDeploy's \
csrc/mmdeploy/backend_ops/onnxruntime/grid_sample/grid_sample.cpp (mmcv 1.x's gridSample.cpp is \
the same code), itself ATen's GridSampler.cpp. Difference: a NaN grid value, or one whose \
reflection is undefined (infinite after unnormalising), samples 0, where the C++ casts are \
undefined. Equivalent to ONNX GridSample-16 with mode bilinear/nearest/bicubic and padding_mode \
zeros/border/reflection named instead of numbered.";

/// MMDeploy's registration.
pub(crate) const MMDEPLOY: OpDef = OpDef {
    domain: "mmdeploy",
    op_type: "grid_sampler",
    inputs: INPUTS,
    outputs: OUTPUTS,
    standard_equivalent: Some("GridSample-16"),
    doc: DOC,
    build: |a| build(Op("mmdeploy::grid_sampler"), a),
};

/// mmcv 1.x's registration (mmcv/onnx/symbolic.py exports `mmcv::grid_sampler`; MMDeploy
/// emits it for PPLNN), same semantics.
pub(crate) const MMCV: OpDef = OpDef {
    domain: "mmcv",
    op_type: "grid_sampler",
    inputs: INPUTS,
    outputs: OUTPUTS,
    standard_equivalent: Some("GridSample-16"),
    doc: DOC,
    build: |a| build(Op("mmcv::grid_sampler"), a),
};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Interp {
    Bilinear,
    Nearest,
    Bicubic,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Padding {
    Zeros,
    Border,
    Reflection,
}

#[derive(Debug)]
struct GridSampler {
    op: Op,
    interp: Interp,
    padding: Padding,
    align_corners: bool,
}

fn build(op: Op, a: &dyn Attributes) -> Result<Box<dyn Kernel>> {
    let interp = match op.int_or(a, "interpolation_mode", 0) {
        0 => Interp::Bilinear,
        1 => Interp::Nearest,
        2 => Interp::Bicubic,
        v => {
            return Err(op.attr_err(
                "interpolation_mode",
                format!("is {v}; expected 0 (bilinear), 1 (nearest) or 2 (bicubic)"),
            ));
        }
    };
    let padding = match op.int_or(a, "padding_mode", 0) {
        0 => Padding::Zeros,
        1 => Padding::Border,
        2 => Padding::Reflection,
        v => {
            return Err(op.attr_err(
                "padding_mode",
                format!("is {v}; expected 0 (zeros), 1 (border) or 2 (reflection)"),
            ));
        }
    };
    let align_corners = op.bool_or(a, "align_corners", false)?;
    Ok(Box::new(GridSampler {
        op,
        interp,
        padding,
        align_corners,
    }))
}

impl GridSampler {
    /// Grid coordinate in [-1, 1] to pixel coordinate.
    fn unnormalize(&self, coord: f32, size: usize) -> f32 {
        let size = size as f32;
        if self.align_corners {
            (coord + 1.0) / 2.0 * (size - 1.0)
        } else {
            ((coord + 1.0) * size - 1.0) / 2.0
        }
    }

    /// Applies border or reflection padding to a pixel coordinate (zeros: unchanged).
    fn compute_coordinates(&self, coord: f32, size: usize) -> f32 {
        match self.padding {
            Padding::Zeros => coord,
            Padding::Border => clip(coord, size),
            Padding::Reflection => {
                let reflected = if self.align_corners {
                    reflect(coord, 0.0, 2.0 * (size as f32 - 1.0))
                } else {
                    reflect(coord, -1.0, 2.0 * size as f32 - 1.0)
                };
                clip(reflected, size)
            }
        }
    }

    /// The value at integer pixel (y, x) after padding, as ATen's `get_value_bounded`.
    fn bounded(&self, plane: &[f32], h: usize, w: usize, y: f32, x: f32) -> f32 {
        let x = self.compute_coordinates(x, w);
        let y = self.compute_coordinates(y, h);
        pixel(plane, h, w, y as i64, x as i64, x.is_nan() || y.is_nan())
    }
}

/// Clamps to [0, size - 1]; NaN stays NaN (later read as outside).
fn clip(x: f32, size: usize) -> f32 {
    if x.is_nan() {
        x
    } else {
        x.max(0.0).min(size as f32 - 1.0)
    }
}

/// Reflects `x` into [twice_low / 2, twice_high / 2] (bounds doubled, as in ATen, so that
/// half-pixel bounds are whole numbers); non-finite input has no reflection and gives NaN.
fn reflect(x: f32, twice_low: f32, twice_high: f32) -> f32 {
    if twice_low == twice_high {
        return 0.0;
    }
    if !x.is_finite() {
        return f32::NAN;
    }
    let min = twice_low / 2.0;
    let span = (twice_high - twice_low) / 2.0;
    let x = (x - min).abs();
    let extra = x % span;
    let flips = (x / span).floor();
    if flips % 2.0 == 0.0 {
        extra + min
    } else {
        span - extra + min
    }
}

/// `plane[y][x]`, or 0 outside the map (or when `nan`).
fn pixel(plane: &[f32], h: usize, w: usize, y: i64, x: i64, nan: bool) -> f32 {
    if nan {
        return 0.0;
    }
    match (usize::try_from(y), usize::try_from(x)) {
        (Ok(y), Ok(x)) if y < h && x < w => plane.get(y * w + x).copied().unwrap_or(0.0),
        _ => 0.0,
    }
}

fn cubic_coefficients(t: f32) -> [f32; 4] {
    const A: f32 = -0.75;
    let conv1 = |x: f32| ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0;
    let conv2 = |x: f32| ((A * x - 5.0 * A) * x + 8.0 * A) * x - 4.0 * A;
    [conv2(t + 1.0), conv1(t), conv1(1.0 - t), conv2(2.0 - t)]
}

fn cubic(v: [f32; 4], t: f32) -> f32 {
    let c = cubic_coefficients(t);
    v[0] * c[0] + v[1] * c[1] + v[2] * c[2] + v[3] * c[3]
}

impl Kernel for GridSampler {
    fn output_shapes(&self, inputs: &[Option<Dims>]) -> Result<Vec<Dims>> {
        let op = self.op;
        op.arity(inputs.len(), 2, 2)?;
        let [n, c, _, _] = op.rank_dims::<4>(inputs, 0, "input", "(N, C, inH, inW)")?;
        let [gn, oh, ow, two] = op.rank_dims::<4>(inputs, 1, "grid", "(N, outH, outW, 2)")?;
        op.same("grid", "the last dim", Some(2), two)?;
        let n = op.same("grid", "batch size N (input's)", n, gn)?;
        Ok(vec![vec![n, c, oh, ow]])
    }

    fn compute(&self, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>> {
        let op = self.op;
        op.arity(inputs.len(), 2, 2)?;
        let input = op.f32_input(inputs, 0, "input")?;
        let grid = op.f32_input(inputs, 1, "grid")?;
        let [n, c, h, w] = op.rank::<4>("input", input.shape(), "(N, C, inH, inW)")?;
        let [gn, oh, ow, two] = op.rank::<4>("grid", grid.shape(), "(N, outH, outW, 2)")?;
        op.same("grid", "the last dim", Some(2), Some(two))?;
        op.same("grid", "batch size N (input's)", Some(n), Some(gn))?;
        let out_shape = [n, c, oh, ow];
        let mut out = vec![0f32; op.output_len(&out_shape)?];
        let x_in = input.as_slice::<f32>()?;
        let g = grid.as_slice::<f32>()?;
        let plane_len = h * w;
        let out_plane = oh * ow;
        if plane_len == 0 || out.is_empty() {
            // An empty input map: every sample is outside it, under every padding mode.
            return Ok(vec![op.tensor(&out_shape, out)?]);
        }
        for b in 0..n {
            for p in 0..out_plane {
                let gi = (b * out_plane + p) * 2;
                let (gx, gy) = (g[gi], g[gi + 1]);
                let out_at = |ch: usize| (b * c + ch) * out_plane + p;
                let plane = |ch: usize| &x_in[(b * c + ch) * plane_len..][..plane_len];
                if gx.is_nan() || gy.is_nan() {
                    continue; // outputs stay 0
                }
                match self.interp {
                    Interp::Bilinear => {
                        let ix = self.compute_coordinates(self.unnormalize(gx, w), w);
                        let iy = self.compute_coordinates(self.unnormalize(gy, h), h);
                        if !ix.is_finite() || !iy.is_finite() {
                            continue;
                        }
                        let (fx, fy) = (ix.floor(), iy.floor());
                        let (x0, y0) = (fx as i64, fy as i64);
                        let (x1, y1) = (x0.saturating_add(1), y0.saturating_add(1));
                        let (fx1, fy1) = (fx + 1.0, fy + 1.0);
                        let nw = (fx1 - ix) * (fy1 - iy);
                        let ne = (ix - fx) * (fy1 - iy);
                        let sw = (fx1 - ix) * (iy - fy);
                        let se = (ix - fx) * (iy - fy);
                        for ch in 0..c {
                            let pl = plane(ch);
                            let mut r = 0.0f32;
                            for (yy, xx, wgt) in
                                [(y0, x0, nw), (y0, x1, ne), (y1, x0, sw), (y1, x1, se)]
                            {
                                if let (Ok(yy), Ok(xx)) = (usize::try_from(yy), usize::try_from(xx))
                                    && yy < h
                                    && xx < w
                                {
                                    r += pl[yy * w + xx] * wgt;
                                }
                            }
                            out[out_at(ch)] = r;
                        }
                    }
                    Interp::Nearest => {
                        let ix = self.compute_coordinates(self.unnormalize(gx, w), w);
                        let iy = self.compute_coordinates(self.unnormalize(gy, h), h);
                        let nan = !ix.is_finite() || !iy.is_finite();
                        let (xr, yr) = (ix.round_ties_even() as i64, iy.round_ties_even() as i64);
                        for ch in 0..c {
                            out[out_at(ch)] = pixel(plane(ch), h, w, yr, xr, nan);
                        }
                    }
                    Interp::Bicubic => {
                        // Unpadded coordinates: padding applies to each of the 16 taps instead.
                        let ix = self.unnormalize(gx, w);
                        let iy = self.unnormalize(gy, h);
                        if !ix.is_finite() || !iy.is_finite() {
                            continue;
                        }
                        let (fx, fy) = (ix.floor(), iy.floor());
                        let (tx, ty) = (ix - fx, iy - fy);
                        for ch in 0..c {
                            let pl = plane(ch);
                            let mut rows = [0f32; 4];
                            for (i, row) in rows.iter_mut().enumerate() {
                                let y = fy - 1.0 + i as f32;
                                let taps = [-1.0f32, 0.0, 1.0, 2.0]
                                    .map(|dx| self.bounded(pl, h, w, y, fx + dx));
                                *row = cubic(taps, tx);
                            }
                            out[out_at(ch)] = cubic(rows, ty);
                        }
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

    fn sampler(interp: i64, padding: i64, align: i64) -> Box<dyn Kernel> {
        (MMDEPLOY.build)(
            &AttrMap::new()
                .with_int("interpolation_mode", interp)
                .with_int("padding_mode", padding)
                .with_int("align_corners", align),
        )
        .unwrap()
    }

    fn t(shape: &[usize], v: Vec<f32>) -> Tensor {
        Tensor::from_shape_vec(shape, v).unwrap()
    }

    /// The grid that maps each output pixel onto the same input pixel's centre.
    fn identity_grid(h: usize, w: usize, align: bool) -> Tensor {
        let norm = |i: usize, n: usize| {
            if align {
                if n == 1 {
                    0.0
                } else {
                    2.0 * i as f32 / (n - 1) as f32 - 1.0
                }
            } else {
                (2.0 * i as f32 + 1.0) / n as f32 - 1.0
            }
        };
        let mut g = Vec::new();
        for y in 0..h {
            for x in 0..w {
                g.push(norm(x, w));
                g.push(norm(y, h));
            }
        }
        t(&[1, h, w, 2], g)
    }

    fn run(k: &dyn Kernel, input: &Tensor, grid: &Tensor) -> Vec<f32> {
        k.compute(&[Some(input), Some(grid)]).unwrap()[0]
            .as_slice::<f32>()
            .unwrap()
            .to_vec()
    }

    #[test]
    fn identity_grid_returns_the_input_in_every_mode() {
        let data: Vec<f32> = (0..24).map(|v| v as f32 * 0.5 - 3.0).collect();
        let input = t(&[1, 2, 3, 4], data.clone());
        for align in [0, 1] {
            let grid = identity_grid(3, 4, align == 1);
            for interp in 0..3 {
                for padding in 0..3 {
                    let out = run(sampler(interp, padding, align).as_ref(), &input, &grid);
                    for (o, e) in out.iter().zip(&data) {
                        // Bicubic's weights sum to 1 up to float rounding.
                        assert!(
                            (o - e).abs() < 1e-5,
                            "mode {interp}/{padding}/{align}: {o} vs {e}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn bilinear_midpoint_and_padding_modes() {
        // 1x1x1x2 map [10, 20]; align_corners=1: pixel = (x + 1) / 2.
        let input = t(&[1, 1, 1, 2], vec![10.0, 20.0]);
        let grid = t(&[1, 1, 3, 2], vec![0.0, 0.0, 3.0, 0.0, -2.0, 0.0]);
        // Zeros: x=3 -> pixel 2 (outside), x=-2 -> pixel -0.5: half of pixel 0.
        assert_eq!(
            run(sampler(0, 0, 1).as_ref(), &input, &grid),
            vec![15.0, 0.0, 5.0]
        );
        // Border: clamped to the edges.
        assert_eq!(
            run(sampler(0, 1, 1).as_ref(), &input, &grid),
            vec![15.0, 20.0, 10.0]
        );
        // Reflection about the corner pixels' centres: pixel 2 -> 0, pixel -0.5 -> 0.5.
        assert_eq!(
            run(sampler(0, 2, 1).as_ref(), &input, &grid),
            vec![15.0, 10.0, 15.0]
        );
    }

    #[test]
    fn nearest_rounds_half_to_even() {
        let input = t(&[1, 1, 1, 3], vec![1.0, 2.0, 3.0]);
        // align_corners=1, W=3: pixel = x + 1; pixel 0.5 -> 0, pixel 1.5 -> 2.
        let grid = t(&[1, 1, 2, 2], vec![-0.5, 0.0, 0.5, 0.0]);
        assert_eq!(
            run(sampler(1, 0, 1).as_ref(), &input, &grid),
            vec![1.0, 3.0]
        );
    }

    #[test]
    fn nan_and_huge_grid_values_do_not_panic() {
        let input = t(&[1, 1, 2, 2], vec![1.0, 2.0, 3.0, 4.0]);
        let grid = t(
            &[1, 1, 4, 2],
            vec![
                f32::NAN,
                0.0,
                f32::INFINITY,
                0.0,
                1e30,
                -1e30,
                f32::MAX,
                0.5,
            ],
        );
        for interp in 0..3 {
            for padding in 0..3 {
                for align in 0..2 {
                    let out = run(sampler(interp, padding, align).as_ref(), &input, &grid);
                    assert_eq!(out[0], 0.0, "NaN samples 0");
                    assert!(
                        out.iter().all(|v| !v.is_nan()),
                        "{interp}/{padding}/{align}: {out:?}"
                    );
                }
            }
        }
        // Border keeps the infinite coordinate at the edge: x = 1, y = 0.5 -> (2 + 4) / 2.
        let out = run(sampler(0, 1, 0).as_ref(), &input, &grid);
        assert_eq!(out[1], 3.0);
    }

    #[test]
    fn empty_maps_give_zeros_or_empty_outputs() {
        let k = sampler(2, 1, 0);
        let out = k
            .compute(&[
                Some(&t(&[1, 2, 0, 3], vec![])),
                Some(&t(&[1, 2, 2, 2], vec![0.0; 8])),
            ])
            .unwrap();
        assert_eq!(out[0].shape(), &[1, 2, 2, 2]);
        assert!(out[0].as_slice::<f32>().unwrap().iter().all(|&v| v == 0.0));
        let out = k
            .compute(&[
                Some(&t(&[0, 2, 2, 2], vec![])),
                Some(&t(&[0, 1, 1, 2], vec![])),
            ])
            .unwrap();
        assert_eq!(out[0].shape(), &[0, 2, 1, 1]);
    }

    #[test]
    fn shapes_are_inferred_and_checked() {
        let k = sampler(0, 0, 0);
        let s = k
            .output_shapes(&[
                Some(vec![Some(2), Some(3), None, Some(5)]),
                Some(vec![None, Some(7), Some(8), Some(2)]),
            ])
            .unwrap();
        assert_eq!(s, vec![vec![Some(2), Some(3), Some(7), Some(8)]]);
        assert_eq!(k.output_shapes(&[None, None]).unwrap(), vec![vec![None; 4]]);
        let e = k
            .output_shapes(&[Some(vec![Some(2); 3]), None])
            .unwrap_err()
            .to_string();
        assert!(e.contains("grid_sampler.input") && e.contains("4-D"), "{e}");
        let e = k
            .output_shapes(&[None, Some(vec![None, None, None, Some(3)])])
            .unwrap_err()
            .to_string();
        assert!(e.contains("last dim = 2"), "{e}");
        assert!(
            k.output_shapes(&[
                Some(vec![Some(1); 4]),
                Some(vec![Some(2), None, None, Some(2)])
            ])
            .is_err()
        );
        assert!(k.output_shapes(&[None]).is_err());
    }

    #[test]
    fn bad_inputs_and_attributes_are_errors() {
        let k = sampler(0, 0, 0);
        let x = t(&[1, 1, 2, 2], vec![0.0; 4]);
        let bad_rank = t(&[1, 2, 2], vec![0.0; 4]);
        let e = k
            .compute(&[Some(&x), Some(&bad_rank)])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("grid") && e.contains("4-D") && e.contains("[1, 2, 2]"),
            "{e}"
        );
        let batch2 = t(&[2, 1, 1, 2], vec![0.0; 4]);
        assert!(
            k.compute(&[Some(&x), Some(&batch2)])
                .unwrap_err()
                .to_string()
                .contains("batch")
        );
        let g3 = t(&[1, 1, 1, 3], vec![0.0; 3]);
        assert!(k.compute(&[Some(&x), Some(&g3)]).is_err());
        let ints = Tensor::from_shape_vec(&[1, 1, 1, 2], vec![0i64, 0]).unwrap();
        let e = k.compute(&[Some(&x), Some(&ints)]).unwrap_err().to_string();
        assert!(e.contains("float32") && e.contains("i64"), "{e}");
        assert!(k.compute(&[Some(&x), None]).is_err());
        assert!(k.compute(&[Some(&x)]).is_err());

        for (name, v, want) in [
            ("interpolation_mode", 3, "bicubic"),
            ("padding_mode", -1, "reflection"),
            ("align_corners", 2, "0 or 1"),
        ] {
            let e = (MMCV.build)(&AttrMap::new().with_int(name, v))
                .err()
                .unwrap()
                .to_string();
            assert!(
                e.contains("mmcv::grid_sampler") && e.contains(name) && e.contains(want),
                "{e}"
            );
        }
    }
}
