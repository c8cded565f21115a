//! The IDX file format of MNIST: a magic number naming the element type and the number of
//! dimensions, the dimensions as big-endian u32, then the elements. Files may be gzip-compressed;
//! compression is recognised by its magic bytes, not by the file name.
//!
//! Nothing here trusts a header: the payload is read incrementally and checked against the
//! declared dimensions, so a header that claims 10⁹ images costs no more memory than the file
//! actually holds.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use flate2::read::MultiGzDecoder;

use crate::{Error, Result};

/// The IDX type byte for unsigned bytes, the only element type MNIST uses.
pub const TYPE_U8: u8 = 0x08;
/// The first two bytes of every gzip stream.
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
/// IDX allows at most 255 dimensions; MNIST uses 1 (labels) and 3 (images).
const MAX_DIMS: usize = 4;

/// An IDX array of unsigned bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdxArray {
    /// The dimensions, outermost first.
    pub dims: Vec<usize>,
    /// The elements in row-major order; `data.len()` is the product of `dims`.
    pub data: Vec<u8>,
}

fn bad(path: &Path, problem: impl Into<String>) -> Error {
    Error::BadFile {
        path: path.to_path_buf(),
        problem: problem.into(),
    }
}

/// Reads an IDX file of unsigned bytes, raw or gzip-compressed.
///
/// # Errors
/// [`Error::Io`] if the file cannot be read, [`Error::BadFile`] for a corrupt gzip stream, a
/// wrong magic number or type byte, or a payload shorter or longer than the header declares.
pub fn read_idx(path: impl AsRef<Path>) -> Result<IdxArray> {
    let path = path.as_ref();
    let io = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut file = BufReader::new(File::open(path).map_err(io)?);
    let mut start = [0u8; 2];
    let got = read_up_to(&mut file, &mut start).map_err(io)?;
    let head = std::io::Cursor::new(start[..got].to_vec()).chain(file);
    if got == 2 && start == GZIP_MAGIC {
        parse_idx(MultiGzDecoder::new(head), path)
    } else {
        parse_idx(head, path)
    }
}

/// Parses an (already decompressed) IDX stream; `path` names it in errors.
///
/// # Errors
/// As [`read_idx`].
pub fn parse_idx(mut reader: impl Read, path: &Path) -> Result<IdxArray> {
    let fail = |e: std::io::Error| {
        use std::io::ErrorKind::{InvalidData, InvalidInput, UnexpectedEof};
        if matches!(e.kind(), InvalidInput | InvalidData) {
            bad(path, format!("corrupt gzip stream: {e}"))
        } else if e.kind() == UnexpectedEof {
            bad(path, format!("truncated gzip stream: {e}"))
        } else {
            Error::Io {
                path: path.to_path_buf(),
                source: e,
            }
        }
    };
    let mut magic = [0u8; 4];
    let got = read_up_to(&mut reader, &mut magic).map_err(fail)?;
    if got < 4 {
        return Err(bad(
            path,
            format!("truncated: {got} bytes, too short for an IDX header"),
        ));
    }
    if magic[0] != 0 || magic[1] != 0 {
        return Err(bad(
            path,
            format!(
                "not an IDX file (magic number {:#010x})",
                u32::from_be_bytes(magic)
            ),
        ));
    }
    if magic[2] != TYPE_U8 {
        return Err(bad(
            path,
            format!(
                "element type {:#04x} is not unsigned bytes (0x08)",
                magic[2]
            ),
        ));
    }
    let n_dims = usize::from(magic[3]);
    if n_dims == 0 || n_dims > MAX_DIMS {
        return Err(bad(
            path,
            format!("{n_dims} dimensions (expected 1 to {MAX_DIMS})"),
        ));
    }
    let mut dims = Vec::with_capacity(n_dims);
    for d in 0..n_dims {
        let mut word = [0u8; 4];
        let got = read_up_to(&mut reader, &mut word).map_err(fail)?;
        if got < 4 {
            return Err(bad(
                path,
                format!("truncated in the header at dimension {d}"),
            ));
        }
        dims.push(u32::from_be_bytes(word) as usize);
    }
    let expected = dims
        .iter()
        .try_fold(1usize, |n, &d| n.checked_mul(d))
        .ok_or_else(|| bad(path, format!("dimensions {dims:?} overflow")))?;
    // Read at most one byte more than declared: the Vec grows only as data actually arrives.
    let mut data = Vec::new();
    reader
        .take(expected as u64 + 1)
        .read_to_end(&mut data)
        .map_err(fail)?;
    if data.len() < expected {
        return Err(bad(
            path,
            format!(
                "truncated: header declares {dims:?} = {expected} bytes of data, file holds {}",
                data.len()
            ),
        ));
    }
    if data.len() > expected {
        return Err(bad(
            path,
            format!("trailing data after the {expected} bytes the header {dims:?} declares"),
        ));
    }
    Ok(IdxArray { dims, data })
}

/// Reads into `buf` until it is full or the stream ends; returns the bytes read.
fn read_up_to(reader: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// Images from an IDX file: `count` images of `rows × cols` bytes each.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdxImages {
    /// Number of images.
    pub count: usize,
    /// Pixel rows per image.
    pub rows: usize,
    /// Pixel columns per image.
    pub cols: usize,
    /// `count · rows · cols` pixel bytes.
    pub pixels: Vec<u8>,
    /// The file they came from.
    pub path: PathBuf,
}

/// Reads an IDX image file (3 dimensions).
///
/// # Errors
/// As [`read_idx`], and [`Error::BadFile`] if the file does not have 3 dimensions.
pub fn read_images(path: impl AsRef<Path>) -> Result<IdxImages> {
    let path = path.as_ref();
    let array = read_idx(path)?;
    match array.dims[..] {
        [count, rows, cols] if rows > 0 && cols > 0 => Ok(IdxImages {
            count,
            rows,
            cols,
            pixels: array.data,
            path: path.to_path_buf(),
        }),
        _ => Err(bad(
            path,
            format!(
                "images need 3 non-zero dimensions (count, rows, cols), got {:?}",
                array.dims
            ),
        )),
    }
}

/// Reads an IDX label file (1 dimension) and checks every label is below `classes`.
///
/// # Errors
/// As [`read_idx`], and [`Error::BadFile`] for another number of dimensions or a label out of
/// range.
pub fn read_labels(path: impl AsRef<Path>, classes: usize) -> Result<Vec<u8>> {
    let path = path.as_ref();
    let array = read_idx(path)?;
    if array.dims.len() != 1 {
        return Err(bad(
            path,
            format!("labels need 1 dimension, got {:?}", array.dims),
        ));
    }
    if let Some((index, &label)) = array
        .data
        .iter()
        .enumerate()
        .find(|(_, &l)| usize::from(l) >= classes)
    {
        return Err(bad(
            path,
            format!("label {label} at index {index} is out of range for {classes} classes"),
        ));
    }
    Ok(array.data)
}
