//! Checkpoints: everything training needs to continue exactly where it stopped.
//!
//! A checkpoint is a model file ([`crate::model`]) with more in it: the optimiser's moments as
//! tensors named `optimizer.first.{l}.weight`, `optimizer.first.{l}.bias` (velocity or Adam's
//! first moment of layer `l`) and `optimizer.second.{l}.…` (Adam's second moment), shaped like
//! the layer's parameters; and a metadata entry `"lernmi.training"` holding, as JSON, the
//! epochs completed, the optimiser's step count and the whole [`TrainConfig`].
//!
//! That is the complete training state. The random state needs no saving: each epoch's shuffle
//! is drawn from stream `epoch` of a ChaCha8 generator seeded with `config.seed`, so it follows
//! from the seed and the epoch. Resuming a checkpoint and training to the end therefore gives
//! the same bits as never stopping (`tests/checkpoint.rs` checks this).
//!
//! Since the network's tensors keep their model-file names, [`Network::load`] reads a
//! checkpoint as a model.
//!
//! ```
//! use lernmi::{checkpoint::Checkpoint, Network, TrainConfig, Trainer};
//! use ndarray::array;
//!
//! let x = array![[0.0f32, 1.0], [1.0, 0.0], [1.0, 1.0], [0.0, 0.0]];
//! let y = array![[0.0f32, 1.0], [0.0, 1.0], [1.0, 0.0], [1.0, 0.0]];
//! let mut net: Network = Network::<f32>::builder(&[2, 4, 2]).seed(3).build()?;
//! let config = TrainConfig { epochs: 2, batch_size: 2, ..TrainConfig::default() };
//! let mut trainer = Trainer::new(&net, config)?;
//! trainer.train_epoch(&mut net, x.view(), y.view(), &mut ())?;
//! let path = std::env::temp_dir().join(format!("lernmi-ckpt-doc-{}.safetensors", std::process::id()));
//! trainer.save_checkpoint(&net, &path)?;
//!
//! let (mut resumed, mut resumed_trainer) = Checkpoint::<f32>::load(&path)?.resume()?;
//! assert_eq!(resumed_trainer.epoch(), 1);
//! resumed_trainer.fit(&mut resumed, x.view(), y.view(), &mut ())?;
//! trainer.fit(&mut net, x.view(), y.view(), &mut ())?;
//! assert_eq!(resumed, net);
//! # std::fs::remove_file(&path).ok();
//! # Ok::<(), lernmi::Error>(())
//! ```

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::model::{
    read_file, serialize, write_atomically, OwnedTensor, TensorFile, DEFAULT_MAX_FILE_BYTES,
};
use crate::optimizer::{OptimizerState, Schedule};
use crate::{Error, Float, Network, Optimizer, Result, TrainConfig, Trainer};

/// The metadata key holding the training state as JSON.
pub const TRAINING_KEY: &str = "lernmi.training";
/// The prefix of the optimiser's tensors.
pub const OPTIMIZER_PREFIX: &str = "optimizer.";

const MOMENTS: [&str; 2] = ["first", "second"];

/// A saved training run: the network, the configuration, the epochs completed and the
/// optimiser's state.
#[derive(Clone, Debug, PartialEq)]
pub struct Checkpoint<F: Float = f32> {
    /// The network after `epoch` epochs.
    pub network: Network<F>,
    /// The configuration training used. Changing `epochs` or `threads` before
    /// [`Checkpoint::resume`] keeps the results exact; changing anything else changes them.
    pub config: TrainConfig,
    /// Epochs completed.
    pub epoch: usize,
    state: OptimizerState<F>,
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "name", rename_all = "snake_case", deny_unknown_fields)]
enum OptimizerSpec {
    Sgd {
        learning_rate: f64,
    },
    Momentum {
        learning_rate: f64,
        momentum: f64,
        nesterov: bool,
    },
    Adam {
        learning_rate: f64,
        beta1: f64,
        beta2: f64,
        epsilon: f64,
    },
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "name", rename_all = "snake_case", deny_unknown_fields)]
enum ScheduleSpec {
    Constant,
    Step { every: usize, factor: f64 },
    Cosine { epochs: usize, floor: f64 },
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigSpec {
    epochs: usize,
    batch_size: usize,
    optimizer: OptimizerSpec,
    schedule: ScheduleSpec,
    weight_decay: f64,
    seed: u64,
    shuffle: bool,
    threads: Option<usize>,
    shard_size: usize,
    adaptive_threads: bool,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct TrainingSpec {
    epoch: usize,
    optimizer_steps: u64,
    config: ConfigSpec,
}

impl ConfigSpec {
    fn of(c: &TrainConfig) -> Self {
        ConfigSpec {
            epochs: c.epochs,
            batch_size: c.batch_size,
            optimizer: match c.optimizer {
                Optimizer::Sgd { learning_rate } => OptimizerSpec::Sgd { learning_rate },
                Optimizer::Momentum {
                    learning_rate,
                    momentum,
                    nesterov,
                } => OptimizerSpec::Momentum {
                    learning_rate,
                    momentum,
                    nesterov,
                },
                Optimizer::Adam {
                    learning_rate,
                    beta1,
                    beta2,
                    epsilon,
                } => OptimizerSpec::Adam {
                    learning_rate,
                    beta1,
                    beta2,
                    epsilon,
                },
            },
            schedule: match c.schedule {
                Schedule::Constant => ScheduleSpec::Constant,
                Schedule::Step { every, factor } => ScheduleSpec::Step { every, factor },
                Schedule::Cosine { epochs, floor } => ScheduleSpec::Cosine { epochs, floor },
            },
            weight_decay: c.weight_decay,
            seed: c.seed,
            shuffle: c.shuffle,
            threads: c.threads,
            shard_size: c.shard_size,
            adaptive_threads: c.adaptive_threads,
        }
    }

    fn config(self) -> TrainConfig {
        TrainConfig {
            epochs: self.epochs,
            batch_size: self.batch_size,
            optimizer: match self.optimizer {
                OptimizerSpec::Sgd { learning_rate } => Optimizer::Sgd { learning_rate },
                OptimizerSpec::Momentum {
                    learning_rate,
                    momentum,
                    nesterov,
                } => Optimizer::Momentum {
                    learning_rate,
                    momentum,
                    nesterov,
                },
                OptimizerSpec::Adam {
                    learning_rate,
                    beta1,
                    beta2,
                    epsilon,
                } => Optimizer::Adam {
                    learning_rate,
                    beta1,
                    beta2,
                    epsilon,
                },
            },
            schedule: match self.schedule {
                ScheduleSpec::Constant => Schedule::Constant,
                ScheduleSpec::Step { every, factor } => Schedule::Step { every, factor },
                ScheduleSpec::Cosine { epochs, floor } => Schedule::Cosine { epochs, floor },
            },
            weight_decay: self.weight_decay,
            seed: self.seed,
            shuffle: self.shuffle,
            threads: self.threads,
            shard_size: self.shard_size,
            adaptive_threads: self.adaptive_threads,
        }
    }
}

fn moment_name(which: usize, layer: usize, part: &str) -> String {
    format!("{OPTIMIZER_PREFIX}{}.{layer}.{part}", MOMENTS[which])
}

impl<F: Float> Trainer<F> {
    /// The training state after the epochs completed so far, as safetensors bytes.
    ///
    /// # Errors
    /// [`Error::Shape`] if `network` is not the one this trainer trains.
    pub fn checkpoint_bytes(&self, network: &Network<F>) -> Result<Vec<u8>> {
        self.check_network(network)?;
        let path = Path::new("<checkpoint>");
        let (mut tensors, mut metadata) = crate::model::network_tensors(network);
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
            config: ConfigSpec::of(self.config()),
        };
        metadata.insert(
            TRAINING_KEY.to_string(),
            serde_json::to_string(&training).expect("the training state serialises to JSON"),
        );
        serialize(&tensors, metadata, path)
    }

    /// Saves the training state to `path`, atomically (see [`crate::model::write_atomically`]).
    /// Call it between epochs: the state is that after [`Trainer::epoch`] epochs.
    ///
    /// # Errors
    /// [`Error::Io`] naming the file if it cannot be written (the previous file is then
    /// intact); [`Error::Shape`] if `network` is not the one this trainer trains.
    pub fn save_checkpoint(&self, network: &Network<F>, path: impl AsRef<Path>) -> Result<()> {
        let bytes = self.checkpoint_bytes(network)?;
        write_atomically(path, |w| std::io::Write::write_all(w, &bytes))
    }
}

impl<F: Float> Checkpoint<F> {
    /// Reads a checkpoint written by [`Trainer::save_checkpoint`] (at most
    /// [`DEFAULT_MAX_FILE_BYTES`] long).
    ///
    /// # Errors
    /// [`Error::Io`] if the file cannot be read; [`Error::BadFile`] naming the file for
    /// anything [`Network::load`] rejects, missing or malformed training metadata, invalid
    /// hyperparameters, or missing, extra or misshapen optimiser tensors.
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
        let network = file.network::<F>(&[OPTIMIZER_PREFIX])?;
        let training: TrainingSpec = file.json(TRAINING_KEY)?;
        let config = training.config.config();
        let bad = |problem: String| Error::BadFile {
            path: path.to_path_buf(),
            problem,
        };
        config
            .validate()
            .map_err(|e| bad(format!("training configuration: {e}")))?;
        let moments = match config.optimizer {
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
            .collect::<Vec<_>>();
        if held.len() != expected {
            return Err(bad(format!(
                "{} optimiser tensors, but {} with {layers} layers keeps {expected}",
                held.len(),
                config.optimizer.name()
            )));
        }
        let state = OptimizerState::restored(
            config.optimizer,
            &network,
            |which, l| {
                let layer = &network.layers()[l];
                Ok((
                    file.matrix::<F>(
                        &moment_name(which, l, "weight"),
                        layer.n_out(),
                        layer.n_in(),
                    )?,
                    file.vector::<F>(&moment_name(which, l, "bias"), layer.n_out())?,
                ))
            },
            training.optimizer_steps,
        )
        .map_err(|e| match e {
            e @ Error::BadFile { .. } => e,
            other => bad(other.to_string()),
        })?;
        Ok(Checkpoint {
            network,
            config,
            epoch: training.epoch,
            state,
        })
    }

    /// The optimiser's saved state.
    pub fn optimizer_state(&self) -> &OptimizerState<F> {
        &self.state
    }

    /// The network and a trainer that continues after the saved epoch with [`Checkpoint::config`].
    ///
    /// # Errors
    /// As [`Trainer::new`]; [`Error::InvalidHyperparameter`] if `config.optimizer` was changed
    /// to another kind of optimiser than the one whose state was saved.
    pub fn resume(self) -> Result<(Network<F>, Trainer<F>)> {
        let saved = self.state.optimizer();
        if std::mem::discriminant(&saved) != std::mem::discriminant(&self.config.optimizer) {
            return Err(Error::InvalidHyperparameter {
                name: "optimizer",
                value: self.config.optimizer.learning_rate(),
                reason: "a checkpoint resumes with the kind of optimiser that wrote it",
            });
        }
        let state = OptimizerState::restored(
            self.config.optimizer,
            &self.network,
            |which, l| Ok(self.state.moments()[which][l].clone()),
            self.state.steps(),
        )?;
        let trainer = Trainer::restored(&self.network, self.config, state, self.epoch)?;
        Ok((self.network, trainer))
    }
}
