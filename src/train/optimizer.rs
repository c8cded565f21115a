//! Optimisers (SGD, momentum, Nesterov, Adam) and L2 weight decay.
//!
//! Every optimiser consumes the batch-mean gradients g = ∂L/∂θ of [`crate::Gradients`]. With
//! L2 weight decay λ the gradient of the weights becomes g + λ·w (biases are not decayed).
//!
//! | optimiser | update |
//! |---|---|
//! | SGD (the seed's) | w ← w − η·g |
//! | momentum | v ← μ·v + g;  w ← w − η·v |
//! | Nesterov | v ← μ·v + g;  w ← w − η·(g + μ·v) |
//! | Adam | m ← β₁m + (1−β₁)g;  v ← β₂v + (1−β₂)g²;  w ← w − η·m̂ / (√v̂ + ε), m̂ = m/(1−β₁ᵗ), v̂ = v/(1−β₂ᵗ) |
//!
//! These are the conventions of PyTorch's `torch.optim`, so hyperparameters carry over.

use ndarray::{
    Array, Array1, Array2, ArrayViewMut, ArrayViewMut1, ArrayViewMut2, Dimension, ShapeBuilder,
};

use serde::{Deserialize, Serialize};

use crate::fast::elementwise::{self, Sgd};
use crate::{Error, Float, Gradients, LayerGradients, Network, Result};

/// An optimiser and its hyperparameters.
///
/// In a checkpoint a JSON object tagged by its name: `{"name":"sgd","learning_rate":0.1}`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "name", rename_all = "snake_case", deny_unknown_fields)]
#[non_exhaustive]
pub enum Optimizer {
    /// Plain stochastic gradient descent, Lernmi's `weight -= rate * gradient`.
    Sgd {
        /// η.
        learning_rate: f64,
    },
    /// SGD with (heavy-ball or Nesterov) momentum.
    Momentum {
        /// η.
        learning_rate: f64,
        /// μ ∈ [0, 1).
        momentum: f64,
        /// Nesterov's look-ahead form.
        nesterov: bool,
    },
    /// Adam (Kingma & Ba).
    Adam {
        /// η.
        learning_rate: f64,
        /// β₁ ∈ [0, 1).
        beta1: f64,
        /// β₂ ∈ [0, 1).
        beta2: f64,
        /// ε > 0.
        epsilon: f64,
    },
}

impl Optimizer {
    /// SGD with learning rate η.
    pub fn sgd(learning_rate: f64) -> Self {
        Optimizer::Sgd { learning_rate }
    }

    /// Heavy-ball momentum.
    pub fn momentum(learning_rate: f64, momentum: f64) -> Self {
        Optimizer::Momentum {
            learning_rate,
            momentum,
            nesterov: false,
        }
    }

    /// Nesterov momentum.
    pub fn nesterov(learning_rate: f64, momentum: f64) -> Self {
        Optimizer::Momentum {
            learning_rate,
            momentum,
            nesterov: true,
        }
    }

    /// Adam with β₁ = 0.9, β₂ = 0.999, ε = 1e-8.
    pub fn adam(learning_rate: f64) -> Self {
        Optimizer::Adam {
            learning_rate,
            beta1: 0.9,
            beta2: 0.999,
            epsilon: 1e-8,
        }
    }

    /// The base learning rate η.
    pub fn learning_rate(&self) -> f64 {
        match *self {
            Optimizer::Sgd { learning_rate }
            | Optimizer::Momentum { learning_rate, .. }
            | Optimizer::Adam { learning_rate, .. } => learning_rate,
        }
    }

    /// The optimiser's name: `sgd`, `momentum`, `nesterov` or `adam`.
    pub fn name(&self) -> &'static str {
        match self {
            Optimizer::Sgd { .. } => "sgd",
            Optimizer::Momentum {
                nesterov: false, ..
            } => "momentum",
            Optimizer::Momentum { nesterov: true, .. } => "nesterov",
            Optimizer::Adam { .. } => "adam",
        }
    }

    /// Checks the hyperparameters.
    ///
    /// # Errors
    /// [`Error::InvalidHyperparameter`] for a learning rate that is not finite and positive
    /// (or above 1e4), a momentum or β outside [0, 1), or an ε that is not finite and positive.
    pub fn validate(&self) -> Result<()> {
        let lr = self.learning_rate();
        if !(lr.is_finite() && lr > 0.0 && lr <= 1e4) {
            return Err(Error::InvalidHyperparameter {
                name: "learning_rate",
                value: lr,
                reason: "must be finite, positive and at most 1e4",
            });
        }
        let unit = |name, value: f64| {
            if (0.0..1.0).contains(&value) {
                Ok(())
            } else {
                Err(Error::InvalidHyperparameter {
                    name,
                    value,
                    reason: "must be in [0, 1)",
                })
            }
        };
        match *self {
            Optimizer::Sgd { .. } => Ok(()),
            Optimizer::Momentum { momentum, .. } => unit("momentum", momentum),
            Optimizer::Adam {
                beta1,
                beta2,
                epsilon,
                ..
            } => {
                unit("beta1", beta1)?;
                unit("beta2", beta2)?;
                if epsilon.is_finite() && epsilon > 0.0 {
                    Ok(())
                } else {
                    Err(Error::InvalidHyperparameter {
                        name: "epsilon",
                        value: epsilon,
                        reason: "must be finite and positive",
                    })
                }
            }
        }
    }
}

/// An optimiser's per-parameter state (velocities or moments), shaped like the network.
#[derive(Clone, Debug)]
pub struct OptimizerState<F: Float = f32> {
    optimizer: Optimizer,
    /// Velocity (momentum) or first moment (Adam), per layer: weights, biases.
    first: Vec<(Array2<F>, Array1<F>)>,
    /// Second moment (Adam), per layer.
    second: Vec<(Array2<F>, Array1<F>)>,
    /// Steps taken.
    steps: u64,
    /// Plain SGD: arrays for the new parameters, exchanged with the network's after a step.
    scratch: Scratch<F>,
}

/// Arrays plain SGD writes new parameters into: they hold the parameters of the step before
/// last, so they are no part of the state and [`OptimizerState`]'s equality leaves them out.
#[derive(Clone)]
struct Scratch<F: Float>(Vec<(Array2<F>, Array1<F>)>);

/// Two states are equal when they continue training alike: the same optimiser, moments and
/// step count (the scratch arrays, working space for one update, are left out).
impl<F: Float> PartialEq for OptimizerState<F> {
    fn eq(&self, other: &Self) -> bool {
        self.optimizer == other.optimizer
            && self.first == other.first
            && self.second == other.second
            && self.steps == other.steps
    }
}

impl<F: Float> std::fmt::Debug for Scratch<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Scratch({} layers)", self.0.len())
    }
}

impl<F: Float> OptimizerState<F> {
    /// Fresh state for `optimizer` on `network`.
    ///
    /// # Errors
    /// As [`Optimizer::validate`].
    pub fn new(optimizer: Optimizer, network: &Network<F>) -> Result<Self> {
        optimizer.validate()?;
        let zeros = || -> Vec<(Array2<F>, Array1<F>)> {
            network
                .layers()
                .iter()
                .map(|l| {
                    (
                        // The same layout as the weights, so updates can run on flat slices.
                        Array2::zeros(l.weights().raw_dim().f()),
                        Array1::zeros(l.biases().raw_dim()),
                    )
                })
                .collect()
        };
        let (first, second, scratch) = match optimizer {
            Optimizer::Sgd { .. } => (Vec::new(), Vec::new(), zeros()),
            Optimizer::Momentum { .. } => (zeros(), Vec::new(), Vec::new()),
            Optimizer::Adam { .. } => (zeros(), zeros(), Vec::new()),
        };
        Ok(OptimizerState {
            optimizer,
            first,
            second,
            steps: 0,
            scratch: Scratch(scratch),
        })
    }

    /// The optimiser.
    pub fn optimizer(&self) -> Optimizer {
        self.optimizer
    }

    /// The per-layer (weights, biases) of the first and second moments (empty where the
    /// optimiser keeps none), for checkpoints.
    pub(crate) fn moments(&self) -> [&[(Array2<F>, Array1<F>)]; 2] {
        [&self.first, &self.second]
    }

    /// State restored from a checkpoint: moments loaded into a fresh state for `optimizer` on
    /// `network` (so their shapes and layouts are the ones the optimiser expects).
    pub(crate) fn restored(
        optimizer: Optimizer,
        network: &Network<F>,
        mut moments: impl FnMut(usize, usize) -> Result<(Array2<F>, Array1<F>)>,
        steps: u64,
    ) -> Result<Self> {
        let mut state = Self::new(optimizer, network)?;
        for (which, slots) in [&mut state.first, &mut state.second]
            .into_iter()
            .enumerate()
        {
            for (l, (w, b)) in slots.iter_mut().enumerate() {
                let (weights, biases) = moments(which, l)?;
                w.assign(&weights);
                b.assign(&biases);
            }
        }
        state.steps = steps;
        Ok(state)
    }

    /// Steps taken so far.
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// The step count after one more step.
    ///
    /// # Errors
    /// [`Error::StepCountOverflow`] when the counter is at `u64::MAX` (only a checkpoint can
    /// put it there), so that no step is taken that could not be counted.
    pub(crate) fn next_step(&self) -> Result<u64> {
        self.steps
            .checked_add(1)
            .ok_or(Error::StepCountOverflow { steps: self.steps })
    }

    /// Counts a step taken outside [`OptimizerState::step`] (the fused one-sample SGD path,
    /// which keeps no state but the count); the caller has checked [`Self::next_step`] first.
    pub(crate) fn record_step(&mut self) {
        self.steps = self.steps.saturating_add(1);
    }

    /// Applies one update with learning rate `learning_rate` and L2 weight decay `weight_decay`.
    ///
    /// Every new weight and optimiser state is checked to be finite before any is written: if
    /// anything would overflow, nothing changes and `Ok(false)` is returned, so a diverging step
    /// never poisons the network. Plain SGD computes the new parameters into arrays of its own
    /// in one pass, checking them on the way, and exchanges them with the network's; the other
    /// optimisers compute the update twice, once to check it and once to write it.
    ///
    /// # Errors
    /// [`Error::Shape`] if `network` or `gradients` are not shaped like the network this state
    /// was made for, [`Error::StepCountOverflow`] if the step count cannot grow; nothing
    /// changes then either.
    pub fn step(
        &mut self,
        network: &mut Network<F>,
        gradients: &Gradients<F>,
        learning_rate: f64,
        weight_decay: f64,
    ) -> Result<bool> {
        self.step_split(network, gradients, learning_rate, weight_decay, false)
    }

    /// Checks that `network`, `gradients` and every array of the state have the same shapes,
    /// layer by layer: the updates zip them element by element.
    fn check_shapes(&self, network: &Network<F>, gradients: &Gradients<F>) -> Result<()> {
        let layers = network.layers();
        let state = [&self.first, &self.second, &self.scratch.0];
        let counts = std::iter::once(gradients.layers.len())
            .chain(state.iter().filter(|s| !s.is_empty()).map(|s| s.len()));
        for count in counts {
            if count != layers.len() {
                return Err(Error::Shape {
                    what: "layers of the gradients or optimiser state".into(),
                    expected: vec![layers.len()],
                    got: vec![count],
                });
            }
        }
        for (l, layer) in layers.iter().enumerate() {
            let expected = [layer.n_out(), layer.n_in()];
            let g = &gradients.layers[l];
            let arrays = std::iter::once(("gradients", g.weights.dim(), g.biases.len())).chain(
                state
                    .iter()
                    .filter_map(|s| s.get(l))
                    .map(|(w, b)| ("optimiser state", w.dim(), b.len())),
            );
            for (what, (rows, cols), biases) in arrays {
                if [rows, cols] != expected || biases != layer.n_out() {
                    return Err(Error::Shape {
                        what: format!("{what} of layer {l} (weights rows, columns)"),
                        expected: expected.to_vec(),
                        got: vec![rows, cols],
                    });
                }
            }
        }
        Ok(())
    }

    /// [`OptimizerState::step`], with plain SGD's pass split over the current rayon pool when
    /// `parallel` (the same bits: each parameter's update is independent of the others).
    pub(crate) fn step_split(
        &mut self,
        network: &mut Network<F>,
        gradients: &Gradients<F>,
        learning_rate: f64,
        weight_decay: f64,
        parallel: bool,
    ) -> Result<bool> {
        self.check_shapes(network, gradients)?;
        let next = self.next_step()?;
        let updated =
            match self.sgd_exchanging(network, gradients, learning_rate, weight_decay, parallel) {
                Some(updated) => updated,
                None => {
                    let (lr, wd) = (learning_rate, weight_decay);
                    self.check_or_apply(network, gradients, lr, wd, Pass::Check)
                        && self.check_or_apply(network, gradients, lr, wd, Pass::Apply)
                }
            };
        if updated {
            self.steps = next;
        }
        Ok(updated)
    }

    /// Plain SGD in one pass: the new parameters go into the scratch arrays, checked on the
    /// way, and are exchanged with the network's only if all are finite. `None` (nothing
    /// written) if the optimiser is not plain SGD or some array is not laid out like its layer.
    fn sgd_exchanging(
        &mut self,
        network: &mut Network<F>,
        gradients: &Gradients<F>,
        learning_rate: f64,
        weight_decay: f64,
        parallel: bool,
    ) -> Option<bool> {
        if !matches!(self.optimizer, Optimizer::Sgd { .. })
            || self.scratch.0.len() != network.layers().len()
            || gradients.layers.len() != network.layers().len()
        {
            return None;
        }
        let (lr, wd) = (F::of(learning_rate), F::of(weight_decay));
        let mut finite = true;
        for ((layer, grads), (new_w, new_b)) in network
            .layers()
            .iter()
            .zip(&gradients.layers)
            .zip(self.scratch.0.iter_mut())
        {
            let same =
                layer.same_layout(new_w, new_b) && layer.same_layout(&grads.weights, &grads.biases);
            match (
                same,
                layer.weights().as_slice_memory_order(),
                layer.biases().as_slice(),
                grads.weights.as_slice_memory_order(),
                grads.biases.as_slice(),
                new_w.as_slice_memory_order_mut(),
                new_b.as_slice_mut(),
            ) {
                (true, Some(w), Some(b), Some(gw), Some(gb), Some(nw), Some(nb)) => {
                    // The seed's update: weight − rate·(input · output sensitivity).
                    finite &= elementwise::sgd_split(parallel, Sgd::Into(w, nw), gw, lr, wd);
                    finite &= elementwise::sgd(Sgd::Into(b, nb), gb, lr, F::zero());
                }
                _ => return None,
            }
        }
        if finite {
            for (layer, (new_w, new_b)) in network.layers_mut().iter_mut().zip(&mut self.scratch.0)
            {
                layer.swap_parameters(new_w, new_b);
            }
        }
        Some(finite)
    }

    /// Computes the update of every parameter: [`Pass::Check`] only checks that every new
    /// value is finite, [`Pass::Apply`] writes them. Returns whether everything was finite
    /// (always true when applying).
    fn check_or_apply(
        &mut self,
        network: &mut Network<F>,
        gradients: &Gradients<F>,
        learning_rate: f64,
        weight_decay: f64,
        pass: Pass,
    ) -> bool {
        let lr = F::of(learning_rate);
        let wd = (weight_decay != 0.0).then(|| F::of(weight_decay));
        // `step_split` has checked that the count can grow.
        let t = self.steps.saturating_add(1).min(i32::MAX as u64) as i32;
        // Sum of x·0 over every new value: 0 if all are finite, NaN otherwise.
        let mut check = F::zero();
        for (l, (layer, grads)) in network
            .layers_mut()
            .iter_mut()
            .zip(&gradients.layers)
            .enumerate()
        {
            let (weights, biases) = layer.parameters_mut();
            check += match self.optimizer {
                Optimizer::Sgd { .. } => sgd_layer(pass, weights, biases, grads, lr, wd),
                Optimizer::Momentum {
                    momentum, nesterov, ..
                } => {
                    let rule = |decay| momentum_rule(lr, F::of(momentum), nesterov, decay);
                    let (vw, vb) = &mut self.first[l];
                    let decay = wd.unwrap_or_else(F::zero);
                    sweep(pass, [weights, vw.view_mut()], &grads.weights, rule(decay))
                        + sweep(
                            pass,
                            [biases, vb.view_mut()],
                            &grads.biases,
                            rule(F::zero()),
                        )
                }
                Optimizer::Adam {
                    beta1,
                    beta2,
                    epsilon,
                    ..
                } => {
                    let rule = |decay| adam_rule(lr, [beta1, beta2, epsilon], t, decay);
                    let ((mw, mb), (vw, vb)) = (&mut self.first[l], &mut self.second[l]);
                    let decay = wd.unwrap_or_else(F::zero);
                    let updated = [weights, mw.view_mut(), vw.view_mut()];
                    sweep(pass, updated, &grads.weights, rule(decay))
                        + sweep(
                            pass,
                            [biases, mb.view_mut(), vb.view_mut()],
                            &grads.biases,
                            rule(F::zero()),
                        )
                }
            };
        }
        check == F::zero()
    }
}

/// Whether a pass over the parameters only checks the new values or writes them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Pass {
    /// Compute every new value and check that it is finite; write nothing.
    Check,
    /// Compute every new value and write it.
    Apply,
}

/// Plain SGD on one layer's weights and biases (weight decay `wd` on the weights only):
/// w ← w − η·g, or w ← w − η·(g + λ·w). Returns Σ new·0 when checking, else 0.
fn sgd_layer<F: Float>(
    pass: Pass,
    mut weights: ArrayViewMut2<'_, F>,
    mut biases: ArrayViewMut1<'_, F>,
    grads: &LayerGradients<F>,
    lr: F,
    wd: Option<F>,
) -> F {
    let same = weights.strides() == grads.weights.strides();
    if let (Pass::Apply, true, Some(w), Some(b), Some(gw), Some(gb)) = (
        pass,
        same,
        weights.as_slice_memory_order_mut(),
        biases.as_slice_mut(),
        grads.weights.as_slice_memory_order(),
        grads.biases.as_slice(),
    ) {
        // The seed's update: weight − rate·(input · output sensitivity).
        elementwise::sgd(Sgd::InPlace(w), gw, lr, wd.unwrap_or_else(F::zero));
        elementwise::sgd(Sgd::InPlace(b), gb, lr, F::zero());
        return F::zero();
    }
    let bias = sweep(pass, [biases], &grads.biases, |[w], g| [w - lr * g]);
    let weight = match wd {
        None => sweep(pass, [weights], &grads.weights, |[w], g| [w - lr * g]),
        Some(wd) => sweep(pass, [weights], &grads.weights, |[w], g| {
            [w - lr * (g + wd * w)]
        }),
    };
    weight + bias
}

/// The momentum rule for weight decay `decay`: v ← μ·v + g;  w ← w − η·v (heavy ball) or
/// w ← w − η·(g + μ·v) (Nesterov), with g + λ·w for g. On `[w, v]`, returns the new `[w, v]`.
fn momentum_rule<F: Float>(lr: F, mu: F, nesterov: bool, decay: F) -> impl Fn([F; 2], F) -> [F; 2] {
    move |[w, v], g| {
        let g = g + decay * w;
        let v = mu * v + g;
        [w - lr * if nesterov { g + mu * v } else { v }, v]
    }
}

/// Adam's rule at step `t` for weight decay `decay`, on `[w, m, v]`:
/// m ← β₁m + (1−β₁)g;  v ← β₂v + (1−β₂)g²;  w ← w − η·m̂ / (√v̂ + ε).
fn adam_rule<F: Float>(
    lr: F,
    [beta1, beta2, epsilon]: [f64; 3],
    t: i32,
    decay: F,
) -> impl Fn([F; 3], F) -> [F; 3] {
    let (b1, b2, eps) = (F::of(beta1), F::of(beta2), F::of(epsilon));
    let c1 = F::of(1.0 / (1.0 - beta1.powi(t)));
    let c2 = F::of(1.0 / (1.0 - beta2.powi(t)));
    move |[w, m, v], g| {
        let g = g + decay * w;
        let m = b1 * m + (F::one() - b1) * g;
        let v = b2 * v + (F::one() - b2) * g * g;
        [w - lr * (m * c1) / ((v * c2).sqrt() + eps), m, v]
    }
}

/// 0 for true, NaN for false: the currency of the checks.
fn finite<F: Float>(ok: bool) -> F {
    if ok {
        F::zero()
    } else {
        F::nan()
    }
}

/// Σ x·0 over `values`: 0 when all are finite, NaN otherwise.
fn zero_if_finite<F: Float, const N: usize>(values: [F; N]) -> F {
    values.iter().fold(F::zero(), |acc, &x| acc + x * F::zero())
}

/// The most arrays a rule updates per parameter (the parameter and Adam's two moments).
const MOST_UPDATED: usize = 3;

/// Applies `rule(old, g)` element by element to the `N` arrays `updated` (the parameters
/// first, then the optimiser's state) and the gradients `grads`, all of one shape: writes the
/// new values ([`Pass::Apply`], returning 0) or returns Σ new·0 without writing
/// ([`Pass::Check`]).
fn sweep<F: Float, D: Dimension, const N: usize>(
    pass: Pass,
    mut updated: [ArrayViewMut<'_, F, D>; N],
    grads: &Array<F, D>,
    rule: impl Fn([F; N], F) -> [F; N],
) -> F {
    let same = updated.iter().all(|a| a.strides() == grads.strides());
    match (pass, same, grads.as_slice_memory_order()) {
        (Pass::Apply, true, Some(g)) => {
            let slices = updated.each_mut().map(|a| a.as_slice_memory_order_mut());
            if slices.iter().all(Option::is_some) {
                apply_on_slices(slices.map(Option::unwrap_or_default), g, rule);
                return F::zero();
            }
        }
        (Pass::Check, true, Some(g)) if N <= MOST_UPDATED => {
            let slices = updated.each_ref().map(|a| a.as_slice_memory_order());
            if slices.iter().all(Option::is_some) {
                let slices = slices.map(Option::unwrap_or_default);
                // The kernel takes a fixed number of arrays: the gradients fill the rest.
                let inputs: [&[F]; MOST_UPDATED + 1] =
                    std::array::from_fn(|k| if k < N { slices[k] } else { g });
                return finite(elementwise::finite_under(inputs, |v| {
                    zero_if_finite(rule(std::array::from_fn(|k| v[k]), v[MOST_UPDATED]))
                }));
            }
        }
        _ => {}
    }
    sweep_in_logical_order(pass, updated, grads, rule)
}

/// [`sweep`] on contiguous arrays of one layout, applying.
fn apply_on_slices<F: Float, const N: usize>(
    mut updated: [&mut [F]; N],
    grads: &[F],
    rule: impl Fn([F; N], F) -> [F; N],
) {
    for (i, &g) in grads.iter().enumerate() {
        let new = rule(std::array::from_fn(|k| updated[k][i]), g);
        for (slice, value) in updated.iter_mut().zip(new) {
            slice[i] = value;
        }
    }
}

/// [`sweep`] for arrays of any layouts, element by element in logical order.
fn sweep_in_logical_order<F: Float, D: Dimension, const N: usize>(
    pass: Pass,
    mut updated: [ArrayViewMut<'_, F, D>; N],
    grads: &Array<F, D>,
    rule: impl Fn([F; N], F) -> [F; N],
) -> F {
    let mut cells = updated.each_mut().map(|a| a.iter_mut());
    let mut check = F::zero();
    for &g in grads {
        let mut now = cells.each_mut().map(Iterator::next);
        let old = std::array::from_fn(|k| now[k].as_deref().copied().unwrap_or_else(F::nan));
        let new = rule(old, g);
        match pass {
            Pass::Check => check += zero_if_finite(new),
            Pass::Apply => {
                for (cell, value) in now.iter_mut().zip(new) {
                    if let Some(cell) = cell {
                        **cell = value;
                    }
                }
            }
        }
    }
    check
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_step_count_at_its_maximum_is_an_error_not_an_overflow() {
        let mut net = Network::<f32>::builder(&[3, 2]).build().unwrap();
        let grads = net.zero_gradients();
        for optimizer in [Optimizer::sgd(0.1), Optimizer::adam(0.1)] {
            let mut state = OptimizerState::new(optimizer, &net).unwrap();
            state.steps = u64::MAX;
            let before = net.clone();
            let err = state.step(&mut net, &grads, 0.1, 0.0).unwrap_err();
            assert!(
                matches!(err, Error::StepCountOverflow { steps: u64::MAX }),
                "{optimizer:?}: {err}"
            );
            assert_eq!(state.steps, u64::MAX);
            assert_eq!(net, before);
        }
    }

    /// A 1 → 1 network with w = 1, b = 0.5, and the gradients g_w = 0.5, g_b = 0.25.
    fn one_weight() -> (Network<f64>, Gradients<f64>) {
        let mut net = Network::<f64>::builder(&[1, 1])
            .output(crate::Activation::Identity)
            .loss(crate::Loss::SquaredError)
            .build()
            .unwrap();
        let (mut w, mut b) = net.layers_mut()[0].parameters_mut();
        w.fill(1.0);
        b.fill(0.5);
        let mut grads = net.zero_gradients();
        grads.layers[0].weights.fill(0.5);
        grads.layers[0].biases.fill(0.25);
        (net, grads)
    }

    /// (w, b) after each of two steps with the same gradients, learning rate 0.1.
    fn two_steps(optimizer: Optimizer, weight_decay: f64) -> [(f64, f64); 2] {
        let (mut net, grads) = one_weight();
        let mut state = OptimizerState::new(optimizer, &net).unwrap();
        let mut step = || {
            assert!(state.step(&mut net, &grads, 0.1, weight_decay).unwrap());
            let layer = &net.layers()[0];
            (layer.weights()[[0, 0]], layer.biases()[0])
        };
        [step(), step()]
    }

    fn assert_close(got: [(f64, f64); 2], expected: [(f64, f64); 2], tolerance: f64) {
        for ((w, b), (ew, eb)) in got.into_iter().zip(expected) {
            assert!(
                (w - ew).abs() < tolerance && (b - eb).abs() < tolerance,
                "got {got:?}, expected {expected:?}"
            );
        }
    }

    #[test]
    fn sgd_subtracts_the_rate_times_the_gradient() {
        // w: 1 − 0.1·0.5 = 0.95, then 0.90; b: 0.5 − 0.1·0.25 = 0.475, then 0.45.
        let got = two_steps(Optimizer::sgd(0.1), 0.0);
        assert_close(got, [(0.95, 0.475), (0.90, 0.45)], 1e-12);
    }

    #[test]
    fn weight_decay_adds_lambda_w_to_the_weights_gradient_only() {
        // w: 1 − 0.1·(0.5 + 0.1·1) = 0.94, then 0.94 − 0.1·(0.5 + 0.094) = 0.8806.
        let got = two_steps(Optimizer::sgd(0.1), 0.1);
        assert_close(got, [(0.94, 0.475), (0.8806, 0.45)], 1e-12);
        // Momentum μ = 0.9: v = 0.6, w = 0.94; v = 0.9·0.6 + 0.5 + 0.094 = 1.134, w = 0.8266.
        let got = two_steps(Optimizer::momentum(0.1, 0.9), 0.1);
        assert_close(got, [(0.94, 0.475), (0.8266, 0.4275)], 1e-12);
    }

    #[test]
    fn momentum_accumulates_a_velocity() {
        // v = 0.5, w = 0.95; v = 0.9·0.5 + 0.5 = 0.95, w = 0.95 − 0.095 = 0.855.
        // b: v = 0.25, b = 0.475; v = 0.475, b = 0.475 − 0.0475 = 0.4275.
        let got = two_steps(Optimizer::momentum(0.1, 0.9), 0.0);
        assert_close(got, [(0.95, 0.475), (0.855, 0.4275)], 1e-12);
    }

    #[test]
    fn nesterov_steps_along_the_gradient_plus_the_new_velocity() {
        // v = 0.5, w = 1 − 0.1·(0.5 + 0.45) = 0.905; v = 0.95, w = 0.905 − 0.1·1.355 = 0.7695.
        // b: v = 0.25, b = 0.5 − 0.1·0.475 = 0.4525; v = 0.475, b = 0.4525 − 0.1·0.6775.
        let got = two_steps(Optimizer::nesterov(0.1, 0.9), 0.0);
        assert_close(got, [(0.905, 0.4525), (0.7695, 0.38475)], 1e-12);
    }

    #[test]
    fn adam_steps_by_the_rate_when_the_gradient_is_steady() {
        // m̂ = g and v̂ = g² after bias correction at every step, so each step is
        // η·g/(|g| + ε) ≈ η: m = 0.05, v = 0.00025, m̂ = 0.5, v̂ = 0.25; then m = 0.095,
        // v = 0.00049975, m̂ = 0.095/0.19 = 0.5, v̂ = 0.00049975/0.001999 = 0.25.
        let got = two_steps(Optimizer::adam(0.1), 0.0);
        assert_close(got, [(0.9, 0.4), (0.8, 0.3)], 1e-7);
    }

    #[test]
    fn states_compare_equal_whatever_the_scratch_arrays_hold() {
        let (mut net, grads) = one_weight();
        let fresh = OptimizerState::new(Optimizer::sgd(0.1), &net).unwrap();
        let mut stepped = fresh.clone();
        assert!(stepped.step(&mut net, &grads, 0.1, 0.0).unwrap());
        stepped.steps = 0;
        assert_eq!(stepped, fresh);
        stepped.steps = 1;
        assert_ne!(stepped, fresh);
    }
}
