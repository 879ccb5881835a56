//! Stand-in for the shared `rdeploy-serving` crate's `datatype` and `batch` modules (same
//! functions, same signatures), until that crate lands; then this file goes and
//! `use rdeploy_serving::{batch, datatype}` replaces it.

/// Tensor datatype names of the KServe v2 protocol (`FP32`) and of Triton's model
/// configuration (`TYPE_FP32`), for rdeploy's dtypes.
pub mod datatype {
    use rdeploy::DType;

    /// The KServe v2 / Triton name of `dtype` (`FP32`, `INT64`, `BOOL`...).
    pub fn v2_name(dtype: DType) -> &'static str {
        match dtype {
            DType::F32 => "FP32",
            DType::F16 => "FP16",
            DType::F64 => "FP64",
            DType::I8 => "INT8",
            DType::I16 => "INT16",
            DType::I32 => "INT32",
            DType::I64 => "INT64",
            DType::U8 => "UINT8",
            DType::U16 => "UINT16",
            DType::U32 => "UINT32",
            DType::U64 => "UINT64",
            DType::Bool => "BOOL",
        }
    }

    /// The dtype of a KServe v2 datatype name; `None` for `BYTES`, `BF16` and unknown names.
    pub fn from_v2_name(name: &str) -> Option<DType> {
        DType::ALL.into_iter().find(|&d| v2_name(d) == name)
    }

    /// The `data_type` of Triton's model configuration (`TYPE_FP32`).
    pub fn triton_type(dtype: DType) -> &'static str {
        match dtype {
            DType::F32 => "TYPE_FP32",
            DType::F16 => "TYPE_FP16",
            DType::F64 => "TYPE_FP64",
            DType::I8 => "TYPE_INT8",
            DType::I16 => "TYPE_INT16",
            DType::I32 => "TYPE_INT32",
            DType::I64 => "TYPE_INT64",
            DType::U8 => "TYPE_UINT8",
            DType::U16 => "TYPE_UINT16",
            DType::U32 => "TYPE_UINT32",
            DType::U64 => "TYPE_UINT64",
            DType::Bool => "TYPE_BOOL",
        }
    }

    /// The dtype of a model configuration `data_type`; `None` for `TYPE_STRING`, `TYPE_BF16`
    /// and unknown names.
    pub fn from_triton_type(name: &str) -> Option<DType> {
        DType::ALL.into_iter().find(|&d| triton_type(d) == name)
    }
}

/// Batching requests together: tensors joined and split along dim 0.
pub mod batch {
    use rdeploy::{Error, Result, Tensor};

    /// Joins tensors along dim 0 (all of one dtype, with equal dims after the first).
    ///
    /// # Errors
    /// [`Error::Tensor`] for no tensors, a scalar, or differing dtypes or trailing dims.
    pub fn concat(tensors: &[Tensor]) -> Result<Tensor> {
        let Some(first) = tensors.first() else {
            return Err(Error::Tensor("nothing to concatenate".into()));
        };
        if first.shape().is_empty() {
            return Err(Error::Tensor(
                "a scalar has no dim 0 to concatenate along".into(),
            ));
        }
        if tensors.len() == 1 {
            return Ok(first.clone());
        }
        let rest = &first.shape()[1..];
        let mut rows = 0;
        let mut bytes = Vec::with_capacity(tensors.iter().map(|t| t.as_bytes().len()).sum());
        for t in tensors {
            if t.dtype() != first.dtype() || t.shape().get(1..) != Some(rest) {
                return Err(Error::Tensor(format!(
                    "cannot concatenate a {} tensor of shape {:?} with a {} tensor of shape {:?} \
                     along dim 0 (dtypes and dims after the first must be equal)",
                    first.dtype(),
                    first.shape(),
                    t.dtype(),
                    t.shape()
                )));
            }
            rows += t.shape()[0];
            bytes.extend_from_slice(t.as_bytes());
        }
        let mut shape = first.shape().to_vec();
        shape[0] = rows;
        Tensor::from_le_bytes(first.dtype(), &shape, &bytes)
    }

    /// Splits a tensor along dim 0 into pieces of `sizes` rows (which must add up to dim 0).
    ///
    /// # Errors
    /// [`Error::Tensor`] for a scalar or sizes that do not add up to dim 0.
    pub fn split(tensor: Tensor, sizes: &[usize]) -> Result<Vec<Tensor>> {
        let shape = tensor.shape().to_vec();
        let Some(&rows) = shape.first() else {
            return Err(Error::Tensor("a scalar has no dim 0 to split along".into()));
        };
        if sizes.iter().sum::<usize>() != rows {
            return Err(Error::Tensor(format!(
                "cannot split dim 0 of size {rows} into pieces of {sizes:?} rows"
            )));
        }
        if sizes.len() == 1 {
            return Ok(vec![tensor]);
        }
        let row_bytes = tensor.as_bytes().len().checked_div(rows).unwrap_or(0);
        let bytes = tensor.as_bytes();
        let mut out = Vec::with_capacity(sizes.len());
        let mut at = 0;
        for &n in sizes {
            let mut piece = shape.clone();
            piece[0] = n;
            let end = at + n * row_bytes;
            out.push(Tensor::from_le_bytes(
                tensor.dtype(),
                &piece,
                &bytes[at..end],
            )?);
            at = end;
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::{batch, datatype};
    use rdeploy::{DType, Tensor};

    #[test]
    fn datatype_names_round_trip() {
        for d in DType::ALL {
            assert_eq!(datatype::from_v2_name(datatype::v2_name(d)), Some(d));
            assert_eq!(
                datatype::from_triton_type(datatype::triton_type(d)),
                Some(d)
            );
        }
        assert_eq!(datatype::from_v2_name("BYTES"), None);
        assert_eq!(datatype::from_triton_type("TYPE_STRING"), None);
    }

    #[test]
    fn concat_then_split_gives_the_pieces_back() -> rdeploy::Result<()> {
        let a = Tensor::from_shape_vec(&[1, 2], vec![1.0f32, 2.0])?;
        let b = Tensor::from_shape_vec(&[2, 2], vec![3.0f32, 4.0, 5.0, 6.0])?;
        let joined = batch::concat(&[a.clone(), b.clone()])?;
        assert_eq!(joined.shape(), &[3, 2]);
        assert_eq!(joined.as_slice::<f32>()?, &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        assert_eq!(batch::split(joined, &[1, 2])?, vec![a, b]);
        Ok(())
    }

    #[test]
    fn mismatches_are_errors() -> rdeploy::Result<()> {
        let a = Tensor::from_shape_vec(&[1, 2], vec![1.0f32, 2.0])?;
        let b = Tensor::from_shape_vec(&[1, 3], vec![1.0f32, 2.0, 3.0])?;
        let c = Tensor::from_shape_vec(&[1, 2], vec![1i64, 2])?;
        assert!(batch::concat(&[a.clone(), b]).is_err());
        assert!(batch::concat(&[a.clone(), c]).is_err());
        assert!(batch::concat(&[]).is_err());
        assert!(batch::split(a, &[2]).is_err());
        Ok(())
    }
}
