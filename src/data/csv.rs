//! Tables of numbers from CSV files: a header row, one label column, numeric feature columns.
//!
//! ```text
//! sepal_length,sepal_width,species
//! 5.1,3.5,setosa
//! 6.2,2.9,versicolor
//! ```
//!
//! [`read_classes`] reads class labels, [`read_values`] float targets for regression. Cells may
//! be quoted and are trimmed of surrounding whitespace; blank lines are skipped; a UTF-8 byte
//! order mark is ignored.
//!
//! **Class labels**: if every label cell is a non-negative integer (`0`, `7`, `+3`), that
//! integer is the class. Otherwise the distinct labels, sorted by their bytes (so `"10"` comes
//! before `"9"`), get the classes 0, 1, 2, …, and [`CsvClasses::class_names`] lists them.
//!
//! **Errors** name the file and, for a cell, the line (1-based, as an editor shows it, the header
//! being line 1; for a quoted cell spanning lines, the line its record begins on) and the column
//! (1-based, and its header name): [`Error::BadCell`] for an empty, non-numeric or non-finite
//! cell, or one out of range for the float type; [`Error::BadFile`] with the text
//! `line N: …` for a row whose field count differs from the header's, and for an empty file, a
//! file without data rows, duplicate header names or a missing label or feature column.
//!
//! **Memory**: a file above [`CsvOptions::max_bytes`] ([`DEFAULT_MAX_CSV_BYTES`] unless
//! changed) is refused before it is read, and reading stops at that limit should the file grow.
//! Nothing is allocated from a declared size: the values are collected as they are parsed, so a
//! table takes at most a small multiple of the file's size (every value needs at least two
//! bytes of text, a digit and a separator, and becomes at most 8 bytes).

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::Read;
use std::path::Path;

use ndarray::{Array1, Array2};

use crate::{Error, Float, Result};

/// The largest CSV file read unless [`CsvOptions::max_bytes`] says otherwise: 1 GiB.
pub const DEFAULT_MAX_CSV_BYTES: u64 = 1 << 30;

/// Which columns of a CSV file to read, and how.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CsvOptions {
    /// The header name of the label (target) column.
    pub label: String,
    /// The feature columns, in the order wanted; `None`: every column but the label, in file
    /// order.
    pub features: Option<Vec<String>>,
    /// The field separator (`b','` by default; `b';'` or `b'\t'` for other dialects).
    pub delimiter: u8,
    /// Files larger than this many bytes are refused before they are read.
    pub max_bytes: u64,
}

impl CsvOptions {
    /// Options for a file whose label column is named `label`: every other column a feature,
    /// comma-separated, at most [`DEFAULT_MAX_CSV_BYTES`].
    pub fn new(label: impl Into<String>) -> Self {
        CsvOptions {
            label: label.into(),
            features: None,
            delimiter: b',',
            max_bytes: DEFAULT_MAX_CSV_BYTES,
        }
    }

    /// These feature columns only, in this order.
    pub fn features<S: Into<String>>(mut self, names: impl IntoIterator<Item = S>) -> Self {
        self.features = Some(names.into_iter().map(Into::into).collect());
        self
    }

    /// Another field separator.
    pub fn delimiter(mut self, delimiter: u8) -> Self {
        self.delimiter = delimiter;
        self
    }

    /// Another size limit, in bytes.
    pub fn max_bytes(mut self, max_bytes: u64) -> Self {
        self.max_bytes = max_bytes;
        self
    }
}

/// A table with class labels, from [`read_classes`].
#[derive(Clone, Debug, PartialEq)]
pub struct CsvClasses<F> {
    /// The features, one row per data row of the file.
    pub features: Array2<F>,
    /// The names of the feature columns, in the order of `features`' columns.
    pub feature_names: Vec<String>,
    /// The class of each row.
    pub labels: Vec<usize>,
    /// The number of classes: the largest integer label plus one, or the number of distinct
    /// text labels.
    pub classes: usize,
    /// For text labels, the label of each class (sorted by bytes); `None` for integer labels,
    /// where the class is the integer itself.
    pub class_names: Option<Vec<String>>,
}

/// A table with float targets, from [`read_values`].
#[derive(Clone, Debug, PartialEq)]
pub struct CsvValues<F> {
    /// The features, one row per data row of the file.
    pub features: Array2<F>,
    /// The names of the feature columns, in the order of `features`' columns.
    pub feature_names: Vec<String>,
    /// The target of each row.
    pub targets: Array1<F>,
}

/// Reads a CSV file whose label column holds classes (see the [module docs](self)).
///
/// # Errors
/// [`Error::Io`] if the file cannot be read; [`Error::BadFile`] and [`Error::BadCell`] as the
/// [module docs](self) list them.
pub fn read_classes<F: Float>(
    path: impl AsRef<Path>,
    options: &CsvOptions,
) -> Result<CsvClasses<F>> {
    let path = path.as_ref();
    parse_classes(open_limited(path, options.max_bytes)?, path, options)
}

/// Reads a CSV file whose label column holds float targets.
///
/// # Errors
/// As [`read_classes`]; a target cell must be a finite number.
pub fn read_values<F: Float>(path: impl AsRef<Path>, options: &CsvOptions) -> Result<CsvValues<F>> {
    let path = path.as_ref();
    parse_values(open_limited(path, options.max_bytes)?, path, options)
}

/// [`read_classes`] from a stream; `path` names it in errors. `options.max_bytes` does not
/// apply: bound the stream yourself.
///
/// # Errors
/// As [`read_classes`].
pub fn parse_classes<F: Float>(
    reader: impl Read,
    path: &Path,
    options: &CsvOptions,
) -> Result<CsvClasses<F>> {
    // Rows keep the index of their label among the distinct labels seen, so memory grows with
    // the distinct labels, not with one string per row.
    let mut distinct: HashMap<String, usize> = HashMap::new();
    let mut ids = Vec::new();
    let (features, feature_names) = parse_table::<F>(reader, path, options, &mut |cell| {
        let text = cell_text(cell)?;
        let id = match distinct.get(text) {
            Some(&id) => id,
            None => {
                let next = distinct.len();
                distinct.insert(text.to_owned(), next);
                next
            }
        };
        ids.push(id);
        Ok(())
    })?;
    let (map, classes, class_names) = number_classes(distinct, path)?;
    Ok(CsvClasses {
        features,
        feature_names,
        labels: ids.into_iter().map(|id| map[id]).collect(),
        classes,
        class_names,
    })
}

/// [`read_values`] from a stream; `path` names it in errors. `options.max_bytes` does not
/// apply: bound the stream yourself.
///
/// # Errors
/// As [`read_classes`].
pub fn parse_values<F: Float>(
    reader: impl Read,
    path: &Path,
    options: &CsvOptions,
) -> Result<CsvValues<F>> {
    let mut targets = Vec::new();
    let (features, feature_names) = parse_table::<F>(reader, path, options, &mut |cell| {
        targets.push(cell_value::<F>(cell)?);
        Ok(())
    })?;
    Ok(CsvValues {
        features,
        feature_names,
        targets: Array1::from(targets),
    })
}

/// Classes for the distinct labels (each with its index in order of appearance): the
/// integers themselves if all are integers, else their ranks in byte order. Returns the class
/// of each distinct label, the class count and, for text labels, the class names.
fn number_classes(
    distinct: HashMap<String, usize>,
    path: &Path,
) -> Result<(Vec<usize>, usize, Option<Vec<String>>)> {
    let mut map = vec![0; distinct.len()];
    let integers: Option<Vec<(usize, usize)>> = distinct
        .iter()
        .map(|(text, &id)| text.parse::<usize>().ok().map(|class| (id, class)))
        .collect();
    if let Some(integers) = integers {
        let mut classes = 0;
        for (id, class) in integers {
            map[id] = class;
            classes = classes.max(class.checked_add(1).ok_or_else(|| Error::BadFile {
                path: path.to_path_buf(),
                problem: format!("class label {class} is too large"),
            })?);
        }
        return Ok((map, classes, None));
    }
    let sorted: BTreeMap<String, usize> = distinct.into_iter().collect();
    let mut names = Vec::with_capacity(sorted.len());
    for (class, (name, id)) in sorted.into_iter().enumerate() {
        map[id] = class;
        names.push(name);
    }
    Ok((map, names.len(), Some(names)))
}

/// Which columns are features, and where the label is.
struct Columns {
    /// The header's names, in file order.
    names: Vec<String>,
    /// The 0-based index of the label column.
    label: usize,
    /// The 0-based indices of the feature columns, in output order.
    features: Vec<usize>,
}

/// Parses the header and every row: feature cells into the returned matrix, each label cell
/// through `label`, whose `Err` text becomes an [`Error::BadCell`] for that cell.
fn parse_table<F: Float>(
    reader: impl Read,
    path: &Path,
    options: &CsvOptions,
    label: &mut dyn FnMut(&[u8]) -> std::result::Result<(), String>,
) -> Result<(Array2<F>, Vec<String>)> {
    // The csv crate counts a record's line from the end of the previous record, blank lines
    // included; `Lines` finds the line its text begins on.
    let mut csv = ::csv::ReaderBuilder::new()
        .delimiter(options.delimiter)
        .has_headers(true)
        .flexible(true)
        .trim(::csv::Trim::All)
        .from_reader(Lines::new(reader));
    let header = csv.byte_headers().map_err(|e| csv_error(e, path))?.clone();
    let header_line = csv.get_mut().line_at(0);
    let columns = columns(&header, header_line, path, options)?;
    let width = columns.features.len();
    let bad_cell = |line: u64, column: usize, problem: String| Error::BadCell {
        path: path.to_path_buf(),
        line,
        column: column + 1,
        name: columns.names[column].clone(),
        problem,
    };
    let mut values: Vec<F> = Vec::new();
    let mut record = ::csv::ByteRecord::new();
    let mut rows = 0usize;
    while csv
        .read_byte_record(&mut record)
        .map_err(|e| csv_error(e, path))?
    {
        let line = csv
            .get_mut()
            .line_at(record.position().map_or(0, ::csv::Position::byte));
        if record.len() != header.len() {
            return Err(bad(
                path,
                format!(
                    "line {line}: {} fields where the header has {}",
                    record.len(),
                    header.len()
                ),
            ));
        }
        for &c in &columns.features {
            values.push(cell_value::<F>(&record[c]).map_err(|p| bad_cell(line, c, p))?);
        }
        label(&record[columns.label]).map_err(|p| bad_cell(line, columns.label, p))?;
        rows += 1;
    }
    if rows == 0 {
        return Err(bad(
            path,
            format!("line {header_line} is the header and no data rows follow"),
        ));
    }
    let features_names = columns.features.iter().map(|&c| columns.names[c].clone());
    let feature_names = features_names.collect();
    let features = Array2::from_shape_vec((rows, width), values)
        .map_err(|e| bad(path, format!("internal: {e}")))?;
    Ok((features, feature_names))
}

/// Reads the header: names, the label's column and the feature columns.
fn columns(
    header: &::csv::ByteRecord,
    line: u64,
    path: &Path,
    options: &CsvOptions,
) -> Result<Columns> {
    if header.is_empty() {
        return Err(bad(path, "the file is empty: no header row"));
    }
    let mut names = Vec::with_capacity(header.len());
    let mut index: HashMap<&str, usize> = HashMap::new();
    for (c, cell) in header.iter().enumerate() {
        let name = std::str::from_utf8(cell).map_err(|_| {
            bad(
                path,
                format!("line {line}: column {} has a name that is not UTF-8", c + 1),
            )
        })?;
        if let Some(first) = index.insert(name, c) {
            return Err(bad(
                path,
                format!(
                    "line {line}: duplicate column name {name:?} (columns {} and {})",
                    first + 1,
                    c + 1
                ),
            ));
        }
        names.push(name.to_owned());
    }
    let find = |name: &str, role: &str| {
        index.get(name).copied().ok_or_else(|| {
            bad(
                path,
                format!("line {line}: no {role} column {name:?} (columns: {names:?})"),
            )
        })
    };
    let label = find(&options.label, "label")?;
    let features = match &options.features {
        None => (0..names.len()).filter(|&c| c != label).collect(),
        Some(chosen) => {
            let mut features = Vec::with_capacity(chosen.len());
            for name in chosen {
                let c = find(name, "feature")?;
                if c == label || features.contains(&c) {
                    return Err(bad(
                        path,
                        format!("feature column {name:?} is the label or chosen twice"),
                    ));
                }
                features.push(c);
            }
            features
        }
    };
    Ok(Columns {
        names,
        label,
        features,
    })
}

/// A cell's text: UTF-8 and not empty.
fn cell_text(cell: &[u8]) -> std::result::Result<&str, String> {
    let text = std::str::from_utf8(cell)
        .map_err(|_| format!("the cell is not UTF-8 text ({})", escape(cell)))?;
    if text.is_empty() {
        return Err("the cell is empty".into());
    }
    Ok(text)
}

/// A cell as a finite number of type `F`, parsed straight to `F` so that it rounds once.
fn cell_value<F: Float>(cell: &[u8]) -> std::result::Result<F, String> {
    let text = cell_text(cell)?;
    let value = if F::NAME == "f32" {
        text.parse::<f32>().map(|x| F::of(f64::from(x)))
    } else {
        text.parse::<f64>().map(F::of)
    };
    match value {
        Ok(x) if x.is_finite() => Ok(x),
        Ok(_) if text.parse::<f64>().is_ok_and(f64::is_finite) => {
            Err(format!("{text:?} is out of range for {}", F::NAME))
        }
        Ok(_) => Err(format!("{text:?} is not finite")),
        Err(_) => Err(format!("{text:?} is not a number")),
    }
}

/// Bytes shown with non-printing ones escaped, for error messages.
fn escape(bytes: &[u8]) -> String {
    bytes.escape_ascii().to_string()
}

fn bad(path: &Path, problem: impl Into<String>) -> Error {
    Error::BadFile {
        path: path.to_path_buf(),
        problem: problem.into(),
    }
}

/// A parse error of the csv crate (an I/O failure, or invalid UTF-8 it never reports for byte
/// records) as the crate's error.
fn csv_error(e: ::csv::Error, path: &Path) -> Error {
    let line = e.position().map(::csv::Position::line);
    match e.into_kind() {
        ::csv::ErrorKind::Io(source) if source.kind() == std::io::ErrorKind::FileTooLarge => {
            bad(path, source.to_string())
        }
        ::csv::ErrorKind::Io(source) => Error::Io {
            path: path.to_path_buf(),
            source,
        },
        other => bad(path, format!("line {}: {other:?}", line.unwrap_or(0))),
    }
}

/// Opens a file after checking its length against `limit`; the reader fails with
/// [`std::io::ErrorKind::FileTooLarge`] should the file grow past the limit while it is read.
pub(crate) fn open_limited(path: &Path, limit: u64) -> Result<Limited<File>> {
    let io = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = File::open(path).map_err(io)?;
    let len = file.metadata().map_err(io)?.len();
    if len > limit {
        return Err(too_large(path, len, limit));
    }
    Ok(Limited {
        inner: file,
        left: limit,
        limit,
    })
}

/// The error for a file over its size limit.
pub(crate) fn too_large(path: &Path, len: u64, limit: u64) -> Error {
    bad(
        path,
        format!("the file holds {len} bytes, over the limit of {limit} (max_bytes sets another)"),
    )
}

/// A reader that fails once more than `limit` bytes have come through it.
pub(crate) struct Limited<R> {
    inner: R,
    left: u64,
    limit: u64,
}

impl<R: Read> Read for Limited<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        // Asking for one byte past the limit tells a file that grew from one that ends there.
        let want = buf
            .len()
            .min(usize::try_from(self.left.saturating_add(1)).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        if n as u64 > self.left {
            return Err(std::io::Error::new(
                std::io::ErrorKind::FileTooLarge,
                format!(
                    "the file grew past the limit of {} bytes while it was read",
                    self.limit
                ),
            ));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

/// A reader that notes where each line that is not blank begins, so that a record's byte
/// offset gives its line. Entries are dropped as records are read, so it holds only the lines
/// in the csv reader's buffer.
struct Lines<R> {
    inner: R,
    /// Offset of the next byte.
    at: u64,
    /// The current line, 1-based.
    line: u64,
    /// Where the current line begins.
    line_start: u64,
    /// Whether only a carriage return (or nothing) of the current line has been seen.
    at_start: bool,
    /// (offset, line) of the beginnings of lines that are not blank, in order.
    starts: std::collections::VecDeque<(u64, u64)>,
}

impl<R> Lines<R> {
    fn new(inner: R) -> Self {
        Lines {
            inner,
            at: 0,
            line: 1,
            line_start: 0,
            at_start: true,
            starts: std::collections::VecDeque::new(),
        }
    }

    /// The line of the first text at or after byte `offset` (0 if none has been read), and
    /// forgets the lines before it.
    fn line_at(&mut self, offset: u64) -> u64 {
        while self
            .starts
            .front()
            .is_some_and(|&(start, _)| start < offset)
        {
            self.starts.pop_front();
        }
        self.starts.front().map_or(0, |&(_, line)| line)
    }

    fn note(&mut self, bytes: &[u8]) {
        for &b in bytes {
            if b == b'\n' {
                self.line += 1;
                self.line_start = self.at + 1;
                self.at_start = true;
            } else if self.at_start && b != b'\r' {
                self.starts.push_back((self.line_start, self.line));
                self.at_start = false;
            }
            self.at += 1;
        }
    }
}

impl<R: Read> Read for Lines<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.note(&buf[..n]);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_that_grows_past_the_limit_is_refused() {
        let text = b"a,label\n1,0\n2,1\n";
        let limited = |limit: u64| Limited {
            inner: &text[..],
            left: limit,
            limit,
        };
        let options = CsvOptions::new("label");
        let path = Path::new("t.csv");
        let whole = parse_classes::<f32>(limited(text.len() as u64), path, &options).unwrap();
        assert_eq!(whole.labels, [0, 1]);
        let err = parse_classes::<f32>(limited(12), path, &options).unwrap_err();
        assert!(
            err.to_string()
                .ends_with("the file grew past the limit of 12 bytes while it was read"),
            "{err}"
        );
    }
}
