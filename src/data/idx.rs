//! The IDX file format of MNIST: a magic number naming the element type and the number of
//! dimensions, the dimensions as big-endian u32, then the elements. Files may be gzip-compressed;
//! compression is recognised by its magic bytes, not by the file name.
//!
//! Nothing here trusts a header or a compressed size. A header may declare at most
//! [`IdxLimits::max_bytes`] of data (256 MiB by default); the payload is read incrementally and
//! never past what the header declares. A header that claims more than the file holds costs no
//! more memory than the file holds, and a gzip bomb costs no more than its header declares.

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

/// Limits on what the readers accept, so that a file cannot make them hold more memory than
/// the caller allows.
///
/// A gzip file of a few megabytes can inflate to gigabytes (a "gzip bomb"), so the size of a
/// compressed file bounds nothing. The readers therefore refuse any file whose header
/// declares more than [`max_bytes`](Self::max_bytes) bytes of elements, before reading them,
/// and never read past what the header declares; what a file costs is at most its declared
/// size. The limit applies to plain files too, so that it means the same whatever the
/// encoding.
///
/// The default, [`IdxLimits::DEFAULT_MAX_BYTES`] (256 MiB), holds MNIST-style sets (MNIST's
/// largest file is 47 MB); raise it for bigger sets:
///
/// ```
/// use lernmi::data::idx::IdxLimits;
///
/// let big = IdxLimits::default().with_max_bytes(4 << 30);
/// assert_eq!(big.max_bytes, 4 << 30);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct IdxLimits {
    /// The most bytes of elements (after decompression, header not counted) one file may
    /// declare.
    pub max_bytes: u64,
}

impl IdxLimits {
    /// The default [`max_bytes`](Self::max_bytes): 256 MiB.
    pub const DEFAULT_MAX_BYTES: u64 = 256 << 20;

    /// These limits with `max_bytes` as the most bytes of elements one file may declare.
    #[must_use]
    pub const fn with_max_bytes(mut self, max_bytes: u64) -> Self {
        self.max_bytes = max_bytes;
        self
    }
}

impl Default for IdxLimits {
    fn default() -> Self {
        IdxLimits {
            max_bytes: Self::DEFAULT_MAX_BYTES,
        }
    }
}

/// Reads an IDX file of unsigned bytes, raw or gzip-compressed, within the default
/// [`IdxLimits`].
///
/// # Errors
/// [`Error::Io`] if the file cannot be read, [`Error::BadFile`] for a corrupt gzip stream, a
/// wrong magic number or type byte, a payload shorter or longer than the header declares, or a
/// header declaring more than the limits allow.
pub fn read_idx(path: impl AsRef<Path>) -> Result<IdxArray> {
    read_idx_with_limits(path, IdxLimits::default())
}

/// [`read_idx`] within `limits`.
///
/// # Errors
/// As [`read_idx`].
pub fn read_idx_with_limits(path: impl AsRef<Path>, limits: IdxLimits) -> Result<IdxArray> {
    IdxReader::open(path.as_ref())?.array(limits)
}

/// Parses an (already decompressed) IDX stream within the default [`IdxLimits`]; `path` names
/// it in errors.
///
/// # Errors
/// As [`read_idx`].
pub fn parse_idx(reader: impl Read, path: &Path) -> Result<IdxArray> {
    parse_idx_with_limits(reader, path, IdxLimits::default())
}

/// [`parse_idx`] within `limits`.
///
/// # Errors
/// As [`read_idx`].
pub fn parse_idx_with_limits(
    reader: impl Read,
    path: &Path,
    limits: IdxLimits,
) -> Result<IdxArray> {
    IdxReader {
        reader,
        path: path.to_path_buf(),
    }
    .array(limits)
}

/// An IDX stream read in two steps, so that a caller can check the header's dimensions
/// before the body is read.
struct IdxReader<R> {
    reader: R,
    path: PathBuf,
}

impl IdxReader<Box<dyn Read>> {
    /// Opens `path`, inflating it if it starts with the gzip magic bytes.
    fn open(path: &Path) -> Result<Self> {
        let io = |source| Error::Io {
            path: path.to_path_buf(),
            source,
        };
        let mut file = BufReader::new(File::open(path).map_err(io)?);
        let mut start = [0u8; 2];
        let got = read_up_to(&mut file, &mut start).map_err(io)?;
        let head = std::io::Cursor::new(start[..got].to_vec()).chain(file);
        let reader: Box<dyn Read> = if got == 2 && start == GZIP_MAGIC {
            Box::new(MultiGzDecoder::new(head))
        } else {
            Box::new(head)
        };
        Ok(IdxReader {
            reader,
            path: path.to_path_buf(),
        })
    }
}

impl<R: Read> IdxReader<R> {
    /// An I/O error of the stream, as a typed error naming the file.
    fn fail(&self, e: std::io::Error) -> Error {
        use std::io::ErrorKind::{InvalidData, InvalidInput, UnexpectedEof};
        if matches!(e.kind(), InvalidInput | InvalidData) {
            bad(&self.path, format!("corrupt gzip stream: {e}"))
        } else if e.kind() == UnexpectedEof {
            bad(&self.path, format!("truncated gzip stream: {e}"))
        } else {
            Error::Io {
                path: self.path.clone(),
                source: e,
            }
        }
    }

    /// Reads the whole array.
    fn array(mut self, limits: IdxLimits) -> Result<IdxArray> {
        let dims = self.header()?;
        let data = self.body(&dims, limits)?;
        Ok(IdxArray { dims, data })
    }

    /// Reads the magic number and the dimensions.
    fn header(&mut self) -> Result<Vec<usize>> {
        let path = self.path.as_path();
        let mut magic = [0u8; 4];
        let got = read_up_to(&mut self.reader, &mut magic).map_err(|e| self.fail(e))?;
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
            let got = read_up_to(&mut self.reader, &mut word).map_err(|e| self.fail(e))?;
            if got < 4 {
                return Err(bad(
                    &self.path,
                    format!("truncated in the header at dimension {d}"),
                ));
            }
            dims.push(u32::from_be_bytes(word) as usize);
        }
        Ok(dims)
    }

    /// Reads the elements the header's `dims` declare, and checks that the stream ends there.
    fn body(&mut self, dims: &[usize], limits: IdxLimits) -> Result<Vec<u8>> {
        let path = self.path.as_path();
        let expected = dims
            .iter()
            .try_fold(1usize, |n, &d| n.checked_mul(d))
            .ok_or_else(|| bad(path, format!("dimensions {dims:?} overflow")))?;
        if expected as u64 > limits.max_bytes {
            return Err(bad(
                path,
                format!(
                    "header declares {dims:?} = {expected} bytes of data, more than the limit of \
                     {} bytes (IdxLimits::max_bytes)",
                    limits.max_bytes
                ),
            ));
        }
        let data = read_at_most(&mut self.reader, expected).map_err(|e| self.fail(e))?;
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
        Ok(data)
    }
}

/// Reads up to `expected + 1` bytes (one more shows that the stream goes on). The buffer grows
/// only as data arrives, and never beyond `expected + 1`, so a header that lies costs no more
/// than the stream holds, and a stream that goes on costs no more than the header declares.
fn read_at_most(reader: &mut impl Read, expected: usize) -> std::io::Result<Vec<u8>> {
    let cap = expected.saturating_add(1);
    let mut limited = reader.take(cap as u64);
    let mut data = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        let n = match limited.read(&mut chunk) {
            Ok(0) => return Ok(data),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if data.len() + n > data.capacity() {
            // Doubling keeps the copies linear; the cap keeps the last step from overshooting.
            let target = (data.capacity() * 2).min(cap).max(data.len() + n);
            data.reserve_exact(target - data.len());
        }
        data.extend_from_slice(&chunk[..n]);
    }
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

/// Reads an IDX image file (3 dimensions) within the default [`IdxLimits`].
///
/// # Errors
/// As [`read_idx`], and [`Error::BadFile`] if the file does not have 3 non-zero dimensions.
pub fn read_images(path: impl AsRef<Path>) -> Result<IdxImages> {
    read_images_with_limits(path, IdxLimits::default())
}

/// [`read_images`] within `limits`.
///
/// # Errors
/// As [`read_images`].
pub fn read_images_with_limits(path: impl AsRef<Path>, limits: IdxLimits) -> Result<IdxImages> {
    read_images_counted(path.as_ref(), None, limits)
}

/// Reads an IDX image file; with `count`, refuses one holding another number of images before
/// reading its pixels, naming `count`'s source.
pub(crate) fn read_images_counted(
    path: &Path,
    count: Option<(usize, &Path)>,
    limits: IdxLimits,
) -> Result<IdxImages> {
    let mut reader = IdxReader::open(path)?;
    let dims = reader.header()?;
    let [n, rows, cols] = dims[..] else {
        return Err(not_images(path, &dims));
    };
    if rows == 0 || cols == 0 {
        return Err(not_images(path, &dims));
    }
    if let Some((labels, labels_path)) = count.filter(|&(labels, _)| labels != n) {
        return Err(bad(
            labels_path,
            format!("{labels} labels but {} holds {n} images", path.display()),
        ));
    }
    let pixels = reader.body(&dims, limits)?;
    Ok(IdxImages {
        count: n,
        rows,
        cols,
        pixels,
        path: path.to_path_buf(),
    })
}

fn not_images(path: &Path, dims: &[usize]) -> Error {
    bad(
        path,
        format!("images need 3 non-zero dimensions (count, rows, cols), got {dims:?}"),
    )
}

/// Reads an IDX label file (1 dimension) within the default [`IdxLimits`], and checks every
/// label is below `classes`.
///
/// # Errors
/// As [`read_idx`], and [`Error::BadFile`] for another number of dimensions or a label out of
/// range.
pub fn read_labels(path: impl AsRef<Path>, classes: usize) -> Result<Vec<u8>> {
    read_labels_with_limits(path, classes, IdxLimits::default())
}

/// [`read_labels`] within `limits`.
///
/// # Errors
/// As [`read_labels`].
pub fn read_labels_with_limits(
    path: impl AsRef<Path>,
    classes: usize,
    limits: IdxLimits,
) -> Result<Vec<u8>> {
    let path = path.as_ref();
    let mut reader = IdxReader::open(path)?;
    let dims = reader.header()?;
    if dims.len() != 1 {
        return Err(bad(path, format!("labels need 1 dimension, got {dims:?}")));
    }
    let data = reader.body(&dims, limits)?;
    if let Some((index, &label)) = data
        .iter()
        .enumerate()
        .find(|(_, &l)| usize::from(l) >= classes)
    {
        return Err(bad(
            path,
            format!("label {label} at index {index} is out of range for {classes} classes"),
        ));
    }
    Ok(data)
}
