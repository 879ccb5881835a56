//! What every op needs: attribute parsing with defaults, input and shape checks whose errors
//! name the op, the input and what was expected, checked output allocation, score ordering.

use crate::Attributes;
use rdeploy_core::{DType, Error, Result, Tensor};

/// Input shapes as the kernels receive them: `None` for an unknown rank, `None` dims unknown.
pub(crate) type Dims = Vec<Option<usize>>;

/// The op's qualified name, carried into every message.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Op(pub &'static str);

impl Op {
    /// An error about attribute `name`.
    pub(crate) fn attr_err(self, name: &str, msg: impl std::fmt::Display) -> Error {
        Error::backend(
            format!("custom op {}", self.0),
            format!("attribute '{name}' {msg}"),
        )
    }

    /// An error about input `port`.
    pub(crate) fn input_err(
        self,
        port: &str,
        expected: impl Into<String>,
        got: impl Into<String>,
    ) -> Error {
        Error::InputMismatch {
            name: format!("{}.{port}", self.0),
            expected: expected.into(),
            got: got.into(),
        }
    }

    /// Any other failure of the op.
    pub(crate) fn err(self, msg: impl std::fmt::Display) -> Error {
        Error::backend(format!("custom op {}", self.0), msg)
    }

    // ---- attributes ----

    /// An `INT` attribute, `default` when absent.
    pub(crate) fn int_or(self, a: &dyn Attributes, name: &str, default: i64) -> i64 {
        a.int(name).unwrap_or(default)
    }

    /// A required `INT` attribute.
    pub(crate) fn int_req(self, a: &dyn Attributes, name: &str) -> Result<i64> {
        a.int(name)
            .ok_or_else(|| self.attr_err(name, "(int) is missing; the exporter always writes it"))
    }

    /// An `INT` attribute used as a boolean: 0 or 1 only.
    pub(crate) fn bool_or(self, a: &dyn Attributes, name: &str, default: bool) -> Result<bool> {
        match a.int(name) {
            None => Ok(default),
            Some(0) => Ok(false),
            Some(1) => Ok(true),
            Some(v) => Err(self.attr_err(name, format!("is {v}; expected 0 or 1"))),
        }
    }

    /// A finite `FLOAT` attribute, `default` when absent.
    pub(crate) fn float_or(self, a: &dyn Attributes, name: &str, default: f32) -> Result<f32> {
        match a.float(name) {
            None => Ok(default),
            Some(v) => self.finite(name, v),
        }
    }

    /// A required finite `FLOAT` attribute.
    pub(crate) fn float_req(self, a: &dyn Attributes, name: &str) -> Result<f32> {
        let v = a.float(name).ok_or_else(|| {
            self.attr_err(name, "(float) is missing; the exporter always writes it")
        })?;
        self.finite(name, v)
    }

    fn finite(self, name: &str, v: f32) -> Result<f32> {
        if v.is_finite() {
            Ok(v)
        } else {
            Err(self.attr_err(name, format!("is {v}; expected a finite number")))
        }
    }

    /// An (h, w) pair from an `INTS` attribute of two values (one value, or an `INT`, is used
    /// for both, as PyTorch's `_pair` does), `default` when absent; each at least `min`.
    pub(crate) fn pair_or(
        self,
        a: &dyn Attributes,
        name: &str,
        default: [i64; 2],
        min: i64,
    ) -> Result<[usize; 2]> {
        let v = match (a.ints(name), a.int(name)) {
            (Some(v), _) => match v.as_slice() {
                [h, w] => [*h, *w],
                [x] => [*x, *x],
                _ => {
                    return Err(self.attr_err(
                        name,
                        format!("has {} values {v:?}; expected 2 (height, width)", v.len()),
                    ));
                }
            },
            (None, Some(x)) => [x, x],
            (None, None) => default,
        };
        let mut out = [0usize; 2];
        for (o, x) in out.iter_mut().zip(v) {
            *o = usize::try_from(x)
                .ok()
                .filter(|_| x >= min)
                .ok_or_else(|| {
                    self.attr_err(name, format!("is {v:?}; each value must be >= {min}"))
                })?;
        }
        Ok(out)
    }

    /// A count attribute (`INT` >= 1), `default` when absent, or required when `default` is None.
    pub(crate) fn count(
        self,
        a: &dyn Attributes,
        name: &str,
        default: Option<i64>,
    ) -> Result<usize> {
        let v = match default {
            Some(d) => self.int_or(a, name, d),
            None => self.int_req(a, name)?,
        };
        usize::try_from(v)
            .ok()
            .filter(|&n| n >= 1 && v <= i64::from(i32::MAX))
            .ok_or_else(|| {
                self.attr_err(
                    name,
                    format!("is {v}; expected an integer from 1 to 2^31-1"),
                )
            })
    }

    // ---- inputs ----

    /// Checks the number of inputs given: at least the required ones, at most all of them.
    pub(crate) fn arity(self, given: usize, required: usize, total: usize) -> Result<()> {
        if given < required || given > total {
            let want = if required == total {
                format!("{total}")
            } else {
                format!("{required} to {total}")
            };
            return Err(self.err(format!("takes {want} inputs, got {given}")));
        }
        Ok(())
    }

    /// Input `idx` (named `port`), present and of dtype float32.
    pub(crate) fn f32_input<'a>(
        self,
        inputs: &[Option<&'a Tensor>],
        idx: usize,
        port: &str,
    ) -> Result<&'a Tensor> {
        let t = inputs
            .get(idx)
            .copied()
            .flatten()
            .ok_or_else(|| self.input_err(port, "a tensor (the input is required)", "none"))?;
        if t.dtype() != DType::F32 {
            return Err(self.input_err(port, "float32", t.dtype().to_string()));
        }
        Ok(t)
    }

    /// Input `idx` if present (absent optional input: `None`), of dtype float32.
    pub(crate) fn f32_optional<'a>(
        self,
        inputs: &[Option<&'a Tensor>],
        idx: usize,
        port: &str,
    ) -> Result<Option<&'a Tensor>> {
        match inputs.get(idx).copied().flatten() {
            None => Ok(None),
            Some(_) => self.f32_input(inputs, idx, port).map(Some),
        }
    }

    /// The shape of a tensor that must have `N` dims described by `layout` ("(N, C, H, W)").
    pub(crate) fn rank<const N: usize>(
        self,
        port: &str,
        shape: &[usize],
        layout: &str,
    ) -> Result<[usize; N]> {
        <[usize; N]>::try_from(shape).map_err(|_| {
            self.input_err(
                port,
                format!("a {N}-D tensor {layout}"),
                format!("shape {shape:?}"),
            )
        })
    }

    /// The shape of input `idx` for inference: `None` when unknown, else exactly `N` dims.
    pub(crate) fn rank_dims<const N: usize>(
        self,
        inputs: &[Option<Dims>],
        idx: usize,
        port: &str,
        layout: &str,
    ) -> Result<[Option<usize>; N]> {
        match inputs.get(idx).and_then(Option::as_ref) {
            None => Ok([None; N]),
            Some(d) => <[Option<usize>; N]>::try_from(d.as_slice()).map_err(|_| {
                self.input_err(
                    port,
                    format!("a {N}-D tensor {layout}"),
                    format!("shape {}", fmt_dims(d)),
                )
            }),
        }
    }

    /// Checks that two known dims agree; returns the known one.
    pub(crate) fn same(
        self,
        port: &str,
        what: &str,
        expected: Option<usize>,
        got: Option<usize>,
    ) -> Result<Option<usize>> {
        match (expected, got) {
            (Some(e), Some(g)) if e != g => {
                Err(self.input_err(port, format!("{what} = {e}"), format!("{what} = {g}")))
            }
            (Some(e), _) => Ok(Some(e)),
            (None, g) => Ok(g),
        }
    }

    /// The element count of an output of shape `dims`, checked against overflow and available
    /// memory before anything is allocated.
    pub(crate) fn output_len(self, dims: &[usize]) -> Result<usize> {
        rdeploy_core::files::checked_bytes(dims, 4)
            .map(|bytes| bytes / 4)
            .map_err(|e| self.err(format!("cannot allocate the output: {e}")))
    }

    /// A float32 output tensor of `shape` from `data` (whose length `output_len` checked).
    pub(crate) fn tensor<T: rdeploy_core::Element>(
        self,
        shape: &[usize],
        data: Vec<T>,
    ) -> Result<Tensor> {
        Tensor::from_shape_vec(shape, data).map_err(|e| self.err(e))
    }
}

/// Formats inference dims like `[1, ?, 3]`.
pub(crate) fn fmt_dims(d: &[Option<usize>]) -> String {
    let parts: Vec<String> = d
        .iter()
        .map(|x| x.map_or_else(|| "?".to_owned(), |v| v.to_string()))
        .collect();
    format!("[{}]", parts.join(", "))
}

/// `a * b` for known dims.
pub(crate) fn mul(a: Option<usize>, b: Option<usize>) -> Option<usize> {
    a?.checked_mul(b?)
}

/// Box indices in descending score order, ties in index order (a stable sort: the C++ kernels'
/// `std::sort` leaves ties unspecified). NaN scores sort last; -0.0 and 0.0 tie, as under `>`.
pub(crate) fn order_desc(scores: &[f32]) -> Vec<usize> {
    let key = |s: f32| {
        if s.is_nan() {
            f32::NEG_INFINITY
        } else if s == 0.0 {
            0.0
        } else {
            s
        }
    };
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| key(scores[b]).total_cmp(&key(scores[a])));
    order
}

/// Bilinear sample positions and weights for one RoIAlign sample point, mmcv's rule (Caffe2's
/// `pre_calc_for_bilinear_interpolate`): points more than one pixel outside the map weigh 0;
/// points in the last pixel or beyond are clamped to the border. NaN points weigh 0.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct Bilinear {
    pub pos: [usize; 4],
    pub w: [f32; 4],
}

impl Bilinear {
    pub(crate) fn at(mut y: f32, mut x: f32, height: usize, width: usize) -> Bilinear {
        let (hf, wf) = (height as f32, width as f32);
        // `!(inside)` so that NaN coordinates are outside, where the C++ cast would be undefined.
        if height == 0 || width == 0 || !(y >= -1.0 && y <= hf && x >= -1.0 && x <= wf) {
            return Bilinear::default();
        }
        y = y.max(0.0);
        x = x.max(0.0);
        // y, x are in [0, size]: the truncating casts are exact floors and in range.
        let mut y_low = y as usize;
        let mut x_low = x as usize;
        let y_high;
        let x_high;
        if y_low >= height - 1 {
            y_low = height - 1;
            y_high = y_low;
            y = y_low as f32;
        } else {
            y_high = y_low + 1;
        }
        if x_low >= width - 1 {
            x_low = width - 1;
            x_high = x_low;
            x = x_low as f32;
        } else {
            x_high = x_low + 1;
        }
        let ly = y - y_low as f32;
        let lx = x - x_low as f32;
        let hy = 1.0 - ly;
        let hx = 1.0 - lx;
        Bilinear {
            pos: [
                y_low * width + x_low,
                y_low * width + x_high,
                y_high * width + x_low,
                y_high * width + x_high,
            ],
            w: [hy * hx, hy * lx, ly * hx, ly * lx],
        }
    }

    /// The interpolated value in `plane` (one channel, `height * width` values).
    pub(crate) fn sample(&self, plane: &[f32]) -> f32 {
        let v = |i: usize| plane.get(self.pos[i]).copied().unwrap_or(0.0);
        self.w[0] * v(0) + self.w[1] * v(1) + self.w[2] * v(2) + self.w[3] * v(3)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_is_descending_stable_and_puts_nan_last() {
        assert_eq!(
            order_desc(&[0.1, 0.9, f32::NAN, 0.9, -0.0, 0.0]),
            vec![1, 3, 0, 4, 5, 2]
        );
        assert!(order_desc(&[]).is_empty());
    }

    #[test]
    fn bilinear_clamps_and_zeroes_like_mmcv() {
        let plane = [1.0f32, 2.0, 3.0, 4.0];
        let s = |y, x| Bilinear::at(y, x, 2, 2).sample(&plane);
        assert_eq!(s(0.0, 0.0), 1.0);
        assert_eq!(s(0.5, 0.5), 2.5);
        assert_eq!(s(-0.5, -0.5), 1.0); // within one pixel outside: clamped to the border
        assert_eq!(s(1.7, 1.7), 4.0); // past the last pixel centre: clamped
        assert_eq!(s(-1.5, 0.0), 0.0); // further out: zero
        assert_eq!(s(f32::NAN, 0.0), 0.0);
        assert_eq!(Bilinear::at(0.0, 0.0, 0, 3).sample(&[]), 0.0);
    }
}
