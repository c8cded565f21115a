//! Activation functions σ and their derivatives, applied to whole batches.
//!
//! Each layer maps its weighted inputs `Z` to activations `A = σ(Z)` (equation (F) in
//! [`crate::notation`]); the backward pass turns the activation sensitivity ∂L/∂A into the
//! output sensitivity ∂L/∂Z (equation (B2)). All activations but softmax act element by
//! element; softmax acts on each row (sample) as a whole and belongs to the output layer.

use ndarray::{ArrayView2, ArrayViewMut2, Axis, Zip};

use crate::fast::elementwise;

use serde::{Deserialize, Serialize};

use crate::Float;

/// An activation function σ.
///
/// In files (the architecture of [`crate::io::model`]) an activation is a JSON object tagged by
/// its [`Activation::name`], such as `{"name":"relu"}` or `{"name":"leaky_relu","slope":0.01}`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "name", rename_all = "snake_case", deny_unknown_fields)]
#[non_exhaustive]
pub enum Activation {
    /// The logistic function σ(z) = 1 / (1 + e^−z), Lernmi's only activation; σ′ = a(1 − a).
    Sigmoid,
    /// The hyperbolic tangent; σ′ = 1 − a².
    Tanh,
    /// max(0, z); σ′ = 1 for z > 0, else 0.
    Relu,
    /// z for z > 0, else `slope`·z; σ′ = 1 or `slope`.
    LeakyRelu {
        /// The slope for negative inputs, typically 0.01.
        slope: f64,
    },
    /// σ(z) = z.
    Identity,
    /// Row-wise softmax, aᵢ = e^zᵢ / Σⱼ e^zⱼ, computed stably (max subtracted). Output layer only.
    Softmax,
}

impl Activation {
    /// The activation's name, as used in errors and model descriptions.
    pub fn name(&self) -> &'static str {
        match self {
            Activation::Sigmoid => "sigmoid",
            Activation::Tanh => "tanh",
            Activation::Relu => "relu",
            Activation::LeakyRelu { .. } => "leaky_relu",
            Activation::Identity => "identity",
            Activation::Softmax => "softmax",
        }
    }

    /// Whether σ acts on each element on its own (everything except softmax).
    pub fn is_elementwise(&self) -> bool {
        !matches!(self, Activation::Softmax)
    }

    /// Parses a name as printed by [`Activation::name`] (`leaky_relu` gets slope 0.01).
    pub fn from_name(name: &str) -> Option<Activation> {
        Some(match name {
            "sigmoid" => Activation::Sigmoid,
            "tanh" => Activation::Tanh,
            "relu" => Activation::Relu,
            "leaky_relu" | "leaky-relu" | "leakyrelu" => Activation::LeakyRelu { slope: 0.01 },
            "identity" | "linear" => Activation::Identity,
            "softmax" => Activation::Softmax,
            _ => return None,
        })
    }

    pub(crate) fn validate(&self) -> crate::Result<()> {
        if let Activation::LeakyRelu { slope } = *self {
            if !slope.is_finite() {
                return Err(crate::Error::InvalidHyperparameter {
                    name: "leaky_relu slope",
                    value: slope,
                    reason: "must be finite",
                });
            }
        }
        Ok(())
    }

    /// The logistic function on one value, as Lernmi computes it: `1 / (1 + exp(−z))`.
    #[inline(always)]
    pub fn sigmoid<F: Float>(z: F) -> F {
        F::one() / (F::one() + (-z).exp())
    }

    /// σ of one value (softmax is not element-wise: it returns `z` unchanged).
    #[inline(always)]
    pub fn apply_scalar<F: Float>(&self, z: F) -> F {
        match *self {
            Activation::Sigmoid => Self::sigmoid(z),
            Activation::Tanh => z.tanh(),
            Activation::Relu => {
                if z > F::zero() {
                    z
                } else {
                    F::zero()
                }
            }
            Activation::LeakyRelu { slope } => {
                if z > F::zero() {
                    z
                } else {
                    F::of(slope) * z
                }
            }
            Activation::Identity | Activation::Softmax => z,
        }
    }

    /// σ′ at one point, given both the weighted input `z` and the activation `a = σ(z)`
    /// (sigmoid and tanh use `a`, the rectifiers use `z`). Not defined for softmax (returns 1).
    #[inline(always)]
    pub fn derivative_scalar<F: Float>(&self, z: F, a: F) -> F {
        match *self {
            Activation::Sigmoid => a * (F::one() - a),
            Activation::Tanh => F::one() - a * a,
            Activation::Relu => {
                if z > F::zero() {
                    F::one()
                } else {
                    F::zero()
                }
            }
            Activation::LeakyRelu { slope } => {
                if z > F::zero() {
                    F::one()
                } else {
                    F::of(slope)
                }
            }
            Activation::Identity | Activation::Softmax => F::one(),
        }
    }

    /// Computes `A = σ(Z)` into `activations`.
    ///
    /// # Shapes
    /// `weighted_inputs` and `activations`: (batch, n), the same shape.
    ///
    /// # Panics
    /// If the two shapes differ.
    pub fn forward<F: Float>(
        &self,
        weighted_inputs: ArrayView2<'_, F>,
        mut activations: ArrayViewMut2<'_, F>,
    ) {
        assert_eq!(
            weighted_inputs.shape(),
            activations.shape(),
            "Activation::forward: weighted_inputs and activations differ in shape"
        );
        match self {
            Activation::Softmax => {
                Zip::from(weighted_inputs.rows())
                    .and(activations.rows_mut())
                    .for_each(|z, mut a| {
                        let max = z.iter().fold(F::neg_infinity(), |m, &v| m.max(v));
                        let mut sum = F::zero();
                        Zip::from(&mut a).and(&z).for_each(|a, &z| {
                            *a = (z - max).exp();
                            sum += *a;
                        });
                        let inv = F::one() / sum;
                        a.mapv_inplace(|v| v * inv);
                    });
            }
            _ => match (
                weighted_inputs.as_slice(),
                activations.as_slice_mut(),
                *self,
            ) {
                // Contiguous batches (the network's own buffers): one vectorised pass with the
                // choice of function made once, outside the loop.
                (Some(z), Some(a), Activation::Relu) => {
                    elementwise::map_into(z, a, |z| Activation::Relu.apply_scalar(z))
                }
                (Some(z), Some(a), Activation::LeakyRelu { slope }) => {
                    let leaky = Activation::LeakyRelu { slope };
                    elementwise::map_into(z, a, |z| leaky.apply_scalar(z))
                }
                (Some(z), Some(a), Activation::Sigmoid) => {
                    elementwise::map_into(z, a, Activation::sigmoid)
                }
                _ => Zip::from(&mut activations)
                    .and(&weighted_inputs)
                    .for_each(|a, &z| *a = self.apply_scalar(z)),
            },
        }
    }

    /// Applies σ in place (used for the optional input-layer activation).
    ///
    /// Raw pixels are bytes, so the seed's input sigmoid sees at most 256 distinct values: the
    /// sigmoid of each integer 0..=255 is computed once per process and looked up: the same
    /// bits as computing it, without one `exp` per element.
    pub fn forward_in_place<F: Float>(&self, mut values: ArrayViewMut2<'_, F>) {
        match self {
            Activation::Softmax => {
                let z = values.to_owned();
                self.forward(z.view(), values);
            }
            Activation::Sigmoid => match values.as_slice_mut() {
                Some(v) => elementwise::sigmoid_in_place(v),
                None => values.mapv_inplace(Self::sigmoid),
            },
            _ => values.mapv_inplace(|z| self.apply_scalar(z)),
        }
    }

    /// Turns the activation sensitivity ∂L/∂A, held in `sensitivities`, into the output
    /// sensitivity ∂L/∂Z = ∂L/∂A ⊙ σ′(Z), in place (equation (B2)).
    ///
    /// For softmax the Jacobian is not diagonal: row by row,
    /// ∂L/∂zᵢ = aᵢ·(∂L/∂aᵢ − Σⱼ aⱼ·∂L/∂aⱼ).
    ///
    /// # Shapes
    /// All three arrays: (batch, n).
    ///
    /// # Panics
    /// If the three shapes are not the same.
    pub fn backward_in_place<F: Float>(
        &self,
        weighted_inputs: ArrayView2<'_, F>,
        activations: ArrayView2<'_, F>,
        mut sensitivities: ArrayViewMut2<'_, F>,
    ) {
        assert!(
            weighted_inputs.shape() == sensitivities.shape()
                && activations.shape() == sensitivities.shape(),
            "Activation::backward_in_place: shapes differ: {:?}, {:?}, {:?}",
            weighted_inputs.shape(),
            activations.shape(),
            sensitivities.shape()
        );
        match self {
            Activation::Identity => {}
            Activation::Softmax => {
                Zip::from(sensitivities.rows_mut())
                    .and(activations.rows())
                    .for_each(|mut g, a| {
                        let dot = g
                            .iter()
                            .zip(a.iter())
                            .fold(F::zero(), |s, (&g, &a)| s + g * a);
                        Zip::from(&mut g)
                            .and(&a)
                            .for_each(|g, &a| *g = a * (*g - dot));
                    });
            }
            _ => match (
                sensitivities.as_slice_mut(),
                weighted_inputs.as_slice(),
                activations.as_slice(),
                *self,
            ) {
                (Some(s), Some(z), Some(a), Activation::Relu) => {
                    elementwise::scale_by(s, z, a, |z, a| Activation::Relu.derivative_scalar(z, a))
                }
                (Some(s), Some(z), Some(a), Activation::LeakyRelu { slope }) => {
                    let leaky = Activation::LeakyRelu { slope };
                    elementwise::scale_by(s, z, a, |z, a| leaky.derivative_scalar(z, a))
                }
                (Some(s), Some(z), Some(a), Activation::Sigmoid) => {
                    elementwise::scale_by(s, z, a, |z, a| {
                        Activation::Sigmoid.derivative_scalar(z, a)
                    })
                }
                _ => Zip::from(&mut sensitivities)
                    .and(&weighted_inputs)
                    .and(&activations)
                    .for_each(|s, &z, &a| *s *= self.derivative_scalar(z, a)),
            },
        }
    }
}

/// Row sums along the sample axis, a helper for bias gradients (equation (B4)).
pub(crate) fn column_sums_into<F: Float>(
    values: ArrayView2<'_, F>,
    mut out: ndarray::ArrayViewMut1<'_, F>,
    accumulate: bool,
) {
    if !accumulate {
        out.fill(F::zero());
    }
    if let (Some(v), Some(o)) = (values.as_slice(), out.as_slice_mut()) {
        return elementwise::sum_rows_into(v, o);
    }
    for row in values.axis_iter(Axis(0)) {
        Zip::from(&mut out).and(&row).for_each(|o, &v| *o += v);
    }
}

#[cfg(test)]
mod tests {
    use ndarray::{array, Array2};

    use super::*;

    const ALL: [Activation; 6] = [
        Activation::Sigmoid,
        Activation::Tanh,
        Activation::Relu,
        Activation::LeakyRelu { slope: 0.1 },
        Activation::Identity,
        Activation::Softmax,
    ];

    fn forward(activation: Activation, z: &Array2<f64>) -> Array2<f64> {
        let mut a = z.clone();
        activation.forward_in_place(a.view_mut());
        a
    }

    /// `backward_in_place` against a central finite difference of L = Σ g ⊙ σ(z) (g an
    /// arbitrary upstream sensitivity), for every activation. The inputs stay away from ReLU's
    /// kink at 0, where the derivative is not defined.
    #[test]
    fn derivatives_match_finite_differences() {
        let z = array![[-1.3, -0.2, 0.4, 2.1], [0.7, -2.5, 1.6, -0.05]];
        let g = array![[0.3, -0.7, 1.1, 0.5], [-1.2, 0.4, 0.9, 2.0]];
        let h = 1e-6;
        for activation in ALL {
            let a = forward(activation, &z);
            let mut analytic = g.clone();
            activation.backward_in_place(z.view(), a.view(), analytic.view_mut());
            let loss = |z: &Array2<f64>| (forward(activation, z) * &g).sum();
            for ((r, c), &got) in analytic.indexed_iter() {
                let (mut up, mut down) = (z.clone(), z.clone());
                up[[r, c]] += h;
                down[[r, c]] -= h;
                let numeric = (loss(&up) - loss(&down)) / (2.0 * h);
                assert!(
                    (got - numeric).abs() < 1e-6 * (1.0 + numeric.abs()),
                    "{activation:?} at ({r}, {c}): analytic {got}, finite difference {numeric}"
                );
            }
        }
    }
}
