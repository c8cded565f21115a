//! Checkpoints: everything training needs to continue exactly where it stopped.
//!
//! A checkpoint is a model file ([`crate::io::model`]) with more in it: the optimiser's moments as
//! tensors named `optimizer.first.{l}.weight`, `optimizer.first.{l}.bias` (velocity or Adam's
//! first moment of layer `l`) and `optimizer.second.{l}.…` (Adam's second moment), shaped like
//! the layer's parameters; and a metadata entry `"lernmi.training"` holding, as JSON, the
//! epochs completed, the optimiser's step count and the whole [`TrainConfig`].
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
use crate::io::model::read_network;
pub use crate::io::model::OPTIMIZER_PREFIX;
use crate::io::safetensors::{
    read_file, serialize, write_atomically, OwnedTensor, TensorFile, DEFAULT_MAX_FILE_BYTES,
};
use crate::train::optimizer::OptimizerState;
use crate::train::schedule::Schedule;
use crate::{Error, Float, Network, Optimizer, Result, RunOptions, TrainConfig, Trainer};

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
            dropout: self.dropout,
            augment: self.augment,
        };
        (config, options)
    }
}

fn moment_name(which: usize, layer: usize, part: &str) -> String {
    format!("{OPTIMIZER_PREFIX}{}.{layer}.{part}", MOMENTS[which])
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
        let training = TrainingSpec {
            epoch: self.epoch(),
            optimizer_steps: self.optimizer_state().steps(),
            config: ConfigSpec::of(self.config(), self.options()),
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
        let network = read_network::<F>(&file, &[OPTIMIZER_PREFIX])?;
        config
            .check_network(&network)
            .map_err(|e| bad(format!("training configuration: {e}")))?;
        let state = Self::read_state(&file, &network, config.optimizer, training.optimizer_steps)
            .map_err(|e| match e {
            e @ Error::BadFile { .. } => e,
            other => bad(other.to_string()),
        })?;
        Ok(Checkpoint {
            network,
            config,
            options,
            epoch: training.epoch,
            state,
        })
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
        let state = OptimizerState::restored(
            self.config.optimizer,
            &self.network,
            |which, l| Ok(self.state.moments()[which][l].clone()),
            self.state.steps(),
        )?;
        Trainer::restored(self.network, self.config, self.options, state, self.epoch)
    }
}
