//! Standardisation: each feature shifted by its mean and divided by its standard deviation,
//! both taken from the training data, so that the network sees features of mean 0 and
//! variance 1 whatever their units.
//!
//! A [`Standardizer`] is meant to be stored with the model it was trained with, under the model
//! file's metadata key [`METADATA_KEY`] (the JSON of [`Standardizer::to_metadata`]), so that
//! `predict` on raw features works after a load.

use ndarray::{ArrayView2, ArrayViewMut2, Axis};
use serde::{Deserialize, Serialize};

use crate::{Error, Float, Result};

/// The model-file metadata key meant to hold a [`Standardizer`]'s JSON.
pub const METADATA_KEY: &str = "lernmi.standardize";

/// The per-feature mean and standard deviation of a training set.
///
/// The standard deviation is the population one (divided by n, not n − 1), as scikit-learn's
/// `StandardScaler` takes it. A feature of standard deviation 0 (constant in the training data)
/// is centred but not scaled: dividing by 0 would give NaN or infinity, and any scale is as good
/// as another for a feature that never varied.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Standardizer {
    /// The mean of each feature.
    pub mean: Vec<f64>,
    /// The standard deviation of each feature (0: the feature is centred only).
    pub std: Vec<f64>,
}

impl Standardizer {
    /// Means and standard deviations of the columns of `features` (one row per sample),
    /// accumulated in `f64` row by row in order, so the result does not depend on threads.
    ///
    /// # Errors
    /// [`Error::Empty`] without rows; [`Error::NonFinite`] for a NaN or infinite feature, or
    /// for features whose spread overflows `f64`.
    pub fn fit<F: Float>(features: ArrayView2<'_, F>) -> Result<Self> {
        if features.nrows() == 0 {
            return Err(Error::Empty {
                what: "training set",
            });
        }
        if let Some((index, value)) = features.iter().enumerate().find(|(_, x)| !x.is_finite()) {
            return Err(Error::NonFinite {
                what: "features",
                index,
                value: value.to_f64_lossless(),
            });
        }
        let n = features.nrows() as f64;
        let mut mean = vec![0.0; features.ncols()];
        for row in features.axis_iter(Axis(0)) {
            for (m, x) in mean.iter_mut().zip(row) {
                *m += x.to_f64_lossless();
            }
        }
        mean.iter_mut().for_each(|m| *m /= n);
        // Two passes: the sum of squared deviations from the mean, unlike E[x²] − E[x]², does
        // not cancel catastrophically for features far from 0.
        let mut var = vec![0.0; features.ncols()];
        for row in features.axis_iter(Axis(0)) {
            for ((v, m), x) in var.iter_mut().zip(&mean).zip(row) {
                let d = x.to_f64_lossless() - m;
                *v += d * d;
            }
        }
        let std: Vec<f64> = var.iter().map(|v| (v / n).sqrt()).collect();
        let standardizer = Standardizer { mean, std };
        standardizer.check()?;
        Ok(standardizer)
    }

    /// The number of features.
    pub fn features(&self) -> usize {
        self.mean.len()
    }

    /// Standardises `features` in place: (x − mean) / std, computed in `f64` and rounded once to
    /// `F`; a feature of std 0 becomes x − mean.
    ///
    /// # Errors
    /// [`Error::InputWidth`] if `features` does not have [`Self::features`] columns; as
    /// [`Self::from_metadata`] if the public fields were set to something unusable.
    pub fn transform<F: Float>(&self, mut features: ArrayViewMut2<'_, F>) -> Result<()> {
        self.check()?;
        if features.ncols() != self.features() {
            return Err(Error::InputWidth {
                expected: self.features(),
                got: features.ncols(),
            });
        }
        for mut row in features.axis_iter_mut(Axis(0)) {
            for ((x, &m), &s) in row.iter_mut().zip(&self.mean).zip(&self.std) {
                let centred = x.to_f64_lossless() - m;
                *x = F::of(if s > 0.0 { centred / s } else { centred });
            }
        }
        Ok(())
    }

    /// The JSON stored under [`METADATA_KEY`]: `{"mean":[…],"std":[…]}`, every `f64` written so
    /// that it reads back bit for bit.
    pub fn to_metadata(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| unreachable!("finite floats serialise"))
    }

    /// A standardizer from the JSON of [`Self::to_metadata`].
    ///
    /// # Errors
    /// [`Error::BadFile`] (path `lernmi.standardize`) for malformed JSON, lists of different
    /// lengths, a non-finite value or a negative standard deviation.
    pub fn from_metadata(json: &str) -> Result<Self> {
        let standardizer: Standardizer =
            serde_json::from_str(json).map_err(|e| bad_metadata(e.to_string()))?;
        standardizer.check()?;
        Ok(standardizer)
    }

    /// Whether the fields make a usable standardizer.
    pub(crate) fn check(&self) -> Result<()> {
        if self.mean.len() != self.std.len() {
            return Err(bad_metadata(format!(
                "{} means but {} standard deviations",
                self.mean.len(),
                self.std.len()
            )));
        }
        let values = self.mean.iter().chain(&self.std);
        if let Some((index, &value)) = values.enumerate().find(|(_, x)| !x.is_finite()) {
            return Err(Error::NonFinite {
                what: "standardizer",
                index,
                value,
            });
        }
        if let Some(s) = self.std.iter().find(|&&s| s < 0.0) {
            return Err(bad_metadata(format!("negative standard deviation {s}")));
        }
        Ok(())
    }
}

fn bad_metadata(problem: String) -> Error {
    Error::BadFile {
        path: METADATA_KEY.into(),
        problem,
    }
}
