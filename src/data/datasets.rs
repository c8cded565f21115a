//! MNIST and the datasets published in its format, by name: where each is looked for, the
//! mirrors it is downloaded from, and the SHA-256 sums its files are checked against.
//!
//! | name | env variable | directories | sums of |
//! |---|---|---|---|
//! | `mnist` | `LERNMI_DATA` | `data/mnist`, cache `lernmi/mnist` | decompressed contents |
//! | `fashion-mnist` | `LERNMI_FASHION_MNIST` | `data/fashion-mnist`, cache `lernmi/fashion-mnist` | `.gz` files |
//! | `kmnist` | `LERNMI_KMNIST` | `data/kmnist`, cache `lernmi/kmnist` | `.gz` files |
//!
//! All three use the file names of [`MNIST_FILES`] (with `.gz`), so each has directories and an
//! environment variable of its own: a directory of one must never be taken for another.
//! [`DatasetSpec::search_path`] gives the search order, as [`crate::data::download`] describes
//! it for MNIST.
//!
//! # Where the sums come from
//!
//! - MNIST: the SHA-256 of the decompressed IDX files ([`crate::data::download`]), so that a
//!   mirror that re-compresses the files still verifies.
//! - Fashion-MNIST and KMNIST: their maintainers publish MD5 sums only (Zalando's README,
//!   ROIS-CODH's page; torchvision checks those). The SHA-256 sums here are of the published
//!   `.gz` files, from TensorFlow Datasets' `tensorflow_datasets/url_checksums/fashion_mnist.txt`
//!   and `kmnist.txt` (which list URL, size and SHA-256 of each download). They are checked
//!   against the bytes as downloaded, with
//!   [`download_published`](crate::data::download::download_published).

use std::path::{Path, PathBuf};

use crate::data::{Mnist, MNIST_FILES};
use crate::{Error, Result};

/// What a dataset's SHA-256 sums are taken of.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Sha256Of {
    /// The decompressed contents of each file.
    Contents,
    /// Each `.gz` file as published.
    File,
}

/// A dataset of 28 × 28 grey images in ten classes, in MNIST's four IDX files.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DatasetSpec {
    /// The name programs take, such as `fashion-mnist`.
    pub name: &'static str,
    /// The name to show people, such as `Fashion-MNIST`.
    pub title: &'static str,
    /// The environment variable naming a directory that holds the dataset.
    pub env: &'static str,
    /// The directory name under `data/` and under the cache.
    pub dir: &'static str,
    /// Base URLs of the mirrors, tried in order (plain HTTP: the crate has no TLS stack, and
    /// every file is checked against its sum).
    pub mirrors: &'static [&'static str],
    /// What the sums are taken of.
    pub sha256_of: Sha256Of,
    /// The SHA-256 sums, in hex, of the files of [`MNIST_FILES`] in that order.
    pub sha256: [&'static str; 4],
}

/// MNIST (sums and mirrors as [`crate::data::download`] lists them).
pub const MNIST: DatasetSpec = DatasetSpec {
    name: "mnist",
    title: "MNIST",
    env: crate::data::download::DATA_ENV,
    dir: "mnist",
    mirrors: &[
        "http://ossci-datasets.s3.amazonaws.com/mnist/",
        "http://storage.googleapis.com/cvdf-datasets/mnist/",
    ],
    sha256_of: Sha256Of::Contents,
    sha256: [
        "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
        "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
        "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
        "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
    ],
};

/// Fashion-MNIST, Zalando's pictures of clothes (<https://github.com/zalandoresearch/fashion-mnist>),
/// from its S3 mirror. Sums: TensorFlow Datasets' `url_checksums/fashion_mnist.txt`, of the
/// `.gz` files (Zalando publishes their MD5 sums, 8d4fb7e6…, 25c81989…, bef4ecab…, bb300cfd…).
pub const FASHION_MNIST: DatasetSpec = DatasetSpec {
    name: "fashion-mnist",
    title: "Fashion-MNIST",
    env: "LERNMI_FASHION_MNIST",
    dir: "fashion-mnist",
    mirrors: &["http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"],
    sha256_of: Sha256Of::File,
    sha256: [
        "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
        "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
        "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
        "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
    ],
};

/// Kuzushiji-MNIST, cursive Japanese characters (<http://codh.rois.ac.jp/kmnist/>), from
/// ROIS-CODH. Sums: TensorFlow Datasets' `url_checksums/kmnist.txt`, of the `.gz` files
/// (ROIS-CODH and torchvision give MD5 sums, bdb82020…, e144d726…, 5c965bf0…, 7320c461…).
pub const KMNIST: DatasetSpec = DatasetSpec {
    name: "kmnist",
    title: "KMNIST",
    env: "LERNMI_KMNIST",
    dir: "kmnist",
    mirrors: &["http://codh.rois.ac.jp/kmnist/dataset/kmnist/"],
    sha256_of: Sha256Of::File,
    sha256: [
        "51467d22d8cc72929e2a028a0428f2086b092bb31cfb79c69cc0a90ce135fde4",
        "e38f9ebcd0f3ebcdec7fc8eabdcdaef93bb0df8ea12bee65224341c8183d8e17",
        "edd7a857845ad6bb1d0ba43fe7e794d164fe2dce499a1694695a792adfac43c5",
        "20bb9a0ef54c7db3efc55a92eef5582c109615df22683c380526788f98e42a1c",
    ],
};

/// The datasets known by name.
pub const DATASETS: [&DatasetSpec; 3] = [&MNIST, &FASHION_MNIST, &KMNIST];

/// The dataset called `name` (`mnist`, `fashion-mnist` or `kmnist`).
///
/// # Errors
/// [`Error::UnknownDataset`] listing the known names.
pub fn dataset(name: &str) -> Result<&'static DatasetSpec> {
    DATASETS
        .iter()
        .copied()
        .find(|d| d.name == name)
        .ok_or_else(|| Error::UnknownDataset {
            name: name.to_string(),
            choices: DATASETS.iter().map(|d| d.name).collect(),
        })
}

impl DatasetSpec {
    /// The file names of the download, `NAME.gz` for each of [`MNIST_FILES`].
    pub fn gz_files(&self) -> [String; 4] {
        MNIST_FILES.map(|name| format!("{name}.gz"))
    }

    /// The candidate directories, in order: `explicit`, then the directory named by
    /// [`Self::env`] (if set and not empty), then `data/DIR`, then [`Self::cache_dir`].
    pub fn search_path(&self, explicit: Option<&Path>) -> Vec<PathBuf> {
        let mut dirs = Vec::with_capacity(4);
        dirs.extend(explicit.map(Path::to_path_buf));
        if let Some(dir) = std::env::var_os(self.env).filter(|v| !v.is_empty()) {
            dirs.push(PathBuf::from(dir));
        }
        dirs.push(Path::new("data").join(self.dir));
        dirs.extend(self.cache_dir());
        dirs
    }

    /// Where a download goes: `lernmi/DIR` in the user's cache (see
    /// [`crate::data::download::cache_dir`]); `None` without one.
    pub fn cache_dir(&self) -> Option<PathBuf> {
        cache_base().map(|base| base.join("lernmi").join(self.dir))
    }

    /// Whether `dir` holds the four files, each as `NAME.gz` or `NAME` (only their presence is
    /// checked).
    pub fn has_files(&self, dir: &Path) -> bool {
        MNIST_FILES
            .iter()
            .all(|name| dir.join(format!("{name}.gz")).is_file() || dir.join(name).is_file())
    }

    /// The first directory of [`Self::search_path`] that holds the dataset.
    pub fn locate(&self, explicit: Option<&Path>) -> Option<PathBuf> {
        self.search_path(explicit)
            .into_iter()
            .find(|dir| self.has_files(dir))
    }

    /// The dataset's training and test sets from `dir`.
    ///
    /// # Errors
    /// As [`Mnist::load`].
    pub fn load(&self, dir: impl AsRef<Path>) -> Result<Mnist> {
        Mnist::load(dir)
    }

    /// Downloads the four `.gz` files into `dir` from [`Self::mirrors`], each checked against
    /// its sum; files already there and verified are kept.
    ///
    /// # Errors
    /// As [`crate::data::download::download_files`].
    #[cfg(feature = "download")]
    pub fn download(
        &self,
        dir: &Path,
        progress: &mut dyn FnMut(&crate::data::download::DownloadEvent<'_>),
    ) -> Result<()> {
        use crate::data::download::{
            download_files, download_published, sha256_from_hex, ExpectedFile, PublishedFile,
        };
        let names = self.gz_files();
        let sums = self.sha256.map(sha256_from_hex);
        let pairs = names.iter().zip(sums);
        match self.sha256_of {
            Sha256Of::Contents => {
                let files: Vec<_> = pairs
                    .map(|(name, sum)| ExpectedFile {
                        name,
                        decompressed_sha256: sum,
                    })
                    .collect();
                download_files(dir, self.mirrors, &files, progress)
            }
            Sha256Of::File => {
                let files: Vec<_> = pairs
                    .map(|(name, sha256)| PublishedFile { name, sha256 })
                    .collect();
                download_published(dir, self.mirrors, &files, progress)
            }
        }
    }
}

/// The user's cache directory: `$XDG_CACHE_HOME` if absolute, else `$HOME/.cache`, else
/// `%LOCALAPPDATA%`.
fn cache_base() -> Option<PathBuf> {
    let var = |name| {
        std::env::var_os(name)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    var("XDG_CACHE_HOME")
        .filter(|p| p.is_absolute())
        .or_else(|| var("HOME").map(|home| home.join(".cache")))
        .or_else(|| var("LOCALAPPDATA"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_find_their_specs() {
        assert_eq!(dataset("mnist").unwrap(), &MNIST);
        assert_eq!(dataset("fashion-mnist").unwrap(), &FASHION_MNIST);
        assert_eq!(dataset("kmnist").unwrap(), &KMNIST);
        assert_eq!(
            FASHION_MNIST.gz_files()[0],
            "train-images-idx3-ubyte.gz".to_string()
        );
        assert_eq!(
            KMNIST.gz_files()[3],
            "t10k-labels-idx1-ubyte.gz".to_string()
        );
        assert_eq!(FASHION_MNIST.sha256_of, Sha256Of::File);
        assert!(FASHION_MNIST.sha256[0].starts_with("3aede38d"));
        assert!(KMNIST.sha256[0].starts_with("51467d22"));
    }

    #[test]
    fn a_wrong_name_lists_the_choices() {
        let e = dataset("cifar").unwrap_err();
        let Error::UnknownDataset { name, choices } = &e else {
            panic!("{e:?}")
        };
        assert_eq!(name, "cifar");
        assert_eq!(choices, &["mnist", "fashion-mnist", "kmnist"]);
        assert!(
            e.to_string().contains("mnist, fashion-mnist, kmnist"),
            "{e}"
        );
        assert!(dataset("MNIST").is_err());
    }

    #[test]
    fn sums_are_64_hex_digits_and_distinct() {
        let all: Vec<&str> = DATASETS.iter().flat_map(|d| d.sha256).collect();
        for sum in &all {
            assert_eq!(sum.len(), 64, "{sum}");
            assert!(sum
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
        }
        let mut unique = all.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), all.len());
    }

    #[test]
    fn directories_and_variables_do_not_collide() {
        for (i, a) in DATASETS.iter().enumerate() {
            for b in &DATASETS[i + 1..] {
                assert_ne!(a.dir, b.dir);
                assert_ne!(a.env, b.env);
                if let (Some(x), Some(y)) = (a.cache_dir(), b.cache_dir()) {
                    assert_ne!(x, y);
                }
            }
            let path = a.search_path(None);
            assert!(path.contains(&Path::new("data").join(a.dir)));
            assert!(a
                .mirrors
                .iter()
                .all(|m| m.starts_with("http://") && m.ends_with('/')));
        }
        assert_eq!(MNIST.env, "LERNMI_DATA");
        if let Some(cache) = FASHION_MNIST.cache_dir() {
            assert!(cache.ends_with(Path::new("lernmi").join("fashion-mnist")));
        }
    }
}
