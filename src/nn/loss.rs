//! Loss functions L and the output sensitivity Δ_L = ∂L/∂Z_L they start the backward pass with.
//!
//! Losses are **summed over a sample's outputs and averaged over the batch** (the mean of the
//! per-sample losses), and so are their gradients. With a batch of one this is exactly the
//! seed's per-sample loss; with a batch of B it is what PyTorch's default `reduction="mean"`
//! gives, so learning rates carry over between the two.

use ndarray::{ArrayView2, ArrayViewMut2, Zip};

use crate::{Activation, Error, Float, Result};

/// A loss function comparing the output activations `A` with targets `Y`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Loss {
    /// L = ½ Σₖ (aₖ − yₖ)², the seed's loss: the activation sensitivity is `a − y`
    /// (Lernmi's `expected_output`), and Δ = (a − y) ⊙ σ′(z). Works with every output activation.
    SquaredError,
    /// Cross-entropy, fused with the output activation so that Δ = A − Y exactly:
    /// with [`Activation::Softmax`] it is the categorical −Σₖ yₖ ln aₖ; with
    /// [`Activation::Sigmoid`] the per-output binary −Σₖ [yₖ ln aₖ + (1 − yₖ) ln(1 − aₖ)].
    /// Both are computed from the logits `Z`, so they stay finite for logits of ±1000.
    CrossEntropy,
}

impl Loss {
    /// The loss's name, as used in errors and model descriptions.
    pub fn name(&self) -> &'static str {
        match self {
            Loss::SquaredError => "squared_error",
            Loss::CrossEntropy => "cross_entropy",
        }
    }

    /// Parses a name as printed by [`Loss::name`] (also `mse` and `ce`).
    pub fn from_name(name: &str) -> Option<Loss> {
        match name {
            "squared_error" | "mse" => Some(Loss::SquaredError),
            "cross_entropy" | "ce" => Some(Loss::CrossEntropy),
            _ => None,
        }
    }

    /// Checks that the loss is defined for an output activation.
    ///
    /// # Errors
    /// [`Error::LossActivationMismatch`] for cross-entropy after anything but softmax or sigmoid.
    pub fn check_output(&self, output: Activation) -> Result<()> {
        match (self, output) {
            (Loss::CrossEntropy, Activation::Softmax | Activation::Sigmoid) => Ok(()),
            (Loss::CrossEntropy, other) => Err(Error::LossActivationMismatch {
                loss: self.name(),
                activation: other.name(),
                reason: "cross-entropy needs outputs in (0, 1): use softmax or sigmoid",
            }),
            (Loss::SquaredError, _) => Ok(()),
        }
    }

    /// The loss summed over the rows of a batch (divide by the batch size for the mean).
    ///
    /// # Shapes
    /// `weighted_inputs`, `activations`, `targets`: (batch, n_out).
    ///
    /// # Panics
    /// If the three shapes are not the same.
    pub fn sum<F: Float>(
        &self,
        output: Activation,
        weighted_inputs: ArrayView2<'_, F>,
        activations: ArrayView2<'_, F>,
        targets: ArrayView2<'_, F>,
    ) -> f64 {
        same_shapes(
            "Loss::sum",
            &[weighted_inputs.dim(), activations.dim(), targets.dim()],
        );
        let mut total = 0.0f64;
        match (self, output) {
            (Loss::SquaredError, _) => {
                Zip::from(&activations).and(&targets).for_each(|&a, &y| {
                    let d = (a - y).to_f64_lossless();
                    total += 0.5 * d * d;
                });
            }
            (Loss::CrossEntropy, Activation::Softmax) => {
                Zip::from(weighted_inputs.rows())
                    .and(targets.rows())
                    .for_each(|z, y| {
                        let max = z
                            .iter()
                            .fold(f64::NEG_INFINITY, |m, &v| m.max(v.to_f64_lossless()));
                        let log_sum = z
                            .iter()
                            .map(|&v| (v.to_f64_lossless() - max).exp())
                            .sum::<f64>()
                            .ln();
                        Zip::from(&z).and(&y).for_each(|&z, &y| {
                            let y = y.to_f64_lossless();
                            if y != 0.0 {
                                total -= y * (z.to_f64_lossless() - max - log_sum);
                            }
                        });
                    });
            }
            (Loss::CrossEntropy, _) => {
                Zip::from(&weighted_inputs)
                    .and(&targets)
                    .for_each(|&z, &y| {
                        let (z, y) = (z.to_f64_lossless(), y.to_f64_lossless());
                        total += y * softplus(-z) + (1.0 - y) * softplus(z);
                    });
            }
        }
        total
    }

    /// Writes the output sensitivities Δ_L = ∂Lₛ/∂Z_L of each sample's loss Lₛ (not yet divided
    /// by the batch size) into `sensitivities`.
    ///
    /// # Shapes
    /// All four arrays: (batch, n_out).
    ///
    /// # Panics
    /// If the four shapes are not the same.
    pub fn output_sensitivities<F: Float>(
        &self,
        output: Activation,
        weighted_inputs: ArrayView2<'_, F>,
        activations: ArrayView2<'_, F>,
        targets: ArrayView2<'_, F>,
        mut sensitivities: ArrayViewMut2<'_, F>,
    ) {
        same_shapes(
            "Loss::output_sensitivities",
            &[
                weighted_inputs.dim(),
                activations.dim(),
                targets.dim(),
                sensitivities.dim(),
            ],
        );
        // Lernmi's expected_output: the activation sensitivity a − y; for cross-entropy it is
        // already the output sensitivity.
        Zip::from(&mut sensitivities)
            .and(&activations)
            .and(&targets)
            .for_each(|s, &a, &y| *s = a - y);
        if *self == Loss::SquaredError {
            output.backward_in_place(weighted_inputs, activations, sensitivities);
        }
    }
}

/// Panics unless every shape is the first one.
fn same_shapes(function: &str, shapes: &[(usize, usize)]) {
    assert!(
        shapes.windows(2).all(|pair| pair[0] == pair[1]),
        "{function}: shapes differ: {shapes:?}"
    );
}

/// ln(1 + eˣ), without overflow.
fn softplus(x: f64) -> f64 {
    x.max(0.0) + (-x.abs()).exp().ln_1p()
}
