//! What a network is trained towards or evaluated against: class labels for classification,
//! float rows for regression (or one-hot rows written by hand).

use ndarray::{Array2, ArrayView2, CowArray, Ix2};

use crate::nn::network::one_hot;
use crate::{Float, Result};

/// Targets for [`crate::Trainer::fit`] and [`crate::Network::evaluate`]: class labels (made
/// one-hot inside, one column per output) or target rows. `From` impls let callers pass
/// `&[usize]`, `&Vec<usize>`, an `ArrayView2` or an `&Array2` directly.
#[derive(Clone, Debug)]
pub enum Targets<'a, F: Float> {
    /// The class of each sample, in `0..n_outputs`.
    Labels(&'a [usize]),
    /// One row of targets per sample, `n_outputs` wide.
    Values(ArrayView2<'a, F>),
}

impl<'a, F: Float> Targets<'a, F> {
    /// The target rows: the values as they are, or the labels one-hot in `classes` columns.
    ///
    /// # Errors
    /// As [`one_hot`]: [`crate::Error::LabelOutOfRange`] for a label ≥ `classes`.
    pub fn rows(&self, classes: usize) -> Result<CowArray<'a, F, Ix2>> {
        match *self {
            Targets::Values(values) => Ok(CowArray::from(values)),
            Targets::Labels(labels) => Ok(CowArray::from(one_hot::<F>(labels, classes)?)),
        }
    }
}

impl<'a, F: Float> From<&'a [usize]> for Targets<'a, F> {
    fn from(labels: &'a [usize]) -> Self {
        Targets::Labels(labels)
    }
}

impl<'a, F: Float, const N: usize> From<&'a [usize; N]> for Targets<'a, F> {
    fn from(labels: &'a [usize; N]) -> Self {
        Targets::Labels(labels)
    }
}

impl<'a, F: Float> From<&'a Vec<usize>> for Targets<'a, F> {
    fn from(labels: &'a Vec<usize>) -> Self {
        Targets::Labels(labels)
    }
}

impl<'a, F: Float> From<ArrayView2<'a, F>> for Targets<'a, F> {
    fn from(values: ArrayView2<'a, F>) -> Self {
        Targets::Values(values)
    }
}

impl<'a, F: Float> From<&'a Array2<F>> for Targets<'a, F> {
    fn from(values: &'a Array2<F>) -> Self {
        Targets::Values(values.view())
    }
}
