//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::OnceLock;

use lernmi::data::download::{locate_mnist, search_path};
use lernmi::data::Mnist;

/// The MNIST directory, found the way the examples find it: `$LERNMI_DATA`, else `data/mnist`
/// (cargo runs tests in the package root), else the user's cache (`$XDG_CACHE_HOME/lernmi/mnist`
/// or `~/.cache/lernmi/mnist`); else, with the `download` feature, downloaded and verified into
/// that cache.
///
/// Missing data fails the test with one line saying what to do; it never skips. The search and
/// the download run once per test binary (tests running in parallel wait for the first); test
/// binaries running at once are safe too, as each downloaded file is written under a name of its
/// own and renamed into place only once verified.
#[track_caller]
pub fn mnist_dir() -> PathBuf {
    static DIR: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    match DIR.get_or_init(find_or_download) {
        Ok(dir) => dir.clone(),
        Err(message) => panic!("{message}"),
    }
}

fn find_or_download() -> Result<PathBuf, String> {
    if let Some(dir) = locate_mnist(None) {
        return Ok(dir);
    }
    let here = std::env::current_dir().unwrap_or_default();
    let tried = search_path(None)
        .iter()
        .map(|p| here.join(p).display().to_string())
        .collect::<Vec<_>>()
        .join(", ");
    download().map_err(|why| {
        // One line, whatever the download's error holds.
        let why = why.split_whitespace().collect::<Vec<_>>().join(" ");
        format!(
            "MNIST not found in {tried}, and {why}; set LERNMI_DATA=DIR to a directory holding \
             the four MNIST files (NAME.gz or NAME), or allow the download"
        )
    })
}

/// Downloads MNIST into the user's cache, verified; the reason if it cannot.
#[cfg(feature = "download")]
fn download() -> Result<PathBuf, String> {
    let cache = lernmi::data::download::cache_dir()
        .ok_or("there is no cache directory (HOME and XDG_CACHE_HOME unset)")?;
    eprintln!("MNIST not found; downloading it into {}", cache.display());
    lernmi::data::download::download_mnist(&cache, &mut |_| {})
        .map(|()| cache.clone())
        .map_err(|e| format!("the download into {} failed: {e}", cache.display()))
}

/// Without the `download` feature there is nothing to fall back on.
#[cfg(not(feature = "download"))]
fn download() -> Result<PathBuf, String> {
    Err("the `download` feature is off".into())
}

/// All of MNIST, from [`mnist_dir`].
#[track_caller]
pub fn mnist() -> Mnist {
    let dir = mnist_dir();
    Mnist::load(&dir).unwrap_or_else(|e| panic!("loading MNIST from {}: {e}", dir.display()))
}

/// Neumaier's compensated sum (what Ruby's `Array#sum` does), for comparing weight sums.
pub fn compensated_sum(values: impl IntoIterator<Item = f64>) -> f64 {
    let (mut sum, mut c) = (0.0f64, 0.0f64);
    for v in values {
        let t = sum + v;
        if sum.abs() >= v.abs() {
            c += (sum - t) + v;
        } else {
            c += (v - t) + sum;
        }
        sum = t;
    }
    sum + c
}

/// A small deterministic pseudo-random stream in [-1, 1) for test data (SplitMix64).
pub struct TestRng(pub u64);

impl TestRng {
    pub fn next_f64(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
    }
}
