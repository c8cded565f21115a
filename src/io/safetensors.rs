//! Safetensors files: named tensors in and out, with every read bounded and every write atomic.
//! [`crate::io::model`] lays a network out in them; [`crate::io::checkpoint`] adds the training
//! state.
//!
//! # Atomic saves
//!
//! [`write_atomically`] writes a file under a fresh random temporary name in the same
//! directory, gives it the permission bits of the file it replaces, flushes and syncs it,
//! renames it over the target and syncs the directory: a save that fails or is interrupted
//! before the rename leaves the previous file as it was, and a failed sync is an error.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use ::safetensors::tensor::{Dtype, SafeTensors, TensorView};
use ndarray::{Array1, Array2, ArrayView1, ArrayView2, ShapeBuilder};
use serde::Deserialize;

use crate::{Error, Float, Result};

/// An [`Error::BadFile`] naming `path`.
pub(crate) fn bad_file(path: &Path, problem: impl Into<String>) -> Error {
    Error::BadFile {
        path: path.to_path_buf(),
        problem: problem.into(),
    }
}

/// A tensor to write: its shape and its little-endian bytes.
pub(crate) struct OwnedTensor {
    dtype: Dtype,
    shape: Vec<usize>,
    bytes: Vec<u8>,
}

impl ::safetensors::View for &OwnedTensor {
    fn dtype(&self) -> Dtype {
        self.dtype
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> std::borrow::Cow<'_, [u8]> {
        std::borrow::Cow::Borrowed(&self.bytes)
    }
    fn data_len(&self) -> usize {
        self.bytes.len()
    }
}

fn dtype_of<F: Float>() -> Dtype {
    if F::NAME == "f32" {
        Dtype::F32
    } else {
        Dtype::F64
    }
}

fn push_le<F: Float>(bytes: &mut Vec<u8>, x: F) {
    let x = x.to_f64_lossless();
    if F::NAME == "f32" {
        bytes.extend_from_slice(&(x as f32).to_le_bytes());
    } else {
        bytes.extend_from_slice(&x.to_le_bytes());
    }
}

impl OwnedTensor {
    /// A matrix, written row-major whatever its memory layout.
    pub(crate) fn matrix<F: Float>(m: ArrayView2<'_, F>) -> Self {
        let mut bytes = Vec::with_capacity(m.len() * std::mem::size_of::<F>());
        for &x in m.iter() {
            push_le(&mut bytes, x);
        }
        OwnedTensor {
            dtype: dtype_of::<F>(),
            shape: m.shape().to_vec(),
            bytes,
        }
    }

    pub(crate) fn vector<F: Float>(v: ArrayView1<'_, F>) -> Self {
        let mut bytes = Vec::with_capacity(v.len() * std::mem::size_of::<F>());
        for &x in v.iter() {
            push_le(&mut bytes, x);
        }
        OwnedTensor {
            dtype: dtype_of::<F>(),
            shape: vec![v.len()],
            bytes,
        }
    }
}

/// Serialises named tensors with metadata into safetensors bytes.
pub(crate) fn serialize(
    tensors: &[(String, OwnedTensor)],
    metadata: HashMap<String, String>,
    path: &Path,
) -> Result<Vec<u8>> {
    let bare = ::safetensors::serialize(tensors.iter().map(|(n, t)| (n.as_str(), t)), None)
        .map_err(|e| bad_file(path, format!("cannot serialise the model: {e}")))?;
    let metadata: std::collections::BTreeMap<_, _> = metadata.into_iter().collect();
    with_metadata(&bare, &metadata)
        .ok_or_else(|| bad_file(path, "cannot serialise the model: malformed header"))
}

/// `bare`, a safetensors file without metadata, with `metadata` put first in its header as
/// safetensors puts it, but with the keys in sorted order: safetensors writes them in a
/// `HashMap`'s order, which changes from map to map, and equal models must give equal bytes.
fn with_metadata(
    bare: &[u8],
    metadata: &std::collections::BTreeMap<String, String>,
) -> Option<Vec<u8>> {
    let len = usize::try_from(u64::from_le_bytes(bare.get(..8)?.try_into().ok()?)).ok()?;
    let header_end = len.checked_add(8)?;
    let header = std::str::from_utf8(bare.get(8..header_end)?).ok()?;
    // `}` for no tensors, else `"name":{…},…}`; the trailing spaces are padding.
    let tensors = header.trim_end().strip_prefix('{')?;
    let separator = if tensors == "}" { "" } else { "," };
    let entry = serde_json::to_string(metadata).ok()?;
    let mut text = format!("{{\"__metadata__\":{entry}{separator}{tensors}");
    // safetensors pads the header with spaces to a multiple of 8 bytes.
    text.extend(std::iter::repeat_n(
        ' ',
        text.len().next_multiple_of(8) - text.len(),
    ));
    let mut file = Vec::with_capacity(8 + text.len() + (bare.len() - header_end));
    file.extend((text.len() as u64).to_le_bytes());
    file.extend(text.as_bytes());
    file.extend(&bare[header_end..]);
    Some(file)
}

/// Parsed safetensors bytes, with the path used in errors.
pub(crate) struct TensorFile<'a> {
    tensors: SafeTensors<'a>,
    metadata: HashMap<String, String>,
    pub(crate) path: &'a Path,
}

impl<'a> TensorFile<'a> {
    pub(crate) fn parse(bytes: &'a [u8], path: &'a Path) -> Result<Self> {
        let tensors = SafeTensors::deserialize(bytes)
            .map_err(|e| bad_file(path, format!("not a valid safetensors file: {e}")))?;
        let (_, header) = SafeTensors::read_metadata(bytes)
            .map_err(|e| bad_file(path, format!("not a valid safetensors file: {e}")))?;
        let metadata = header.metadata().clone().unwrap_or_default();
        Ok(TensorFile {
            tensors,
            metadata,
            path,
        })
    }

    /// A metadata entry as it is written, if the file has it.
    pub(crate) fn metadata(&self, key: &str) -> Option<&str> {
        self.metadata.get(key).map(String::as_str)
    }

    /// A metadata entry, parsed as JSON.
    pub(crate) fn json<T: for<'de> Deserialize<'de>>(&self, key: &str) -> Result<T> {
        let text = self.metadata.get(key).ok_or_else(|| {
            bad_file(
                self.path,
                format!(
                    "no {key:?} in the file's metadata: not a lernmi file (keys: {:?})",
                    self.metadata.keys().collect::<Vec<_>>()
                ),
            )
        })?;
        serde_json::from_str(text)
            .map_err(|e| bad_file(self.path, format!("metadata {key:?} is malformed: {e}")))
    }

    pub(crate) fn tensor(&self, name: &str) -> Result<TensorView<'a>> {
        self.tensors
            .tensor(name)
            .map_err(|_| bad_file(self.path, format!("tensor {name:?} is missing")))
    }

    /// The names of all tensors in the file.
    pub(crate) fn names(&self) -> Vec<&str> {
        self.tensors.names()
    }

    /// Copies a tensor out as floats after checking its dtype, shape and values.
    fn values<F: Float>(&self, name: &str, shape: &[usize]) -> Result<Vec<F>> {
        let view = self.tensor(name)?;
        if view.dtype() != dtype_of::<F>() {
            return Err(bad_file(
                self.path,
                format!(
                    "tensor {name:?} is {:?}, expected {:?} (this network is {})",
                    view.dtype(),
                    dtype_of::<F>(),
                    F::NAME
                ),
            ));
        }
        if view.shape() != shape {
            return Err(bad_file(
                self.path,
                format!(
                    "tensor {name:?} has shape {:?}, expected {shape:?}",
                    view.shape()
                ),
            ));
        }
        let width = std::mem::size_of::<F>();
        let values: Vec<F> = view
            .data()
            .chunks_exact(width)
            .map(|b| {
                if width == 4 {
                    F::of(f64::from(f32::from_le_bytes([b[0], b[1], b[2], b[3]])))
                } else {
                    F::of(f64::from_le_bytes([
                        b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7],
                    ]))
                }
            })
            .collect();
        if let Some((index, x)) = values.iter().enumerate().find(|(_, x)| !x.is_finite()) {
            return Err(bad_file(
                self.path,
                format!("tensor {name:?} holds a non-finite value ({x}) at index {index}"),
            ));
        }
        Ok(values)
    }

    /// A matrix tensor of exactly `rows × cols`, in the column-major layout the engine uses.
    pub(crate) fn matrix<F: Float>(
        &self,
        name: &str,
        rows: usize,
        cols: usize,
    ) -> Result<Array2<F>> {
        let values = self.values::<F>(name, &[rows, cols])?;
        let row_major = Array2::from_shape_vec((rows, cols), values)
            .map_err(|e| bad_file(self.path, format!("tensor {name:?}: {e}")))?;
        let mut by_input = Array2::zeros((rows, cols).f());
        by_input.assign(&row_major);
        Ok(by_input)
    }

    /// A vector tensor of exactly `len` elements.
    pub(crate) fn vector<F: Float>(&self, name: &str, len: usize) -> Result<Array1<F>> {
        Ok(Array1::from(self.values::<F>(name, &[len])?))
    }
}

/// The largest file [`crate::Network::load`] and [`crate::io::checkpoint::Checkpoint::load`] read: 4 GiB,
/// room for a billion `f32` parameters (a third as many in a checkpoint of Adam, which keeps
/// two moments per parameter). A larger file is refused before it is
/// read, so a damaged or hostile one cannot exhaust memory; `load_with_limit` takes another
/// limit.
pub const DEFAULT_MAX_FILE_BYTES: u64 = 4 << 30;

/// Reads a whole file of at most `limit` bytes, naming it in errors.
///
/// The length is checked before anything is read, and reading stops one byte past the limit,
/// so neither a huge (sparse) file nor one that grows while it is read (a pipe, a device) can
/// take more than `limit` bytes of memory.
pub(crate) fn read_file(path: &Path, limit: u64) -> Result<Vec<u8>> {
    let io = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let too_large = |held: String| {
        bad_file(
            path,
            format!(
                "the file holds {held}, over the limit of {limit} bytes (load_with_limit \
                 takes a higher one)"
            ),
        )
    };
    let file = File::open(path).map_err(io)?;
    let len = file.metadata().map_err(io)?.len();
    if len > limit {
        return Err(too_large(format!("{len} bytes")));
    }
    let mut bytes = Vec::new();
    bytes
        .try_reserve_exact(usize::try_from(len).unwrap_or(usize::MAX))
        .map_err(|_| io(std::io::ErrorKind::OutOfMemory.into()))?;
    file.take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(io)?;
    if bytes.len() as u64 > limit {
        return Err(too_large(format!("more than {limit} bytes")));
    }
    Ok(bytes)
}

/// How many temporary names a save tries before it gives up: with 64 random bits per name, a
/// second collision means something other than chance is creating the files.
const TEMPORARY_ATTEMPTS: usize = 8;

/// Deletes the temporary file unless the save completed.
struct Temporary {
    path: PathBuf,
    done: bool,
}

impl Drop for Temporary {
    fn drop(&mut self) {
        if !self.done {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

impl Temporary {
    /// A new, empty file `.{name}.{pid}-{random}.tmp` in `dir`. The name is random, not
    /// counted, because a save killed before its rename leaves its file behind, and the next
    /// process often has the same pid (1 in most containers) and would count the same way.
    fn create(dir: &Path, name: &std::ffi::OsStr) -> Result<(Self, File)> {
        let mut attempt = 0;
        loop {
            let path = dir.join(format!(
                ".{}.{}-{:016x}.tmp",
                name.to_string_lossy(),
                std::process::id(),
                rand::random::<u64>()
            ));
            match OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(file) => return Ok((Temporary { path, done: false }, file)),
                Err(e)
                    if e.kind() == std::io::ErrorKind::AlreadyExists
                        && attempt + 1 < TEMPORARY_ATTEMPTS =>
                {
                    attempt += 1;
                }
                Err(source) => return Err(Error::Io { path, source }),
            }
        }
    }
}

/// Gives the new file the permission bits of the file it replaces, so that a save neither
/// opens a private file to others nor locks them out. (Ownership stays the saver's: changing
/// it needs privileges.) Nothing to do if there is no file yet.
#[cfg(unix)]
fn keep_permissions(path: &Path, file: &File) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    match std::fs::metadata(path) {
        Ok(old) => file.set_permissions(std::fs::Permissions::from_mode(
            old.permissions().mode() & 0o7777,
        )),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// Elsewhere a new file gets the directory's default permissions.
#[cfg(not(unix))]
fn keep_permissions(_: &Path, _: &File) -> std::io::Result<()> {
    Ok(())
}

/// Makes a rename in `dir` durable by syncing the directory.
///
/// An fsync that fails with `EINVAL` or an unsupported-operation error is ignored: that is how
/// a file system that cannot sync directories (some network and FUSE file systems) answers, and
/// the rename is then as durable as that file system makes it. Every other failure, including
/// a directory that cannot be opened for reading, is returned.
#[cfg(unix)]
fn sync_directory(dir: &Path) -> std::io::Result<()> {
    match File::open(dir)?.sync_all() {
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::InvalidInput | std::io::ErrorKind::Unsupported
            ) =>
        {
            Ok(())
        }
        other => other,
    }
}

/// Windows cannot open a directory as a file to sync it; NTFS journals the rename itself.
#[cfg(not(unix))]
fn sync_directory(_: &Path) -> std::io::Result<()> {
    Ok(())
}

/// Writes a file atomically: `contents` writes into a new temporary file in the same directory,
/// which gets the permission bits of the file it replaces (on Unix), is flushed, synced and
/// renamed over `path`, and the directory is synced.
///
/// If `contents` or any step before the rename fails, the temporary file is removed and
/// whatever was at `path` before is untouched; a crash part-way leaves at most a stray
/// `.{name}.{pid}-{random}.tmp` file beside it, which later saves step around. If only the
/// final directory sync fails, the new file is already in place but may not survive a power
/// failure. A file system that cannot sync directories (its fsync answers `EINVAL` or
/// "unsupported", as some network and FUSE file systems do) is not an error: the rename is then
/// as durable as that file system makes it. On Windows the directory is not synced: it cannot
/// be opened as a file, and NTFS journals the rename itself.
///
/// ```
/// # use std::io::Write;
/// let path = std::env::temp_dir().join(format!("lernmi-atomic-{}.txt", std::process::id()));
/// lernmi::io::safetensors::write_atomically(&path, |w| w.write_all(b"first"))?;
/// let failed = lernmi::io::safetensors::write_atomically(&path, |w| {
///     w.write_all(b"half of the sec")?;
///     Err(std::io::Error::other("disk full"))
/// });
/// assert!(failed.is_err());
/// assert_eq!(std::fs::read(&path).unwrap(), b"first");
/// # std::fs::remove_file(&path).ok();
/// # Ok::<(), lernmi::Error>(())
/// ```
///
/// # Errors
/// [`Error::Io`] naming `path` or the temporary file if anything up to the rename fails, and
/// naming the directory if syncing it fails (on Unix, except a file system that cannot sync
/// directories; the directory must be readable).
pub fn write_atomically(
    path: impl AsRef<Path>,
    contents: impl FnOnce(&mut BufWriter<File>) -> std::io::Result<()>,
) -> Result<()> {
    let path = path.as_ref();
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| Error::Io { path, source }
    };
    let name = path.file_name().ok_or_else(|| Error::Io {
        path: path.to_path_buf(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a file name"),
    })?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let (mut temporary, file) = Temporary::create(&dir, name)?;
    keep_permissions(path, &file).map_err(io(path))?;
    let mut writer = BufWriter::new(file);
    contents(&mut writer).map_err(io(path))?;
    writer.flush().map_err(io(path))?;
    let file = writer.into_inner().map_err(|e| io(path)(e.into_error()))?;
    file.sync_all().map_err(io(path))?;
    drop(file);
    std::fs::rename(&temporary.path, path).map_err(io(path))?;
    temporary.done = true;
    sync_directory(&dir).map_err(io(&dir))
}
