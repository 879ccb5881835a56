//! Requests joined along the batch dim (dim 0) for one engine call, and the outputs split back:
//! what Triton's dynamic batcher expects of a backend with `max_batch_size > 0`, and what
//! `rdeploy serve` does with the requests it queues.

use rdeploy::core::{Error, Result, Tensor};

/// Joins tensors along dim 0: `[b1, d..] + [b2, d..] -> [b1 + b2, d..]`.
///
/// # Errors
/// [`Error::Tensor`] for no tensors, a scalar, or parts whose dtype or trailing dims differ
/// (naming the part by its position).
pub fn concat(parts: &[Tensor]) -> Result<Tensor> {
    let first = parts
        .first()
        .ok_or_else(|| Error::Tensor("nothing to join along the batch dim".into()))?;
    if parts.len() == 1 {
        return Ok(first.clone());
    }
    let (dtype, shape) = (first.dtype(), first.shape());
    if shape.is_empty() {
        return Err(Error::Tensor(
            "a scalar has no batch dim to join along".into(),
        ));
    }
    let mut rows = 0;
    let mut bytes = Vec::new();
    let mut strings = Vec::new();
    for (i, p) in parts.iter().enumerate() {
        if p.dtype() != dtype || p.shape().get(1..) != shape.get(1..) {
            return Err(Error::Tensor(format!(
                "cannot join along the batch dim: part {i} is {} {:?}, part 0 is {dtype} {shape:?} (dtype and all dims but the first must agree)",
                p.dtype(),
                p.shape()
            )));
        }
        rows += p.shape()[0];
        match p.as_strings() {
            Ok(s) => strings.extend(s.iter().cloned()),
            Err(_) => bytes.extend_from_slice(p.as_bytes()?),
        }
    }
    let mut joined = shape.to_vec();
    joined[0] = rows;
    if dtype == rdeploy::core::DType::Str {
        Tensor::from_strings(&joined, strings)
    } else {
        Tensor::from_le_bytes(dtype, &joined, &bytes)
    }
}

/// Splits `t` along dim 0 into parts of `sizes` rows each (the batch sizes given to
/// [`concat`]).
///
/// # Errors
/// [`Error::Tensor`] when `t` is a scalar or its dim 0 is not the sum of `sizes` (an engine
/// output that does not keep the batch dim cannot be split per request).
pub fn split(t: Tensor, sizes: &[usize]) -> Result<Vec<Tensor>> {
    let total: usize = sizes.iter().sum();
    let shape = t.shape().to_vec();
    if shape.first() != Some(&total) {
        return Err(Error::Tensor(format!(
            "cannot split an output of shape {shape:?} into requests of {sizes:?} rows: its first dim is not the batch dim ({total})"
        )));
    }
    if sizes.len() == 1 {
        return Ok(vec![t]);
    }
    let mut out = Vec::with_capacity(sizes.len());
    let mut at = 0;
    if let Ok(strings) = t.as_strings() {
        let flat: Vec<&String> = strings.iter().collect();
        let row = flat.len().checked_div(total).unwrap_or(0);
        for &n in sizes {
            let mut part = shape.clone();
            part[0] = n;
            let items = flat[at..at + n * row]
                .iter()
                .map(|s| (*s).clone())
                .collect();
            out.push(Tensor::from_strings(&part, items)?);
            at += n * row;
        }
        return Ok(out);
    }
    let all = t.as_bytes()?;
    let row_bytes = all.len().checked_div(total).unwrap_or(0);
    for &n in sizes {
        let mut part = shape.clone();
        part[0] = n;
        out.push(Tensor::from_le_bytes(
            t.dtype(),
            &part,
            &all[at..at + n * row_bytes],
        )?);
        at += n * row_bytes;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(shape: &[usize], start: f32) -> Tensor {
        let n = shape.iter().product::<usize>();
        Tensor::from_shape_vec(shape, (0..n).map(|i| start + i as f32).collect())
            .expect("shape matches")
    }

    #[test]
    fn concat_then_split_gives_the_parts_back() -> Result<()> {
        let parts = vec![t(&[1, 2, 3], 0.0), t(&[3, 2, 3], 100.0), t(&[0, 2, 3], 0.0)];
        let joined = concat(&parts)?;
        assert_eq!(joined.shape(), &[4, 2, 3]);
        assert_eq!(joined.as_slice::<f32>()?[6], 100.0);
        let back = split(joined, &[1, 3, 0])?;
        assert_eq!(back, parts);
        Ok(())
    }

    #[test]
    fn mismatches_are_named() {
        let e = concat(&[t(&[1, 2], 0.0), t(&[1, 3], 0.0)]).unwrap_err();
        assert!(e.to_string().contains("part 1"), "{e}");
        let e = concat(&[
            t(&[1, 2], 0.0),
            Tensor::from_shape_vec(&[1, 2], vec![1i64, 2]).unwrap(),
        ])
        .unwrap_err();
        assert!(e.to_string().contains("dtype"), "{e}");
        let e = split(t(&[4, 2], 0.0), &[1, 2]).unwrap_err();
        assert!(e.to_string().contains("batch dim"), "{e}");
        assert!(concat(&[]).is_err());
    }
}
