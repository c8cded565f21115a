//! Training: the [`Trainer`] (shuffled minibatches cut into fixed shards, trained in parallel
//! with results that do not depend on the thread count), the optimisers ([`optimizer`]), the
//! learning-rate schedules ([`schedule`]), the threads a step runs on, and the observers that
//! see each batch and epoch.

pub mod early_stopping;
pub mod optimizer;
pub mod schedule;
mod threads;
mod trainer;

pub use early_stopping::{EarlyStopping, Goal, Metric, StopRule, Verdict};
pub use optimizer::{Optimizer, OptimizerState};
pub use schedule::Schedule;
pub use trainer::*;
