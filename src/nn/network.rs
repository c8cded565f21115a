//! A network: dense layers in order, a loss, and the batched forward and backward passes.

use ndarray::{s, Array2, ArrayView2, ArrayViewMut2, Axis};
use rayon::prelude::*;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::Divergence;
use crate::fast::gemm::Packing;
use crate::fast::sample;
use crate::nn::dense::{check_finite_array, LayerGradients};
use crate::nn::dropout::Masks;
use crate::{Activation, Dense, Error, Float, Init, Loss, Result, Targets};

/// The most parameters (weights and biases) [`NetworkBuilder::build`] makes a network with:
/// 2^30, 4 GiB of `f32` or 8 GiB of `f64`.
pub const MAX_PARAMETERS: usize = 1 << 30;

/// Rows per parallel chunk in [`Network::predict`] and [`Network::evaluate`]; fixed, so results
/// do not depend on the thread count.
const EVAL_CHUNK: usize = 256;

/// A feed-forward network of [`Dense`] layers trained against a [`Loss`].
///
/// `layers[0]` follows the input. An optional input activation is applied to the inputs before
/// the first layer; it exists to express Lernmi's quirk that input neurons apply the sigmoid too.
///
/// Two networks are equal when their layers, loss and input activation are: the parameter
/// stamp (see [`Network::layers_mut`]) names a state of the parameters, it is not part of them.
#[derive(Clone, Debug)]
pub struct Network<F: Float = f32> {
    layers: Vec<Dense<F>>,
    loss: Loss,
    input_activation: Option<Activation>,
    /// Names the current parameters: drawn afresh (never reused, see [`fresh_stamp`]) whenever
    /// they may change. A workspace's weight bounds hold for the parameters of one stamp.
    parameter_stamp: u64,
}

impl<F: Float> PartialEq for Network<F> {
    fn eq(&self, other: &Self) -> bool {
        self.layers == other.layers
            && self.loss == other.loss
            && self.input_activation == other.input_activation
    }
}

/// A stamp no network has carried before: 1, 2, 3, … across the process (0 names nothing). A
/// u64 drawn once per step cannot wrap in any run.
fn fresh_stamp() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// The gradients of every layer, in layer order.
#[derive(Clone, Debug, PartialEq)]
pub struct Gradients<F: Float = f32> {
    /// One entry per layer.
    pub layers: Vec<LayerGradients<F>>,
}

/// Loss and accuracy of a network on a labelled set.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Evaluation {
    /// Mean loss per sample.
    pub loss: f64,
    /// Samples whose largest output (first one on ties) is at the target's largest entry.
    pub correct: usize,
    /// Samples evaluated.
    pub total: usize,
}

impl Evaluation {
    /// `correct / total`, a fraction in [0, 1].
    pub fn accuracy(&self) -> f64 {
        if self.total == 0 {
            0.0
        } else {
            self.correct as f64 / self.total as f64
        }
    }
}

/// Buffers for the forward and backward pass of up to `capacity` rows, allocated once and
/// reused, so that a training step allocates nothing. Crate-private: no public function takes
/// one, and the trainer keeps its own.
#[derive(Clone, Debug)]
pub(crate) struct Workspace<F: Float = f32> {
    capacity: usize,
    /// Inputs after the input activation, (capacity, n_in); empty without one.
    inputs: Array2<F>,
    /// Z_l per layer, (capacity, n_l).
    weighted_inputs: Vec<Array2<F>>,
    /// A_l per layer, (capacity, n_l).
    activations: Vec<Array2<F>>,
    /// Δ_l = ∂L/∂Z_l per layer, (capacity, n_l).
    sensitivities: Vec<Array2<F>>,
    /// Packing buffers of the matrix products.
    packing: Packing<F>,
    /// Per layer, an upper bound on max |w| (NaN: unknown) for the one-sample SGD step
    /// ([`Network::sgd_one_sample`]), valid for the network parameters stamped `bounds_stamp`.
    weight_bounds: Vec<f64>,
    /// The [`Network`] parameter stamp the bounds hold for; 0 for none.
    bounds_stamp: u64,
}

/// Builds a [`Network<F>`]: layer sizes, activations, loss, initialisation and seed. The
/// float type is the one [`Network::builder`] was called on.
#[derive(Clone, Debug)]
pub struct NetworkBuilder<F: Float = f32> {
    float: std::marker::PhantomData<F>,
    sizes: Vec<usize>,
    hidden: Activation,
    output: Activation,
    loss: Loss,
    init: Init,
    seed: u64,
    input_activation: Option<Activation>,
}

impl<F: Float> NetworkBuilder<F> {
    /// Hidden activation for every hidden layer (default ReLU).
    pub fn hidden(mut self, activation: Activation) -> Self {
        self.hidden = activation;
        self
    }

    /// Output activation (default softmax).
    pub fn output(mut self, activation: Activation) -> Self {
        self.output = activation;
        self
    }

    /// Loss (default cross-entropy).
    pub fn loss(mut self, loss: Loss) -> Self {
        self.loss = loss;
        self
    }

    /// Weight initialisation (default [`Init::He`]).
    pub fn init(mut self, init: Init) -> Self {
        self.init = init;
        self
    }

    /// Seed for the initialisation (default 0).
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Activation applied to the inputs before the first layer (default none).
    pub fn input_activation(mut self, activation: Option<Activation>) -> Self {
        self.input_activation = activation;
        self
    }

    /// Builds the network.
    ///
    /// # Errors
    /// [`Error::TooFewLayers`], [`Error::ZeroWidthLayer`], [`Error::TooLarge`] for more than
    /// [`MAX_PARAMETERS`] parameters (checked before anything is allocated),
    /// [`Error::InvalidActivation`] (softmax anywhere but the output),
    /// [`Error::LossActivationMismatch`].
    pub fn build(&self) -> Result<Network<F>> {
        let sizes = &self.sizes;
        if sizes.len() < 2 {
            return Err(Error::TooFewLayers { got: sizes.len() });
        }
        if let Some(layer) = sizes.iter().position(|&n| n == 0) {
            return Err(Error::ZeroWidthLayer {
                layer,
                sizes: sizes.clone(),
            });
        }
        // (n_in + 1)·n_out per layer, in u128: no list of usize widths can overflow it.
        let parameters = sizes
            .windows(2)
            .map(|pair| (pair[0] as u128 + 1) * pair[1] as u128)
            .fold(0u128, u128::saturating_add);
        if parameters > MAX_PARAMETERS as u128 {
            return Err(Error::TooLarge {
                what: "a network of these layer sizes",
                needed: parameters,
                limit: MAX_PARAMETERS as u128,
                unit: "parameters",
                hint: "use narrower layers",
            });
        }
        let last = sizes.len() - 2;
        let layers = sizes
            .windows(2)
            .enumerate()
            .map(|(l, pair)| {
                let (weights, biases) = self.init.draw(pair[0], pair[1], self.seed, l);
                let activation = if l == last { self.output } else { self.hidden };
                Dense::new(weights, biases, activation)
            })
            .collect::<Result<Vec<_>>>()?;
        Network::from_layers(layers, self.loss, self.input_activation)
    }
}

impl<F: Float> Network<F> {
    /// Starts building a network with the given layer sizes, input first.
    ///
    /// Defaults: ReLU hidden layers, softmax output, cross-entropy, [`Init::He`], seed 0.
    pub fn builder(sizes: &[usize]) -> NetworkBuilder<F> {
        NetworkBuilder {
            float: std::marker::PhantomData,
            sizes: sizes.to_vec(),
            hidden: Activation::Relu,
            output: Activation::Softmax,
            loss: Loss::CrossEntropy,
            init: Init::He,
            seed: 0,
            input_activation: None,
        }
    }

    /// The seed's network in the dense engine: sigmoid everywhere (the input layer too),
    /// squared error, and the seed's initial weights ([`Init::Lernmi`]).
    pub fn lernmi_builder(sizes: &[usize]) -> NetworkBuilder<F> {
        Self::builder(sizes)
            .hidden(Activation::Sigmoid)
            .output(Activation::Sigmoid)
            .loss(Loss::SquaredError)
            .init(Init::Lernmi)
            .input_activation(Some(Activation::Sigmoid))
    }

    /// A network from its layers, which must chain (each `n_in` is the previous `n_out`).
    ///
    /// # Errors
    /// [`Error::Empty`] for no layers, [`Error::Shape`] for layers that do not chain,
    /// [`Error::InvalidActivation`] for softmax in a hidden layer or at the input, and
    /// [`Error::LossActivationMismatch`].
    pub fn from_layers(
        layers: Vec<Dense<F>>,
        loss: Loss,
        input_activation: Option<Activation>,
    ) -> Result<Self> {
        check_layers(&layers, loss, input_activation)?;
        Ok(Network {
            layers,
            loss,
            input_activation,
            parameter_stamp: fresh_stamp(),
        })
    }

    /// The layers, `layers()[0]` following the input.
    pub fn layers(&self) -> &[Dense<F>] {
        &self.layers
    }

    /// Mutable access to the layers. A layer put in their place that breaks what
    /// [`Network::from_layers`] requires makes every later use of the network an error.
    ///
    /// Counts as a change of the parameters: the network takes a fresh parameter stamp, so
    /// that bounds a training workspace derived from the old parameters no longer apply.
    pub fn layers_mut(&mut self) -> &mut [Dense<F>] {
        self.parameter_stamp = fresh_stamp();
        &mut self.layers
    }

    /// The loss.
    pub fn loss(&self) -> Loss {
        self.loss
    }

    /// The input activation, if any.
    pub fn input_activation(&self) -> Option<Activation> {
        self.input_activation
    }

    /// Layer sizes, input first.
    pub fn sizes(&self) -> Vec<usize> {
        std::iter::once(self.n_inputs())
            .chain(self.layers.iter().map(Dense::n_out))
            .collect()
    }

    /// Width of the input.
    pub fn n_inputs(&self) -> usize {
        self.layers.first().map_or(0, Dense::n_in)
    }

    /// Width of the output.
    pub fn n_outputs(&self) -> usize {
        self.layers.last().map_or(0, Dense::n_out)
    }

    /// The largest absolute difference between any weight or bias of `self` and the same one of
    /// `other` (0 for identical networks). A NaN on either side counts as an infinite
    /// difference, so that a comparison never passes for a network that holds NaN.
    ///
    /// # Errors
    /// [`Error::Shape`] if the two networks do not have the same layer sizes.
    pub fn max_parameter_difference(&self, other: &Network<F>) -> Result<f64> {
        if self.sizes() != other.sizes() {
            return Err(Error::Shape {
                what: "network to compare with".into(),
                expected: self.sizes(),
                got: other.sizes(),
            });
        }
        let mut largest = 0.0f64;
        for (a, b) in self.layers.iter().zip(&other.layers) {
            let pairs = a
                .weights()
                .into_iter()
                .zip(b.weights())
                .chain(a.biases().into_iter().zip(b.biases()));
            for (x, y) in pairs {
                let difference = (*x - *y).abs().to_f64_lossless();
                // `f64::max` would drop a NaN: NaN is never ≤ anything, so it becomes ∞.
                largest = if difference <= largest {
                    largest
                } else if difference.is_nan() {
                    f64::INFINITY
                } else {
                    difference
                };
            }
        }
        Ok(largest)
    }

    /// Number of trainable parameters.
    pub fn parameter_count(&self) -> usize {
        self.layers
            .iter()
            .map(|l| l.weights().len() + l.biases().len())
            .sum()
    }

    /// Zero gradients shaped like this network.
    pub fn zero_gradients(&self) -> Gradients<F> {
        Gradients {
            layers: self.layers.iter().map(Dense::zero_gradients).collect(),
        }
    }

    /// Buffers for the forward pass alone (no room for sensitivities).
    fn inference_workspace(&self, capacity: usize) -> Workspace<F> {
        let mut ws = self.workspace(0);
        let rows = |n: usize| Array2::zeros((capacity, n));
        ws.capacity = capacity;
        if self.input_activation.is_some() {
            ws.inputs = rows(self.n_inputs());
        }
        ws.weighted_inputs = self.layers.iter().map(|l| rows(l.n_out())).collect();
        ws.activations = self.layers.iter().map(|l| rows(l.n_out())).collect();
        ws
    }

    /// Buffers for batches of up to `capacity` rows.
    pub(crate) fn workspace(&self, capacity: usize) -> Workspace<F> {
        let rows = |n: usize| Array2::zeros((capacity, n));
        let per_layer = || self.layers.iter().map(|l| rows(l.n_out())).collect();
        Workspace {
            capacity,
            inputs: if self.input_activation.is_some() {
                rows(self.n_inputs())
            } else {
                Array2::zeros((0, 0))
            },
            weighted_inputs: per_layer(),
            activations: per_layer(),
            sensitivities: per_layer(),
            packing: Packing::default(),
            weight_bounds: vec![f64::NAN; self.layers.len()],
            bounds_stamp: 0,
        }
    }

    /// Checks a batch of inputs: non-empty, the right width, finite; and the layers, which
    /// [`Network::layers_mut`] lets a caller replace, still as [`Network::from_layers`] needs.
    ///
    /// # Errors
    /// [`Error::Empty`], [`Error::InputWidth`], [`Error::NonFinite`]; as
    /// [`Network::from_layers`] for layers that no longer chain.
    pub fn check_inputs(&self, inputs: ArrayView2<'_, F>) -> Result<()> {
        check_layers(&self.layers, self.loss, self.input_activation)?;
        if inputs.nrows() == 0 {
            return Err(Error::Empty { what: "batch" });
        }
        if inputs.ncols() != self.n_inputs() {
            return Err(Error::InputWidth {
                expected: self.n_inputs(),
                got: inputs.ncols(),
            });
        }
        check_finite_array("inputs", inputs)
    }

    /// Checks targets against inputs: the same number of rows, the output width, finite, and,
    /// for softmax with cross-entropy, every row a probability distribution (entries ≥ 0 that
    /// sum to 1 within a few units of roundoff per entry).
    ///
    /// # Errors
    /// [`Error::RowCountMismatch`], [`Error::TargetWidth`], [`Error::NonFinite`],
    /// [`Error::TargetNotDistribution`].
    pub fn check_targets(
        &self,
        inputs: ArrayView2<'_, F>,
        targets: ArrayView2<'_, F>,
    ) -> Result<()> {
        if targets.nrows() != inputs.nrows() {
            return Err(Error::RowCountMismatch {
                inputs: inputs.nrows(),
                targets: targets.nrows(),
            });
        }
        if targets.ncols() != self.n_outputs() {
            return Err(Error::TargetWidth {
                expected: self.n_outputs(),
                got: targets.ncols(),
            });
        }
        check_finite_array("targets", targets)?;
        self.check_distributions(targets)
    }

    /// For softmax with cross-entropy, checks that every target row is a probability
    /// distribution: entries ≥ 0 that sum to 1 within 4·(n_out + 1) units of roundoff of `F`
    /// (the error of adding n_out rounded entries). The output sensitivity A − Y is the
    /// gradient of −Σ y ln softmax(z) only when Σ y = 1; other losses take any finite targets.
    ///
    /// # Errors
    /// [`Error::TargetNotDistribution`] naming the first row that is not one.
    fn check_distributions(&self, targets: ArrayView2<'_, F>) -> Result<()> {
        let softmax = self.layers.last().map(Dense::activation) == Some(Activation::Softmax);
        if !(softmax && self.loss == Loss::CrossEntropy) {
            return Ok(());
        }
        let tolerance = 4.0 * (targets.ncols() as f64 + 1.0) * F::epsilon().to_f64_lossless();
        for (row, y) in targets.rows().into_iter().enumerate() {
            if let Some(column) = y.iter().position(|&v| v < F::zero()) {
                return Err(Error::TargetNotDistribution {
                    row,
                    problem: format!("entry {column} is {}", y[column]),
                });
            }
            let sum: f64 = y.iter().map(|v| v.to_f64_lossless()).sum();
            if sum.is_nan() || (sum - 1.0).abs() > tolerance {
                return Err(Error::TargetNotDistribution {
                    row,
                    problem: format!("its entries sum to {sum}"),
                });
            }
        }
        Ok(())
    }

    /// (F) for every layer, into `workspace`; returns the number of rows processed.
    /// Inputs must already be checked and fit the workspace.
    pub(crate) fn forward_into(&self, inputs: ArrayView2<'_, F>, ws: &mut Workspace<F>) -> usize {
        debug_assert!(inputs.nrows() <= ws.capacity);
        self.forward_layers(
            inputs,
            &mut ws.inputs,
            &mut ws.weighted_inputs,
            &mut ws.activations,
            &mut ws.packing,
        )
    }

    /// (F) for every layer: the input activation into `activated_inputs` (when the network has
    /// one), then Z_l and A_l of every layer into `weighted_inputs[l]` and `activations[l]`.
    /// Returns the number of rows processed. Inputs must already be checked, and every buffer
    /// hold at least their rows.
    pub(crate) fn forward_layers(
        &self,
        inputs: ArrayView2<'_, F>,
        activated_inputs: &mut Array2<F>,
        weighted_inputs: &mut [Array2<F>],
        activations: &mut [Array2<F>],
        packing: &mut Packing<F>,
    ) -> usize {
        let no_dropout = |_: usize, _: ArrayViewMut2<'_, F>| {};
        self.forward_layers_then(
            inputs,
            activated_inputs,
            weighted_inputs,
            activations,
            packing,
            no_dropout,
        )
    }

    /// [`Network::forward_layers`], calling `after(l, A_l)` on each layer's activations (the
    /// batch's rows) before the next layer reads them: where training applies dropout, (D).
    fn forward_layers_then(
        &self,
        inputs: ArrayView2<'_, F>,
        activated_inputs: &mut Array2<F>,
        weighted_inputs: &mut [Array2<F>],
        activations: &mut [Array2<F>],
        packing: &mut Packing<F>,
        mut after: impl FnMut(usize, ArrayViewMut2<'_, F>),
    ) -> usize {
        let rows = inputs.nrows();
        if let Some(act) = self.input_activation {
            let mut x = activated_inputs.slice_mut(s![..rows, ..]);
            x.assign(&inputs);
            act.forward_in_place(x);
        }
        let activated = self.input_activation.map(|_| &*activated_inputs);
        for (l, layer) in self.layers.iter().enumerate() {
            let (done, rest) = activations.split_at_mut(l);
            layer.run_forward(
                layer_input(l, inputs, activated, done, rows),
                weighted_inputs[l].slice_mut(s![..rows, ..]),
                rest[0].slice_mut(s![..rows, ..]),
                packing,
            );
            after(l, rest[0].slice_mut(s![..rows, ..]));
        }
        rows
    }

    /// The sensitivities of every layer for one batch, into `ws`: (F), (B1) times `scale` when
    /// given, then (B2) down to the first layer. Returns the loss summed over the batch (never
    /// scaled). Scaling Δ of the output before (B2) scales every gradient computed from it,
    /// without a pass over the gradients afterwards. Inputs and targets must already be
    /// checked and fit the workspace, and `dropout`'s masks drawn for these rows: with them,
    /// (D) follows each hidden layer's (F), the activations in `ws` are those after (D), and
    /// (B2ᴰ) replaces (B2).
    fn sensitivities(
        &self,
        inputs: ArrayView2<'_, F>,
        targets: ArrayView2<'_, F>,
        ws: &mut Workspace<F>,
        scale: Option<F>,
        mut dropout: Option<&mut Masks<F>>,
    ) -> f64 {
        let rows = match dropout.as_deref_mut() {
            None => self.forward_into(inputs, ws),
            Some(masks) => self.forward_layers_then(
                inputs,
                &mut ws.inputs,
                &mut ws.weighted_inputs,
                &mut ws.activations,
                &mut ws.packing,
                |l, a| masks.apply(l, a),
            ),
        };
        let last = self.layers.len() - 1;
        let output = self.layers[last].activation();
        let z = ws.weighted_inputs[last].slice(s![..rows, ..]);
        let a = ws.activations[last].slice(s![..rows, ..]);
        let loss = self.loss.sum(output, z, a, targets);
        let mut delta = ws.sensitivities[last].slice_mut(s![..rows, ..]);
        // (B1)
        self.loss
            .output_sensitivities(output, z, a, targets, delta.view_mut());
        if let Some(k) = scale {
            delta.mapv_inplace(|d| d * k);
        }
        // (B2): pull each Δ_l back through W_l, then through σ_{l−1}. Nobody needs the
        // inputs' sensitivity, so it stops at the first layer.
        for l in (1..=last).rev() {
            let (below, here) = ws.sensitivities.split_at_mut(l);
            let mut pulled = below[l - 1].slice_mut(s![..rows, ..]);
            self.layers[l].run_input_sensitivities(
                here[0].slice(s![..rows, ..]),
                pulled.view_mut(),
                &mut ws.packing,
            );
            // (B2ᴰ): through the mask, then σ′ at the activations before it.
            let undropped = dropout
                .as_deref()
                .and_then(|masks| masks.unapply(l - 1, pulled.view_mut()));
            self.layers[l - 1].activation().backward_in_place(
                ws.weighted_inputs[l - 1].slice(s![..rows, ..]),
                undropped.unwrap_or_else(|| ws.activations[l - 1].slice(s![..rows, ..])),
                pulled,
            );
        }
        loss
    }

    /// Forward and backward pass over one batch: **sets** `gradients` to the gradients of the
    /// loss summed over the batch's samples (not averaged), times `scale` when given, and
    /// returns that summed loss (never scaled). Inputs and targets must already be checked and
    /// fit the workspace; with `dropout`, its masks drawn for these rows (see
    /// [`Network::sensitivities`]).
    pub(crate) fn summed_gradients(
        &self,
        inputs: ArrayView2<'_, F>,
        targets: ArrayView2<'_, F>,
        ws: &mut Workspace<F>,
        gradients: &mut Gradients<F>,
        scale: Option<F>,
        dropout: Option<&mut Masks<F>>,
    ) -> f64 {
        let loss = self.sensitivities(inputs, targets, ws, scale, dropout);
        let rows = inputs.nrows();
        let activated = self.input_activation.map(|_| &ws.inputs);
        for (l, layer) in self.layers.iter().enumerate() {
            // (B3), (B4)
            layer.run_parameter_gradients(
                layer_input(l, inputs, activated, &ws.activations, rows),
                ws.sensitivities[l].slice(s![..rows, ..]),
                &mut gradients.layers[l],
                false,
                &mut ws.packing,
            );
        }
        loss
    }

    /// One step of plain SGD (with optional L2 weight decay) on a single sample, with the
    /// gradient and the update fused: the sensitivities as in [`Network::summed_gradients`],
    /// then (B3) and (U) in one pass per layer that never writes the gradient. The same
    /// operations as [`Network::summed_gradients`] followed by the optimiser, so the same bits,
    /// in fewer passes over the weights (see `sample::sgd_outer`).
    ///
    /// Returns the sample's loss. A [`Divergence`] leaves the network unchanged: every new
    /// weight is known finite before any is written (see [`Network::check_sgd_update`]).
    pub(crate) fn sgd_one_sample(
        &mut self,
        inputs: ArrayView2<'_, F>,
        targets: ArrayView2<'_, F>,
        ws: &mut Workspace<F>,
        learning_rate: F,
        weight_decay: F,
    ) -> std::result::Result<f64, Divergence> {
        debug_assert_eq!(inputs.nrows(), 1);
        let loss = self.sensitivities(inputs, targets, ws, None, None);
        if !loss.is_finite() {
            return Err(Divergence::Loss(loss));
        }
        let rule = SgdRule {
            learning_rate,
            weight_decay,
        };
        self.check_sgd_update(inputs, ws, rule, loss)?;
        self.apply_sgd_update(inputs, ws, rule);
        self.parameter_stamp = fresh_stamp();
        ws.bounds_stamp = self.parameter_stamp;
        Ok(loss)
    }

    /// (B3) and (U) for one sample, computed but not written: whether every new parameter is
    /// finite, and if not why (a divergence at the sample's `loss`). `ws` must hold the
    /// sample's sensitivities.
    ///
    /// The workspace keeps, per layer, an upper bound on max |w| (computed here when unknown)
    /// up to date across steps; while the bound after the step stays far below the float
    /// type's maximum, no weight can overflow and the check pass over the weights is skipped.
    /// The bounds hold only for the parameters they were derived from: those of the stamp the
    /// workspace records, which any other change of the parameters replaces.
    fn check_sgd_update(
        &mut self,
        inputs: ArrayView2<'_, F>,
        ws: &mut Workspace<F>,
        rule: SgdRule<F>,
        loss: f64,
    ) -> std::result::Result<(), Divergence> {
        if ws.weight_bounds.len() != self.layers.len() {
            ws.weight_bounds.clear();
            ws.weight_bounds.resize(self.layers.len(), f64::NAN);
        } else if ws.bounds_stamp != self.parameter_stamp {
            ws.weight_bounds.fill(f64::NAN);
        }
        let activated = self.input_activation.map(|_| &ws.inputs);
        for (l, layer) in self.layers.iter_mut().enumerate() {
            let previous = layer_input(l, inputs, activated, &ws.activations, 1);
            let delta = ws.sensitivities[l].slice(s![..1, ..]);
            let (x, d) = (one_row(&previous), one_row(&delta));
            let (w, b) = layer.parameter_slices_mut();
            if !rule.check_layer(w, b, x, d, &mut ws.weight_bounds[l]) {
                ws.weight_bounds.fill(f64::NAN);
                return Err(if x.iter().chain(d).all(|v| v.is_finite()) {
                    Divergence::Weight(loss)
                } else {
                    Divergence::Gradient(loss)
                });
            }
        }
        Ok(())
    }

    /// (B3) and (U) for one sample, written: the update [`Network::check_sgd_update`] checked.
    fn apply_sgd_update(&mut self, inputs: ArrayView2<'_, F>, ws: &Workspace<F>, rule: SgdRule<F>) {
        let activated = self.input_activation.map(|_| &ws.inputs);
        for (l, layer) in self.layers.iter_mut().enumerate() {
            let previous = layer_input(l, inputs, activated, &ws.activations, 1);
            let delta = ws.sensitivities[l].slice(s![..1, ..]);
            let (w, b) = layer.parameter_slices_mut();
            rule.write_layer(w, b, one_row(&previous), one_row(&delta));
        }
    }

    /// The mean loss over a batch and its gradients (mean over the batch, see [`crate::nn::loss`]).
    ///
    /// # Shapes
    /// `inputs`: (batch, n_in); `targets`: (batch, n_out).
    ///
    /// # Errors
    /// As [`Network::check_inputs`] and [`Network::check_targets`].
    pub fn gradients(
        &self,
        inputs: ArrayView2<'_, F>,
        targets: ArrayView2<'_, F>,
    ) -> Result<(f64, Gradients<F>)> {
        self.check_inputs(inputs)?;
        self.check_targets(inputs, targets)?;
        let rows = inputs.nrows();
        let mut ws = self.workspace(rows);
        let mut gradients = self.zero_gradients();
        let loss = self.summed_gradients(inputs, targets, &mut ws, &mut gradients, None, None);
        gradients.scale(F::one() / F::of(rows as f64));
        Ok((loss / rows as f64, gradients))
    }

    /// The network's outputs for a batch of inputs, computed in parallel over fixed chunks.
    ///
    /// Row `i` of the result is the output layer's activations for row `i` of `inputs`: with a
    /// softmax output, the class probabilities (each row sums to 1, up to rounding); with a
    /// sigmoid, values in [0, 1]; with the identity, the weighted inputs themselves. The bits
    /// do not depend on the thread count; a row's last bits can depend on the size of the
    /// batch it is in. To predict again and again without allocating, see
    /// [`Network::predict_into`].
    ///
    /// # Shapes
    /// `inputs`: (batch, n_in); result: (batch, n_out).
    ///
    /// # Errors
    /// As [`Network::check_inputs`]; [`Error::KernelUnavailable`] if `LERNMI_KERNEL` names a
    /// kernel family this CPU does not run.
    pub fn predict(&self, inputs: ArrayView2<'_, F>) -> Result<Array2<F>> {
        crate::fast::kernel_choice()?;
        self.check_inputs(inputs)?;
        let mut outputs = Array2::zeros((inputs.nrows(), self.n_outputs()));
        let last = self.layers.len() - 1;
        inputs
            .axis_chunks_iter(Axis(0), EVAL_CHUNK)
            .into_par_iter()
            .zip(outputs.axis_chunks_iter_mut(Axis(0), EVAL_CHUNK))
            .for_each_init(
                || self.inference_workspace(EVAL_CHUNK.min(inputs.nrows())),
                |ws, (x, mut out)| {
                    let rows = self.forward_into(x, ws);
                    out.assign(&ws.activations[last].slice(s![..rows, ..]));
                },
            );
        Ok(outputs)
    }

    /// Mean loss and accuracy over a set, in parallel over fixed chunks (the result does not
    /// depend on the thread count). A sample counts as correct when its first largest output is
    /// at its target's first largest entry (the seed's argmax).
    ///
    /// # Shapes
    /// `inputs`: (n, n_in); `targets`: n class labels (`&[usize]`) or (n, n_out) rows.
    ///
    /// # Errors
    /// As [`Network::check_inputs`] and [`Network::check_targets`];
    /// [`Error::LabelOutOfRange`] for a label ≥ n_out.
    pub fn evaluate<'t>(
        &self,
        inputs: ArrayView2<'_, F>,
        targets: impl Into<Targets<'t, F>>,
    ) -> Result<Evaluation> {
        let targets = targets.into().rows(self.n_outputs())?;
        let targets = targets.view();
        self.check_inputs(inputs)?;
        self.check_targets(inputs, targets)?;
        Ok(self.evaluate_checked(inputs, targets, true))
    }

    /// [`Network::evaluate`] on checked inputs and target rows, over rayon's current pool when
    /// `parallel`, else on the calling thread alone (the same bits either way: the chunks are
    /// fixed and their sums added in order).
    pub(crate) fn evaluate_checked(
        &self,
        inputs: ArrayView2<'_, F>,
        targets: ArrayView2<'_, F>,
        parallel: bool,
    ) -> Evaluation {
        let last = self.layers.len() - 1;
        let output = self.layers[last].activation();
        let workspace = || self.inference_workspace(EVAL_CHUNK.min(inputs.nrows()));
        let chunk = |ws: &mut Workspace<F>, (x, y): (ArrayView2<'_, F>, ArrayView2<'_, F>)| {
            let rows = self.forward_into(x, ws);
            let z = ws.weighted_inputs[last].slice(s![..rows, ..]);
            let a = ws.activations[last].slice(s![..rows, ..]);
            let loss = self.loss.sum(output, z, a, y);
            let correct = a
                .rows()
                .into_iter()
                .zip(y.rows())
                .filter(|(a, y)| argmax(a.iter()) == argmax(y.iter()))
                .count();
            (loss, correct)
        };
        let chunks = inputs.axis_chunks_iter(Axis(0), EVAL_CHUNK);
        let target_chunks = targets.axis_chunks_iter(Axis(0), EVAL_CHUNK);
        let per_chunk: Vec<(f64, usize)> = if parallel {
            let chunks = chunks.into_par_iter().zip(target_chunks);
            chunks.map_init(workspace, chunk).collect()
        } else {
            let mut ws = workspace();
            chunks
                .zip(target_chunks)
                .map(|c| chunk(&mut ws, c))
                .collect()
        };
        let (loss, correct) = per_chunk
            .iter()
            .fold((0.0, 0), |(l, c), &(dl, dc)| (l + dl, c + dc));
        Evaluation {
            loss: loss / inputs.nrows() as f64,
            correct,
            total: inputs.nrows(),
        }
    }

    /// The predicted class of each row of `inputs`: the index, in `0..n_outputs`, of the row's
    /// largest output in [`Network::predict`] (the first one on ties; NaN never wins). One
    /// entry per row, in order.
    ///
    /// # Errors
    /// As [`Network::check_inputs`].
    pub fn classify(&self, inputs: ArrayView2<'_, F>) -> Result<Vec<usize>> {
        let outputs = self.predict(inputs)?;
        Ok(outputs
            .rows()
            .into_iter()
            .map(|r| argmax(r.iter()))
            .collect())
    }
}

impl<F: Float> Workspace<F> {
    /// Split the matrix products over column blocks in parallel (deterministically).
    pub(crate) fn set_parallel_products(&mut self, parallel: bool) {
        self.packing.parallel = parallel;
    }
}

impl<F: Float> Gradients<F> {
    /// Adds another set of gradients, layer by layer.
    pub fn add_assign(&mut self, other: &Gradients<F>) {
        for (a, b) in self.layers.iter_mut().zip(&other.layers) {
            a.add_assign(b);
        }
    }

    /// [`LayerGradients::combine`] for every layer.
    pub(crate) fn combine(
        &mut self,
        first: Option<&Gradients<F>>,
        add: Option<&Gradients<F>>,
        factor: Option<F>,
    ) {
        for (l, g) in self.layers.iter_mut().enumerate() {
            g.combine(
                first.map(|f| &f.layers[l]),
                add.map(|a| &a.layers[l]),
                factor,
            );
        }
    }

    /// Copies `other` into `self`.
    pub fn assign(&mut self, other: &Gradients<F>) {
        for (a, b) in self.layers.iter_mut().zip(&other.layers) {
            a.assign(b);
        }
    }

    /// Multiplies every gradient by `factor`.
    pub fn scale(&mut self, factor: F) {
        for g in &mut self.layers {
            g.scale(factor);
        }
    }

    /// Whether every gradient is finite.
    pub fn is_finite(&self) -> bool {
        self.layers.iter().all(LayerGradients::is_finite)
    }
}

/// What [`Network::from_layers`] requires of its layers: at least one, chaining (each `n_in`
/// the previous `n_out`), softmax only at the output, an output the loss is defined for.
fn check_layers<F: Float>(
    layers: &[Dense<F>],
    loss: Loss,
    input_activation: Option<Activation>,
) -> Result<()> {
    let Some(last) = layers.last() else {
        return Err(Error::Empty { what: "layer list" });
    };
    loss.check_output(last.activation())?;
    for (l, pair) in layers.windows(2).enumerate() {
        if pair[1].n_in() != pair[0].n_out() {
            return Err(Error::Shape {
                what: format!("weights of layer {}", l + 1),
                expected: vec![pair[1].n_out(), pair[0].n_out()],
                got: vec![pair[1].n_out(), pair[1].n_in()],
            });
        }
        if !pair[0].activation().is_elementwise() {
            return Err(Error::InvalidActivation {
                activation: pair[0].activation().name(),
                place: "in a hidden layer (only at the output)",
            });
        }
    }
    if let Some(a) = input_activation {
        a.validate()?;
        if !a.is_elementwise() {
            return Err(Error::InvalidActivation {
                activation: a.name(),
                place: "as the input activation",
            });
        }
    }
    Ok(())
}

/// The activations feeding layer `l`, first `rows` rows: the inputs, the inputs after the
/// input activation (`activated_inputs`, given when the network has one), or the activations
/// of layer l − 1 (`activations` need hold only the layers below l).
fn layer_input<'a, F: Float>(
    l: usize,
    inputs: ArrayView2<'a, F>,
    activated_inputs: Option<&'a Array2<F>>,
    activations: &'a [Array2<F>],
    rows: usize,
) -> ArrayView2<'a, F> {
    match (l, activated_inputs) {
        (0, None) => inputs,
        (0, Some(x)) => x.slice(s![..rows, ..]),
        _ => activations[l - 1].slice(s![..rows, ..]),
    }
}

/// The only row of a one-row view of a standard-layout buffer, as a slice.
fn one_row<'a, F: Float>(view: &ArrayView2<'a, F>) -> &'a [F] {
    match view.to_slice() {
        Some(row) if view.nrows() == 1 => row,
        _ => unreachable!("one-row views of standard-layout buffers are contiguous"),
    }
}

/// Plain SGD with optional L2 weight decay, applied to one layer for one sample: (B3) and (U)
/// fused, through `sample::sgd_outer` for the weights.
#[derive(Clone, Copy)]
struct SgdRule<F: Float> {
    learning_rate: F,
    weight_decay: F,
}

impl<F: Float> SgdRule<F> {
    /// Whether every new weight and bias of the layer would be finite; writes nothing.
    /// `bound` is an upper bound on max |w| (NaN: unknown), kept up to date: while it stays far
    /// below the float type's maximum the weights cannot overflow and their check is skipped.
    fn check_layer(&self, w: &mut [F], b: &[F], x: &[F], d: &[F], bound: &mut f64) -> bool {
        let lr = self.learning_rate.to_f64_lossless().abs();
        let decay = self.weight_decay.to_f64_lossless().abs();
        let limit = F::max_value().to_f64_lossless() * 1e-6;
        if bound.is_nan() {
            // (A NaN weight, which only a caller can put there, is ignored here: it makes the
            // loss NaN, which stops the step before this point.)
            *bound = sample::max_abs(w);
        }
        // |w − η·(x_i·δ_j + λ·w)| ≤ max|w|·(1 + η·λ) + η·Σ|x|·Σ|δ|, with a margin far above
        // rounding. NaN or ∞ in x or δ makes it NaN, which forces the check.
        let grown = (*bound * (1.0 + lr * decay) + lr * sample::sum_abs(x) * sample::sum_abs(d))
            * (1.0 + 1e-3);
        let weights_finite = if grown < limit {
            *bound = grown;
            true
        } else {
            *bound = f64::NAN;
            sample::sgd_outer(w, x, d, self.learning_rate, self.weight_decay, false)
        };
        // The bias gradient is the column sum 0 + δ_j, as in the batched path.
        let mut bias_check = F::zero();
        for (&b, &d) in b.iter().zip(d) {
            bias_check += (b - self.learning_rate * (F::zero() + d)) * F::zero();
        }
        weights_finite && bias_check == F::zero()
    }

    /// Writes the layer's new weights and biases.
    fn write_layer(&self, w: &mut [F], b: &mut [F], x: &[F], d: &[F]) {
        sample::sgd_outer(w, x, d, self.learning_rate, self.weight_decay, true);
        for (b, &d) in b.iter_mut().zip(d) {
            let new = *b - self.learning_rate * (F::zero() + d);
            *b = new;
        }
    }
}

/// Index of the first largest value (NaN never wins).
pub(crate) fn argmax<'a, F: Float + 'a>(values: impl Iterator<Item = &'a F>) -> usize {
    let mut best = 0;
    let mut best_value = F::neg_infinity();
    for (i, &v) in values.enumerate() {
        if v > best_value {
            best = i;
            best_value = v;
        }
    }
    best
}

/// One-hot targets: row i has 1 in column `labels[i]`, 0 elsewhere.
///
/// The result holds `labels.len() × classes` elements, so both are bounded before anything is
/// allocated: at most 2²⁰ classes, and at most 2³¹ elements in all.
///
/// # Errors
/// [`Error::InvalidHyperparameter`] for more than 2²⁰ classes or more than 2³¹ elements;
/// [`Error::LabelOutOfRange`] for a label ≥ `classes`.
pub fn one_hot<F: Float>(labels: &[usize], classes: usize) -> Result<Array2<F>> {
    // Far beyond any classifier's outputs; refuses a class count that no memory could hold.
    const MAX_CLASSES: usize = 1 << 20;
    // 8 GiB of f32: far beyond any dataset this crate trains on in memory.
    const MAX_ELEMENTS: usize = 1 << 31;
    if classes > MAX_CLASSES {
        return Err(Error::InvalidHyperparameter {
            name: "classes",
            value: classes as f64,
            reason: "one_hot accepts at most 2^20 classes",
        });
    }
    if let Some((index, &label)) = labels.iter().enumerate().find(|(_, &l)| l >= classes) {
        return Err(Error::LabelOutOfRange {
            label,
            index,
            classes,
        });
    }
    if labels
        .len()
        .checked_mul(classes)
        .is_none_or(|n| n > MAX_ELEMENTS)
    {
        return Err(Error::InvalidHyperparameter {
            name: "one-hot elements (labels × classes)",
            value: labels.len() as f64 * classes as f64,
            reason: "one_hot builds at most 2^31 elements",
        });
    }
    let mut targets = Array2::zeros((labels.len(), classes));
    for (index, &label) in labels.iter().enumerate() {
        targets[[index, label]] = F::one();
    }
    Ok(targets)
}

#[cfg(test)]
mod tests {
    use ndarray::array;

    use super::*;

    /// The one-sample step skips its overflow check while the workspace's weight bounds say no
    /// weight can overflow. A weight changed through `layers_mut` must not be covered by bounds
    /// derived before the change: the step must see it and refuse the update.
    #[test]
    fn one_sample_step_sees_weights_changed_through_layers_mut() {
        let mut net: Network<f32> = Network::<f32>::builder(&[2, 3, 2])
            .hidden(Activation::Sigmoid)
            .output(Activation::Sigmoid)
            .loss(Loss::SquaredError)
            .seed(5)
            .build()
            .unwrap();
        let mut ws = net.workspace(1);
        let (x, y) = (array![[1.0f32, 0.5]], array![[0.0f32, 1.0]]);
        // η = 1, λ = 3: every step multiplies each weight by about −2.
        let step = |net: &mut Network<f32>, ws: &mut Workspace<f32>| {
            net.sgd_one_sample(x.view(), y.view(), ws, 1.0, 3.0)
        };
        step(&mut net, &mut ws).expect("small weights cannot overflow");
        net.layers_mut()[1].parameters_mut().0[[0, 0]] = f32::MAX * 0.9;
        let before = net.clone();
        let err = step(&mut net, &mut ws).expect_err("−2 × 0.9·MAX overflows");
        assert!(matches!(err, Divergence::Weight(_)), "{err:?}");
        assert_eq!(net, before, "a refused step leaves the network unchanged");
    }

    /// One workspace, two networks of the same shape: the bounds derived while training one
    /// must not cover the other, whose weights they never saw.
    #[test]
    fn one_sample_step_sees_another_network_of_the_same_shape() {
        let mut net: Network<f32> = Network::<f32>::builder(&[2, 3, 2])
            .hidden(Activation::Sigmoid)
            .output(Activation::Sigmoid)
            .loss(Loss::SquaredError)
            .build()
            .unwrap();
        net.layers_mut()[1].parameters_mut().0[[0, 0]] = f32::MAX * 0.9;
        let mut other = net.clone();
        net.layers_mut()[1].parameters_mut().0[[0, 0]] = 0.0;
        let mut ws = net.workspace(1);
        let (x, y) = (array![[1.0f32, 0.5]], array![[0.0f32, 1.0]]);
        net.sgd_one_sample(x.view(), y.view(), &mut ws, 1.0, 3.0)
            .expect("small weights cannot overflow");
        let err = other
            .sgd_one_sample(x.view(), y.view(), &mut ws, 1.0, 3.0)
            .expect_err("−2 × 0.9·MAX overflows");
        assert!(matches!(err, Divergence::Weight(_)), "{err:?}");
    }
}
