//! mmcv 1.x's running-extreme ops: `MMCVCornerPool` (CornerNet's corner pooling) and
//! `cummax` / `cummin` (torch.cummax / torch.cummin).

use crate::common::{Dims, Op};
use crate::{Attributes, Kernel, OpDef, Port};
use rdeploy_core::{DType, Result, Tensor};

const fn port(name: &'static str, dtype: DType) -> Port {
    Port {
        name,
        dtype,
        optional: false,
    }
}

/// mmcv's corner pooling.
pub(crate) const CORNER_POOL: OpDef = OpDef {
    domain: "mmcv",
    op_type: "MMCVCornerPool",
    inputs: &[port("input", DType::F32)],
    outputs: &[port("output", DType::F32)],
    standard_equivalent: None,
    doc: "Corner pooling (CornerNet): `input` (float32, N x C x H x W) to `output` of the same \
shape, each element the maximum of the input from it to one edge of its row or column. `mode` \
(INT, required): 0 top (rows h..H-1, scanned from the bottom), 1 bottom (rows 0..h), 2 left \
(columns w..W-1), 3 right (columns 0..w). The running maximum is `prev < x ? x : prev` as the \
C++ std::max, so a NaN input is skipped unless it starts the scan. Source: mmcv 1.7's \
mmcv/ops/csrc/onnxruntime/cpu/corner_pool.cpp and mmcv/ops/corner_pool.py's symbolics.",
    build: build_corner_pool,
};

/// mmcv's cummax.
pub(crate) const CUMMAX: OpDef = OpDef {
    domain: "mmcv",
    op_type: "cummax",
    inputs: &[port("input", DType::F32)],
    outputs: &[port("output", DType::F32), port("indices", DType::I64)],
    standard_equivalent: None,
    doc: "Running maximum along `dim`: `input` (float32, any rank >= 1) to `output` (float32, \
same shape) and `indices` (int64, same shape: where along `dim` the running maximum was found). \
An element replaces the running maximum when it is >= it, so ties move the index forward and a \
NaN never replaces it (the ONNX Runtime kernel's rule; torch.cummax propagates NaN). See cummin. \
Attribute `dim` (INT, required; negative counts from the end). Source: mmcv 1.7's \
mmcv/ops/csrc/onnxruntime/cpu/reduce_ops.cpp and mmcv/onnx/symbolic.py.",
    build: |a| build_cum(Op("mmcv::cummax"), a, true),
};

/// mmcv's cummin.
pub(crate) const CUMMIN: OpDef = OpDef {
    domain: "mmcv",
    op_type: "cummin",
    inputs: &[port("input", DType::F32)],
    outputs: &[port("output", DType::F32), port("indices", DType::I64)],
    standard_equivalent: None,
    doc: "Running minimum along `dim`: `input` (float32, any rank >= 1) to `output` (float32, \
same shape) and `indices` (int64, same shape). An element replaces the running minimum when it \
is <= it (ties move the index forward; NaN never replaces it, unlike torch.cummin). \
Attribute `dim` (INT, required; negative counts from the end). Source: mmcv 1.7's \
mmcv/ops/csrc/onnxruntime/cpu/reduce_ops.cpp and mmcv/onnx/symbolic.py.",
    build: |a| build_cum(Op("mmcv::cummin"), a, false),
};

#[derive(Debug)]
struct CornerPool {
    op: Op,
    /// The axis scanned (2: rows, 3: columns) and whether the scan runs towards index 0.
    axis: usize,
    backward: bool,
}

fn build_corner_pool(a: &dyn Attributes) -> Result<Box<dyn Kernel>> {
    let op = Op("mmcv::MMCVCornerPool");
    let (axis, backward) = match op.int_req(a, "mode")? {
        0 => (2, true),
        1 => (2, false),
        2 => (3, true),
        3 => (3, false),
        v => {
            return Err(op.attr_err(
                "mode",
                format!("is {v}; expected 0 (top), 1 (bottom), 2 (left) or 3 (right)"),
            ));
        }
    };
    Ok(Box::new(CornerPool { op, axis, backward }))
}

/// Calls `line` with the flat indices of every line of `shape` along `axis`, in index order.
fn for_each_line(shape: &[usize], axis: usize, mut line: impl FnMut(&[usize])) {
    let len = shape[axis];
    let inner: usize = shape[axis + 1..].iter().product();
    let outer: usize = shape[..axis].iter().product();
    let mut idx = Vec::with_capacity(len);
    for o in 0..outer {
        for i in 0..inner {
            idx.clear();
            idx.extend((0..len).map(|k| (o * len + k) * inner + i));
            line(&idx);
        }
    }
}

impl Kernel for CornerPool {
    fn output_shapes(&self, inputs: &[Option<Dims>]) -> Result<Vec<Dims>> {
        self.op.arity(inputs.len(), 1, 1)?;
        let d = self.op.rank_dims::<4>(inputs, 0, "input", "(N, C, H, W)")?;
        Ok(vec![d.to_vec()])
    }

    fn compute(&self, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>> {
        let op = self.op;
        op.arity(inputs.len(), 1, 1)?;
        let t = op.f32_input(inputs, 0, "input")?;
        let shape = op.rank::<4>("input", t.shape(), "(N, C, H, W)")?;
        let x = t.as_slice::<f32>()?;
        let mut out = vec![0f32; x.len()];
        for_each_line(&shape, self.axis, |line| {
            let mut prev: Option<f32> = None;
            let mut visit = |i: usize| {
                let v = match prev {
                    None => x[i],
                    Some(p) if p < x[i] => x[i],
                    Some(p) => p,
                };
                out[i] = v;
                prev = Some(v);
            };
            if self.backward {
                line.iter().rev().for_each(|&i| visit(i));
            } else {
                line.iter().for_each(|&i| visit(i));
            }
        });
        Ok(vec![op.tensor(&shape, out)?])
    }
}

#[derive(Debug)]
struct Cum {
    op: Op,
    dim: i64,
    max: bool,
}

fn build_cum(op: Op, a: &dyn Attributes, max: bool) -> Result<Box<dyn Kernel>> {
    Ok(Box::new(Cum {
        op,
        dim: op.int_req(a, "dim")?,
        max,
    }))
}

impl Cum {
    /// `dim` wrapped for a tensor of `rank` dims.
    fn axis(&self, rank: usize) -> Result<usize> {
        let r = i64::try_from(rank).unwrap_or(i64::MAX);
        let d = if self.dim < 0 { self.dim + r } else { self.dim };
        usize::try_from(d)
            .ok()
            .filter(|&d| d < rank)
            .ok_or_else(|| {
                self.op.input_err(
                    "input",
                    format!("at least 1 dim and dim = {} within its rank", self.dim),
                    format!("rank {rank}"),
                )
            })
    }
}

impl Kernel for Cum {
    fn output_shapes(&self, inputs: &[Option<Dims>]) -> Result<Vec<Dims>> {
        self.op.arity(inputs.len(), 1, 1)?;
        match inputs.first().and_then(Option::as_ref) {
            None => Err(self
                .op
                .err("cannot infer the output rank of an input of unknown rank")),
            Some(d) => {
                self.axis(d.len())?;
                Ok(vec![d.clone(), d.clone()])
            }
        }
    }

    fn compute(&self, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>> {
        let op = self.op;
        op.arity(inputs.len(), 1, 1)?;
        let t = op.f32_input(inputs, 0, "input")?;
        let shape = t.shape();
        let axis = self.axis(shape.len())?;
        let x = t.as_slice::<f32>()?;
        let mut values = vec![0f32; x.len()];
        let mut indices = vec![0i64; x.len()];
        for_each_line(shape, axis, |line| {
            let Some(&first) = line.first() else {
                return;
            };
            let (mut best, mut at) = (x[first], 0i64);
            for (k, &i) in line.iter().enumerate() {
                let v = x[i];
                if (self.max && v >= best) || (!self.max && v <= best) {
                    best = v;
                    at = k as i64;
                }
                values[i] = best;
                indices[i] = at;
            }
        });
        Ok(vec![op.tensor(shape, values)?, op.tensor(shape, indices)?])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::AttrMap;

    fn t(shape: &[usize], v: Vec<f32>) -> Tensor {
        Tensor::from_shape_vec(shape, v).unwrap()
    }

    #[test]
    fn corner_pool_scans_towards_each_edge() {
        // One 2x3 map: [[1, 5, 2], [4, 0, 3]].
        let x = t(&[1, 1, 2, 3], vec![1.0, 5.0, 2.0, 4.0, 0.0, 3.0]);
        let run = |mode| {
            let k = (CORNER_POOL.build)(&AttrMap::new().with_int("mode", mode)).unwrap();
            k.compute(&[Some(&x)]).unwrap()[0]
                .as_slice::<f32>()
                .unwrap()
                .to_vec()
        };
        assert_eq!(run(0), vec![4.0, 5.0, 3.0, 4.0, 0.0, 3.0]); // top: max of rows below
        assert_eq!(run(1), vec![1.0, 5.0, 2.0, 4.0, 5.0, 3.0]); // bottom: max of rows above
        assert_eq!(run(2), vec![5.0, 5.0, 2.0, 4.0, 3.0, 3.0]); // left: max to the right
        assert_eq!(run(3), vec![1.0, 5.0, 5.0, 4.0, 4.0, 4.0]); // right: max to the left
    }

    #[test]
    fn corner_pool_rejects_bad_input() {
        assert!((CORNER_POOL.build)(&AttrMap::new()).is_err());
        assert!((CORNER_POOL.build)(&AttrMap::new().with_int("mode", 4)).is_err());
        let k = (CORNER_POOL.build)(&AttrMap::new().with_int("mode", 0)).unwrap();
        assert!(k.compute(&[Some(&t(&[2, 3], vec![0.0; 6]))]).is_err());
        assert!(k.output_shapes(&[Some(vec![Some(1)])]).is_err());
        let empty = k.compute(&[Some(&t(&[1, 2, 0, 3], vec![]))]).unwrap();
        assert_eq!(empty[0].shape(), &[1, 2, 0, 3]);
    }

    #[test]
    fn cummax_and_cummin_track_values_and_indices() {
        let x = t(&[2, 3], vec![1.0, 3.0, 3.0, 2.0, 1.0, 2.0]);
        let run = |def: &OpDef, dim| {
            let k = (def.build)(&AttrMap::new().with_int("dim", dim)).unwrap();
            let o = k.compute(&[Some(&x)]).unwrap();
            (
                o[0].as_slice::<f32>().unwrap().to_vec(),
                o[1].as_slice::<i64>().unwrap().to_vec(),
            )
        };
        // Ties move the index forward.
        assert_eq!(
            run(&CUMMAX, 1),
            (vec![1.0, 3.0, 3.0, 2.0, 2.0, 2.0], vec![0, 1, 2, 0, 0, 2])
        );
        assert_eq!(run(&CUMMAX, -1), run(&CUMMAX, 1));
        assert_eq!(
            run(&CUMMIN, 0),
            (vec![1.0, 3.0, 3.0, 1.0, 1.0, 2.0], vec![0, 0, 0, 0, 1, 1])
        );
    }

    #[test]
    fn cum_ops_reject_bad_dims() {
        assert!((CUMMAX.build)(&AttrMap::new()).is_err());
        let k = (CUMMIN.build)(&AttrMap::new().with_int("dim", 2)).unwrap();
        let e = k
            .compute(&[Some(&t(&[2, 2], vec![0.0; 4]))])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("mmcv::cummin.input") && e.contains("rank 2"),
            "{e}"
        );
        let k0 = (CUMMIN.build)(&AttrMap::new().with_int("dim", 0)).unwrap();
        assert!(k0.compute(&[Some(&t(&[], vec![1.0]))]).is_err());
        let k = (CUMMIN.build)(&AttrMap::new().with_int("dim", i64::MIN)).unwrap();
        assert!(k.compute(&[Some(&t(&[2], vec![0.0; 2]))]).is_err());
        let out = k0.compute(&[Some(&t(&[0, 3], vec![]))]).unwrap();
        assert_eq!(out[1].shape(), &[0, 3]);
        assert!(k0.output_shapes(&[None]).is_err());
    }
}
