//! Learning-rate schedules: the rate of each epoch as a multiple of the optimiser's base rate.

use crate::{Error, Result};

/// How the learning rate changes from epoch to epoch.
#[derive(Clone, Copy, Debug, PartialEq, Default)]
#[non_exhaustive]
pub enum Schedule {
    /// η every epoch.
    #[default]
    Constant,
    /// η·factor^⌊epoch / every⌋: multiplied by `factor` every `every` epochs.
    Step {
        /// Epochs between reductions (≥ 1).
        every: usize,
        /// Multiplier in (0, 1].
        factor: f64,
    },
    /// Cosine annealing from η down to η·`floor` over `epochs` epochs:
    /// η_e = η·(floor + (1 − floor)·(1 + cos(π·e/epochs))/2).
    Cosine {
        /// Length of the schedule in epochs (≥ 1); later epochs stay at the floor.
        epochs: usize,
        /// Final learning rate as a fraction of η, in [0, 1].
        floor: f64,
    },
}

impl Schedule {
    /// The learning rate for `epoch` (0-based) given the base rate.
    pub fn learning_rate(&self, base: f64, epoch: usize) -> f64 {
        match *self {
            Schedule::Constant => base,
            Schedule::Step { every, factor } => {
                base * factor.powi((epoch / every.max(1)).min(i32::MAX as usize) as i32)
            }
            Schedule::Cosine { epochs, floor } => {
                let t = (epoch as f64 / epochs.max(1) as f64).min(1.0);
                base * (floor + (1.0 - floor) * 0.5 * (1.0 + (std::f64::consts::PI * t).cos()))
            }
        }
    }

    /// Checks the schedule's parameters.
    ///
    /// # Errors
    /// [`Error::InvalidHyperparameter`] for `every` or `epochs` of 0, a factor outside (0, 1],
    /// or a floor outside [0, 1].
    pub fn validate(&self) -> Result<()> {
        match *self {
            Schedule::Constant => Ok(()),
            Schedule::Step { every, factor } => {
                if every == 0 {
                    return Err(Error::InvalidHyperparameter {
                        name: "schedule step every",
                        value: 0.0,
                        reason: "must be at least 1 epoch",
                    });
                }
                if !(factor > 0.0 && factor <= 1.0) {
                    return Err(Error::InvalidHyperparameter {
                        name: "schedule step factor",
                        value: factor,
                        reason: "must be in (0, 1]",
                    });
                }
                Ok(())
            }
            Schedule::Cosine { epochs, floor } => {
                if epochs == 0 {
                    return Err(Error::InvalidHyperparameter {
                        name: "cosine schedule epochs",
                        value: 0.0,
                        reason: "must be at least 1",
                    });
                }
                if !(0.0..=1.0).contains(&floor) {
                    return Err(Error::InvalidHyperparameter {
                        name: "cosine schedule floor",
                        value: floor,
                        reason: "must be in [0, 1]",
                    });
                }
                Ok(())
            }
        }
    }
}
