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
/// Arrays saved through `ml_dtypes` hold opaque elements (`<V2`, `<V1`): a 2-byte one is taken
/// as bfloat16, a 1-byte one needs to be told its type: see [`read_tensor_file_expecting`].
///
/// # Errors
/// [`Error::TensorFile`] naming the file when it is missing, of an unknown extension, corrupt,
/// or holds a dtype rdeploy does not support.
pub fn read_tensor_file(path: &Path) -> Result<Vec<FileTensor>> {
    read_tensor_file_expecting(path, &|_| None)
}

/// As [`read_tensor_file`], with the dtype each array is meant to have: `expect` gets the
/// array's name (an `.npz` entry's; `None` for a `.npy`) and returns the dtype it should be
/// read as, if known. This settles what NumPy cannot say: a `<V1` array (how `ml_dtypes` saves
/// float8, int4, uint4, float4, int2 and uint2 arrays) is read as the expected 1-byte type, a
/// `<V2` one as bfloat16. An array of another type is read as it is, for the caller to check or convert.
///
/// # Errors
/// As [`read_tensor_file`]; also an opaque array whose expected type does not fit it.
pub fn read_tensor_file_expecting(
    path: &Path,
    expect: &dyn Fn(Option<&str>) -> Option<DType>,
) -> Result<Vec<FileTensor>> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    crate::files::regular_file_size(path).map_err(|msg| file_err(path, msg))?;
    let open = || File::open(path).map_err(|e| file_err(path, format!("cannot open: {e}")));
    match ext.as_str() {
        "npy" => Ok(vec![(
            None,
            read_npy(BufReader::new(open()?), path, expect(None))?,
        )]),
        "npz" => read_npz(path, expect),
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

/// How an array's elements are stored in a `.npy` file.
#[derive(Clone, Copy, Debug, PartialEq)]
enum NpyKind {
    /// A NumPy primitive npyz reads directly.
    Native(DType),
    /// Opaque bytes (`V`, or ml_dtypes' `<f1`), `dtype.size()` per element.
    Opaque(DType),
    /// `U` (UTF-32) or `S` (bytes) strings.
    Text,
}

fn npy_dtype(path: &Path, npy: &NpyFile<impl Read>, expect: Option<DType>) -> Result<NpyKind> {
    let npyz::DType::Plain(ts) = npy.dtype() else {
        return Err(file_err(
            path,
            "structured (record) arrays are not supported; save a plain array",
        ));
    };
    let size = ts.size_field();
    let one_byte = |d: DType| d.is_float8() || d.packed_bits().is_some();
    let kind = match (ts.type_char(), size) {
        (TypeChar::Float, 2) => NpyKind::Native(DType::F16),
        (TypeChar::Float, 4) => NpyKind::Native(DType::F32),
        (TypeChar::Float, 8) => NpyKind::Native(DType::F64),
        (TypeChar::Int, 1) => NpyKind::Native(DType::I8),
        (TypeChar::Int, 2) => NpyKind::Native(DType::I16),
        (TypeChar::Int, 4) => NpyKind::Native(DType::I32),
        (TypeChar::Int, 8) => NpyKind::Native(DType::I64),
        (TypeChar::Uint, 1) => NpyKind::Native(DType::U8),
        (TypeChar::Uint, 2) => NpyKind::Native(DType::U16),
        (TypeChar::Uint, 4) => NpyKind::Native(DType::U32),
        (TypeChar::Uint, 8) => NpyKind::Native(DType::U64),
        (TypeChar::Bool, 1) => NpyKind::Native(DType::Bool),
        (TypeChar::UnicodeStr | TypeChar::ByteStr, _) => NpyKind::Text,
        // ml_dtypes' float8_e5m2 alone describes itself as a 1-byte float.
        (TypeChar::Float, 1) => match expect {
            None | Some(DType::F8E5M2) => NpyKind::Opaque(DType::F8E5M2),
            Some(other) => {
                return Err(file_err(
                    path,
                    format!("the array is float8_e5m2 ('{ts}'), not {other}"),
                ));
            }
        },
        (TypeChar::RawData, 2) => match expect {
            None | Some(DType::BF16) => NpyKind::Opaque(DType::BF16),
            Some(other) => {
                return Err(file_err(
                    path,
                    format!(
                        "the array holds opaque 2-byte elements ('{ts}', how ml_dtypes saves \
                         bfloat16), not {other}"
                    ),
                ));
            }
        },
        (TypeChar::RawData, 1) => match expect {
            Some(d) if one_byte(d) => NpyKind::Opaque(d),
            _ => {
                return Err(file_err(
                    path,
                    format!(
                        "the array holds opaque 1-byte elements ('{ts}', how ml_dtypes saves \
                         float8, int4, uint4, float4, int2 and uint2 arrays) and nothing says \
                         which type; \
                         rdeploy reads it as the type of the model input it is given for{}",
                        expect
                            .map(|d| format!(", but that input is {d}"))
                            .unwrap_or_default()
                    ),
                ));
            }
        },
        _ => {
            return Err(file_err(
                path,
                format!(
                    "numpy dtype '{ts}' is not supported; convert it to a numeric, bool or \
                     string type"
                ),
            ));
        }
    };
    Ok(kind)
}

fn read_npy(reader: impl Read, path: &Path, expect: Option<DType>) -> Result<Tensor> {
    let mut reader = BufReader::with_capacity((1 << 16) + 16, reader);
    // The header is checked before npyz parses it: its parser backtracks exponentially on
    // deeply nested brackets (a 259-byte file hung it; found by fuzzing).
    let head = reader
        .fill_buf()
        .map_err(|e| file_err(path, format!("cannot read: {e}")))?;
    check_npy_header(head)
        .map_err(|msg| file_err(path, format!("not a valid .npy file: {msg}")))?;
    // ml_dtypes saves float8_e5m2 as '<f1', a float size npyz (and numpy.load) refuse: it is
    // read as the opaque '|V1' it is, a string of the same length, so the header keeps its size.
    const F1: &[u8] = b"'descr': '<f1'";
    let header_end = head.iter().position(|&b| b == b'\n').map_or(0, |i| i + 1);
    if let Some(at) = head[..header_end].windows(F1.len()).position(|w| w == F1) {
        let expect = match expect {
            None | Some(DType::F8E5M2) => Some(DType::F8E5M2),
            Some(other) => {
                return Err(file_err(
                    path,
                    format!("the array is float8_e5m2 ('<f1'), not {other}"),
                ));
            }
        };
        let mut header = head[..header_end].to_vec();
        header[at..at + F1.len()].copy_from_slice(b"'descr': '|V1'");
        reader.consume(header_end);
        let npy = NpyFile::new(std::io::Cursor::new(header).chain(reader))
            .map_err(|e| file_err(path, format!("not a valid .npy file: {e}")))?;
        return npy_to_tensor(npy, path, expect);
    }
    let npy =
        NpyFile::new(reader).map_err(|e| file_err(path, format!("not a valid .npy file: {e}")))?;
    npy_to_tensor(npy, path, expect)
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

fn npy_to_tensor(npy: NpyFile<impl Read>, path: &Path, expect: Option<DType>) -> Result<Tensor> {
    let kind = npy_dtype(path, &npy, expect)?;
    let shape: Vec<usize> = npy
        .shape()
        .iter()
        .map(|&d| usize::try_from(d).map_err(|_| file_err(path, format!("dim {d} is too large"))))
        .collect::<Result<_>>()?;
    // The header's shape is checked before reading: the reader reserves that much memory.
    let elem_size = match kind {
        NpyKind::Native(d) | NpyKind::Opaque(d) => d.size(),
        NpyKind::Text => std::mem::size_of::<String>(),
    };
    crate::files::checked_bytes(&shape, elem_size)
        .map_err(|msg| file_err(path, format!("the header claims {msg}")))?;
    let fortran = npy.order() == Order::Fortran;
    let truncated = |e: std::io::Error| {
        file_err(
            path,
            format!("cannot read the array data (truncated?): {e}"),
        )
    };
    fn arrange<T: Clone>(
        data: Vec<T>,
        shape: &[usize],
        fortran: bool,
        path: &Path,
    ) -> Result<ArrayD<T>> {
        let n = data.len();
        let a = if fortran {
            ArrayD::from_shape_vec(IxDyn(shape).f(), data)
        } else {
            ArrayD::from_shape_vec(IxDyn(shape), data)
        };
        let a = a.map_err(|_| file_err(path, format!("{n} values do not fill shape {shape:?}")))?;
        Ok(if a.is_standard_layout() {
            a
        } else {
            a.as_standard_layout().into_owned()
        })
    }
    fn native<T: Element + npyz::Deserialize>(
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
        Ok(Tensor::from_array(arrange(data, shape, fortran, path)?))
    }
    fn opaque<T: Element>(
        bytes: &[u8],
        shape: &[usize],
        fortran: bool,
        path: &Path,
    ) -> Result<Tensor> {
        let data: Vec<T> = bytes
            .chunks_exact(T::DTYPE.size())
            .map(T::from_le)
            .collect();
        Ok(Tensor::from_array(arrange(data, shape, fortran, path)?))
    }
    match kind {
        NpyKind::Native(DType::F32) => native::<f32>(npy, &shape, fortran, path),
        NpyKind::Native(DType::F16) => native::<f16>(npy, &shape, fortran, path),
        NpyKind::Native(DType::F64) => native::<f64>(npy, &shape, fortran, path),
        NpyKind::Native(DType::I8) => native::<i8>(npy, &shape, fortran, path),
        NpyKind::Native(DType::I16) => native::<i16>(npy, &shape, fortran, path),
        NpyKind::Native(DType::I32) => native::<i32>(npy, &shape, fortran, path),
        NpyKind::Native(DType::I64) => native::<i64>(npy, &shape, fortran, path),
        NpyKind::Native(DType::U8) => native::<u8>(npy, &shape, fortran, path),
        NpyKind::Native(DType::U16) => native::<u16>(npy, &shape, fortran, path),
        NpyKind::Native(DType::U32) => native::<u32>(npy, &shape, fortran, path),
        NpyKind::Native(DType::U64) => native::<u64>(npy, &shape, fortran, path),
        NpyKind::Native(DType::Bool) => native::<bool>(npy, &shape, fortran, path),
        NpyKind::Native(d) | NpyKind::Opaque(d) => {
            let bytes: Vec<u8> = npy.into_vec::<Vec<u8>>().map_err(truncated)?.concat();
            crate::dispatch_dtype!(d, opaque(&bytes, &shape, fortran, path), Str => Err(file_err(path, "strings are not opaque bytes")))
        }
        NpyKind::Text => {
            let data = npy.into_vec::<String>().map_err(truncated)?;
            Ok(Tensor::Str(arrange(data, &shape, fortran, path)?))
        }
    }
}

fn read_npz(
    path: &Path,
    expect: &dyn Fn(Option<&str>) -> Option<DType>,
) -> Result<Vec<FileTensor>> {
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
        let t = npy_to_tensor(entry, path, expect(Some(&name)))
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

/// Writes a tensor in `.npy` format to any writer. Types NumPy lacks are written as
/// `ml_dtypes` saves them: bfloat16 as opaque 2-byte elements (`<V2`), float8, float8e8m0 and
/// the 4- and 2-bit types (one per byte, as `ml_dtypes` holds them) as opaque bytes (`<V1`; for
/// float8_e5m2 too, where `ml_dtypes` writes `<f1`, which `numpy.load` cannot read);
/// `np.load(f).view(ml_dtypes.bfloat16)` gives the values back. Strings are written as NumPy
/// unicode (`<U{longest}`).
///
/// # Errors
/// The writer's I/O error.
pub fn write_npy_to(w: &mut dyn Write, t: &Tensor) -> std::io::Result<()> {
    let shape: Vec<u64> = t.shape().iter().map(|&d| d as u64).collect();
    fn put<T: Element + npyz::AutoSerialize>(
        w: &mut dyn Write,
        shape: &[u64],
        a: &ArrayD<T>,
    ) -> std::io::Result<()> {
        let mut writer = npyz::WriteOptions::<T>::new()
            .default_dtype()
            .shape(shape)
            .writer(w)
            .begin_nd()?;
        writer.extend(a.iter().copied())?;
        writer.finish()
    }
    fn put_described<T: ?Sized + npyz::Serialize>(
        w: &mut dyn Write,
        shape: &[u64],
        descr: &str,
        items: &mut dyn Iterator<Item = &T>,
    ) -> std::io::Result<()> {
        let type_str: npyz::TypeStr = descr
            .parse()
            .map_err(|e| std::io::Error::other(format!("numpy type '{descr}': {e}")))?;
        let mut writer = npyz::WriteOptions::<T>::new()
            .dtype(npyz::DType::Plain(type_str))
            .shape(shape)
            .writer(w)
            .begin_nd()?;
        for item in items {
            writer.push(item)?;
        }
        writer.finish()
    }
    match t {
        Tensor::F32(a) => put(w, &shape, a),
        Tensor::F16(a) => put(w, &shape, a),
        Tensor::F64(a) => put(w, &shape, a),
        Tensor::I8(a) => put(w, &shape, a),
        Tensor::I16(a) => put(w, &shape, a),
        Tensor::I32(a) => put(w, &shape, a),
        Tensor::I64(a) => put(w, &shape, a),
        Tensor::U8(a) => put(w, &shape, a),
        Tensor::U16(a) => put(w, &shape, a),
        Tensor::U32(a) => put(w, &shape, a),
        Tensor::U64(a) => put(w, &shape, a),
        Tensor::Bool(a) => put(w, &shape, a),
        Tensor::Str(a) => {
            let longest = a.iter().map(|s| s.chars().count()).max().unwrap_or(0);
            // NumPy writes at least <U1, even for an empty array.
            let descr = format!("<U{}", longest.max(1));
            put_described::<str>(w, &shape, &descr, &mut a.iter().map(String::as_str))
        }
        _ => {
            let bytes = t.as_bytes().map_err(std::io::Error::other)?;
            let size = t.dtype().size();
            let descr = format!("<V{size}");
            put_described::<[u8]>(w, &shape, &descr, &mut bytes.chunks_exact(size))
        }
    }
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
            let back = read_tensor_file_expecting(&p, &|_| Some(d)).unwrap();
            assert_eq!(back, vec![(None, t.clone())], "{d}");
            // Only 1-byte opaque arrays need to be told their type.
            let plain = read_tensor_file(&p);
            if d.is_float8() || d.packed_bits().is_some() {
                let e = plain.unwrap_err().to_string();
                assert!(e.contains("opaque 1-byte") && e.contains("V1"), "{e}");
            } else {
                assert_eq!(plain.unwrap(), vec![(None, t)], "{d}");
            }
        }
        let p = dir.path().join("bf16.npy");
        let e = read_tensor_file_expecting(&p, &|_| Some(DType::F8E4M3FN))
            .unwrap_err()
            .to_string();
        assert!(e.contains("2-byte") && e.contains("bfloat16"), "{e}");
    }

    #[test]
    fn strings_are_numpy_unicode() {
        let t = Tensor::from_strings(&[3], vec!["ab".into(), "ü€".into(), String::new()]).unwrap();
        let mut buf = Vec::new();
        write_npy_to(&mut buf, &t).unwrap();
        let text = String::from_utf8_lossy(&buf);
        assert!(text.contains("'descr': '<U2'"), "{text}");
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s.npy");
        std::fs::write(&p, &buf).unwrap();
        assert_eq!(read_tensor_file(&p).unwrap(), vec![(None, t)]);
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
