//! Tensor files: NumPy `.npy` / `.npz` and ONNX `TensorProto` `.pb`.

use crate::{DType, Element, Error, Result, Tensor};
use half::f16;
use ndarray::{ArrayD, IxDyn, ShapeBuilder};
use npyz::{NpyFile, Order, TypeChar, WriterBuilder};
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;

/// A tensor read from a file, with the name the file gives it (an `.npz` entry's name, a
/// `TensorProto`'s `name`), if any.
pub type FileTensor = (Option<String>, Tensor);

fn file_err(path: &Path, msg: impl Into<String>) -> Error {
    Error::TensorFile {
        path: path.to_path_buf(),
        msg: msg.into(),
    }
}

/// Reads every tensor in a `.npy` (one), `.npz` (one per entry) or `.pb` (one) file.
///
/// # Errors
/// [`Error::TensorFile`] naming the file when it is missing, of an unknown extension, corrupt,
/// or holds a dtype rdeploy does not support.
pub fn read_tensor_file(path: &Path) -> Result<Vec<FileTensor>> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    crate::files::regular_file_size(path).map_err(|msg| file_err(path, msg))?;
    let open = || File::open(path).map_err(|e| file_err(path, format!("cannot open: {e}")));
    match ext.as_str() {
        "npy" => Ok(vec![(None, read_npy(BufReader::new(open()?), path)?)]),
        "npz" => read_npz(path),
        "pb" => {
            let mut bytes = Vec::new();
            open()?
                .read_to_end(&mut bytes)
                .map_err(|e| file_err(path, format!("cannot read: {e}")))?;
            let (name, t) =
                crate::onnx::tensor_from_pb_bytes(&bytes).map_err(|msg| file_err(path, msg))?;
            Ok(vec![(name, t)])
        }
        _ => Err(file_err(
            path,
            "unknown tensor file type; use .npy, .npz or an ONNX TensorProto .pb",
        )),
    }
}

fn npy_dtype(path: &Path, npy: &NpyFile<impl Read>) -> Result<DType> {
    let npyz::DType::Plain(ts) = npy.dtype() else {
        return Err(file_err(
            path,
            "structured (record) arrays are not supported; save a plain array",
        ));
    };
    let size = ts.size_field();
    let dtype = match (ts.type_char(), size) {
        (TypeChar::Float, 2) => DType::F16,
        (TypeChar::Float, 4) => DType::F32,
        (TypeChar::Float, 8) => DType::F64,
        (TypeChar::Int, 1) => DType::I8,
        (TypeChar::Int, 2) => DType::I16,
        (TypeChar::Int, 4) => DType::I32,
        (TypeChar::Int, 8) => DType::I64,
        (TypeChar::Uint, 1) => DType::U8,
        (TypeChar::Uint, 2) => DType::U16,
        (TypeChar::Uint, 4) => DType::U32,
        (TypeChar::Uint, 8) => DType::U64,
        (TypeChar::Bool, 1) => DType::Bool,
        _ => {
            return Err(file_err(
                path,
                format!(
                    "numpy dtype '{ts}' is not supported; convert it to a numeric or bool type"
                ),
            ));
        }
    };
    Ok(dtype)
}

fn read_npy(reader: impl Read, path: &Path) -> Result<Tensor> {
    let mut reader = BufReader::with_capacity((1 << 16) + 16, reader);
    // The header is checked before npyz parses it: its parser backtracks exponentially on
    // deeply nested brackets (a 259-byte file hung it; found by fuzzing).
    let head = reader
        .fill_buf()
        .map_err(|e| file_err(path, format!("cannot read: {e}")))?;
    check_npy_header(head)
        .map_err(|msg| file_err(path, format!("not a valid .npy file: {msg}")))?;
    let npy =
        NpyFile::new(reader).map_err(|e| file_err(path, format!("not a valid .npy file: {e}")))?;
    npy_to_tensor(npy, path)
}

/// Checks the start of a `.npy` file: magic, version, and a header dict of at most 64 KiB
/// whose brackets nest at most 3 deep (a dict holding a shape tuple, or a list of tuples for
/// structured dtypes), which is all numpy writes.
///
/// # Errors
/// What is wrong, for the caller to name the file.
pub fn check_npy_header(bytes: &[u8]) -> std::result::Result<(), String> {
    let Some(rest) = bytes.strip_prefix(b"\x93NUMPY") else {
        return Err("it does not start with numpy's magic string".into());
    };
    let (len, header) = match rest {
        [1, _, a, b, tail @ ..] => (usize::from(u16::from_le_bytes([*a, *b])), tail),
        [2 | 3, _, a, b, c, d, tail @ ..] => (u32::from_le_bytes([*a, *b, *c, *d]) as usize, tail),
        [v, ..] => return Err(format!("format version {v} is not 1, 2 or 3")),
        [] => return Err("the file ends after the magic string".into()),
    };
    if len > 1 << 16 {
        return Err(format!("a {len}-byte header is larger than numpy writes"));
    }
    let header = &header[..len.min(header.len())];
    let mut depth = 0usize;
    for &c in header {
        match c {
            b'{' | b'[' | b'(' => {
                depth += 1;
                if depth > 3 {
                    return Err("the header's brackets nest deeper than numpy writes".into());
                }
            }
            b'}' | b']' | b')' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

fn npy_to_tensor(npy: NpyFile<impl Read>, path: &Path) -> Result<Tensor> {
    let dtype = npy_dtype(path, &npy)?;
    let shape: Vec<usize> = npy
        .shape()
        .iter()
        .map(|&d| usize::try_from(d).map_err(|_| file_err(path, format!("dim {d} is too large"))))
        .collect::<Result<_>>()?;
    // The header's shape is checked before reading: the reader reserves that much memory.
    crate::files::checked_bytes(&shape, dtype.size())
        .map_err(|msg| file_err(path, format!("the header claims {msg}")))?;
    let fortran = npy.order() == Order::Fortran;
    fn collect<T: Element + npyz::Deserialize>(
        npy: NpyFile<impl Read>,
        shape: &[usize],
        fortran: bool,
        path: &Path,
    ) -> Result<Tensor> {
        let data = npy.into_vec::<T>().map_err(|e| {
            file_err(
                path,
                format!("cannot read the array data (truncated?): {e}"),
            )
        })?;
        let n = data.len();
        let a = if fortran {
            ArrayD::from_shape_vec(IxDyn(shape).f(), data)
        } else {
            ArrayD::from_shape_vec(IxDyn(shape), data)
        };
        let a = a.map_err(|_| file_err(path, format!("{n} values do not fill shape {shape:?}")))?;
        Ok(Tensor::from_array(a))
    }
    match dtype {
        DType::F32 => collect::<f32>(npy, &shape, fortran, path),
        DType::F16 => collect::<f16>(npy, &shape, fortran, path),
        DType::F64 => collect::<f64>(npy, &shape, fortran, path),
        DType::I8 => collect::<i8>(npy, &shape, fortran, path),
        DType::I16 => collect::<i16>(npy, &shape, fortran, path),
        DType::I32 => collect::<i32>(npy, &shape, fortran, path),
        DType::I64 => collect::<i64>(npy, &shape, fortran, path),
        DType::U8 => collect::<u8>(npy, &shape, fortran, path),
        DType::U16 => collect::<u16>(npy, &shape, fortran, path),
        DType::U32 => collect::<u32>(npy, &shape, fortran, path),
        DType::U64 => collect::<u64>(npy, &shape, fortran, path),
        DType::Bool => collect::<bool>(npy, &shape, fortran, path),
    }
}

fn read_npz(path: &Path) -> Result<Vec<FileTensor>> {
    // Every entry's header is checked before npyz parses it (see `read_npy`).
    let file = File::open(path).map_err(|e| file_err(path, format!("cannot open: {e}")))?;
    let mut zip = zip::ZipArchive::new(BufReader::new(file))
        .map_err(|e| file_err(path, format!("not a valid .npz archive: {e}")))?;
    for i in 0..zip.len() {
        let mut entry = zip
            .by_index(i)
            .map_err(|e| file_err(path, format!("not a valid .npz archive: {e}")))?;
        let name = entry.name().to_string();
        let mut head = Vec::with_capacity(1 << 10);
        (&mut entry)
            .take((1 << 16) + 16)
            .read_to_end(&mut head)
            .map_err(|e| file_err(path, format!("entry '{name}': {e}")))?;
        check_npy_header(&head).map_err(|msg| file_err(path, format!("entry '{name}': {msg}")))?;
    }
    let mut npz = npyz::npz::NpzArchive::open(path)
        .map_err(|e| file_err(path, format!("not a valid .npz archive: {e}")))?;
    let names: Vec<String> = npz.array_names().map(str::to_string).collect();
    let mut out = Vec::with_capacity(names.len());
    for name in names {
        let entry = npz
            .by_name(&name)
            .map_err(|e| file_err(path, format!("entry '{name}': {e}")))?
            .ok_or_else(|| file_err(path, format!("entry '{name}' vanished")))?;
        let t = npy_to_tensor(entry, path)
            .map_err(|e| file_err(path, format!("entry '{name}': {e}")))?;
        out.push((Some(name), t));
    }
    if out.is_empty() {
        return Err(file_err(path, "the archive holds no arrays"));
    }
    Ok(out)
}

/// Writes a tensor as `.npy`, atomically: a reader never sees a half-written file.
///
/// # Errors
/// [`Error::TensorFile`] naming the file when it cannot be written.
pub fn write_npy(path: &Path, t: &Tensor) -> Result<()> {
    crate::atomic::write_atomic(path, |w| write_npy_to(w, t))
        .map_err(|e| file_err(path, format!("cannot write: {e}")))
}

/// Writes a tensor in `.npy` format to any writer.
///
/// # Errors
/// The writer's I/O error.
pub fn write_npy_to(w: &mut dyn Write, t: &Tensor) -> std::io::Result<()> {
    fn put<T: Element + npyz::AutoSerialize>(
        w: &mut dyn Write,
        a: &ArrayD<T>,
    ) -> std::io::Result<()> {
        let shape: Vec<u64> = a.shape().iter().map(|&d| d as u64).collect();
        let mut writer = npyz::WriteOptions::<T>::new()
            .default_dtype()
            .shape(&shape)
            .writer(w)
            .begin_nd()?;
        writer.extend(a.iter().copied())?;
        writer.finish()
    }
    crate::dispatch_tensor!(t, a => put(w, a))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deeply_nested_npy_headers_are_refused_at_once() {
        // Found by fuzzing (tensor_files): npyz's header parser backtracked for minutes.
        let bytes = b"\x93\x4e\x55\x4d\x50\x59\x01\x00\x76\x00\x7b\x27\x64\x65\x73\x63\x72\x27\x3a\x20\x27\x3c\x66\x34\x27\x2c\x20\x27\x66\x6f\x72\x74\x72\x61\x6e\x5f\x6f\x72\x64\x65\x72\x27\x3a\x20\x46\x61\x6c\x73\x65\x2c\x20\x27\x73\x68\x61\x70\x65\x27\x3a\x20\x28\x34\x2c\x28\x32\x2c\x7b\x7b\x7b\x7b\x7b\x7b\x7b\x7b\x7b\x7b\x7b\x7b\x7b\x7b\x7b\x7b\x7b\x7b\x7b\x7b\x7b\x7b\x7b\x7b\x7b\x7b\x7b\x7b\x7b\x7b\x7b\x7b\x7b\x7b\x7b\x7b\x7b\x7b\x7b\x7b\x7b\x7b\x7b\x7b\x7b\x7b\x7b\x7b\x7b\x7b\x7b\x7b\x7b\x7b\x7b\x7b\x7b\x7b\x7b\x7b\x7b\x7b\x7b\x20\x33\x2c\x20\x33\x32\x2c\x20\x33\x32\x29\x2c\x20\x7d\x20\x20\x20\x20\x20\x20\x20\x20\x20\x20\x20\x20\x20\x20\x20\x20\x20\x20\x20\x20\x20\x20\x20\x20\x20\x20\x20\x20\x20\x20\x20\x20\x20\x20\x20\x20\x20\x20\x20\x20\x20\x05\x00\x00\x01\x00\x00\x00\x00\x00\x00\x1e\xf0\x3e\x41\x87\x89\xbe\xd7\xb3\xc8\x3f\x8b\x76\xb0\xbf\x6a\x20\xe8\xbf\x3f\x1d\x85\xbe\xb4\x4d\x11\xc0\x1b\x37\xce\xbe\x29\xc0\x32\x3e\xca\x2f\x97\xbf\xcf\xff\xb6\x3f\xb0\x21\x89\x3c\x0b\x3b\xbf\x3e\x9c\xea\x44\xbf\x0f\x9b\x4c\x3f\x5b\x3e\x68\x61\xba";
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("nested.npy");
        std::fs::write(&p, bytes).unwrap();
        let e = read_tensor_file(&p).unwrap_err().to_string();
        assert!(e.contains("nested.npy") && e.contains("nest deeper"), "{e}");
        assert!(check_npy_header(b"\x93NUMPY\x01\x00\x10\x00{'shape': (2,3)}").is_ok());
    }

    #[test]
    fn lying_headers_are_refused_before_allocating() {
        // A .npy header claiming 2^60 float32 values, followed by 8 bytes.
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("huge.npy");
        let mut header =
            b"{'descr': '<f4', 'fortran_order': False, 'shape': (1073741824, 1073741824), }"
                .to_vec();
        while !(header.len() + 11).is_multiple_of(64) {
            header.push(b' ');
        }
        header.push(b'\n');
        let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
        bytes.extend_from_slice(&(header.len() as u16).to_le_bytes());
        bytes.extend_from_slice(&header);
        bytes.extend_from_slice(&[0u8; 8]);
        std::fs::write(&p, &bytes).unwrap();
        let e = read_tensor_file(&p).unwrap_err().to_string();
        assert!(e.contains("huge.npy") && e.contains("header claims"), "{e}");
        let t = crate::onnx::tensor_from_proto(&crate::onnx::proto::TensorProto {
            dims: vec![1 << 40, 1 << 40],
            data_type: Some(1),
            ..Default::default()
        });
        assert!(t.unwrap_err().contains("addressed"));
    }

    #[test]
    fn npy_round_trips_every_dtype() {
        let dir = tempfile::tempdir().unwrap();
        for d in DType::ALL {
            let t = Tensor::from_shape_vec(&[2, 3], (0..6i64).collect())
                .unwrap()
                .cast(d, crate::Cast::Unchecked)
                .unwrap();
            let p = dir.path().join(format!("{d}.npy"));
            write_npy(&p, &t).unwrap();
            let back = read_tensor_file(&p).unwrap();
            assert_eq!(back, vec![(None, t)], "{d}");
        }
    }

    #[test]
    fn bad_files_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.npy");
        std::fs::write(&p, b"not numpy").unwrap();
        let e = read_tensor_file(&p).unwrap_err().to_string();
        assert!(e.contains("x.npy") && e.contains("not a valid .npy"), "{e}");
        let e = read_tensor_file(&dir.path().join("missing.npy"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("missing.npy") && e.contains("not found"), "{e}");
        let p = dir.path().join("x.txt");
        std::fs::write(&p, b"1 2 3").unwrap();
        assert!(
            read_tensor_file(&p)
                .unwrap_err()
                .to_string()
                .contains("use .npy")
        );
        // A truncated .npy: valid header, missing data.
        let t = Tensor::zeros(DType::F32, &[4, 4]);
        let mut buf = Vec::new();
        write_npy_to(&mut buf, &t).unwrap();
        let p = dir.path().join("trunc.npy");
        std::fs::write(&p, &buf[..buf.len() - 10]).unwrap();
        let e = read_tensor_file(&p).unwrap_err().to_string();
        assert!(e.contains("trunc.npy"), "{e}");
    }
}
