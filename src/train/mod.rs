//! Training: the [`Trainer`] (shuffled minibatches cut into fixed shards, trained in parallel
//! with results that do not depend on the thread count), the optimisers and learning-rate
//! schedules ([`optimizer`]), and the observers that see each batch and epoch.

pub mod optimizer;
mod trainer;

pub use optimizer::{Optimizer, OptimizerState, Schedule};
pub use trainer::*;
