//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::PathBuf;

use lernmi::data::Mnist;

/// The MNIST directory: `$LERNMI_DATA`, else `../shared/data/mnist` beside the checkout.
/// Missing data fails the test with the paths tried; it never skips.
pub fn mnist_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("LERNMI_DATA") {
        return PathBuf::from(dir);
    }
    let beside = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/data/mnist");
    assert!(
        beside.join("train-images-idx3-ubyte.gz").is_file(),
        "MNIST not found: set LERNMI_DATA to the directory holding the four IDX files \
         (tried {})",
        beside.display()
    );
    beside
}

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
