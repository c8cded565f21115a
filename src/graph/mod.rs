//! Lernmi's object graph: every [`Neuron`] and every [`Link`] is an object with its own state,
//! and Links drive the forward and backward passes one weight at a time.
//!
//! This is the seed program's design, kept deliberately unvectorised: it is the baseline the
//! dense engine is benchmarked against and the oracle its tests compare with. By default it
//! reproduces the seed exactly, quirks included (see `shared/reference/lernmi-seed.md`):
//!
//! * every neuron of the input layer applies the sigmoid to its input too
//!   ([`GraphOptions::input_sigmoid`]);
//! * each layer has a bias neuron, placed **first**, whose output is always 1.0;
//! * each link layer draws its initial weights from its own Mersenne Twister seeded with 1,
//!   in Link order ([`GraphInit::Lernmi`]);
//! * the output sensitivity of output neuron k is `a_k − t_k` (squared error), training is
//!   per-sample SGD at rate 0.1, everything in `f64`.
//!
//! In the vocabulary of [`crate::notation`]: a Link i → j holds `W[j, i]`; its
//! *output sensitivity* `S_j·σ′(a_j)` is one element of Δ; the *sensitivity* a Neuron collects,
//! `S_i = Σ_j w_ij·δ_j`, is one element of Δ·W; its update `w ← w − η·a_i·δ_j` is one element of
//! `η·Δᵀ·A`.
//!
//! ```
//! use lernmi::graph::Network;
//! let mut xor = Network::new(&[2, 3, 1])?;
//! xor.learn(&[1.0, 0.0], &[1.0])?;
//! let output = xor.run(&[1.0, 0.0])?;
//! assert_eq!(output.len(), 1);
//! # Ok::<(), lernmi::Error>(())
//! ```

mod link;
mod network;
mod neuron;

pub use link::{Link, LinkLayer};
pub use network::{GraphInit, GraphOptions, Network};
pub use neuron::{Neuron, NeuronId, NeuronKind, NeuronLayer};
