//! Datasets of labelled images, and MNIST read from its IDX files.
//!
//! Images stay in memory as bytes (60 000 MNIST images are 47 MB as `u8`, 188 MB as `f32`) and
//! are converted to floats, scaled as asked, when a network needs them.

pub mod augment;
pub mod csv;
pub mod datasets;
pub mod download;
pub mod idx;
pub mod npy;
pub mod standardize;
pub mod synthetic;

use std::path::{Path, PathBuf};

use ndarray::{Array2, ArrayView1, ArrayView2};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

pub use augment::Augment;
pub use idx::IdxLimits;

use crate::{Error, Float, Result};

/// How pixel bytes become network inputs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum PixelScale {
    /// byte / 255, in [0, 1].
    #[default]
    Unit,
    /// The byte itself, 0 to 255, as the seed fed them.
    Raw,
}

/// Labelled images held as bytes: row i of `images` is image i, flattened row by row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dataset {
    images: Array2<u8>,
    labels: Vec<u8>,
    rows: usize,
    cols: usize,
    classes: usize,
}

impl Dataset {
    /// A dataset from flattened images (n × rows·cols) and labels.
    ///
    /// # Errors
    /// [`Error::Shape`] if `rows · cols` overflows or the image width is not `rows · cols`,
    /// [`Error::RowCountMismatch`] if counts differ, [`Error::LabelOutOfRange`] for a label ≥
    /// `classes`.
    pub fn new(
        images: Array2<u8>,
        labels: Vec<u8>,
        rows: usize,
        cols: usize,
        classes: usize,
    ) -> Result<Self> {
        let Some(width) = rows.checked_mul(cols) else {
            return Err(Error::Shape {
                what: format!("images of {rows} × {cols} pixels (the product overflows usize)"),
                expected: vec![images.nrows(), rows, cols],
                got: images.shape().to_vec(),
            });
        };
        if images.ncols() != width {
            return Err(Error::Shape {
                what: "images".into(),
                expected: vec![images.nrows(), width],
                got: images.shape().to_vec(),
            });
        }
        if images.nrows() != labels.len() {
            return Err(Error::RowCountMismatch {
                inputs: images.nrows(),
                targets: labels.len(),
            });
        }
        if let Some((index, &label)) = labels
            .iter()
            .enumerate()
            .find(|(_, &l)| usize::from(l) >= classes)
        {
            return Err(Error::LabelOutOfRange {
                label: usize::from(label),
                index,
                classes,
            });
        }
        Ok(Dataset {
            images,
            labels,
            rows,
            cols,
            classes,
        })
    }

    /// Reads an image file and a label file (IDX, raw or gzip) within the default
    /// [`IdxLimits`].
    ///
    /// # Errors
    /// As [`idx::read_images`] and [`idx::read_labels`]; [`Error::BadFile`] naming both files if
    /// their counts differ.
    pub fn from_idx(
        images: impl AsRef<Path>,
        labels: impl AsRef<Path>,
        classes: usize,
    ) -> Result<Self> {
        Self::from_idx_with_limits(images, labels, classes, IdxLimits::default())
    }

    /// [`Dataset::from_idx`] within `limits` (raise them for sets larger than 256 MiB).
    ///
    /// The labels are read first, and the image file's header is checked against their count
    /// before its pixels are read: a damaged or hostile image file costs no more than its
    /// header (and the labels) unless it is consistent with the labels.
    ///
    /// # Errors
    /// As [`Dataset::from_idx`].
    pub fn from_idx_with_limits(
        images: impl AsRef<Path>,
        labels: impl AsRef<Path>,
        classes: usize,
        limits: IdxLimits,
    ) -> Result<Self> {
        let (images, labels) = (images.as_ref(), labels.as_ref());
        let lab = idx::read_labels_with_limits(labels, classes, limits)?;
        let img = idx::read_images_counted(images, Some((lab.len(), labels)), limits)?;
        let bad_dims = || Error::BadFile {
            path: images.to_path_buf(),
            problem: "pixel count does not match the dimensions".into(),
        };
        let width = img.rows.checked_mul(img.cols).ok_or_else(bad_dims)?;
        let pixels =
            Array2::from_shape_vec((img.count, width), img.pixels).map_err(|_| bad_dims())?;
        Dataset::new(pixels, lab, img.rows, img.cols, classes)
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether there are no samples.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Image height in pixels.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Image width in pixels.
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Number of classes.
    pub fn classes(&self) -> usize {
        self.classes
    }

    /// The images as bytes, (n, rows·cols).
    pub fn images(&self) -> ArrayView2<'_, u8> {
        self.images.view()
    }

    /// Image `i` as bytes.
    ///
    /// # Panics
    /// If `i ≥ len()`.
    pub fn image(&self, i: usize) -> ArrayView1<'_, u8> {
        self.images.row(i)
    }

    /// The labels.
    pub fn labels(&self) -> &[u8] {
        &self.labels
    }

    /// The labels as `usize`.
    pub fn labels_usize(&self) -> Vec<usize> {
        self.labels.iter().map(|&l| usize::from(l)).collect()
    }

    /// The images as network inputs, (n, rows·cols).
    pub fn inputs<F: Float>(&self, scale: PixelScale) -> Array2<F> {
        let factor = match scale {
            PixelScale::Unit => 1.0 / 255.0,
            PixelScale::Raw => 1.0,
        };
        self.images.mapv(|p| F::of(f64::from(p) * factor))
    }

    /// One-hot targets, (n, classes).
    pub fn targets<F: Float>(&self) -> Array2<F> {
        let mut t = Array2::zeros((self.len(), self.classes));
        for (i, &l) in self.labels.iter().enumerate() {
            t[[i, usize::from(l)]] = F::one();
        }
        t
    }

    /// The samples `start..end` as a new dataset.
    ///
    /// # Errors
    /// [`Error::InvalidHyperparameter`] if the range is empty or beyond the end.
    pub fn slice(&self, start: usize, end: usize) -> Result<Dataset> {
        if start >= end || end > self.len() {
            return Err(Error::InvalidHyperparameter {
                name: "dataset range end",
                value: end as f64,
                reason: "must satisfy start < end <= len",
            });
        }
        Ok(self.with_samples(
            self.images.slice(ndarray::s![start..end, ..]).to_owned(),
            self.labels[start..end].to_vec(),
        ))
    }

    /// The dataset with its samples in a seeded random order.
    pub fn shuffled(&self, seed: u64) -> Dataset {
        let mut order: Vec<usize> = (0..self.len()).collect();
        order.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
        let mut images = Array2::zeros(self.images.raw_dim());
        for (dst, &src) in order.iter().enumerate() {
            images.row_mut(dst).assign(&self.images.row(src));
        }
        self.with_samples(images, order.iter().map(|&i| self.labels[i]).collect())
    }

    /// Splits off the last `validation` samples: (training, validation).
    ///
    /// # Errors
    /// [`Error::InvalidHyperparameter`] unless 0 < `validation` < `len()`.
    pub fn split(&self, validation: usize) -> Result<(Dataset, Dataset)> {
        if validation == 0 || validation >= self.len() {
            return Err(Error::InvalidHyperparameter {
                name: "validation size",
                value: validation as f64,
                reason: "must be between 1 and the dataset size minus 1",
            });
        }
        let cut = self.len() - validation;
        Ok((self.slice(0, cut)?, self.slice(cut, self.len())?))
    }

    /// Other samples of the same image size and classes.
    fn with_samples(&self, images: Array2<u8>, labels: Vec<u8>) -> Dataset {
        Dataset {
            images,
            labels,
            rows: self.rows,
            cols: self.cols,
            classes: self.classes,
        }
    }
}

/// MNIST: 60 000 training and 10 000 test images of handwritten digits, 28 × 28, 10 classes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mnist {
    /// The training set, in file order.
    pub train: Dataset,
    /// The test set, in file order.
    pub test: Dataset,
}

/// The canonical MNIST file names, without `.gz`.
pub const MNIST_FILES: [&str; 4] = [
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
];

impl Mnist {
    /// Reads the four MNIST files from `dir`, each either gzip-compressed (`NAME.gz`) or not.
    ///
    /// # Errors
    /// [`Error::Io`] naming the first missing file, and anything [`Dataset::from_idx`] reports.
    pub fn load(dir: impl AsRef<Path>) -> Result<Mnist> {
        let dir = dir.as_ref();
        let [train_images, train_labels, test_images, test_labels] =
            MNIST_FILES.map(|name| find_file(dir, name));
        Ok(Mnist {
            train: Dataset::from_idx(train_images?, train_labels?, 10)?,
            test: Dataset::from_idx(test_images?, test_labels?, 10)?,
        })
    }
}

/// Where [`mnist_or_generated`] found its data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DataSource {
    /// Real MNIST, found in this directory.
    Found(PathBuf),
    /// Real MNIST, downloaded into this directory.
    Downloaded(PathBuf),
    /// Generated MNIST-style digits ([`synthetic`]), **not MNIST**, for this reason.
    Generated {
        /// Why real MNIST could not be had.
        reason: String,
    },
}

impl DataSource {
    /// `"mnist"` or `"generated"`.
    pub fn name(&self) -> &'static str {
        match self {
            DataSource::Found(_) | DataSource::Downloaded(_) => "mnist",
            DataSource::Generated { .. } => "generated",
        }
    }
}

/// Seed of the generated stand-in for MNIST.
const GENERATED_SEED: u64 = 2016;

/// MNIST from the first place that has it, else downloaded (when `allow_download` and the
/// `download` feature are on), else generated MNIST-style digits (60 000 + 10 000).
///
/// Search order ([`download::search_path`]): `explicit` (a program's `--data DIR`), then
/// `$LERNMI_DATA`, `./data/mnist` and the user's cache directory. An explicit directory is
/// strict: if it does not hold MNIST, that is an error rather than a fallback. Downloads go to
/// [`download::cache_dir`] and report through `progress`.
///
/// # Errors
/// [`Error::Io`] if `explicit` lacks MNIST; anything [`Mnist::load`] reports for files that
/// exist but are damaged (a damaged file is never silently replaced by generated data).
pub fn mnist_or_generated(
    explicit: Option<&Path>,
    allow_download: bool,
    progress: &mut dyn FnMut(&download::DownloadEvent<'_>),
) -> Result<(Mnist, DataSource)> {
    dataset_or_generated(&datasets::MNIST, explicit, allow_download, progress)
}

/// [`mnist_or_generated`] for any dataset of [`datasets`]: found in the first directory of its
/// [`search_path`](datasets::DatasetSpec::search_path), else downloaded into its
/// [`cache_dir`](datasets::DatasetSpec::cache_dir), else generated MNIST-style digits (which
/// are none of these datasets; [`DataSource::Generated`] says why).
///
/// # Errors
/// As [`mnist_or_generated`].
pub fn dataset_or_generated(
    spec: &datasets::DatasetSpec,
    explicit: Option<&Path>,
    allow_download: bool,
    progress: &mut dyn FnMut(&download::DownloadEvent<'_>),
) -> Result<(Mnist, DataSource)> {
    if let Some(dir) = explicit {
        return Ok((spec.load(dir)?, DataSource::Found(dir.to_path_buf())));
    }
    if let Some(dir) = spec.locate(None) {
        return Ok((spec.load(&dir)?, DataSource::Found(dir)));
    }
    let title = spec.title;
    let tried = spec
        .search_path(None)
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ");
    let reason = match (allow_download, spec.cache_dir()) {
        (false, _) => format!("{title} not found in {tried} and downloading is off"),
        (true, None) => format!("{title} not found in {tried} and there is no cache directory"),
        (true, Some(cache)) => match fetch(spec, &cache, progress) {
            Ok(()) => return Ok((spec.load(&cache)?, DataSource::Downloaded(cache))),
            Err(e) => format!("{title} not found in {tried}, and the download failed: {e}"),
        },
    };
    let generated = synthetic::generate_mnist_like(60_000, 10_000, GENERATED_SEED)?;
    Ok((generated, DataSource::Generated { reason }))
}

#[cfg(feature = "download")]
fn fetch(
    spec: &datasets::DatasetSpec,
    dir: &Path,
    progress: &mut dyn FnMut(&download::DownloadEvent<'_>),
) -> Result<()> {
    spec.download(dir, progress)
}

#[cfg(not(feature = "download"))]
fn fetch(
    _spec: &datasets::DatasetSpec,
    _dir: &Path,
    _progress: &mut dyn FnMut(&download::DownloadEvent<'_>),
) -> Result<()> {
    Err(Error::BadFile {
        path: _dir.to_path_buf(),
        problem: "built without the `download` feature".into(),
    })
}

/// `dir/NAME.gz` if it exists, else `dir/NAME`, else an error naming the `.gz` path.
fn find_file(dir: &Path, name: &str) -> Result<PathBuf> {
    let gz = dir.join(format!("{name}.gz"));
    let plain = dir.join(name);
    if gz.is_file() {
        Ok(gz)
    } else if plain.is_file() {
        Ok(plain)
    } else {
        Err(Error::Io {
            path: gz,
            source: std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "MNIST file not found (nor without .gz)",
            ),
        })
    }
}
