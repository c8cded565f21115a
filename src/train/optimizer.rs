//! Optimisers (SGD, momentum, Nesterov, Adam), L2 weight decay and learning-rate schedules.
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

use ndarray::{Array, Array1, Array2, ArrayViewMut, Dimension, ShapeBuilder, Zip};
use serde::{Deserialize, Serialize};

use crate::fast::elementwise::{self, Sgd};
use crate::{Error, Float, Gradients, Network, Result};

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

/// How the learning rate changes from epoch to epoch.
///
/// In a checkpoint a JSON object tagged by its name: `{"name":"step","every":10,"factor":0.5}`.
#[derive(Clone, Copy, Debug, PartialEq, Default, Serialize, Deserialize)]
#[serde(tag = "name", rename_all = "snake_case", deny_unknown_fields)]
#[non_exhaustive]
pub enum Schedule {
    /// η every epoch.
    #[default]
    Constant,
    /// η·factor^⌊epoch / every⌋: multiplied by `factor` every `every` epochs.
    Step {
        /// Epochs between reductions (≥ 1).
        every: usize,
        /// Multiplier in (0, 1].
        factor: f64,
    },
    /// Cosine annealing from η down to η·`floor` over `epochs` epochs:
    /// η_e = η·(floor + (1 − floor)·(1 + cos(π·e/epochs))/2).
    Cosine {
        /// Length of the schedule in epochs (≥ 1); later epochs stay at the floor.
        epochs: usize,
        /// Final learning rate as a fraction of η, in [0, 1].
        floor: f64,
    },
}

impl Schedule {
    /// The learning rate for `epoch` (0-based) given the base rate.
    pub fn learning_rate(&self, base: f64, epoch: usize) -> f64 {
        match *self {
            Schedule::Constant => base,
            Schedule::Step { every, factor } => {
                base * factor.powi((epoch / every.max(1)).min(i32::MAX as usize) as i32)
            }
            Schedule::Cosine { epochs, floor } => {
                let t = (epoch as f64 / epochs.max(1) as f64).min(1.0);
                base * (floor + (1.0 - floor) * 0.5 * (1.0 + (std::f64::consts::PI * t).cos()))
            }
        }
    }

    /// Checks the schedule's parameters.
    ///
    /// # Errors
    /// [`Error::InvalidHyperparameter`] for `every` or `epochs` of 0, a factor outside (0, 1],
    /// or a floor outside [0, 1].
    pub fn validate(&self) -> Result<()> {
        match *self {
            Schedule::Constant => Ok(()),
            Schedule::Step { every, factor } => {
                if every == 0 {
                    return Err(Error::InvalidHyperparameter {
                        name: "schedule step every",
                        value: 0.0,
                        reason: "must be at least 1 epoch",
                    });
                }
                if !(factor > 0.0 && factor <= 1.0) {
                    return Err(Error::InvalidHyperparameter {
                        name: "schedule step factor",
                        value: factor,
                        reason: "must be in (0, 1]",
                    });
                }
                Ok(())
            }
            Schedule::Cosine { epochs, floor } => {
                if epochs == 0 {
                    return Err(Error::InvalidHyperparameter {
                        name: "cosine schedule epochs",
                        value: 0.0,
                        reason: "must be at least 1",
                    });
                }
                if !(0.0..=1.0).contains(&floor) {
                    return Err(Error::InvalidHyperparameter {
                        name: "cosine schedule floor",
                        value: floor,
                        reason: "must be in [0, 1]",
                    });
                }
                Ok(())
            }
        }
    }
}

/// An optimiser's per-parameter state (velocities or moments), shaped like the network.
#[derive(Clone, Debug, PartialEq)]
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

/// Arrays an optimiser writes new parameters into. Not part of the state: they hold the
/// parameters of the step before last, so two states compare equal whatever they hold.
#[derive(Clone)]
struct Scratch<F: Float>(Vec<(Array2<F>, Array1<F>)>);

impl<F: Float> PartialEq for Scratch<F> {
    fn eq(&self, _: &Self) -> bool {
        true
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
                    if !self.visit(network, gradients, learning_rate, weight_decay, false) {
                        return Ok(false);
                    }
                    self.visit(network, gradients, learning_rate, weight_decay, true)
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

    /// Computes the update of every parameter; writes it when `write`, else only checks that
    /// it is finite. Returns whether everything was finite.
    fn visit(
        &mut self,
        network: &mut Network<F>,
        gradients: &Gradients<F>,
        learning_rate: f64,
        weight_decay: f64,
        write: bool,
    ) -> bool {
        let lr = F::of(learning_rate);
        let wd = F::of(weight_decay);
        // Sum of x·0 over every new value: 0 if all are finite, NaN otherwise.
        let mut check = F::zero();
        for (l, (layer, grads)) in network
            .layers_mut()
            .iter_mut()
            .zip(&gradients.layers)
            .enumerate()
        {
            let (weights, biases) = layer.parameters_mut();
            match self.optimizer {
                Optimizer::Sgd { .. } => {
                    // The seed's update: weight − rate·(input · output sensitivity).
                    let (mut weights, mut biases) = (weights, biases);
                    let same = weights.strides() == grads.weights.strides();
                    if let (true, Some(w), Some(b), Some(gw), Some(gb)) = (
                        write && same,
                        weights.as_slice_memory_order_mut(),
                        biases.as_slice_mut(),
                        grads.weights.as_slice_memory_order(),
                        grads.biases.as_slice(),
                    ) {
                        elementwise::sgd(Sgd::InPlace(w), gw, lr, wd);
                        elementwise::sgd(Sgd::InPlace(b), gb, lr, F::zero());
                        continue;
                    }
                    if weight_decay == 0.0 {
                        check += sweep(write, weights, &grads.weights, |w, g| w - lr * g);
                    } else {
                        check +=
                            sweep(write, weights, &grads.weights, |w, g| w - lr * (g + wd * w));
                    }
                    check += sweep(write, biases, &grads.biases, |w, g| w - lr * g);
                }
                Optimizer::Momentum {
                    momentum, nesterov, ..
                } => {
                    let mu = F::of(momentum);
                    let rule = |decay: F| {
                        move |w: F, v: F, g: F| {
                            let g = g + decay * w;
                            let v = mu * v + g;
                            (w - lr * if nesterov { g + mu * v } else { v }, v)
                        }
                    };
                    let (vw, vb) = &mut self.first[l];
                    check += sweep_state(write, weights, vw.view_mut(), &grads.weights, rule(wd));
                    check +=
                        sweep_state(write, biases, vb.view_mut(), &grads.biases, rule(F::zero()));
                }
                Optimizer::Adam {
                    beta1,
                    beta2,
                    epsilon,
                    ..
                } => {
                    // `step_split` has checked that the count can grow.
                    let t = self.steps.saturating_add(1).min(i32::MAX as u64) as i32;
                    let (b1, b2, eps) = (F::of(beta1), F::of(beta2), F::of(epsilon));
                    let c1 = F::of(1.0 / (1.0 - beta1.powi(t)));
                    let c2 = F::of(1.0 / (1.0 - beta2.powi(t)));
                    let rule = |decay: F| {
                        move |w: F, m: F, v: F, g: F| {
                            let g = g + decay * w;
                            let m = b1 * m + (F::one() - b1) * g;
                            let v = b2 * v + (F::one() - b2) * g * g;
                            (w - lr * (m * c1) / ((v * c2).sqrt() + eps), m, v)
                        }
                    };
                    let ((mw, mb), (vw, vb)) = (&mut self.first[l], &mut self.second[l]);
                    check += sweep_moments(
                        write,
                        weights,
                        mw.view_mut(),
                        vw.view_mut(),
                        &grads.weights,
                        rule(wd),
                    );
                    check += sweep_moments(
                        write,
                        biases,
                        mb.view_mut(),
                        vb.view_mut(),
                        &grads.biases,
                        rule(F::zero()),
                    );
                }
            }
        }
        check == F::zero()
    }
}

/// 0 for true, NaN for false: the currency of the checks below.
fn finite<F: Float>(ok: bool) -> F {
    if ok {
        F::zero()
    } else {
        F::nan()
    }
}

/// Applies `rule(w, g)` to every parameter (`write`), or returns Σ new·0 without writing.
fn sweep<F: Float, D: Dimension>(
    write: bool,
    mut params: ArrayViewMut<'_, F, D>,
    grads: &Array<F, D>,
    rule: impl Fn(F, F) -> F,
) -> F {
    if write {
        Zip::from(&mut params)
            .and(grads)
            .for_each(|w, &g| *w = rule(*w, g));
        F::zero()
    } else if let (true, Some(w), Some(g)) = (
        params.strides() == grads.strides(),
        params.as_slice_memory_order(),
        grads.as_slice_memory_order(),
    ) {
        finite(elementwise::finite_under([w, g], |[w, g]| rule(w, g)))
    } else {
        Zip::from(&params)
            .and(grads)
            .fold(F::zero(), |acc, &w, &g| {
                let n = rule(w, g);
                acc + n * F::zero()
            })
    }
}

/// As [`sweep`], with one optimiser state per parameter.
fn sweep_state<F: Float, D: Dimension>(
    write: bool,
    mut params: ArrayViewMut<'_, F, D>,
    mut state: ArrayViewMut<'_, F, D>,
    grads: &Array<F, D>,
    rule: impl Fn(F, F, F) -> (F, F),
) -> F {
    if write {
        Zip::from(&mut params)
            .and(&mut state)
            .and(grads)
            .for_each(|w, s, &g| (*w, *s) = rule(*w, *s, g));
        F::zero()
    } else if let (true, Some(w), Some(s), Some(g)) = (
        params.strides() == grads.strides() && state.strides() == grads.strides(),
        params.as_slice_memory_order(),
        state.as_slice_memory_order(),
        grads.as_slice_memory_order(),
    ) {
        finite(elementwise::finite_under([w, s, g], |[w, s, g]| {
            let (n, t) = rule(w, s, g);
            n * F::zero() + t * F::zero()
        }))
    } else {
        Zip::from(&params)
            .and(&state)
            .and(grads)
            .fold(F::zero(), |acc, &w, &s, &g| {
                let (n, t) = rule(w, s, g);
                acc + n * F::zero() + t * F::zero()
            })
    }
}

/// As [`sweep`], with two optimiser states per parameter.
fn sweep_moments<F: Float, D: Dimension>(
    write: bool,
    mut params: ArrayViewMut<'_, F, D>,
    mut first: ArrayViewMut<'_, F, D>,
    mut second: ArrayViewMut<'_, F, D>,
    grads: &Array<F, D>,
    rule: impl Fn(F, F, F, F) -> (F, F, F),
) -> F {
    if write {
        Zip::from(&mut params)
            .and(&mut first)
            .and(&mut second)
            .and(grads)
            .for_each(|w, m, v, &g| (*w, *m, *v) = rule(*w, *m, *v, g));
        F::zero()
    } else if let (true, Some(w), Some(m), Some(v), Some(g)) = (
        params.strides() == grads.strides()
            && first.strides() == grads.strides()
            && second.strides() == grads.strides(),
        params.as_slice_memory_order(),
        first.as_slice_memory_order(),
        second.as_slice_memory_order(),
        grads.as_slice_memory_order(),
    ) {
        finite(elementwise::finite_under([w, m, v, g], |[w, m, v, g]| {
            let (n, a, b) = rule(w, m, v, g);
            n * F::zero() + a * F::zero() + b * F::zero()
        }))
    } else {
        Zip::from(&params).and(&first).and(&second).and(grads).fold(
            F::zero(),
            |acc, &w, &m, &v, &g| {
                let (n, a, b) = rule(w, m, v, g);
                acc + n * F::zero() + a * F::zero() + b * F::zero()
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_step_count_at_its_maximum_is_an_error_not_an_overflow() {
        let mut net = Network::<f32>::builder(&[3, 2]).build::<f32>().unwrap();
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
}
