//! Minibatch training: seeded shuffling, shards computed in parallel by rayon, gradients added
//! in a fixed order, so the trained weights are bit-identical whatever the thread count.
//!
//! A minibatch of B rows is cut into ⌈B / shard_size⌉ shards of `shard_size` rows (the last may
//! be shorter). Each shard's gradients are computed on its own (in parallel when a pool with
//! more than one thread is at hand) from output sensitivities already divided by B, then added
//! shard 0 + shard 1 + … in that order. Shard boundaries depend only on the configuration, never on the thread count,
//! and so does every floating-point operation.

use std::ops::ControlFlow;
use std::time::Instant;

use ndarray::{s, Array2, ArrayView2, Axis};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use crate::data::Augment;
use crate::error::Divergence;
use crate::nn::dropout::Masks;
use crate::nn::network::Workspace;
use crate::train::early_stopping::{EarlyStopping, Metric, StopRule, Verdict};
use crate::train::optimizer::OptimizerState;
use crate::train::reduce::Reducer;
use crate::train::schedule::Schedule;
use crate::train::threads::{keeping_the_pool_awake, ThreadChoice, Threads};
use crate::{Activation, Dense, Error, Float, Gradients, Network, Optimizer, Result, Targets};

/// The largest batch a [`TrainConfig`] accepts (2^16 = 65 536 samples, more than all of MNIST).
pub const MAX_BATCH: usize = 1 << 16;
/// The most threads [`RunOptions`] accept.
pub const MAX_THREADS: usize = 1024;
/// The most memory, in bytes, that [`Trainer::new`] lets a trainer's buffers take (4 GiB);
/// [`RunOptions::memory_limit`] sets another limit.
pub const DEFAULT_MEMORY_LIMIT: usize = 4 << 30;

/// What training computes: epochs, batch and shard sizes, optimiser and weight decay, schedule,
/// seed and shuffling, validation split and early stopping, dropout and augmentation.
/// Everything here can change the trained weights; how the work is run (threads, memory),
/// which cannot, is in [`RunOptions`].
///
/// # Validation and early stopping
///
/// With `validation_fraction`, [`Trainer::fit`] sets that fraction of the rows aside (drawn
/// from `seed`, see [`validation_split`]) and trains on the others; with
/// [`Trainer::fit_with_validation`] the caller gives the validation set. Each [`EpochReport`]
/// then carries the validation loss and accuracy. With `early_stopping`, `fit` stops when the
/// rule's metric has not improved for `patience` epochs and leaves the network with the best
/// epoch's weights (also when the configured epochs run out first);
/// [`Trainer::early_stopping`] tells which epoch that was. Checkpoints keep all of it, so a
/// resumed run ends with the same bits as one never stopped.
///
/// ```
/// use lernmi::{Network, StopRule, TrainConfig, Trainer};
/// use ndarray::Array2;
///
/// // y = 1 when x0 > x1, on a grid of 100 points.
/// let x = Array2::from_shape_fn((100, 2), |(i, j)| ((i * (7 + 4 * j)) % 10) as f32 / 10.0);
/// let y: Vec<usize> = x.rows().into_iter().map(|r| usize::from(r[0] > r[1])).collect();
/// let config = TrainConfig {
///     epochs: 200,
///     batch_size: 10,
///     validation_fraction: Some(0.2), // 20 rows validate, 80 train
///     early_stopping: Some(StopRule::patience(5)), // on the validation loss
///     ..TrainConfig::default()
/// };
/// let net = Network::<f32>::builder(&[2, 8, 2]).seed(1).build()?;
/// let mut trainer = Trainer::new(net, config)?;
/// let reports = trainer.fit(x.view(), &y, &mut ())?;
/// let last = reports.last().unwrap();
/// assert!(last.validation_loss.is_some() && last.validation_accuracy.is_some());
/// let (best, _) = trainer.early_stopping().unwrap().best().unwrap();
/// assert!(best <= last.epoch);
/// # Ok::<(), lernmi::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct TrainConfig {
    /// Passes over the training set.
    pub epochs: usize,
    /// Samples per minibatch (1 is the seed's per-sample SGD).
    pub batch_size: usize,
    /// The optimiser and its base learning rate.
    pub optimizer: Optimizer,
    /// Learning rate per epoch.
    pub schedule: Schedule,
    /// L2 weight decay λ ≥ 0 on the weights (not the biases).
    pub weight_decay: f64,
    /// Seed of the per-epoch shuffles.
    pub seed: u64,
    /// Reshuffle every epoch (false: file order, as the seed trained).
    pub shuffle: bool,
    /// Rows per shard. Results depend on this (summation order), never on the thread count.
    pub shard_size: usize,
    /// The fraction, in (0, 1), of the rows [`Trainer::fit`] sets aside to validate on after
    /// each epoch (`None`: no validation set unless [`Trainer::fit_with_validation`] gives one).
    pub validation_fraction: Option<f64>,
    /// When [`Trainer::fit`] stops early and goes back to the best epoch's weights (`None`:
    /// it trains every epoch and keeps the last weights).
    pub early_stopping: Option<StopRule>,
    /// Inverted dropout, (D) of [`crate::notation`]: one rate in [0, 1) per hidden layer,
    /// first hidden layer first, or empty for none. During training each hidden unit is
    /// dropped with its layer's rate and kept units are scaled by 1 / (1 − rate); prediction
    /// and evaluation never drop. The masks follow from (seed, epoch, sample index), see
    /// [`crate::nn::dropout`], so they do not depend on threads, shards or resuming. The
    /// training loss reported is that of the network with its units dropped. (With dropout or
    /// augmentation, one-row steps of plain SGD take the batched path: the fused one-sample
    /// path knows neither.)
    pub dropout: Vec<f64>,
    /// Shift (and optionally rotate) every training image before the forward pass, drawn per
    /// (seed, epoch, sample index) as [`crate::data::augment`] says; `None` for none.
    /// Prediction and evaluation never augment.
    pub augment: Option<Augment>,
}

/// How a [`Trainer`] runs: threads and memory. None of it changes the trained weights.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RunOptions {
    /// Threads for the minibatch shards: `None` uses rayon's global pool, `Some(1)` runs on
    /// the calling thread alone.
    pub threads: Option<usize>,
    /// Let the trainer run a step on one thread when that has lately been faster than the pool
    /// (as when other programs keep the other cores busy). Results are the same bits either
    /// way; only the speed changes. Default true.
    pub adaptive_threads: bool,
    /// The most bytes the trainer's buffers may take (default [`DEFAULT_MEMORY_LIMIT`]).
    pub memory_limit: usize,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            threads: None,
            adaptive_threads: true,
            memory_limit: DEFAULT_MEMORY_LIMIT,
        }
    }
}

impl RunOptions {
    /// The calling thread alone (the seed's way, and the simplest to debug).
    pub fn one_thread() -> Self {
        RunOptions {
            threads: Some(1),
            ..RunOptions::default()
        }
    }

    /// Checks the thread count.
    ///
    /// # Errors
    /// [`Error::InvalidHyperparameter`] for a thread count of 0 or above [`MAX_THREADS`]:
    /// every thread is started, so an absurd count is an error, not a billion threads.
    pub fn validate(&self) -> Result<()> {
        if let Some(t) = self.threads {
            if t == 0 {
                return Err(Error::InvalidHyperparameter {
                    name: "threads",
                    value: 0.0,
                    reason: "must be at least 1",
                });
            }
            at_most("threads", t, MAX_THREADS, "must be at most 1024")?;
        }
        Ok(())
    }
}

/// [`Error::InvalidHyperparameter`] if `value` exceeds `limit`.
fn at_most(name: &'static str, value: usize, limit: usize, reason: &'static str) -> Result<()> {
    if value > limit {
        Err(Error::InvalidHyperparameter {
            name,
            value: value as f64,
            reason,
        })
    } else {
        Ok(())
    }
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            epochs: 1,
            batch_size: 32,
            optimizer: Optimizer::sgd(0.1),
            schedule: Schedule::Constant,
            weight_decay: 0.0,
            seed: 0,
            shuffle: true,
            shard_size: 32,
            validation_fraction: None,
            early_stopping: None,
            dropout: Vec::new(),
            augment: None,
        }
    }
}

impl TrainConfig {
    /// The seed's training: one sample at a time in file order, SGD at rate 0.1.
    pub fn lernmi() -> Self {
        TrainConfig {
            epochs: 1,
            batch_size: 1,
            optimizer: Optimizer::sgd(0.1),
            shuffle: false,
            shard_size: 1,
            ..TrainConfig::default()
        }
    }

    /// Checks every hyperparameter.
    ///
    /// # Errors
    /// [`Error::InvalidHyperparameter`] for a batch or shard size of 0, a batch above
    /// [`MAX_BATCH`], a negative or non-finite weight decay, a dropout rate outside [0, 1), an
    /// invalid optimiser, schedule or augmentation ([`Augment::validate`]), a validation
    /// fraction outside (0, 1), or an invalid [`StopRule`].
    pub fn validate(&self) -> Result<()> {
        let positive = |name, value: usize| {
            if value == 0 {
                Err(Error::InvalidHyperparameter {
                    name,
                    value: 0.0,
                    reason: "must be at least 1",
                })
            } else {
                Ok(())
            }
        };
        positive("batch_size", self.batch_size)?;
        positive("shard_size", self.shard_size)?;
        // Buffers are sized for a whole batch up front: bound it, so that an absurd value
        // (from a damaged checkpoint, say) is an error, not an attempt to allocate terabytes.
        at_most(
            "batch_size",
            self.batch_size,
            MAX_BATCH,
            "must be at most 65536",
        )?;
        if !(self.weight_decay.is_finite() && self.weight_decay >= 0.0) {
            return Err(Error::InvalidHyperparameter {
                name: "weight_decay",
                value: self.weight_decay,
                reason: "must be finite and non-negative",
            });
        }
        if let Some(fraction) = self.validation_fraction {
            if !(fraction > 0.0 && fraction < 1.0) {
                return Err(Error::InvalidHyperparameter {
                    name: "validation_fraction",
                    value: fraction,
                    reason: "must be strictly between 0 and 1",
                });
            }
        }
        if let Some(rule) = &self.early_stopping {
            rule.validate()?;
        }
        if let Some(&rate) = self.dropout.iter().find(|&&p| !(0.0..1.0).contains(&p)) {
            return Err(Error::InvalidHyperparameter {
                name: "dropout",
                value: rate,
                reason: "every rate must be in [0, 1)",
            });
        }
        if let Some(augment) = &self.augment {
            augment.validate()?;
        }
        self.optimizer.validate()?;
        self.schedule.validate()
    }

    /// Checks what depends on the network: one dropout rate per hidden layer (or none), and
    /// augmented images as wide as the network's input.
    ///
    /// # Errors
    /// [`Error::Shape`] if `dropout` is neither empty nor one rate per hidden layer;
    /// [`Error::InputWidth`] if the augmented images do not have `n_inputs` pixels; as
    /// [`Augment::validate`].
    pub fn check_network<F: Float>(&self, network: &Network<F>) -> Result<()> {
        let hidden = network.layers().len() - 1;
        if !self.dropout.is_empty() && self.dropout.len() != hidden {
            return Err(Error::Shape {
                what: "dropout rates (one per hidden layer)".into(),
                expected: vec![hidden],
                got: vec![self.dropout.len()],
            });
        }
        if let Some(augment) = &self.augment {
            let pixels = augment.pixels()?;
            if pixels != network.n_inputs() {
                return Err(Error::InputWidth {
                    expected: network.n_inputs(),
                    got: pixels,
                });
            }
        }
        Ok(())
    }

    /// Whether some dropout rate is above 0 (a rate of 0 drops nothing and costs nothing).
    pub fn has_dropout(&self) -> bool {
        self.dropout.iter().any(|&p| p > 0.0)
    }
}

/// Progress after one minibatch, handed to [`Observer::batch_end`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BatchProgress {
    /// Epoch, 0-based.
    pub epoch: usize,
    /// Minibatch within the epoch, 0-based.
    pub batch: usize,
    /// Minibatches in the epoch.
    pub batches: usize,
    /// Samples trained so far this epoch.
    pub samples: usize,
    /// Mean loss of this minibatch.
    pub loss: f64,
}

/// Summary of one epoch, handed to [`Observer::epoch_end`] and returned by the trainer.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EpochReport {
    /// Epoch, 0-based.
    pub epoch: usize,
    /// Mean training loss over the epoch's samples (each taken before its batch's update).
    pub train_loss: f64,
    /// Samples trained.
    pub samples: usize,
    /// Wall-clock seconds for shuffling, batching, forward, backward and update.
    pub seconds: f64,
    /// `samples / seconds`.
    pub samples_per_second: f64,
    /// The learning rate used this epoch.
    pub learning_rate: f64,
    /// Mean loss on the validation set after the epoch (`None` without one).
    pub validation_loss: Option<f64>,
    /// Accuracy on the validation set after the epoch, a fraction in [0, 1]: `None` without a
    /// validation set, or when its targets are rows for an output other than softmax (which
    /// [`Trainer::fit`] takes for regression).
    pub validation_accuracy: Option<f64>,
}

/// Receives progress from the trainer; the library itself prints nothing.
pub trait Observer {
    /// After each minibatch.
    fn batch_end(&mut self, _progress: &BatchProgress) {}
    /// After each epoch; [`ControlFlow::Break`] stops [`Trainer::fit`] after this epoch.
    fn epoch_end(&mut self, _report: &EpochReport) -> ControlFlow<()> {
        ControlFlow::Continue(())
    }
}

/// The observer that ignores everything.
impl Observer for () {}

/// An [`Observer`] calling a closure after each epoch; made by [`on_epoch`].
pub struct OnEpoch<C>(C);

impl<C: FnMut(&EpochReport)> Observer for OnEpoch<C> {
    fn epoch_end(&mut self, report: &EpochReport) -> ControlFlow<()> {
        (self.0)(report);
        ControlFlow::Continue(())
    }
}

/// An observer that calls `f` after each epoch.
pub fn on_epoch<C: FnMut(&EpochReport)>(f: C) -> OnEpoch<C> {
    OnEpoch(f)
}

struct Shard<F: Float> {
    workspace: Workspace<F>,
    gradients: Gradients<F>,
    loss: f64,
    /// The dropout masks of the shard's rows; `None` without dropout.
    dropout: Option<Masks<F>>,
    /// The shard's rows augmented, (shard rows, n_in); (0, 0) without augmentation.
    augmented: Array2<F>,
}

/// What a shard's dropout masks and augmentations are drawn from, besides its rows' keys.
#[derive(Clone, Copy)]
struct Keying {
    seed: u64,
    epoch: u64,
    augment: Option<Augment>,
}

impl<F: Float> Shard<F> {
    /// Augments the rows `x` (when configured), draws their dropout masks from their `keys`,
    /// and sets the gradients of their summed loss, times `scale` when given, and that loss.
    fn compute(
        &mut self,
        network: &Network<F>,
        (x, y): Rows<'_, F>,
        keys: &[u64],
        scale: Option<F>,
        keying: Keying,
    ) {
        let Keying {
            seed,
            epoch,
            augment,
        } = keying;
        let x = match augment {
            Some(augment) => {
                let mut out = self.augmented.slice_mut(s![..x.nrows(), ..]);
                augment.apply_checked(x, keys, seed, epoch, out.view_mut());
                self.augmented.slice(s![..x.nrows(), ..])
            }
            None => x,
        };
        if let Some(masks) = self.dropout.as_mut() {
            masks.draw(seed, epoch, keys);
        }
        self.loss = network.summed_gradients(
            x,
            y,
            &mut self.workspace,
            &mut self.gradients,
            scale,
            self.dropout.as_mut(),
        );
    }
}

/// Trains a [`Network`] it owns with a [`TrainConfig`]: the network, the optimiser state, the
/// epoch counter and every buffer a step needs, so that a step allocates nothing once the
/// buffers exist.
///
/// ```
/// use lernmi::{Network, TrainConfig, Trainer};
/// use ndarray::array;
///
/// let net = Network::<f32>::builder(&[2, 4, 2]).seed(1).build()?;
/// let mut trainer = Trainer::new(net, TrainConfig { epochs: 3, ..TrainConfig::default() })?;
/// let x = array![[0.0, 1.0], [1.0, 0.0]];
/// trainer.fit(x.view(), &[1, 0], &mut ())?;
/// let net = trainer.into_network();
/// assert_eq!(net.classify(x.view())?.len(), 2);
/// # Ok::<(), lernmi::Error>(())
/// ```
pub struct Trainer<F: Float = f32> {
    network: Network<F>,
    engine: Engine<F>,
}

/// Everything of a [`Trainer`] but the network, which its methods take beside it.
struct Engine<F: Float> {
    config: TrainConfig,
    options: RunOptions,
    state: OptimizerState<F>,
    epoch: usize,
    threads: Threads,
    shards: Vec<Shard<F>>,
    total: Gradients<F>,
    batch_inputs: Array2<F>,
    batch_targets: Array2<F>,
    /// The key of each row of the batch buffers for dropout and augmentation: its index in
    /// the training set, or for [`Trainer::step`] a key of the step and row (see
    /// [`crate::nn::dropout::keeps`]).
    sample_keys: Vec<u64>,
    order: Vec<usize>,
    thread_choice: ThreadChoice,
    /// The tracking of `config.early_stopping`, if set.
    stopping: Option<EarlyStopping>,
    /// The layers of the best epoch so far (empty before the first improvement).
    best_layers: Vec<Dense<F>>,
    /// Where the shards are computed and summed when they are spread over processes.
    reducer: Option<Box<dyn Reducer<F> + Send>>,
}

/// A validation set, checked: inputs, target rows, and whether it has classes to count
/// accuracy on.
struct Validation<'a, F: Float> {
    inputs: ArrayView2<'a, F>,
    targets: ArrayView2<'a, F>,
    classes: bool,
}

/// The stream of the validation split's generator: the epochs' shuffles use streams
/// 0..=MAX_EPOCH, so the split never shares one with them.
const SPLIT_STREAM: u64 = u64::MAX;

/// The rows a seeded validation split keeps for training and sets aside to validate on, each
/// in ascending order: `round(fraction · n)` rows drawn at random (from `seed` and `n` alone)
/// validate, the others train. [`Trainer::fit`] splits so when
/// [`TrainConfig::validation_fraction`] is set.
///
/// ```
/// let (train, valid) = lernmi::train::validation_split(10, 0.3, 7)?;
/// assert_eq!((train.len(), valid.len()), (7, 3));
/// # Ok::<(), lernmi::Error>(())
/// ```
///
/// # Errors
/// [`Error::InvalidHyperparameter`] for a fraction outside (0, 1), or one that leaves no row
/// to train or none to validate on.
pub fn validation_split(n: usize, fraction: f64, seed: u64) -> Result<(Vec<usize>, Vec<usize>)> {
    let bad = |reason| Error::InvalidHyperparameter {
        name: "validation_fraction",
        value: fraction,
        reason,
    };
    if !(fraction > 0.0 && fraction < 1.0) {
        return Err(bad("must be strictly between 0 and 1"));
    }
    let held = (fraction * n as f64).round() as usize;
    if held == 0 {
        return Err(bad("leaves no validation row for this many samples"));
    }
    if held >= n {
        return Err(bad("leaves no training row for this many samples"));
    }
    let mut rows: Vec<usize> = (0..n).collect();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(SPLIT_STREAM);
    rows.shuffle(&mut rng);
    let (valid, train) = rows.split_at_mut(held);
    valid.sort_unstable();
    train.sort_unstable();
    Ok((train.to_vec(), valid.to_vec()))
}

impl<F: Float> std::fmt::Debug for Trainer<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Trainer")
            .field("sizes", &self.network.sizes())
            .field("config", &self.engine.config)
            .field("options", &self.engine.options)
            .field("epoch", &self.engine.epoch)
            .field("optimizer_steps", &self.engine.state.steps())
            .finish_non_exhaustive()
    }
}

impl<F: Float> Trainer<F> {
    /// A trainer that owns `network`, with the default [`RunOptions`].
    ///
    /// # Errors
    /// As [`Trainer::with_options`].
    pub fn new(network: Network<F>, config: TrainConfig) -> Result<Self> {
        Self::with_options(network, config, RunOptions::default())
    }

    /// A trainer that owns `network` and runs as `options` say.
    ///
    /// Every shard of a minibatch keeps buffers of its own (its rows' activations and the
    /// gradients of every parameter), so memory grows with the number of shards, ⌈batch_size /
    /// shard_size⌉, times the parameter count. The trainer estimates what its buffers take
    /// before allocating any, and refuses a configuration that needs more than
    /// `options.memory_limit`.
    ///
    /// # Errors
    /// As [`TrainConfig::validate`] and [`RunOptions::validate`]; [`Error::TooLarge`] if the
    /// buffers would need more than the memory limit (a larger `shard_size` or a smaller
    /// `batch_size` needs less); [`Error::ThreadPool`] if the pool cannot be built.
    pub fn with_options(
        network: Network<F>,
        config: TrainConfig,
        options: RunOptions,
    ) -> Result<Self> {
        let engine = Engine::new(&network, config, options)?;
        Ok(Trainer { network, engine })
    }

    /// The network being trained.
    pub fn network(&self) -> &Network<F> {
        &self.network
    }

    /// The trained network, the trainer given up.
    pub fn into_network(self) -> Network<F> {
        self.network
    }

    /// The configuration.
    pub fn config(&self) -> &TrainConfig {
        &self.engine.config
    }

    /// How the trainer runs.
    pub fn options(&self) -> &RunOptions {
        &self.engine.options
    }

    /// The optimiser's state (moments and step count).
    pub fn optimizer_state(&self) -> &OptimizerState<F> {
        &self.engine.state
    }

    /// A trainer that continues from a saved optimiser state after `epoch` completed epochs,
    /// with the early-stopping tracking and best layers saved beside it (if any).
    pub(crate) fn restored(
        network: Network<F>,
        config: TrainConfig,
        options: RunOptions,
        state: OptimizerState<F>,
        epoch: usize,
        stopping: Option<(EarlyStopping, Vec<Dense<F>>)>,
    ) -> Result<Self> {
        let mut trainer = Trainer::with_options(network, config, options)?;
        trainer.engine.state = state;
        trainer.engine.epoch = epoch;
        if let (Some((tracking, best)), Some(_)) = (stopping, &trainer.engine.stopping) {
            trainer.engine.stopping = Some(tracking);
            trainer.engine.best_layers = best;
        }
        Ok(trainer)
    }

    /// The early-stopping tracking when [`TrainConfig::early_stopping`] is set: the best epoch
    /// and its metric ([`EarlyStopping::best`]), the epochs since, and whether training has
    /// stopped ([`EarlyStopping::stopped`]).
    pub fn early_stopping(&self) -> Option<&EarlyStopping> {
        self.engine.stopping.as_ref()
    }

    /// The layers of the best epoch so far (empty before the first, or without early stopping).
    pub(crate) fn best_layers(&self) -> &[Dense<F>] {
        &self.engine.best_layers
    }

    /// Spreads every step's shards over processes (see [`Trainer::distribute`]).
    pub(super) fn set_reducer(&mut self, reducer: Box<dyn Reducer<F> + Send>) {
        self.engine.reducer = Some(reducer);
    }

    /// Epochs completed.
    pub fn epoch(&self) -> usize {
        self.engine.epoch
    }

    /// The learning rate the next epoch uses.
    pub fn learning_rate(&self) -> f64 {
        self.engine.learning_rate()
    }

    /// Trains the remaining epochs of the configuration and returns their reports; stops
    /// early when the observer says so ([`Observer::epoch_end`]) or the early-stopping rule
    /// does ([`TrainConfig::early_stopping`]).
    ///
    /// With [`TrainConfig::validation_fraction`], the rows [`validation_split`] draws from the
    /// configured seed and `n` are set aside: training uses the others (in their order, then
    /// shuffled as configured), and each report carries the loss and accuracy on the rows set
    /// aside. With a rule, once training stops (by the rule, or at the end of the configured
    /// epochs) the network holds the best epoch's weights and later calls train no more.
    ///
    /// # Shapes
    /// `inputs`: (n, n_in); `targets`: n class labels (`&[usize]`, one-hot inside) or
    /// (n, n_out) rows (see [`Targets`]). Labels and their one-hot rows train the same bits.
    ///
    /// # Errors
    /// As [`Trainer::train_epoch`]; as [`validation_split`]; [`Error::MetricUnavailable`] for
    /// a rule on [`Metric::Accuracy`] without a validation set that has classes.
    pub fn fit<'t>(
        &mut self,
        inputs: ArrayView2<'_, F>,
        targets: impl Into<Targets<'t, F>>,
        observer: &mut impl Observer,
    ) -> Result<Vec<EpochReport>> {
        let targets = targets.into();
        let classes = self.has_classes(&targets);
        let targets = targets.rows(self.network.n_outputs())?;
        let targets = targets.view();
        self.network.check_inputs(inputs)?;
        self.network.check_targets(inputs, targets)?;
        let Some(fraction) = self.engine.config.validation_fraction else {
            return self.run_epochs(inputs, targets, None, None, observer);
        };
        let (train, valid) = validation_split(inputs.nrows(), fraction, self.engine.config.seed)?;
        let (valid_inputs, valid_targets) = (
            inputs.select(Axis(0), &valid),
            targets.select(Axis(0), &valid),
        );
        let validation = Validation {
            inputs: valid_inputs.view(),
            targets: valid_targets.view(),
            classes,
        };
        self.run_epochs(inputs, targets, Some(&train), Some(validation), observer)
    }

    /// [`Trainer::fit`] with a validation set of the caller's: `inputs` and `targets` all
    /// train, and each report carries the loss and accuracy on `valid_inputs` and
    /// `valid_targets` (accuracy when they are labels, or rows for a softmax output). After a
    /// resumed checkpoint, pass the same validation set again.
    ///
    /// ```
    /// use lernmi::{Network, TrainConfig, Trainer};
    /// use ndarray::array;
    ///
    /// let (x, y) = (array![[0.0f32, 1.0], [1.0, 0.0]], [1, 0]);
    /// let (valid_x, valid_y) = (array![[0.1f32, 0.9], [0.9, 0.2]], [1, 0]);
    /// let net = Network::<f32>::builder(&[2, 4, 2]).seed(1).build()?;
    /// let mut trainer = Trainer::new(net, TrainConfig { epochs: 3, ..TrainConfig::default() })?;
    /// let reports = trainer.fit_with_validation(x.view(), &y, valid_x.view(), &valid_y, &mut ())?;
    /// assert_eq!(reports.len(), 3);
    /// assert!(reports.iter().all(|r| r.validation_accuracy.is_some()));
    /// # Ok::<(), lernmi::Error>(())
    /// ```
    ///
    /// # Shapes
    /// As [`Trainer::fit`], for both sets.
    ///
    /// # Errors
    /// As [`Trainer::fit`], for both sets; [`Error::InvalidHyperparameter`] when
    /// [`TrainConfig::validation_fraction`] is set too.
    pub fn fit_with_validation<'t, 'v>(
        &mut self,
        inputs: ArrayView2<'_, F>,
        targets: impl Into<Targets<'t, F>>,
        valid_inputs: ArrayView2<'_, F>,
        valid_targets: impl Into<Targets<'v, F>>,
        observer: &mut impl Observer,
    ) -> Result<Vec<EpochReport>> {
        if let Some(fraction) = self.engine.config.validation_fraction {
            return Err(Error::InvalidHyperparameter {
                name: "validation_fraction",
                value: fraction,
                reason: "must be None when a validation set is given",
            });
        }
        let n_out = self.network.n_outputs();
        let targets = targets.into().rows(n_out)?;
        let valid_targets = valid_targets.into();
        let classes = self.has_classes(&valid_targets);
        let valid_targets = valid_targets.rows(n_out)?;
        let validation = Validation {
            inputs: valid_inputs,
            targets: valid_targets.view(),
            classes,
        };
        for (x, y) in [(inputs, targets.view()), (valid_inputs, validation.targets)] {
            self.network.check_inputs(x)?;
            self.network.check_targets(x, y)?;
        }
        self.run_epochs(inputs, targets.view(), None, Some(validation), observer)
    }

    /// Whether `targets` name classes: labels, or rows for a softmax output.
    fn has_classes(&self, targets: &Targets<'_, F>) -> bool {
        let softmax = self.network.layers().last().map(Dense::activation);
        matches!(targets, Targets::Labels(_)) || softmax == Some(Activation::Softmax)
    }

    /// The epochs of [`Trainer::fit`] on checked data: on the rows `train` of `inputs` (all
    /// of them if `None`), validated on `validation` after each epoch.
    fn run_epochs(
        &mut self,
        inputs: ArrayView2<'_, F>,
        targets: ArrayView2<'_, F>,
        train: Option<&[usize]>,
        validation: Option<Validation<'_, F>>,
        observer: &mut impl Observer,
    ) -> Result<Vec<EpochReport>> {
        let metric = self.engine.config.early_stopping.map(|rule| rule.metric);
        if metric == Some(Metric::Accuracy) && !validation.as_ref().is_some_and(|v| v.classes) {
            return Err(Error::MetricUnavailable {
                metric: "accuracy",
                needs: "a validation set with class labels (or rows for a softmax output)",
            });
        }
        let mut reports = Vec::new();
        if self
            .engine
            .stopping
            .as_ref()
            .is_some_and(EarlyStopping::stopped)
        {
            return Ok(reports);
        }
        while self.engine.epoch < self.engine.config.epochs {
            let mut report =
                self.engine
                    .train_epoch(&mut self.network, inputs, targets, train, observer)?;
            if let Some(v) = &validation {
                // On the trainer's threads: its pool, or the calling thread alone.
                let (network, threads) = (&self.network, &self.engine.threads);
                let parallel = threads.count() > 1;
                let evaluation = threads.run(parallel, || {
                    network.evaluate_checked(v.inputs, v.targets, parallel)
                });
                report.validation_loss = Some(evaluation.loss);
                report.validation_accuracy = v.classes.then(|| evaluation.accuracy());
            }
            let stop = self.engine.watch(&mut self.network, &report);
            let flow = observer.epoch_end(&report);
            reports.push(report);
            if stop || flow.is_break() {
                break;
            }
        }
        if self.engine.epoch >= self.engine.config.epochs {
            self.engine.finish(&mut self.network);
        }
        Ok(reports)
    }

    /// One pass over the training set in minibatches (shuffled if configured). It trains on
    /// every row and neither validates nor stops early: [`TrainConfig::validation_fraction`]
    /// and [`TrainConfig::early_stopping`] are [`Trainer::fit`]'s.
    ///
    /// # Shapes
    /// As [`Trainer::fit`].
    ///
    /// # Errors
    /// As [`Network::check_inputs`] and [`Network::check_targets`];
    /// [`Error::LabelOutOfRange`] for a label ≥ n_out;
    /// [`Error::StepCountOverflow`] if the optimiser's step count cannot grow; and
    /// [`Error::Diverged`] if a loss or gradient becomes NaN or infinite: the network then
    /// keeps its last finite weights.
    pub fn train_epoch<'t>(
        &mut self,
        inputs: ArrayView2<'_, F>,
        targets: impl Into<Targets<'t, F>>,
        observer: &mut impl Observer,
    ) -> Result<EpochReport> {
        let targets = targets.into().rows(self.network.n_outputs())?;
        let targets = targets.view();
        self.network.check_inputs(inputs)?;
        self.network.check_targets(inputs, targets)?;
        let report = self
            .engine
            .train_epoch(&mut self.network, inputs, targets, None, observer)?;
        let _ = observer.epoch_end(&report);
        Ok(report)
    }

    /// One update from one minibatch (at most `batch_size` rows) at the current epoch's
    /// learning rate; returns the batch's mean loss before the update. Dropout masks and
    /// augmentations are keyed by the optimiser's step count and the row (see
    /// [`crate::nn::dropout::keeps`]), so repeated steps draw afresh and a resumed trainer
    /// draws as one that never stopped.
    ///
    /// # Errors
    /// As [`Trainer::train_epoch`]; [`Error::InvalidHyperparameter`] for a batch larger than
    /// the configured batch size.
    pub fn step<'t>(
        &mut self,
        inputs: ArrayView2<'_, F>,
        targets: impl Into<Targets<'t, F>>,
    ) -> Result<f64> {
        let targets = targets.into().rows(self.network.n_outputs())?;
        let targets = targets.view();
        self.network.check_inputs(inputs)?;
        self.network.check_targets(inputs, targets)?;
        self.engine.step(&mut self.network, inputs, targets)
    }
}

impl<F: Float> Engine<F> {
    /// Buffers and optimiser state for `network`.
    fn new(network: &Network<F>, config: TrainConfig, options: RunOptions) -> Result<Self> {
        config.validate()?;
        config.check_network(network)?;
        options.validate()?;
        let needed = buffer_bytes(network, &config, &options);
        let limit = options.memory_limit;
        if needed > limit as u128 {
            return Err(Error::TooLarge {
                what: "the trainer's buffers",
                needed,
                limit: limit as u128,
                unit: "bytes",
                hint: "each shard holds every parameter's gradient: raise shard_size, lower \
                       batch_size, or raise RunOptions::memory_limit",
            });
        }
        let threads = Threads::new(options.threads)?;
        let (shard_rows, n_shards) = shard_layout(&config);
        let shards = (0..n_shards)
            .map(|_| Shard {
                workspace: network.workspace(shard_rows),
                gradients: network.zero_gradients(),
                loss: 0.0,
                dropout: Masks::new(network, &config.dropout, shard_rows),
                augmented: match config.augment {
                    Some(_) => Array2::zeros((shard_rows, network.n_inputs())),
                    None => Array2::zeros((0, 0)),
                },
            })
            .collect();
        Ok(Engine {
            state: OptimizerState::new(config.optimizer, network)?,
            epoch: 0,
            threads,
            shards,
            total: network.zero_gradients(),
            batch_inputs: Array2::zeros((config.batch_size, network.n_inputs())),
            batch_targets: Array2::zeros((config.batch_size, network.n_outputs())),
            sample_keys: vec![0; config.batch_size],
            order: Vec::new(),
            thread_choice: ThreadChoice::default(),
            stopping: config.early_stopping.as_ref().map(EarlyStopping::of),
            best_layers: Vec::new(),
            reducer: None,
            options,
            config,
        })
    }

    /// Tells the early-stopping tracking (if any) the epoch's metric: keeps the weights of a
    /// new best, and on a stop puts them back. Returns whether to stop.
    fn watch(&mut self, network: &mut Network<F>, report: &EpochReport) -> bool {
        let (Some(stopping), Some(rule)) = (&mut self.stopping, &self.config.early_stopping) else {
            return false;
        };
        let metric = match rule.metric {
            Metric::Loss => report.validation_loss.unwrap_or(report.train_loss),
            Metric::Accuracy => report.validation_accuracy.unwrap_or(f64::NAN),
        };
        match stopping.update(report.epoch, metric) {
            Verdict::Improved => {
                self.best_layers.clear();
                self.best_layers.extend_from_slice(network.layers());
                false
            }
            Verdict::Waiting => false,
            Verdict::Stop => {
                self.restore_best(network);
                true
            }
        }
    }

    /// At the end of the configured epochs: puts the best epoch's weights back (once).
    fn finish(&mut self, network: &mut Network<F>) {
        if let Some(stopping) = &mut self.stopping {
            if !stopping.stopped() {
                stopping.finish();
                self.restore_best(network);
            }
        }
    }

    /// Writes the best epoch's weights and biases (if any) into `network`.
    fn restore_best(&self, network: &mut Network<F>) {
        if self.best_layers.is_empty() {
            return;
        }
        for (layer, best) in network.layers_mut().iter_mut().zip(&self.best_layers) {
            let (mut weights, mut biases) = layer.parameters_mut();
            weights.assign(&best.weights());
            biases.assign(&best.biases());
        }
    }

    /// The learning rate the next epoch uses.
    fn learning_rate(&self) -> f64 {
        let (base, epochs) = (self.config.optimizer.learning_rate(), self.config.epochs);
        self.config.schedule.learning_rate(base, self.epoch, epochs)
    }

    /// [`Trainer::train_epoch`] on `network`, whose inputs and targets are checked, on the
    /// rows `train` of them (all rows if `None`), without [`Observer::epoch_end`].
    fn train_epoch(
        &mut self,
        network: &mut Network<F>,
        inputs: ArrayView2<'_, F>,
        targets: ArrayView2<'_, F>,
        train: Option<&[usize]>,
        observer: &mut impl Observer,
    ) -> Result<EpochReport> {
        let start = Instant::now();
        let learning_rate = self.learning_rate();
        self.order.clear();
        match train {
            Some(rows) => self.order.extend_from_slice(rows),
            None => self.order.extend(0..inputs.nrows()),
        }
        let n = self.order.len();
        if self.config.shuffle {
            // One stream per epoch: an epoch's order depends only on (seed, epoch).
            let mut rng = ChaCha8Rng::seed_from_u64(self.config.seed);
            rng.set_stream(self.epoch as u64);
            self.order.shuffle(&mut rng);
        }
        let batch_size = self.config.batch_size;
        let batches = n.div_ceil(batch_size);
        let mut loss_sum = 0.0;
        for batch in 0..batches {
            let rows = batch_size.min(n - batch * batch_size);
            for r in 0..rows {
                let i = self.order[batch * batch_size + r];
                copy_row(inputs, i, &mut self.batch_inputs, r);
                copy_row(targets, i, &mut self.batch_targets, r);
                self.sample_keys[r] = i as u64;
            }
            let loss = self.step_prepared(network, rows, learning_rate, batch)?;
            loss_sum += loss * rows as f64;
            observer.batch_end(&BatchProgress {
                epoch: self.epoch,
                batch,
                batches,
                samples: batch * batch_size + rows,
                loss,
            });
        }
        let seconds = start.elapsed().as_secs_f64();
        let report = EpochReport {
            epoch: self.epoch,
            train_loss: loss_sum / n as f64,
            samples: n,
            seconds,
            samples_per_second: n as f64 / seconds.max(f64::MIN_POSITIVE),
            learning_rate,
            validation_loss: None,
            validation_accuracy: None,
        };
        self.epoch += 1;
        Ok(report)
    }

    /// [`Trainer::step`] on `network`, whose inputs and targets are checked.
    fn step(
        &mut self,
        network: &mut Network<F>,
        inputs: ArrayView2<'_, F>,
        targets: ArrayView2<'_, F>,
    ) -> Result<f64> {
        let rows = inputs.nrows();
        if rows > self.config.batch_size {
            return Err(Error::InvalidHyperparameter {
                name: "rows in one step",
                value: rows as f64,
                reason: "must not exceed the configured batch_size",
            });
        }
        self.batch_inputs.slice_mut(s![..rows, ..]).assign(&inputs);
        self.batch_targets
            .slice_mut(s![..rows, ..])
            .assign(&targets);
        // Keys with the top bit set, which no training-set index has: the step count in the
        // bits above 16 and the row (< 2¹⁶ = MAX_BATCH) below.
        let step = (self.state.steps() << 16) & !(1 << 63);
        for (r, key) in self.sample_keys[..rows].iter_mut().enumerate() {
            *key = 1 << 63 | step | r as u64;
        }
        let learning_rate = self.learning_rate();
        self.step_prepared(network, rows, learning_rate, 0)
    }

    /// The step on the first `rows` rows of the batch buffers, minibatch `batch` of the
    /// epoch. On divergence ([`Error::Diverged`]) the network is unchanged.
    fn step_prepared(
        &mut self,
        network: &mut Network<F>,
        rows: usize,
        learning_rate: f64,
        batch: usize,
    ) -> Result<f64> {
        self.state.next_step()?;
        let epoch = self.epoch;
        // Products split over a pool only in a one-shard step, which sets this flag inside
        // the pool; a shard computed on the calling thread must not inherit it from an
        // earlier step, or its products would run on rayon's global pool.
        for shard in &mut self.shards {
            shard.workspace.set_parallel_products(false);
        }
        // The fused one-sample path knows neither dropout nor augmentation: with either, one
        // row goes the batched way.
        let plain = !self.config.has_dropout() && self.config.augment.is_none();
        if rows == 1 && plain && matches!(self.config.optimizer, Optimizer::Sgd { .. }) {
            // The seed's per-sample SGD: gradient and update fused, the same bits.
            let loss = network
                .sgd_one_sample(
                    self.batch_inputs.slice(s![..1, ..]),
                    self.batch_targets.slice(s![..1, ..]),
                    &mut self.shards[0].workspace,
                    F::of(learning_rate),
                    F::of(self.config.weight_decay),
                )
                .map_err(|d| d.at(epoch, batch))?;
            self.state.record_step();
            return Ok(loss);
        }
        let can_split = self.threads.count() > 1 && rows > 1;
        let parallel =
            can_split && (!self.options.adaptive_threads || self.thread_choice.parallel_next());
        let started = Instant::now();
        let n_shards = self.compute_gradients(network, rows, parallel);
        let loss = self.apply_update(network, rows, n_shards, learning_rate, parallel, batch)?;
        if can_split {
            // The whole step, update included (it is split over the pool too).
            let per_sample = started.elapsed().as_secs_f64() / rows as f64;
            self.thread_choice.record(parallel, per_sample);
        }
        Ok(loss)
    }

    /// Sets each shard's gradients (already divided by `rows`, so that their sum is the
    /// gradient of the batch's mean loss) and summed loss, on the pool when `parallel`.
    /// Each shard augments its rows and draws their dropout masks itself, from their keys.
    /// Returns the number of shards used.
    fn compute_gradients(&mut self, network: &Network<F>, rows: usize, parallel: bool) -> usize {
        let (shard_rows, _) = shard_layout(&self.config);
        let n_shards = rows.div_ceil(shard_rows);
        // This process's shards: all of them unless they are spread over processes.
        let mine = self
            .reducer
            .as_ref()
            .map_or(0..n_shards, |r| r.shards(n_shards));
        let rows_mine = rows.min(mine.start * shard_rows)..rows.min(mine.end * shard_rows);
        let x = self.batch_inputs.slice(s![rows_mine.clone(), ..]);
        let y = self.batch_targets.slice(s![rows_mine.clone(), ..]);
        let scale = (rows > 1).then(|| F::one() / F::of(rows as f64));
        let keying = Keying {
            seed: self.config.seed,
            epoch: self.epoch as u64,
            augment: self.config.augment,
        };
        let work = |(shard, (rows, keys)): (&mut Shard<F>, (Rows<'_, F>, &[u64]))| {
            shard.compute(network, rows, keys, scale, keying);
        };
        let keys = &self.sample_keys[rows_mine];
        let shards = &mut self.shards[mine];
        if shards.len() == 1 {
            // One shard: any parallelism is inside its matrix products (same bits either way).
            let shard = &mut shards[0];
            shard.workspace.set_parallel_products(parallel);
            let mut one = || work((shard, ((x, y), keys)));
            if parallel && self.threads.has_own_pool() {
                self.threads.run(true, || keeping_the_pool_awake(one));
            } else {
                one();
            }
        } else if parallel {
            let chunks = x
                .axis_chunks_iter(Axis(0), shard_rows)
                .into_par_iter()
                .zip(y.axis_chunks_iter(Axis(0), shard_rows))
                .zip(keys.par_chunks(shard_rows));
            self.threads
                .run(true, || shards.par_iter_mut().zip(chunks).for_each(work));
        } else {
            let chunks = x
                .axis_chunks_iter(Axis(0), shard_rows)
                .zip(y.axis_chunks_iter(Axis(0), shard_rows))
                .zip(keys.chunks(shard_rows));
            shards.iter_mut().zip(chunks).for_each(work);
        }
        n_shards
    }

    /// Adds the first `n_shards` shards' gradients and applies the optimiser's update; returns
    /// the batch's mean loss. Nothing is written when the loss, a gradient or a new weight
    /// would not be finite ([`Error::Diverged`] for minibatch `batch`).
    fn apply_update(
        &mut self,
        network: &mut Network<F>,
        rows: usize,
        n_shards: usize,
        learning_rate: f64,
        parallel: bool,
        batch: usize,
    ) -> Result<f64> {
        let (total, loss) = match &mut self.reducer {
            None => sum_shards(&self.shards[..n_shards], &mut self.total),
            Some(r) => {
                let shards = &self.shards[r.shards(n_shards)];
                let mut mine = shards.iter().map(|s| (&s.gradients, s.loss));
                r.reduce(&mut mine, n_shards, &mut self.total)?
            }
        };
        let loss = loss / rows as f64;
        let diverged = |d: Divergence| d.at(self.epoch, batch);
        if !loss.is_finite() {
            return Err(diverged(Divergence::Loss(loss)));
        }
        // The optimiser checks every new weight before writing any; a non-finite gradient
        // fails that check too, so the gradients are only inspected to name the cause.
        let decay = self.config.weight_decay;
        let state = &mut self.state;
        let updated = self.threads.run(parallel, || {
            state.step_split(network, total, learning_rate, decay, parallel)
        });
        match updated? {
            true => Ok(loss),
            false if total.is_finite() => Err(diverged(Divergence::Weight(loss))),
            false => Err(diverged(Divergence::Gradient(loss))),
        }
    }
}

/// Adds the (already averaged) shards in order — total = g₀ + g₁ + …, the same operations
/// for any thread count — into `total` when there is more than one; returns the sum of the
/// gradients and of the losses.
fn sum_shards<'a, F: Float>(
    shards: &'a [Shard<F>],
    total: &'a mut Gradients<F>,
) -> (&'a Gradients<F>, f64) {
    let (first, rest) = shards.split_at(1);
    let mut loss = first[0].loss;
    if rest.is_empty() {
        return (&first[0].gradients, loss);
    }
    total.combine(Some(&first[0].gradients), Some(&rest[0].gradients), None);
    loss += rest[0].loss;
    for shard in &rest[1..] {
        total.combine(None, Some(&shard.gradients), None);
        loss += shard.loss;
    }
    (total, loss)
}

/// A shard's inputs and targets.
type Rows<'a, F> = (ArrayView2<'a, F>, ArrayView2<'a, F>);

/// Rows per shard and shards per full batch.
fn shard_layout(config: &TrainConfig) -> (usize, usize) {
    let shard_rows = config.shard_size.min(config.batch_size);
    (shard_rows, config.batch_size.div_ceil(shard_rows))
}

/// An upper estimate of the bytes a [`Trainer`]'s buffers take for `network` and `config`,
/// in `u128` so that no configuration can overflow it (saturating, to be safe all the same).
fn buffer_bytes<F: Float>(
    network: &Network<F>,
    config: &TrainConfig,
    options: &RunOptions,
) -> u128 {
    let big = |n: usize| n as u128;
    let (shard_rows, n_shards) = shard_layout(config);
    let parameters = big(network.parameter_count());
    let layers = network.layers();
    let widths: u128 = layers.iter().map(|l| big(l.n_out())).sum();
    let activated_inputs = big(network.input_activation().map_or(0, |_| network.n_inputs()));
    // Per shard: activated inputs, then Z, A and Δ of every layer, for each row.
    let rows = big(shard_rows).saturating_mul(activated_inputs.saturating_add(3 * widths));
    let packing = packing_elements(network, shard_rows);
    let threads = options.threads.unwrap_or_else(rayon::current_num_threads);
    let dropout = Masks::elements(network, &config.dropout, shard_rows);
    let augmented = match config.augment {
        Some(_) => big(shard_rows).saturating_mul(big(network.n_inputs())),
        None => 0,
    };
    let per_shard = rows
        .saturating_add(parameters)
        .saturating_add(packing)
        .saturating_add(dropout)
        .saturating_add(augmented);
    // The optimiser keeps up to two arrays per parameter (plain SGD: one to write into).
    let moments = match config.optimizer {
        Optimizer::Adam { .. } => 2,
        _ => 1,
    };
    let batch_copies = big(config.batch_size)
        .saturating_mul(big(network.n_inputs()).saturating_add(big(network.n_outputs())));
    // A one-shard step may split its products, each part with packing buffers of its own.
    let elements = big(n_shards)
        .saturating_mul(per_shard)
        .saturating_add(big(threads).saturating_mul(packing))
        .saturating_add(parameters.saturating_mul(1 + moments))
        .saturating_add(batch_copies);
    elements.saturating_mul(std::mem::size_of::<F>() as u128)
}

/// An upper estimate of the elements one shard's packing buffers grow to: the products of a
/// layer are (rows × n_in)·(n_in × n_out), (n_out × rows)·(rows × n_in) and
/// (rows × n_out)·(n_out × n_in), and `crate::fast::gemm` packs at most 1024 rows of A and 256
/// columns of B, 256 deep at a time (rounded up here to whole kernel tiles).
fn packing_elements<F: Float>(network: &Network<F>, rows: usize) -> u128 {
    let packed = |m: usize, k: usize, n: usize| {
        let depth = k.min(256) as u128;
        (
            (m.min(1024) + 32) as u128 * depth,
            (n.min(256) + 32) as u128 * depth,
        )
    };
    let (mut a, mut b) = (0, 0);
    for layer in network.layers() {
        let (n_in, n_out) = (layer.n_in(), layer.n_out());
        for (m, k, n) in [
            (rows, n_in, n_out),
            (n_out, rows, n_in),
            (rows, n_out, n_in),
        ] {
            let (pa, pb) = packed(m, k, n);
            a = a.max(pa);
            b = b.max(pb);
        }
    }
    // Plus the accumulator tile and each buffer's alignment slack.
    a + b + 2048
}

/// Copies row `from` of `source` into row `to` of `dest` (a plain memcpy when both are
/// contiguous, as they are for standard-layout arrays).
fn copy_row<F: Float>(source: ArrayView2<'_, F>, from: usize, dest: &mut Array2<F>, to: usize) {
    let src = source.row(from);
    let mut dst = dest.row_mut(to);
    match (src.as_slice(), dst.as_slice_mut()) {
        (Some(s), Some(d)) => d.copy_from_slice(s),
        (_, _) => dst.assign(&src),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A report of `epoch` with training loss `loss` and no validation.
    fn report(epoch: usize, loss: f64) -> EpochReport {
        EpochReport {
            epoch,
            train_loss: loss,
            samples: 1,
            seconds: 1.0,
            samples_per_second: 1.0,
            learning_rate: 0.1,
            validation_loss: None,
            validation_accuracy: None,
        }
    }

    /// Sets every weight and bias to `value`.
    fn mark(network: &mut Network<f32>, value: f32) {
        for layer in network.layers_mut() {
            let (mut w, mut b) = layer.parameters_mut();
            w.fill(value);
            b.fill(value);
        }
    }

    #[test]
    fn the_epoch_loop_stops_where_a_worked_loss_sequence_says_with_the_best_weights() {
        // patience 3, min_delta 0.1: epoch 0 sets the best (1.0); 0.95 is not below 0.9, 0.8
        // is (best 2); 0.75 and 0.71 are not below 0.7, 0.69 is (best 5); then 0.6 (not below
        // 0.59), 0.65, 0.7: three in a row, stop after epoch 8 with the weights of epoch 5.
        let losses = [1.0, 0.95, 0.8, 0.75, 0.71, 0.69, 0.6, 0.65, 0.7, 0.1];
        let rule = StopRule {
            metric: Metric::Loss,
            patience: 3,
            min_delta: 0.1,
        };
        let config = TrainConfig {
            early_stopping: Some(rule),
            ..TrainConfig::default()
        };
        let mut network = Network::<f32>::builder(&[2, 3, 2]).build().unwrap();
        let mut engine = Engine::new(&network, config, RunOptions::one_thread()).unwrap();
        let mut stopped_after = None;
        for (epoch, &loss) in losses.iter().enumerate() {
            // Weights that name the epoch they stand for.
            mark(&mut network, epoch as f32);
            if engine.watch(&mut network, &report(epoch, loss)) {
                stopped_after = Some(epoch);
                break;
            }
        }
        assert_eq!(stopped_after, Some(8));
        let stopping = engine.stopping.as_ref().unwrap();
        assert_eq!(stopping.best(), Some((5, 0.69)));
        assert!(stopping.stopped());
        let mut best = network.clone();
        mark(&mut best, 5.0);
        assert_eq!(network, best);
    }

    #[test]
    fn finishing_the_epochs_restores_the_best_weights_once() {
        let config = TrainConfig {
            early_stopping: Some(StopRule::patience(10)),
            ..TrainConfig::default()
        };
        let mut network = Network::<f32>::builder(&[2, 3, 2]).build().unwrap();
        let mut engine = Engine::new(&network, config, RunOptions::one_thread()).unwrap();
        for (epoch, loss) in [(0, 2.0), (1, 1.0), (2, 1.5)] {
            mark(&mut network, epoch as f32);
            assert!(!engine.watch(&mut network, &report(epoch, loss)));
        }
        engine.finish(&mut network);
        let mut best = network.clone();
        mark(&mut best, 1.0);
        assert_eq!(network, best);
        // Finished: a later finish leaves the weights alone.
        mark(&mut network, 7.0);
        engine.finish(&mut network);
        assert_eq!(network.layers()[0].weights()[[0, 0]], 7.0);
    }
}
