//! Checkpoints: everything training needs to continue exactly where it stopped.
//!
//! A checkpoint is a model file ([`crate::io::model`]) with more in it: the optimiser's moments as
//! tensors named `optimizer.first.{l}.weight`, `optimizer.first.{l}.bias` (velocity or Adam's
//! first moment of layer `l`) and `optimizer.second.{l}.…` (Adam's second moment), shaped like
//! the layer's parameters; and a metadata entry `"lernmi.training"` holding, as JSON, the
//! epochs completed, the optimiser's step count and the whole [`TrainConfig`]. With
//! [`TrainConfig::early_stopping`] set, the entry also holds the tracking (`early_stopping`:
//! the best epoch and its metric, the epochs waited since, whether training stopped), and the
//! best epoch's weights are tensors `early_stopping.best.{l}.weight` and `….bias`. A file
//! without these fields (written before they existed, or without early stopping) loads as one
//! without validation or early stopping.
//!
//! That is the complete training state. The random state needs no saving: each epoch's shuffle
//! is drawn from stream `epoch` of a ChaCha8 generator seeded with `config.seed`, so it follows
//! from the seed and the epoch; dropout masks and augmentations are hashes of the seed, the
//! epoch and the sample index ([`crate::nn::dropout`]). Resuming a checkpoint and training to the end therefore gives
//! the same bits as never stopping (`tests/checkpoint.rs` checks this).
//!
//! Since the network's tensors keep their model-file names, [`Network::load`] reads a
//! checkpoint as a model.
//!
//! # Loading trusts nothing
//!
//! Besides everything a model file is checked for, every field of the training state is
//! checked before anything is built from it, and one out of range is an [`Error::BadFile`]
//! naming it:
//!
//! | field | accepted |
//! |---|---|
//! | `epoch` | at most [`MAX_EPOCH`] (it may exceed `config.epochs`: [`Trainer::train_epoch`] trains on past them) |
//! | `optimizer_steps` | at most [`MAX_OPTIMIZER_STEPS`] |
//! | `config` | what [`TrainConfig::validate`] and [`RunOptions::validate`] (1 to [`crate::train::MAX_THREADS`] threads) accept: a batch of 1 to [`crate::train::MAX_BATCH`], a finite weight decay ≥ 0, and the optimiser's and schedule's ranges |
//! | `config.shard_size` | at least 1; a shard never holds more than a batch, so a larger value costs nothing |
//! | `config.epochs`, `config.seed` | any: neither sizes anything |
//! | `config.validation_fraction`, `config.early_stopping` | what [`TrainConfig::validate`] accepts: a fraction in (0, 1), a patience ≥ 1 and a finite `min_delta` ≥ 0 |
//! | `early_stopping` | only with `config.early_stopping`; best epoch below `epoch`, its metric finite, epochs waited at most `epoch` |
//! | best weights | present exactly when a best epoch is, shaped like their layers, finite |
//! | `config.dropout` | missing (none) or one rate in [0, 1) per hidden layer ([`TrainConfig::check_network`]) |
//! | `config.augment` | missing (none) or what [`crate::data::Augment::validate`] accepts, `height × width` the network's input width |
//! | optimiser tensors | those the optimiser keeps, shaped like their layers, finite; Adam's second moments ≥ 0 |
//!
//! [`Checkpoint::resume`] checks again what may have been edited since: the network against
//! the shapes of the optimiser's moments, and `epoch`.
//!
//! ```
//! use lernmi::{Checkpoint, Network, TrainConfig, Trainer};
//! use ndarray::array;
//!
//! let x = array![[0.0f32, 1.0], [1.0, 0.0], [1.0, 1.0], [0.0, 0.0]];
//! let y = array![[0.0f32, 1.0], [0.0, 1.0], [1.0, 0.0], [1.0, 0.0]];
//! let net = Network::<f32>::builder(&[2, 4, 2]).seed(3).build()?;
//! let config = TrainConfig { epochs: 2, batch_size: 2, ..TrainConfig::default() };
//! let mut trainer = Trainer::new(net, config)?;
//! trainer.train_epoch(x.view(), y.view(), &mut ())?;
//! let path = std::env::temp_dir().join(format!("lernmi-ckpt-doc-{}.safetensors", std::process::id()));
//! trainer.save_checkpoint(&path)?;
//!
//! let mut resumed = Checkpoint::<f32>::load(&path)?.resume()?;
//! assert_eq!(resumed.epoch(), 1);
//! resumed.fit(x.view(), y.view(), &mut ())?;
//! trainer.fit(x.view(), y.view(), &mut ())?;
//! assert_eq!(resumed.network(), trainer.network());
//! # std::fs::remove_file(&path).ok();
//! # Ok::<(), lernmi::Error>(())
//! ```

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::data::Augment;
use crate::io::model::{read_network, TRAINING_PREFIXES};
pub use crate::io::model::{BEST_WEIGHTS_PREFIX, OPTIMIZER_PREFIX};
use crate::io::safetensors::{
    read_file, serialize, write_atomically, OwnedTensor, TensorFile, DEFAULT_MAX_FILE_BYTES,
};
use crate::train::early_stopping::{EarlyStopping, StopRule};
use crate::train::optimizer::OptimizerState;
use crate::train::schedule::Schedule;
use crate::{Dense, Error, Float, Network, Optimizer, Result, RunOptions, TrainConfig, Trainer};

/// The metadata key holding the training state as JSON.
pub const TRAINING_KEY: &str = "lernmi.training";

/// The most epochs a checkpoint may say were completed (2^31): far more than any run trains,
/// and far enough below `usize::MAX` that counting on cannot overflow.
pub const MAX_EPOCH: usize = 1 << 31;
/// The most optimiser steps a checkpoint may say were taken (2^53, the last count an `f64`
/// holds exactly): more than a million steps a second for 285 years, and far enough below
/// `u64::MAX` that counting on cannot overflow.
pub const MAX_OPTIMIZER_STEPS: u64 = 1 << 53;

const MOMENTS: [&str; 2] = ["first", "second"];

/// The (row-major) index of the first negative value.
fn first_negative<'a, F: Float>(values: impl IntoIterator<Item = &'a F>) -> Option<usize> {
    values.into_iter().position(|x| *x < F::zero())
}

/// Checks the counts of a training state against [`MAX_EPOCH`] and [`MAX_OPTIMIZER_STEPS`].
fn check_counts(epoch: usize, steps: u64) -> Result<()> {
    if epoch > MAX_EPOCH {
        return Err(Error::InvalidHyperparameter {
            name: "epoch",
            value: epoch as f64,
            reason: "must be at most checkpoint::MAX_EPOCH = 2^31",
        });
    }
    if steps > MAX_OPTIMIZER_STEPS {
        return Err(Error::InvalidHyperparameter {
            name: "optimizer_steps",
            value: steps as f64,
            reason: "must be at most checkpoint::MAX_OPTIMIZER_STEPS = 2^53",
        });
    }
    Ok(())
}

/// A saved training run: the network, the configuration, the epochs completed and the
/// optimiser's state.
#[derive(Clone, Debug, PartialEq)]
pub struct Checkpoint<F: Float = f32> {
    /// The network after `epoch` epochs.
    pub network: Network<F>,
    /// The configuration training used. Changing `epochs` before [`Checkpoint::resume`] keeps
    /// the results of the epochs both runs train exact (but for a cosine schedule, which
    /// stretches with `epochs`); changing anything else changes them.
    pub config: TrainConfig,
    /// How training ran; [`Checkpoint::resume`] runs the same way. Changing it keeps the
    /// results exact.
    pub options: RunOptions,
    /// Epochs completed.
    pub epoch: usize,
    state: OptimizerState<F>,
    /// The early-stopping tracking and the best epoch's layers (empty before a best).
    stopping: Option<(EarlyStopping, Vec<Dense<F>>)>,
}

/// The configuration as a checkpoint holds it: the file's contract, kept apart from
/// [`TrainConfig`] so that the API can grow without changing what files say. Unknown fields are
/// refused (a typo must not pass for a setting); the run settings, which do not change results,
/// may be missing and then take their defaults, as must any field added later.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigSpec {
    epochs: usize,
    batch_size: usize,
    optimizer: Optimizer,
    schedule: Schedule,
    weight_decay: f64,
    seed: u64,
    shuffle: bool,
    #[serde(default)]
    threads: Option<usize>,
    shard_size: usize,
    #[serde(default = "adaptive_threads_default")]
    adaptive_threads: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    validation_fraction: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    early_stopping: Option<StopRule>,
    /// Left out when empty, so that a run without dropout writes what older versions read.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    dropout: Vec<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    augment: Option<Augment>,
}

fn adaptive_threads_default() -> bool {
    RunOptions::default().adaptive_threads
}

/// The training state in a checkpoint's metadata.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct TrainingSpec {
    epoch: usize,
    optimizer_steps: u64,
    config: ConfigSpec,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    early_stopping: Option<StoppingSpec>,
}

/// The early-stopping tracking in a checkpoint's metadata.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoppingSpec {
    /// The best epoch and its metric (finite, so JSON holds it exactly).
    best: Option<(usize, f64)>,
    waited: usize,
    stopped: bool,
}

impl StoppingSpec {
    fn of(stopping: &EarlyStopping) -> Self {
        StoppingSpec {
            best: stopping.best(),
            waited: stopping.waited(),
            stopped: stopping.stopped(),
        }
    }

    /// Checks the tracking against the epochs completed.
    fn check(&self, epoch: usize) -> std::result::Result<(), String> {
        if self.waited > epoch {
            return Err(format!(
                "{} epochs waited after {epoch} epochs",
                self.waited
            ));
        }
        match self.best {
            Some((best, _)) if best >= epoch => Err(format!(
                "best epoch {best}, but only {epoch} epochs completed"
            )),
            Some((_, metric)) if !metric.is_finite() => Err(format!("best metric {metric}")),
            _ => Ok(()),
        }
    }
}

impl ConfigSpec {
    fn of(c: &TrainConfig, options: &RunOptions) -> Self {
        ConfigSpec {
            epochs: c.epochs,
            batch_size: c.batch_size,
            optimizer: c.optimizer,
            schedule: c.schedule,
            weight_decay: c.weight_decay,
            seed: c.seed,
            shuffle: c.shuffle,
            threads: options.threads,
            shard_size: c.shard_size,
            adaptive_threads: options.adaptive_threads,
            validation_fraction: c.validation_fraction,
            early_stopping: c.early_stopping,
            dropout: c.dropout.clone(),
            augment: c.augment,
        }
    }
}

impl ConfigSpec {
    /// The configuration and the run options a checkpoint holds. Settings `TrainConfig` or
    /// `RunOptions` gain later take their defaults.
    fn config(self) -> (TrainConfig, RunOptions) {
        let options = RunOptions {
            threads: self.threads,
            adaptive_threads: self.adaptive_threads,
            ..RunOptions::default()
        };
        let config = TrainConfig {
            epochs: self.epochs,
            batch_size: self.batch_size,
            optimizer: self.optimizer,
            schedule: self.schedule,
            weight_decay: self.weight_decay,
            seed: self.seed,
            shuffle: self.shuffle,
            shard_size: self.shard_size,
            validation_fraction: self.validation_fraction,
            early_stopping: self.early_stopping,
            dropout: self.dropout,
            augment: self.augment,
        };
        (config, options)
    }
}

fn moment_name(which: usize, layer: usize, part: &str) -> String {
    format!("{OPTIMIZER_PREFIX}{}.{layer}.{part}", MOMENTS[which])
}

fn best_name(layer: usize, part: &str) -> String {
    format!("{BEST_WEIGHTS_PREFIX}{layer}.{part}")
}

impl<F: Float> Trainer<F> {
    /// The training state after the epochs completed so far, as safetensors bytes.
    ///
    /// # Errors
    /// None today; the `Result` leaves room for checks.
    pub fn checkpoint_bytes(&self) -> Result<Vec<u8>> {
        let network = self.network();
        let path = Path::new("<checkpoint>");
        let (mut tensors, mut metadata) = crate::io::model::network_tensors(network);
        for (which, moments) in self.optimizer_state().moments().into_iter().enumerate() {
            for (l, (w, b)) in moments.iter().enumerate() {
                tensors.push((
                    moment_name(which, l, "weight"),
                    OwnedTensor::matrix(w.view()),
                ));
                tensors.push((moment_name(which, l, "bias"), OwnedTensor::vector(b.view())));
            }
        }
        for (l, layer) in self.best_layers().iter().enumerate() {
            tensors.push((best_name(l, "weight"), OwnedTensor::matrix(layer.weights())));
            tensors.push((best_name(l, "bias"), OwnedTensor::vector(layer.biases())));
        }
        let training = TrainingSpec {
            epoch: self.epoch(),
            optimizer_steps: self.optimizer_state().steps(),
            config: ConfigSpec::of(self.config(), self.options()),
            early_stopping: self.early_stopping().map(StoppingSpec::of),
        };
        metadata.insert(
            TRAINING_KEY.to_string(),
            serde_json::to_string(&training).expect("the training state serialises to JSON"),
        );
        serialize(&tensors, metadata, path)
    }

    /// Saves the training state to `path`, atomically (see [`crate::io::safetensors::write_atomically`]).
    /// Call it between epochs: the state is that after [`Trainer::epoch`] epochs.
    ///
    /// # Errors
    /// [`Error::Io`] naming the file if it cannot be written (the previous file is then
    /// intact).
    pub fn save_checkpoint(&self, path: impl AsRef<Path>) -> Result<()> {
        let bytes = self.checkpoint_bytes()?;
        write_atomically(path, |w| std::io::Write::write_all(w, &bytes))
    }
}

impl<F: Float> Checkpoint<F> {
    /// Reads a checkpoint written by [`Trainer::save_checkpoint`] (at most
    /// [`DEFAULT_MAX_FILE_BYTES`] long).
    ///
    /// # Errors
    /// [`Error::Io`] if the file cannot be read; [`Error::BadFile`] naming the file for
    /// anything [`Network::load`] rejects, missing or malformed training metadata, a field out
    /// of range (see the module docs), or missing, extra or misshapen optimiser tensors.
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        Self::load_with_limit(path, DEFAULT_MAX_FILE_BYTES)
    }

    /// [`Checkpoint::load`] for a file of at most `max_bytes` bytes.
    ///
    /// # Errors
    /// As [`Checkpoint::load`]; [`Error::BadFile`] if the file is larger than `max_bytes`.
    pub fn load_with_limit(path: impl AsRef<Path>, max_bytes: u64) -> Result<Self> {
        let path = path.as_ref();
        let bytes = read_file(path, max_bytes)?;
        Self::parse(&bytes, path)
    }

    /// A checkpoint from the bytes of [`Trainer::checkpoint_bytes`].
    ///
    /// # Errors
    /// As [`Checkpoint::load`].
    pub fn from_safetensors(bytes: &[u8]) -> Result<Self> {
        Self::parse(bytes, Path::new("<in-memory checkpoint>"))
    }

    fn parse(bytes: &[u8], path: &Path) -> Result<Self> {
        let file = TensorFile::parse(bytes, path)?;
        let bad = |problem: String| Error::BadFile {
            path: path.to_path_buf(),
            problem,
        };
        let training: TrainingSpec = file.json(TRAINING_KEY)?;
        check_counts(training.epoch, training.optimizer_steps)
            .map_err(|e| bad(format!("training state: {e}")))?;
        let (config, options) = training.config.config();
        config
            .validate()
            .and_then(|()| options.validate())
            .map_err(|e| bad(format!("training configuration: {e}")))?;
        let network = read_network::<F>(&file, &TRAINING_PREFIXES)?;
        config
            .check_network(&network)
            .map_err(|e| bad(format!("training configuration: {e}")))?;
        let as_bad_file = |e| match e {
            e @ Error::BadFile { .. } => e,
            other => bad(other.to_string()),
        };
        let state = Self::read_state(&file, &network, config.optimizer, training.optimizer_steps)
            .map_err(as_bad_file)?;
        let stopping = Self::read_stopping(
            &file,
            &network,
            &config,
            training.epoch,
            training.early_stopping,
        )
        .map_err(as_bad_file)?;
        Ok(Checkpoint {
            network,
            config,
            options,
            epoch: training.epoch,
            state,
            stopping,
        })
    }

    /// The early-stopping tracking and best layers from the file: tracking only with a rule,
    /// consistent with the epochs completed, and best weights exactly when there is a best.
    fn read_stopping(
        file: &TensorFile<'_>,
        network: &Network<F>,
        config: &TrainConfig,
        epoch: usize,
        spec: Option<StoppingSpec>,
    ) -> Result<Option<(EarlyStopping, Vec<Dense<F>>)>> {
        let bad = |problem: String| Error::BadFile {
            path: file.path.to_path_buf(),
            problem,
        };
        let held = file
            .names()
            .into_iter()
            .filter(|n| n.starts_with(BEST_WEIGHTS_PREFIX))
            .count();
        let (rule, spec) = match (&config.early_stopping, spec) {
            (_, None) if held > 0 => {
                return Err(bad(format!(
                    "{held} best-weight tensors without a best epoch"
                )))
            }
            (_, None) => return Ok(None),
            (None, Some(_)) => {
                return Err(bad(
                    "early-stopping state without config.early_stopping".into()
                ))
            }
            (Some(rule), Some(spec)) => (rule, spec),
        };
        spec.check(epoch)
            .map_err(|problem| bad(format!("early_stopping: {problem}")))?;
        let layers = network.layers();
        let expected = if spec.best.is_some() {
            2 * layers.len()
        } else {
            0
        };
        if held != expected {
            return Err(bad(format!(
                "{held} best-weight tensors, but {expected} for {} layers and {} best epoch",
                layers.len(),
                if spec.best.is_some() { "a" } else { "no" }
            )));
        }
        let mut best = Vec::with_capacity(layers.len());
        for (l, layer) in layers.iter().enumerate().take(expected / 2) {
            let w = file.matrix::<F>(&best_name(l, "weight"), layer.n_out(), layer.n_in())?;
            let b = file.vector::<F>(&best_name(l, "bias"), layer.n_out())?;
            best.push(Dense::new(w, b, layer.activation())?);
        }
        let tracking = EarlyStopping::restored(rule, spec.best, spec.waited, spec.stopped);
        Ok(Some((tracking, best)))
    }

    /// The optimiser's state from the file's tensors: exactly the ones `optimizer` keeps for
    /// `network`, each finite and shaped like its layer, and second moments non-negative.
    fn read_state(
        file: &TensorFile<'_>,
        network: &Network<F>,
        optimizer: Optimizer,
        steps: u64,
    ) -> Result<OptimizerState<F>> {
        let moments = match optimizer {
            Optimizer::Sgd { .. } => 0,
            Optimizer::Momentum { .. } => 1,
            Optimizer::Adam { .. } => 2,
        };
        let layers = network.layers().len();
        let expected = 2 * layers * moments;
        let held = file
            .names()
            .into_iter()
            .filter(|n| n.starts_with(OPTIMIZER_PREFIX))
            .count();
        let bad = |problem: String| Error::BadFile {
            path: file.path.to_path_buf(),
            problem,
        };
        if held != expected {
            return Err(bad(format!(
                "{held} optimiser tensors, but {} with {layers} layers keeps {expected}",
                optimizer.name()
            )));
        }
        let read = |which, l| {
            let layer = &network.layers()[l];
            let (w_name, b_name) = (
                moment_name(which, l, "weight"),
                moment_name(which, l, "bias"),
            );
            let w = file.matrix::<F>(&w_name, layer.n_out(), layer.n_in())?;
            let b = file.vector::<F>(&b_name, layer.n_out())?;
            // A second moment is a running mean of squares; a negative one would make Adam
            // take the square root of a negative number.
            if which == 1 {
                for (name, negative) in
                    [(&w_name, first_negative(&w)), (&b_name, first_negative(&b))]
                {
                    if let Some(index) = negative {
                        return Err(bad(format!(
                            "tensor {name:?} holds a negative value at index {index}, but \
                             second moments are means of squares"
                        )));
                    }
                }
            }
            Ok((w, b))
        };
        OptimizerState::restored(optimizer, network, read, steps)
    }

    /// The optimiser's saved state.
    pub fn optimizer_state(&self) -> &OptimizerState<F> {
        &self.state
    }

    /// The sizes of the network the optimiser's moments were saved for, or `None` if the
    /// optimiser keeps no moments (plain SGD), whose state fits any network.
    fn saved_sizes(&self) -> Option<Vec<usize>> {
        let moments = self.state.moments().into_iter().find(|m| !m.is_empty())?;
        let inputs = moments[0].0.ncols();
        Some(
            std::iter::once(inputs)
                .chain(moments.iter().map(|(w, _)| w.nrows()))
                .collect(),
        )
    }

    /// A trainer that owns the network and continues after the saved epoch with
    /// [`Checkpoint::config`] and [`Checkpoint::options`].
    ///
    /// # Errors
    /// As [`Trainer::new`]; [`Error::InvalidHyperparameter`] if `config.optimizer` was changed
    /// to another kind of optimiser than the one whose state was saved, or `epoch` to more
    /// than [`MAX_EPOCH`]; [`Error::Shape`] if `network` was replaced by one of another shape
    /// than the optimiser's saved moments (plain SGD keeps none, so any network resumes).
    pub fn resume(self) -> Result<Trainer<F>> {
        let saved = self.state.optimizer();
        if std::mem::discriminant(&saved) != std::mem::discriminant(&self.config.optimizer) {
            return Err(Error::InvalidHyperparameter {
                name: "optimizer",
                value: self.config.optimizer.learning_rate(),
                reason: "a checkpoint resumes with the kind of optimiser that wrote it",
            });
        }
        if let Some(expected) = self.saved_sizes() {
            if expected != self.network.sizes() {
                return Err(Error::Shape {
                    what: "network of a resumed checkpoint (the shape its optimiser state was \
                           saved for)"
                        .into(),
                    expected,
                    got: self.network.sizes(),
                });
            }
        }
        check_counts(self.epoch, self.state.steps())?;
        self.check_best_layers()?;
        let state = OptimizerState::restored(
            self.config.optimizer,
            &self.network,
            |which, l| Ok(self.state.moments()[which][l].clone()),
            self.state.steps(),
        )?;
        Trainer::restored(
            self.network,
            self.config,
            self.options,
            state,
            self.epoch,
            self.stopping,
        )
    }

    /// [`Error::Shape`] if the saved best layers do not fit the network (which may have been
    /// replaced since loading).
    fn check_best_layers(&self) -> Result<()> {
        let Some((_, best)) = &self.stopping else {
            return Ok(());
        };
        if best.is_empty() {
            return Ok(());
        }
        let saved: Vec<usize> = std::iter::once(best[0].n_in())
            .chain(best.iter().map(Dense::n_out))
            .collect();
        if saved != self.network.sizes() {
            return Err(Error::Shape {
                what: "network of a resumed checkpoint (the shape its best weights were saved \
                       for)"
                    .into(),
                expected: saved,
                got: self.network.sizes(),
            });
        }
        Ok(())
    }
}
