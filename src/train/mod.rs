//! Training: the [`Trainer`] (shuffled minibatches cut into fixed shards, trained in parallel
//! with results that do not depend on the thread count), the optimisers ([`optimizer`]), the
//! learning-rate schedules ([`schedule`]), the threads a step runs on, and the observers that
//! see each batch and epoch.

pub mod early_stopping;
#[cfg(feature = "mpi")]
mod mpi_transport;
pub mod optimizer;
pub mod reduce;
pub mod schedule;
mod threads;
mod trainer;

pub use early_stopping::{EarlyStopping, Goal, Metric, StopRule, Verdict};
#[cfg(feature = "mpi")]
pub use mpi_transport::MpiTransport;
pub use optimizer::{Optimizer, OptimizerState};
pub use reduce::Transport;
pub use schedule::Schedule;
pub use trainer::*;
