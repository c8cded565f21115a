//! A dense (fully connected) layer: a weight matrix, a bias vector and an activation,
//! with its forward pass (F) next to its backward pass (B2–B4).

use ndarray::{Array1, Array2, ArrayView1, ArrayView2, ArrayViewMut1, ArrayViewMut2, ShapeBuilder};

use crate::fast::gemm::{product, Packing};
use crate::fast::{elementwise, sample};
use crate::nn::activation::column_sums_into;
use crate::{Activation, Error, Float, Result};

/// One layer: `weights` (n_out × n_in, as PyTorch's `nn.Linear`), `biases` (n_out) and σ.
///
/// `weights[[j, k]]` is the weight of Lernmi's Link from neuron k of the previous layer to
/// neuron j of this one; `biases[j]` is the weight of the Link from the bias neuron.
#[derive(Clone, Debug, PartialEq)]
pub struct Dense<F: Float = f32> {
    weights: Array2<F>,
    biases: Array1<F>,
    activation: Activation,
}

/// The gradients ∂L/∂W (n_out × n_in) and ∂L/∂b (n_out) of one layer (equations (B3), (B4)).
#[derive(Clone, Debug, PartialEq)]
pub struct LayerGradients<F: Float = f32> {
    /// ∂L/∂W, shaped like the layer's weights.
    pub weights: Array2<F>,
    /// ∂L/∂b, shaped like the layer's biases.
    pub biases: Array1<F>,
}

impl<F: Float> Dense<F> {
    /// A layer from its weights (n_out × n_in), biases (n_out) and activation.
    ///
    /// # Errors
    /// [`Error::Shape`] if the biases do not have one entry per weight row,
    /// [`Error::ZeroWidthLayer`] for an empty weight matrix, [`Error::NonFinite`] for a NaN or
    /// infinite parameter, and [`Error::InvalidHyperparameter`] for a leaky ReLU with a
    /// non-finite slope.
    pub fn new(weights: Array2<F>, biases: Array1<F>, activation: Activation) -> Result<Self> {
        let (n_out, n_in) = weights.dim();
        if n_out == 0 || n_in == 0 {
            return Err(Error::ZeroWidthLayer {
                layer: usize::from(n_out == 0),
                sizes: vec![n_in, n_out],
            });
        }
        if biases.len() != n_out {
            return Err(Error::Shape {
                what: "biases".into(),
                expected: vec![n_out],
                got: vec![biases.len()],
            });
        }
        activation.validate()?;
        check_finite("weights", weights.iter())?;
        // Stored input by input (column-major), in Lernmi's Link order: see `crate::fast::sample`.
        let weights = if weights.t().is_standard_layout() {
            weights
        } else {
            let mut by_input = Array2::zeros(weights.raw_dim().f());
            by_input.assign(&weights);
            by_input
        };
        check_finite("biases", biases.iter())?;
        Ok(Dense {
            weights,
            biases,
            activation,
        })
    }

    /// Width of the previous layer.
    pub fn n_in(&self) -> usize {
        self.weights.ncols()
    }

    /// Width of this layer.
    pub fn n_out(&self) -> usize {
        self.weights.nrows()
    }

    /// The weights, (n_out × n_in).
    pub fn weights(&self) -> ArrayView2<'_, F> {
        self.weights.view()
    }

    /// The biases, (n_out).
    pub fn biases(&self) -> ArrayView1<'_, F> {
        self.biases.view()
    }

    /// Mutable views of the weights and biases (their shapes cannot change).
    pub fn parameters_mut(&mut self) -> (ArrayViewMut2<'_, F>, ArrayViewMut1<'_, F>) {
        (self.weights.view_mut(), self.biases.view_mut())
    }

    /// Whether `weights` and `biases` have the shapes and memory layouts of this layer's.
    pub(crate) fn same_layout(&self, weights: &Array2<F>, biases: &Array1<F>) -> bool {
        weights.dim() == self.weights.dim()
            && weights.strides() == self.weights.strides()
            && biases.dim() == self.biases.dim()
            && biases.strides() == self.biases.strides()
    }

    /// Exchanges the weights and biases with `weights` and `biases` (new parameters an
    /// optimiser computed into them).
    ///
    /// # Panics
    /// Unless [`Dense::same_layout`] holds.
    pub(crate) fn swap_parameters(&mut self, weights: &mut Array2<F>, biases: &mut Array1<F>) {
        assert!(
            self.same_layout(weights, biases),
            "parameters of another layout"
        );
        std::mem::swap(&mut self.weights, weights);
        std::mem::swap(&mut self.biases, biases);
    }

    /// The activation σ.
    pub fn activation(&self) -> Activation {
        self.activation
    }

    /// Zero gradients shaped like this layer.
    pub fn zero_gradients(&self) -> LayerGradients<F> {
        LayerGradients {
            weights: Array2::zeros(self.weights.raw_dim().f()),
            biases: Array1::zeros(self.biases.raw_dim()),
        }
    }

    /// (F): `Z = X·Wᵀ + b`, `A = σ(Z)`, written into the given buffers.
    ///
    /// # Shapes
    /// `inputs`: (batch, n_in); `weighted_inputs`, `activations`: (batch, n_out).
    ///
    /// # Errors
    /// [`Error::Shape`], naming the operand, if a shape disagrees (the batch is `inputs`'
    /// rows); nothing is written then.
    pub fn forward(
        &self,
        inputs: ArrayView2<'_, F>,
        weighted_inputs: ArrayViewMut2<'_, F>,
        activations: ArrayViewMut2<'_, F>,
        packing: &mut Packing<F>,
    ) -> Result<()> {
        let batch = inputs.nrows();
        expect_shape(
            ("Dense::forward", "inputs"),
            inputs.dim(),
            (batch, self.n_in()),
        )?;
        let out = (batch, self.n_out());
        expect_shape(
            ("Dense::forward", "weighted_inputs"),
            weighted_inputs.dim(),
            out,
        )?;
        expect_shape(("Dense::forward", "activations"), activations.dim(), out)?;
        self.run_forward(inputs, weighted_inputs, activations, packing);
        Ok(())
    }

    /// [`Dense::forward`] for callers that have checked the shapes ([`crate::Network`]).
    ///
    /// # Panics
    /// If the shapes disagree (in the product or the kernels, which check them too).
    pub(crate) fn run_forward(
        &self,
        inputs: ArrayView2<'_, F>,
        mut weighted_inputs: ArrayViewMut2<'_, F>,
        activations: ArrayViewMut2<'_, F>,
        packing: &mut Packing<F>,
    ) {
        match (
            self.parameters(),
            single_row(&inputs),
            single_row_mut(&mut weighted_inputs),
        ) {
            (Some((w, b)), Some(x), Some(z)) => sample::weighted_inputs(w, b, x, z),
            _ => {
                product(
                    &inputs,
                    &self.weights.t(),
                    F::zero(),
                    &mut weighted_inputs,
                    packing,
                );
                match (weighted_inputs.as_slice_mut(), self.biases.as_slice()) {
                    (Some(z), Some(b)) => elementwise::add_bias_to_rows(z, b),
                    _ => weighted_inputs += &self.biases,
                }
            }
        }
        self.activation.forward(weighted_inputs.view(), activations);
    }

    /// (B3), (B4): adds `Δᵀ·A_prev` and the column sums of Δ to `gradients` (or overwrites them
    /// when `accumulate` is false).
    ///
    /// # Shapes
    /// `inputs` (A_prev): (batch, n_in); `output_sensitivities` (Δ): (batch, n_out);
    /// `gradients`: shaped like the layer (see [`Dense::zero_gradients`]).
    ///
    /// # Errors
    /// [`Error::Shape`], naming the operand, if a shape disagrees (the batch is `inputs`'
    /// rows); nothing is written then.
    pub fn parameter_gradients(
        &self,
        inputs: ArrayView2<'_, F>,
        output_sensitivities: ArrayView2<'_, F>,
        gradients: &mut LayerGradients<F>,
        accumulate: bool,
        packing: &mut Packing<F>,
    ) -> Result<()> {
        let (batch, what) = (inputs.nrows(), "Dense::parameter_gradients");
        expect_shape((what, "inputs"), inputs.dim(), (batch, self.n_in()))?;
        expect_shape(
            (what, "output_sensitivities"),
            output_sensitivities.dim(),
            (batch, self.n_out()),
        )?;
        expect_shape(
            (what, "gradients.weights"),
            gradients.weights.dim(),
            self.weights.dim(),
        )?;
        if gradients.biases.len() != self.n_out() {
            return Err(Error::Shape {
                what: format!("{what}: gradients.biases"),
                expected: vec![self.n_out()],
                got: vec![gradients.biases.len()],
            });
        }
        self.run_parameter_gradients(inputs, output_sensitivities, gradients, accumulate, packing);
        Ok(())
    }

    /// [`Dense::parameter_gradients`] for callers that have checked the shapes.
    ///
    /// # Panics
    /// If the shapes disagree (in the product or the kernels, which check them too).
    pub(crate) fn run_parameter_gradients(
        &self,
        inputs: ArrayView2<'_, F>,
        output_sensitivities: ArrayView2<'_, F>,
        gradients: &mut LayerGradients<F>,
        accumulate: bool,
        packing: &mut Packing<F>,
    ) {
        if let (Some(d), Some(x), Some(g)) = (
            single_row(&output_sensitivities),
            single_row(&inputs),
            by_input_mut(&mut gradients.weights),
        ) {
            sample::outer(d, x, g, accumulate);
            column_sums_into(
                output_sensitivities,
                gradients.biases.view_mut(),
                accumulate,
            );
            return;
        }
        let beta = if accumulate { F::one() } else { F::zero() };
        // Gᵀ = Aᵀ·Δ: the weights are stored input by input, so Gᵀ is row-major in memory.
        product(
            &inputs.t(),
            &output_sensitivities,
            beta,
            &mut gradients.weights.view_mut().reversed_axes(),
            packing,
        );
        column_sums_into(
            output_sensitivities,
            gradients.biases.view_mut(),
            accumulate,
        );
    }

    /// The first half of (B2): `Δ·W`, the sensitivity ∂L/∂A_prev handed to the previous layer
    /// (each element is one of Lernmi's summed neuron sensitivities).
    ///
    /// # Shapes
    /// `output_sensitivities`: (batch, n_out); `input_sensitivities`: (batch, n_in).
    ///
    /// # Errors
    /// [`Error::Shape`], naming the operand, if a shape disagrees (the batch is
    /// `output_sensitivities`' rows); nothing is written then.
    pub fn input_sensitivities(
        &self,
        output_sensitivities: ArrayView2<'_, F>,
        input_sensitivities: ArrayViewMut2<'_, F>,
        packing: &mut Packing<F>,
    ) -> Result<()> {
        let batch = output_sensitivities.nrows();
        expect_shape(
            ("Dense::input_sensitivities", "output_sensitivities"),
            output_sensitivities.dim(),
            (batch, self.n_out()),
        )?;
        expect_shape(
            ("Dense::input_sensitivities", "input_sensitivities"),
            input_sensitivities.dim(),
            (batch, self.n_in()),
        )?;
        self.run_input_sensitivities(output_sensitivities, input_sensitivities, packing);
        Ok(())
    }

    /// [`Dense::input_sensitivities`] for callers that have checked the shapes.
    ///
    /// # Panics
    /// If the shapes disagree (in the product or the kernels, which check them too).
    pub(crate) fn run_input_sensitivities(
        &self,
        output_sensitivities: ArrayView2<'_, F>,
        mut input_sensitivities: ArrayViewMut2<'_, F>,
        packing: &mut Packing<F>,
    ) {
        if let (Some(w), Some(d), Some(s)) = (
            by_input(&self.weights),
            single_row(&output_sensitivities),
            single_row_mut(&mut input_sensitivities),
        ) {
            sample::input_sensitivities(w, d, s);
            return;
        }
        product(
            &output_sensitivities,
            &self.weights.view(),
            F::zero(),
            &mut input_sensitivities,
            packing,
        );
    }
}

/// [`Error::Shape`] naming `function: operand` unless `got == expected`.
fn expect_shape(
    (function, operand): (&str, &str),
    got: (usize, usize),
    expected: (usize, usize),
) -> Result<()> {
    if got == expected {
        return Ok(());
    }
    Err(Error::Shape {
        what: format!("{function}: {operand}"),
        expected: vec![expected.0, expected.1],
        got: vec![got.0, got.1],
    })
}

impl<F: Float> Dense<F> {
    /// Weights (input by input) and biases as slices.
    fn parameters(&self) -> Option<(&[F], &[F])> {
        Some((by_input(&self.weights)?, self.biases.as_slice()?))
    }

    /// Weights (input by input) and biases as mutable slices, the layout of the one-sample
    /// kernels in [`crate::fast::sample`].
    pub(crate) fn parameter_slices_mut(&mut self) -> (&mut [F], &mut [F]) {
        match (by_input_mut(&mut self.weights), self.biases.as_slice_mut()) {
            (Some(w), Some(b)) => (w, b),
            _ => unreachable!("Dense::new stores its parameters contiguously, input by input"),
        }
    }
}

/// The memory of an (n_out × n_in) matrix stored input by input (column-major).
fn by_input<F: Float>(a: &Array2<F>) -> Option<&[F]> {
    if a.t().is_standard_layout() {
        a.as_slice_memory_order()
    } else {
        None
    }
}

fn by_input_mut<F: Float>(a: &mut Array2<F>) -> Option<&mut [F]> {
    if a.t().is_standard_layout() {
        a.as_slice_memory_order_mut()
    } else {
        None
    }
}

/// The only row of a one-row array, as a slice.
fn single_row<'a, F: Float>(a: &'a ArrayView2<'_, F>) -> Option<&'a [F]> {
    if a.nrows() == 1 {
        a.as_slice()
    } else {
        None
    }
}

fn single_row_mut<'a, F: Float>(a: &'a mut ArrayViewMut2<'_, F>) -> Option<&'a mut [F]> {
    if a.nrows() == 1 {
        a.as_slice_mut()
    } else {
        None
    }
}

impl<F: Float> LayerGradients<F> {
    /// Adds another layer's gradients element by element.
    ///
    /// # Panics
    /// If `other`'s shapes differ from `self`'s (ndarray's arithmetic checks them).
    pub fn add_assign(&mut self, other: &LayerGradients<F>) {
        self.weights += &other.weights;
        self.biases += &other.biases;
    }

    /// Multiplies every gradient by `factor`.
    pub fn scale(&mut self, factor: F) {
        self.weights.mapv_inplace(|g| g * factor);
        self.biases.mapv_inplace(|g| g * factor);
    }

    /// Copies `other` into `self` (same shapes).
    ///
    /// # Panics
    /// If `other`'s shapes differ from `self`'s (ndarray's `assign` checks them).
    pub fn assign(&mut self, other: &LayerGradients<F>) {
        self.weights.assign(&other.weights);
        self.biases.assign(&other.biases);
    }

    /// `self ← (first or self) + add, then × factor`, element by element, the same operations
    /// in the same order as [`assign`](Self::assign), [`add_assign`](Self::add_assign) and
    /// [`scale`](Self::scale) one after the other, in one pass.
    pub(crate) fn combine(
        &mut self,
        first: Option<&LayerGradients<F>>,
        add: Option<&LayerGradients<F>>,
        factor: Option<F>,
    ) {
        let same_layout = |g: &LayerGradients<F>| {
            g.weights.strides() == self.weights.strides()
                && g.weights.as_slice_memory_order().is_some()
        };
        let fused = self.weights.as_slice_memory_order().is_some()
            && first.is_none_or(same_layout)
            && add.is_none_or(same_layout);
        if !fused {
            if let Some(first) = first {
                self.assign(first);
            }
            if let Some(add) = add {
                self.add_assign(add);
            }
            if let Some(factor) = factor {
                self.scale(factor);
            }
            return;
        }
        fn weights<F: Float>(g: &LayerGradients<F>) -> Option<&[F]> {
            g.weights.as_slice_memory_order()
        }
        fn biases<F: Float>(g: &LayerGradients<F>) -> Option<&[F]> {
            g.biases.as_slice()
        }
        if let (Some(w), Some(b)) = (
            self.weights.as_slice_memory_order_mut(),
            self.biases.as_slice_mut(),
        ) {
            elementwise::combine(w, first.and_then(weights), add.and_then(weights), factor);
            elementwise::combine(b, first.and_then(biases), add.and_then(biases), factor);
        }
    }

    /// Whether every gradient is finite.
    pub fn is_finite(&self) -> bool {
        let check = |a: &[F]| elementwise::finite_under([a], |[g]| g);
        match (self.weights.as_slice_memory_order(), self.biases.as_slice()) {
            (Some(w), Some(b)) => check(w) && check(b),
            _ => self
                .weights
                .iter()
                .chain(&self.biases)
                .all(|g| g.is_finite()),
        }
    }
}

pub(crate) fn check_finite<'a, F: Float>(
    what: &'static str,
    values: impl Iterator<Item = &'a F>,
) -> Result<()> {
    for (index, &v) in values.enumerate() {
        if !v.is_finite() {
            return Err(Error::NonFinite {
                what,
                index,
                value: v.to_f64_lossless(),
            });
        }
    }
    Ok(())
}

/// [`check_finite`] for an array: a vectorised pass first, the search for the culprit only
/// when there is one.
pub(crate) fn check_finite_array<F: Float>(
    what: &'static str,
    values: ArrayView2<'_, F>,
) -> Result<()> {
    if let Some(flat) = values.as_slice() {
        if elementwise::finite_under([flat], |[v]| v) {
            return Ok(());
        }
    }
    check_finite(what, values.iter())
}

#[cfg(test)]
mod tests {
    use ndarray::{array, Array2};

    use super::*;

    /// A 2×3 ReLU layer and a batch of two samples, worked by hand:
    /// Z = X·Wᵀ + b = [[−0.9, 6.3], [0.6, −0.2]], A = ReLU(Z) = [[0, 6.3], [0.6, 0]].
    fn layer_and_inputs() -> (Dense<f64>, Array2<f64>) {
        let weights = array![[1.0, 2.0, -1.0], [0.5, -1.0, 3.0]];
        let layer = Dense::new(weights, array![0.1, -0.2], Activation::Relu).unwrap();
        (layer, array![[1.0, 0.0, 2.0], [-1.0, 1.0, 0.5]])
    }

    #[test]
    fn forward_matches_hand_worked_numbers() {
        let (layer, x) = layer_and_inputs();
        let (mut z, mut a) = (Array2::zeros((2, 2)), Array2::zeros((2, 2)));
        let mut packing = Packing::default();
        layer
            .forward(x.view(), z.view_mut(), a.view_mut(), &mut packing)
            .unwrap();
        let expected_z = array![[-0.9, 6.3], [0.6, -0.2]];
        for (got, want) in z.iter().zip(&expected_z) {
            assert!((got - want).abs() < 1e-12, "Z = {z}, expected {expected_z}");
        }
        let expected_a = array![[0.0, 6.3], [0.6, 0.0]];
        for (got, want) in a.iter().zip(&expected_a) {
            assert!((got - want).abs() < 1e-12, "A = {a}, expected {expected_a}");
        }
    }

    /// With Δ = [[1, −1], [2, 0.5]]: ∂L/∂W = Δᵀ·X = [[−1, 2, 3], [−1.5, 0.5, −1.75]],
    /// ∂L/∂b = column sums of Δ = [3, −0.5], and the sensitivity passed down is
    /// Δ·W = [[0.5, 3, −4], [2.25, 3.5, −0.5]] (all exact in binary).
    #[test]
    fn backward_matches_hand_worked_numbers() {
        let (layer, x) = layer_and_inputs();
        let delta = array![[1.0, -1.0], [2.0, 0.5]];
        let mut packing = Packing::default();
        let mut gradients = layer.zero_gradients();
        layer
            .parameter_gradients(x.view(), delta.view(), &mut gradients, false, &mut packing)
            .unwrap();
        assert_eq!(
            gradients.weights,
            array![[-1.0, 2.0, 3.0], [-1.5, 0.5, -1.75]]
        );
        assert_eq!(gradients.biases, array![3.0, -0.5]);
        // Accumulating adds the same gradients again.
        layer
            .parameter_gradients(x.view(), delta.view(), &mut gradients, true, &mut packing)
            .unwrap();
        assert_eq!(gradients.biases, array![6.0, -1.0]);
        let mut pulled = Array2::zeros((2, 3));
        layer
            .input_sensitivities(delta.view(), pulled.view_mut(), &mut packing)
            .unwrap();
        assert_eq!(pulled, array![[0.5, 3.0, -4.0], [2.25, 3.5, -0.5]]);
    }

    #[test]
    fn wrong_shapes_are_errors_not_writes() {
        let (layer, x) = layer_and_inputs();
        let mut packing = Packing::default();
        let (mut z, mut a) = (Array2::zeros((2, 3)), Array2::zeros((2, 2)));
        let err = layer
            .forward(x.view(), z.view_mut(), a.view_mut(), &mut packing)
            .unwrap_err();
        assert!(matches!(err, Error::Shape { .. }), "{err}");
        assert!(z.iter().chain(&a).all(|&v| v == 0.0));
    }
}
