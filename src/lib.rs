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
//! let mut net: Network<f64> = Network::<f64>::builder(&[2, 3, 1])
//!     .hidden(Activation::Sigmoid)
//!     .output(Activation::Sigmoid)
//!     .loss(Loss::SquaredError)
//!     .seed(1)
//!     .build()?;
//! let config = TrainConfig { epochs: 4000, batch_size: 4, optimizer: Optimizer::sgd(2.0), ..TrainConfig::default() };
//! Trainer::new(&net, config)?.fit(&mut net, inputs.view(), targets.view(), &mut ())?;
//! let eval = net.evaluate(inputs.view(), targets.view())?;
//! assert!(eval.loss < 0.01);
//! # Ok::<(), lernmi::Error>(())
//! ```
//!
//! ## Crate layout
//!
//! The module tree is the architecture: [`notation`] holds the maths, once; [`activation`] and
//! [`loss`] the functions σ and L; [`layer`] a [`Dense`] layer, forward next to backward;
//! [`network`] the [`Network`], its buffers and [`Gradients`]; [`gemm`] the
//! blocked matrix product (AVX-512/AVX2 micro-kernels chosen at run time) and a private
//! `kernel` module the one-sample kernels that sum in the seed's order; [`init`] the
//! seeded initialisations; [`optimizer`] SGD, momentum and Adam with schedules; [`train`] the
//! [`Trainer`] that shards minibatches over rayon; [`data`] IDX files and datasets; [`graph`]
//! Lernmi's object graph; [`error`] the one [`Error`] type.

#![warn(missing_docs)]

pub mod activation;
pub mod checkpoint;
pub mod data;
pub mod error;
pub mod float;
pub mod gemm;
pub mod graph;
pub mod init;
mod kernel;
pub mod layer;
pub mod loss;
pub mod model;
pub mod network;
pub mod notation;
pub mod optimizer;
pub mod train;

/// The README's code blocks, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

pub use activation::Activation;
pub use error::{Error, Result};
pub use float::Float;
pub use init::Init;
pub use layer::{Dense, LayerGradients};
pub use loss::Loss;
pub use network::{one_hot, Evaluation, Gradients, Network, NetworkBuilder};
pub use optimizer::{Optimizer, OptimizerState, Schedule};
pub use train::{on_epoch, BatchProgress, EpochReport, Observer, TrainConfig, Trainer};
