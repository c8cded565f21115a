//! NumPy's `.npy` arrays and `.npz` archives of them, as features and labels.
//!
//! An `.npy` file is the magic `\x93NUMPY`, a version byte pair (1.0, 2.0 or 3.0), the length of
//! a header (2 bytes little-endian in version 1, 4 bytes after), the header (a Python dict
//! literal such as `{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }`), then the
//! elements. Read here: 1-D and 2-D arrays, C or Fortran order, of the little- or big-endian
//! element types `f4 f8 i1 i2 i4 i8 u1 u2 u4 u8`, converted to the network's float type
//! ([`NpyArray::features`]: a 1-D array of n elements is n rows of one feature) or to class
//! labels ([`NpyArray::labels`]: a 1-D array, or a 2-D one of one column, of non-negative
//! integers, or floats holding such integers). Object arrays (pickled Python objects) are
//! refused, as are structured and other element types, each named in the error.
//!
//! An `.npz` file ([`Npz`]) is a zip archive of `.npy` members, stored (`np.savez`) or deflated
//! (`np.savez_compressed`); members are named without their `.npy` suffix.
//!
//! Nothing in a header is trusted: the element count is computed with checked arithmetic and
//! must match the bytes present before anything is allocated; files are refused above a size
//! limit ([`DEFAULT_MAX_NPY_BYTES`] unless given) before they are read; a deflated member is
//! inflated only as far as the size its archive declares, itself within the limit, and its CRC
//! is checked. Every problem is an [`Error::BadFile`] naming the file (and the member).
//!
//! The zip reader is written here rather than taken from the `zip` crate: reading the central
//! directory of a non-split archive is a few dozen lines over `flate2`, already a dependency,
//! while the `zip` crate brings its own dependencies and its own policy on allocation.

use std::borrow::Cow;
use std::io::Read;
use std::path::{Path, PathBuf};

use ndarray::Array2;

use crate::{Error, Float, Result};

/// The largest `.npy` or `.npz` file read unless a limit is given: 4 GiB.
pub const DEFAULT_MAX_NPY_BYTES: u64 = 4 << 30;

/// The first six bytes of every `.npy` file.
const MAGIC: &[u8; 6] = b"\x93NUMPY";

/// What kind of number an element is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Float,
    Signed,
    Unsigned,
}

/// An element type: kind, size in bytes, byte order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Dtype {
    kind: Kind,
    size: usize,
    big_endian: bool,
}

/// One element, exactly.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Number {
    Float(f64),
    Int(i128),
}

/// A parsed `.npy` array whose elements are still the file's bytes.
#[derive(Clone, Debug)]
pub struct NpyArray<'a> {
    shape: Vec<usize>,
    fortran_order: bool,
    descr: String,
    dtype: Dtype,
    data: &'a [u8],
    path: &'a Path,
    member: Option<&'a str>,
}

/// Reads a whole file of at most `max_bytes` bytes; the length is checked before reading.
///
/// # Errors
/// [`Error::Io`] if it cannot be read, [`Error::BadFile`] if it is over the limit.
pub fn read_limited(path: &Path, max_bytes: u64) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    super::csv::open_limited(path, max_bytes)?
        .read_to_end(&mut bytes)
        .map_err(|source| {
            if source.kind() == std::io::ErrorKind::FileTooLarge {
                bad(path, None, source.to_string())
            } else {
                Error::Io {
                    path: path.to_path_buf(),
                    source,
                }
            }
        })?;
    Ok(bytes)
}

/// The features in an `.npy` file (at most [`DEFAULT_MAX_NPY_BYTES`]): see
/// [`NpyArray::features`].
///
/// # Errors
/// As [`read_limited`], [`NpyArray::parse`] and [`NpyArray::features`].
pub fn read_features<F: Float>(path: impl AsRef<Path>) -> Result<Array2<F>> {
    let path = path.as_ref();
    let bytes = read_limited(path, DEFAULT_MAX_NPY_BYTES)?;
    NpyArray::parse(&bytes, path)?.features()
}

/// The class labels in an `.npy` file (at most [`DEFAULT_MAX_NPY_BYTES`]): see
/// [`NpyArray::labels`].
///
/// # Errors
/// As [`read_limited`], [`NpyArray::parse`] and [`NpyArray::labels`].
pub fn read_labels(path: impl AsRef<Path>) -> Result<Vec<usize>> {
    let path = path.as_ref();
    let bytes = read_limited(path, DEFAULT_MAX_NPY_BYTES)?;
    NpyArray::parse(&bytes, path)?.labels()
}

impl<'a> NpyArray<'a> {
    /// Parses the bytes of an `.npy` file; `path` names it in errors.
    ///
    /// # Errors
    /// [`Error::BadFile`] for a bad magic or version, a malformed header dict, an unsupported
    /// or object element type, a shape whose size overflows, or data shorter or longer than the
    /// shape needs.
    pub fn parse(bytes: &'a [u8], path: &'a Path) -> Result<Self> {
        Self::parse_member(bytes, path, None)
    }

    fn parse_member(bytes: &'a [u8], path: &'a Path, member: Option<&'a str>) -> Result<Self> {
        let fail = |problem: String| bad(path, member, problem);
        if bytes.len() < 8 || &bytes[..6] != MAGIC {
            return Err(fail("not an .npy file (no \\x93NUMPY magic)".into()));
        }
        let (len_bytes, utf8) = match (bytes[6], bytes[7]) {
            (1, 0) => (2, false),
            (2, 0) => (4, false),
            (3, 0) => (4, true),
            (major, minor) => {
                return Err(fail(format!("unsupported .npy version {major}.{minor}")));
            }
        };
        let start = 8 + len_bytes;
        let header_len = match bytes.get(8..start) {
            Some(&[a, b]) => usize::from(u16::from_le_bytes([a, b])),
            Some(&[a, b, c, d]) => u32::from_le_bytes([a, b, c, d]) as usize,
            _ => return Err(fail("truncated in the header length".into())),
        };
        let end = start
            .checked_add(header_len)
            .filter(|&end| end <= bytes.len())
            .ok_or_else(|| fail(format!("header of {header_len} bytes runs past the end")))?;
        let raw = &bytes[start..end];
        let text: Cow<'_, str> = if utf8 {
            Cow::Borrowed(std::str::from_utf8(raw).map_err(|_| fail("header is not UTF-8".into()))?)
        } else {
            Cow::Owned(raw.iter().map(|&b| char::from(b)).collect())
        };
        let header = Header::parse(&text).map_err(|e| fail(format!("malformed header: {e}")))?;
        let dtype = parse_descr(&header.descr).map_err(fail)?;
        let count = header
            .shape
            .iter()
            .try_fold(1usize, |n, &d| n.checked_mul(d))
            .and_then(|n| n.checked_mul(dtype.size))
            .ok_or_else(|| fail(format!("shape {:?} overflows", header.shape)))?;
        let data = &bytes[end..];
        if data.len() != count {
            return Err(fail(format!(
                "shape {:?} of {} needs {count} bytes of data, the file holds {}",
                header.shape,
                header.descr,
                data.len()
            )));
        }
        Ok(NpyArray {
            shape: header.shape,
            fortran_order: header.fortran_order,
            descr: header.descr,
            dtype,
            data,
            path,
            member,
        })
    }

    /// The shape, outermost dimension first.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// The element type as NumPy writes it (`"<f4"`, `">i8"`, `"|u1"`, …).
    pub fn descr(&self) -> &str {
        &self.descr
    }

    /// Whether the elements are stored column by column.
    pub fn fortran_order(&self) -> bool {
        self.fortran_order
    }

    /// The array as features, rows × columns; a 1-D array of n elements is n rows of one
    /// feature. Floats round once to `F`, as NumPy's `astype` does; integers convert exactly
    /// where `F` can hold them, else round once.
    ///
    /// # Errors
    /// [`Error::BadFile`] for an array that is not 1-D or 2-D, or holds a NaN, an infinity or
    /// a value too large for `F` (named by its row and column).
    pub fn features<F: Float>(&self) -> Result<Array2<F>> {
        let (rows, cols) = match self.shape[..] {
            [n] => (n, 1),
            [r, c] => (r, c),
            _ => {
                return Err(self.fail(format!(
                    "features need 1 or 2 dimensions, shape {:?}",
                    self.shape
                )))
            }
        };
        let mut values = Vec::with_capacity(rows * cols);
        for r in 0..rows {
            for c in 0..cols {
                let value = match self.element(self.flat(r, c, rows, cols)) {
                    Number::Float(x) if !x.is_finite() => {
                        return Err(
                            self.fail(format!("non-finite value {x} at row {r}, column {c}"))
                        );
                    }
                    Number::Float(x) => F::of(x),
                    Number::Int(i) if F::NAME == "f32" => F::of(f64::from(i as f32)),
                    Number::Int(i) => F::of(i as f64),
                };
                if !value.is_finite() {
                    return Err(self.fail(format!(
                        "value at row {r}, column {c} is too large for {}",
                        F::NAME
                    )));
                }
                values.push(value);
            }
        }
        Array2::from_shape_vec((rows, cols), values)
            .map_err(|e| self.fail(format!("internal: {e}")))
    }

    /// The array as class labels: 1-D, or 2-D with one column; non-negative integers, or floats
    /// that hold them exactly.
    ///
    /// # Errors
    /// [`Error::BadFile`] for another shape, or for a negative, fractional, non-finite or too
    /// large label (named by its index).
    pub fn labels(&self) -> Result<Vec<usize>> {
        let n = match self.shape[..] {
            [n] | [n, 1] => n,
            _ => {
                return Err(self.fail(format!(
                    "labels need shape (n,) or (n, 1), got {:?}",
                    self.shape
                )))
            }
        };
        let mut labels = Vec::with_capacity(n);
        for i in 0..n {
            let label = match self.element(i) {
                Number::Int(v) => usize::try_from(v).ok(),
                // Below 2⁵³ every integer is exact in f64, so the cast is exact too.
                Number::Float(x) if x >= 0.0 && x.fract() == 0.0 && x < 2f64.powi(53) => {
                    usize::try_from(x as u64).ok()
                }
                Number::Float(_) => None,
            };
            let label = label.ok_or_else(|| {
                self.fail(format!(
                    "label {:?} at index {i} is not a class (a non-negative integer)",
                    self.element(i)
                ))
            })?;
            labels.push(label);
        }
        Ok(labels)
    }

    /// The index of element (r, c) among the stored elements.
    fn flat(&self, r: usize, c: usize, rows: usize, cols: usize) -> usize {
        if self.fortran_order {
            c * rows + r
        } else {
            r * cols + c
        }
    }

    /// Element `i` in storage order; `i` is below the element count, which `parse` matched to
    /// the data's length.
    fn element(&self, i: usize) -> Number {
        let Dtype {
            kind,
            size,
            big_endian,
        } = self.dtype;
        let bytes = &self.data[i * size..(i + 1) * size];
        let mut word = [0u8; 8];
        if big_endian {
            word[8 - size..].copy_from_slice(bytes);
            word.reverse();
        } else {
            word[..size].copy_from_slice(bytes);
        }
        let bits = u64::from_le_bytes(word);
        let shift = 64 - 8 * size as u32;
        match kind {
            Kind::Float if size == 4 => Number::Float(f64::from(f32::from_bits(bits as u32))),
            Kind::Float => Number::Float(f64::from_bits(bits)),
            // Shifting the sign bit to the top and back sign-extends.
            Kind::Signed => Number::Int(i128::from(((bits << shift) as i64) >> shift)),
            Kind::Unsigned => Number::Int(i128::from(bits)),
        }
    }

    fn fail(&self, problem: String) -> Error {
        bad(self.path, self.member, problem)
    }
}

fn bad(path: &Path, member: Option<&str>, problem: impl Into<String>) -> Error {
    let problem = problem.into();
    Error::BadFile {
        path: path.to_path_buf(),
        problem: match member {
            Some(name) => format!("member {name:?}: {problem}"),
            None => problem,
        },
    }
}

/// An element type from a `descr` string such as `<f4`.
fn parse_descr(descr: &str) -> std::result::Result<Dtype, String> {
    let unsupported =
        || format!("unsupported element type {descr:?} (read: f4 f8 i1 i2 i4 i8 u1 u2 u4 u8)");
    let mut chars = descr.chars();
    let (order, kind) = (chars.next(), chars.next());
    if kind == Some('O') {
        return Err(format!(
            "element type {descr:?} is an object array, pickled Python objects: refused"
        ));
    }
    let size: usize = chars.as_str().parse().map_err(|_| unsupported())?;
    let kind = match (kind, size) {
        (Some('f'), 4 | 8) => Kind::Float,
        (Some('i'), 1 | 2 | 4 | 8) => Kind::Signed,
        (Some('u'), 1 | 2 | 4 | 8) => Kind::Unsigned,
        _ => return Err(unsupported()),
    };
    let big_endian = match order {
        Some('<') => false,
        Some('>') => true,
        Some('|') if size == 1 => false,
        _ => return Err(unsupported()),
    };
    Ok(Dtype {
        kind,
        size,
        big_endian,
    })
}

/// The three keys of an `.npy` header dict.
struct Header {
    descr: String,
    fortran_order: bool,
    shape: Vec<usize>,
}

/// A cursor over a header's text: the small part of Python literal syntax headers use.
struct Literal<'s> {
    text: &'s [u8],
    at: usize,
}

impl Header {
    fn parse(text: &str) -> std::result::Result<Header, String> {
        let mut p = Literal {
            text: text.as_bytes(),
            at: 0,
        };
        let (mut descr, mut fortran, mut shape) = (None, None, None);
        p.expect(b'{')?;
        while !p.eat(b'}') {
            let key = p.string()?;
            p.expect(b':')?;
            let seen = match key.as_str() {
                "descr" if p.peek() == Some(b'[') => {
                    return Err("structured element types are not supported".into());
                }
                "descr" => descr.replace(p.string()?).is_some(),
                "fortran_order" => fortran.replace(p.boolean()?).is_some(),
                "shape" => shape.replace(p.tuple()?).is_some(),
                other => return Err(format!("unexpected key {other:?}")),
            };
            if seen {
                return Err(format!("key {key:?} appears twice"));
            }
            if !p.eat(b',') && p.peek() != Some(b'}') {
                return Err(format!("expected ',' or '}}' at byte {}", p.at));
            }
        }
        if p.peek().is_some() {
            return Err(format!("text after the dict at byte {}", p.at));
        }
        match (descr, fortran, shape) {
            (Some(descr), Some(fortran_order), Some(shape)) => Ok(Header {
                descr,
                fortran_order,
                shape,
            }),
            _ => Err("it needs the keys 'descr', 'fortran_order' and 'shape'".into()),
        }
    }
}

impl Literal<'_> {
    /// The next byte that is not white space, not consumed.
    fn peek(&mut self) -> Option<u8> {
        while self.text.get(self.at).is_some_and(u8::is_ascii_whitespace) {
            self.at += 1;
        }
        self.text.get(self.at).copied()
    }

    fn eat(&mut self, byte: u8) -> bool {
        let found = self.peek() == Some(byte);
        self.at += usize::from(found);
        found
    }

    fn expect(&mut self, byte: u8) -> std::result::Result<(), String> {
        if self.eat(byte) {
            Ok(())
        } else {
            Err(format!(
                "expected {:?} at byte {}",
                char::from(byte),
                self.at
            ))
        }
    }

    /// A string in single or double quotes, without escapes.
    fn string(&mut self) -> std::result::Result<String, String> {
        let quote = self.peek().filter(|q| matches!(q, b'\'' | b'"'));
        let quote = quote.ok_or_else(|| format!("expected a string at byte {}", self.at))?;
        let start = self.at + 1;
        let len = self.text[start..]
            .iter()
            .position(|&b| b == quote)
            .ok_or("unterminated string")?;
        let s = &self.text[start..start + len];
        if s.contains(&b'\\') {
            return Err("escapes in strings are not supported".into());
        }
        self.at = start + len + 1;
        String::from_utf8(s.to_vec()).map_err(|_| "a string is not UTF-8".into())
    }

    fn boolean(&mut self) -> std::result::Result<bool, String> {
        self.peek();
        for (word, value) in [(&b"True"[..], true), (&b"False"[..], false)] {
            if self.text[self.at..].starts_with(word) {
                self.at += word.len();
                return Ok(value);
            }
        }
        Err(format!("expected True or False at byte {}", self.at))
    }

    /// A tuple of non-negative integers (Python 2's `3L` included): `()`, `(3,)`, `(3, 4)`.
    fn tuple(&mut self) -> std::result::Result<Vec<usize>, String> {
        self.expect(b'(')?;
        let mut dims = Vec::new();
        while !self.eat(b')') {
            self.peek();
            let digits = self.text[self.at..]
                .iter()
                .take_while(|b| b.is_ascii_digit())
                .count();
            if digits == 0 || dims.len() >= 32 {
                return Err(format!("expected a dimension at byte {}", self.at));
            }
            let text = std::str::from_utf8(&self.text[self.at..self.at + digits]).unwrap_or("");
            dims.push(
                text.parse()
                    .map_err(|_| format!("dimension {text} is too large"))?,
            );
            self.at += digits;
            if self.text.get(self.at) == Some(&b'L') {
                self.at += 1;
            }
            if !self.eat(b',') && self.peek() != Some(b')') {
                return Err(format!("expected ',' or ')' at byte {}", self.at));
            }
        }
        Ok(dims)
    }
}

/// An `.npz` archive: named `.npy` members, stored or deflated.
#[derive(Clone, Debug)]
pub struct Npz {
    bytes: Vec<u8>,
    members: Vec<Member>,
    path: PathBuf,
    max_bytes: u64,
}

/// A member as the central directory describes it.
#[derive(Clone, Debug)]
struct Member {
    name: String,
    method: u16,
    flags: u16,
    crc: u32,
    compressed: u64,
    size: u64,
    offset: u64,
}

/// Signatures of the zip records read.
const END_OF_DIRECTORY: u32 = 0x0605_4b50;
const DIRECTORY_ENTRY: u32 = 0x0201_4b50;
const LOCAL_HEADER: u32 = 0x0403_4b50;

impl Npz {
    /// Reads an archive of at most [`DEFAULT_MAX_NPY_BYTES`].
    ///
    /// # Errors
    /// As [`Npz::open_with_limit`].
    pub fn open(path: impl AsRef<Path>) -> Result<Npz> {
        Npz::open_with_limit(path, DEFAULT_MAX_NPY_BYTES)
    }

    /// Reads an archive of at most `max_bytes`, whose members inflate to at most `max_bytes`
    /// each.
    ///
    /// # Errors
    /// As [`read_limited`] and [`Npz::from_bytes`].
    pub fn open_with_limit(path: impl AsRef<Path>, max_bytes: u64) -> Result<Npz> {
        let path = path.as_ref();
        Npz::from_bytes(read_limited(path, max_bytes)?, path, max_bytes)
    }

    /// An archive from its bytes; `path` names it in errors, and members inflate to at most
    /// `max_bytes` each.
    ///
    /// # Errors
    /// [`Error::BadFile`] if the zip directory is missing, malformed, points outside the
    /// file, spans disks, or is ZIP64's.
    pub fn from_bytes(bytes: Vec<u8>, path: impl Into<PathBuf>, max_bytes: u64) -> Result<Npz> {
        let path = path.into();
        let members = read_directory(&bytes).map_err(|p| bad(&path, None, p))?;
        Ok(Npz {
            bytes,
            members,
            path,
            max_bytes,
        })
    }

    /// The members' names, without `.npy`, in directory order.
    pub fn names(&self) -> Vec<&str> {
        let names = self.members.iter().map(|m| m.name.as_str());
        names.map(|n| n.strip_suffix(".npy").unwrap_or(n)).collect()
    }

    /// The features in member `name` (with or without `.npy`): see [`NpyArray::features`].
    ///
    /// # Errors
    /// [`Error::BadFile`] for a missing, encrypted, damaged or oversized member, and as
    /// [`NpyArray::parse`] and [`NpyArray::features`].
    pub fn features<F: Float>(&self, name: &str) -> Result<Array2<F>> {
        let (member, bytes) = self.member(name)?;
        NpyArray::parse_member(&bytes, &self.path, Some(&member.name))?.features()
    }

    /// The labels in member `name` (with or without `.npy`): see [`NpyArray::labels`].
    ///
    /// # Errors
    /// As [`Npz::features`], and as [`NpyArray::labels`].
    pub fn labels(&self, name: &str) -> Result<Vec<usize>> {
        let (member, bytes) = self.member(name)?;
        NpyArray::parse_member(&bytes, &self.path, Some(&member.name))?.labels()
    }

    /// A member's `.npy` bytes, inflated and checked against its CRC.
    fn member(&self, name: &str) -> Result<(&Member, Cow<'_, [u8]>)> {
        let member = self
            .members
            .iter()
            .find(|m| m.name == name || m.name.strip_suffix(".npy") == Some(name))
            .ok_or_else(|| {
                bad(
                    &self.path,
                    None,
                    format!("no member {name:?} (members: {:?})", self.names()),
                )
            })?;
        let fail = |p: String| bad(&self.path, Some(&member.name), p);
        let data = member_data(&self.bytes, member).map_err(fail)?;
        if member.size > self.max_bytes {
            return Err(fail(format!(
                "inflates to {} bytes, over the limit of {}",
                member.size, self.max_bytes
            )));
        }
        let bytes = match member.method {
            0 if member.size == member.compressed => Cow::Borrowed(data),
            0 => return Err(fail("stored member whose sizes differ".into())),
            8 => Cow::Owned(inflate(data, member.size).map_err(fail)?),
            m => {
                return Err(fail(format!(
                    "compression method {m} (read: 0 stored, 8 deflated)"
                )))
            }
        };
        let mut crc = flate2::Crc::new();
        crc.update(&bytes);
        if crc.sum() != member.crc {
            return Err(fail(format!(
                "CRC {:#010x}, the directory says {:#010x}",
                crc.sum(),
                member.crc
            )));
        }
        Ok((member, bytes))
    }
}

/// Inflates a deflate stream that must give exactly `size` bytes; the buffer grows only as
/// output arrives, so a false size costs nothing.
fn inflate(data: &[u8], size: u64) -> std::result::Result<Vec<u8>, String> {
    let mut out = Vec::new();
    flate2::read::DeflateDecoder::new(data)
        .take(size.saturating_add(1))
        .read_to_end(&mut out)
        .map_err(|e| format!("corrupt deflate stream: {e}"))?;
    if out.len() as u64 != size {
        return Err(format!(
            "inflates to {}{} bytes, the directory says {size}",
            if out.len() as u64 > size {
                "more than "
            } else {
                ""
            },
            out.len().min(usize::try_from(size).unwrap_or(usize::MAX))
        ));
    }
    Ok(out)
}

/// Little-endian integers at an offset, `None` past the end.
fn u16_at(bytes: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(
        bytes.get(at..at.checked_add(2)?)?.try_into().ok()?,
    ))
}

fn u32_at(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(
        bytes.get(at..at.checked_add(4)?)?.try_into().ok()?,
    ))
}

fn u64_at(bytes: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(
        bytes.get(at..at.checked_add(8)?)?.try_into().ok()?,
    ))
}

/// The members listed in the central directory.
fn read_directory(bytes: &[u8]) -> std::result::Result<Vec<Member>, String> {
    // The end record is 22 bytes plus a comment of up to 65 535: search that far back for the
    // one whose comment ends the file.
    let earliest = bytes.len().saturating_sub(22 + 0xffff);
    let end = (earliest..=bytes.len().saturating_sub(22))
        .rev()
        .find(|&at| {
            u32_at(bytes, at) == Some(END_OF_DIRECTORY)
                && u16_at(bytes, at + 20).map(|c| at + 22 + usize::from(c)) == Some(bytes.len())
        })
        .ok_or("not a zip archive (no end of central directory record)")?;
    let field = |at: usize| u16_at(bytes, end + at).unwrap_or(0);
    let count = usize::from(field(10));
    let (size, offset) = (u32_at(bytes, end + 12), u32_at(bytes, end + 16));
    let (size, offset) = (size.unwrap_or(0) as usize, offset.unwrap_or(0) as usize);
    if field(4) != 0 || field(6) != 0 || field(8) != field(10) {
        return Err("archives split over several disks are not supported".into());
    }
    if count == 0xffff || size == 0xffff_ffff || offset == 0xffff_ffff {
        return Err("ZIP64 archives are not supported".into());
    }
    if offset.checked_add(size).is_none_or(|e| e > end) {
        return Err("the central directory lies outside the file".into());
    }
    let directory = &bytes[offset..offset + size];
    let mut members = Vec::with_capacity(count.min(size / 46));
    let mut at = 0;
    for i in 0..count {
        let (member, next) =
            directory_entry(directory, at).ok_or(format!("directory entry {i} is malformed"))?;
        members.push(member);
        at = next;
    }
    Ok(members)
}

/// The directory entry at `at`, and where the next one begins.
fn directory_entry(dir: &[u8], at: usize) -> Option<(Member, usize)> {
    if u32_at(dir, at)? != DIRECTORY_ENTRY {
        return None;
    }
    let name_len = usize::from(u16_at(dir, at + 28)?);
    let extra_len = usize::from(u16_at(dir, at + 30)?);
    let comment_len = usize::from(u16_at(dir, at + 32)?);
    let name_at = at + 46;
    let name = dir.get(name_at..name_at + name_len)?;
    let extra = dir.get(name_at + name_len..name_at + name_len + extra_len)?;
    let mut member = Member {
        name: String::from_utf8_lossy(name).into_owned(),
        flags: u16_at(dir, at + 8)?,
        method: u16_at(dir, at + 10)?,
        crc: u32_at(dir, at + 16)?,
        compressed: u64::from(u32_at(dir, at + 20)?),
        size: u64::from(u32_at(dir, at + 24)?),
        offset: u64::from(u32_at(dir, at + 42)?),
    };
    zip64_sizes(&mut member, extra)?;
    Some((member, name_at + name_len + extra_len + comment_len))
}

/// Replaces the sizes and offset a directory entry marks as 0xffffffff by those of its ZIP64
/// extra field, in the order the format gives them.
fn zip64_sizes(member: &mut Member, extra: &[u8]) -> Option<()> {
    let mut at = 0;
    while at + 4 <= extra.len() {
        let (id, len) = (u16_at(extra, at)?, usize::from(u16_at(extra, at + 2)?));
        let body = extra.get(at + 4..at + 4 + len)?;
        if id == 1 {
            let mut read = 0;
            for field in [&mut member.size, &mut member.compressed, &mut member.offset] {
                if *field == 0xffff_ffff {
                    *field = u64_at(body, read)?;
                    read += 8;
                }
            }
        }
        at += 4 + len;
    }
    Some(())
}

/// A member's compressed bytes, found through its local header.
fn member_data<'b>(bytes: &'b [u8], member: &Member) -> std::result::Result<&'b [u8], String> {
    if member.flags & 1 != 0 {
        return Err("encrypted members are not supported".into());
    }
    let outside = || "the member's data lies outside the file".to_string();
    let at = usize::try_from(member.offset).map_err(|_| outside())?;
    if u32_at(bytes, at) != Some(LOCAL_HEADER) {
        return Err("no local header where the directory points".into());
    }
    let name_len = usize::from(u16_at(bytes, at + 26).ok_or_else(outside)?);
    let extra_len = usize::from(u16_at(bytes, at + 28).ok_or_else(outside)?);
    let start = at + 30 + name_len + extra_len;
    let len = usize::try_from(member.compressed).map_err(|_| outside())?;
    start
        .checked_add(len)
        .and_then(|end| bytes.get(start..end))
        .ok_or_else(outside)
}
