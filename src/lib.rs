//! # lernmi
//!
//! Fast small dense neural networks, and the object graph that explains them.
//!
//! The engine ([`Network`]) stores each layer as a weight matrix and a bias vector, runs batches
//! through matrix products, computes sensitivities with transposed products, and trains
//! minibatches in parallel with rayon — deterministically: the same seed gives bit-identical
//! weights for any thread count. The [`graph`] module keeps Lernmi's original design (a Ruby
//! network written to teach backpropagation), one object per Neuron and per Link; it is the
//! baseline for benchmarks and the oracle for tests.
//!
//! ```
//! use lernmi::{Activation, Loss, Network, Optimizer, TrainConfig, Trainer};
//! use ndarray::array;
//!
//! // XOR, the seed's first demo: [2, 3, 1] sigmoid network, squared error.
//! let inputs = array![[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]];
//! let targets = array![[0.0], [1.0], [1.0], [0.0]];
//! let net = Network::<f64>::builder(&[2, 3, 1])
//!     .hidden(Activation::Sigmoid)
//!     .output(Activation::Sigmoid)
//!     .loss(Loss::SquaredError)
//!     .seed(1)
//!     .build()?;
//! let config = TrainConfig { epochs: 4000, batch_size: 4, optimizer: Optimizer::sgd(2.0), ..TrainConfig::default() };
//! let mut trainer = Trainer::new(net, config)?;
//! trainer.fit(inputs.view(), targets.view(), &mut ())?;
//! let eval = trainer.network().evaluate(inputs.view(), targets.view())?;
//! assert!(eval.loss < 0.01);
//! # Ok::<(), lernmi::Error>(())
//! ```
//!
//! ## Crate layout
//!
//! The module tree is the architecture; imports run one way, `io → train → nn → fast`, with
//! `graph → nn`, `train → data` (augmentation) and `data` on its own.
//!
//! | module | what it holds |
//! |---|---|
//! | [`notation`] | the maths, once: equations (F), (B1)–(B4), (U) and the seed's words for them |
//! | [`nn`] | σ ([`Activation`]), L ([`Loss`]), [`Init`], the [`Dense`] layer (forward beside backward), the [`Network`] |
//! | [`train`] | the [`Trainer`] (minibatches, shards over rayon, observers), [`Optimizer`]s and [`Schedule`]s |
//! | [`fast`] | the fast paths of `nn`'s equations: the blocked matrix product and the one-row kernels |
//! | [`io`] | model files ([`Model`]: a network with its standardizer), checkpoints and ONNX export: atomic writes, bounded reads |
//! | [`data`] | IDX files, datasets, finding and downloading MNIST, Fashion-MNIST and KMNIST, generated digits |
//! | [`graph`] | Lernmi's object graph, one object per Neuron and Link: the reference and test oracle |
//! | [`error`], [`float`] | the one [`Error`] type; the [`Float`] trait (`f32`, `f64`) |
//! | `keyed` (private) | random draws keyed by (seed, epoch, sample): dropout masks, augmentations |

#![warn(missing_docs)]

pub mod data;
pub mod error;
pub mod fast;
pub mod float;
pub mod graph;
pub mod io;
mod keyed;
pub mod nn;
pub mod notation;
pub mod train;

/// The README's code blocks, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

pub use error::{Error, Result};
pub use float::Float;
pub use io::checkpoint::Checkpoint;
pub use io::model::Model;
pub use nn::{
    one_hot, Activation, Dense, Evaluation, Gradients, Init, LayerGradients, Loss, Network,
    NetworkBuilder, PredictScratch, Targets,
};
pub use train::{
    on_epoch, BatchProgress, EpochReport, Metric, Observer, Optimizer, OptimizerState, RunOptions,
    Schedule, StopRule, TrainConfig, Trainer,
};
