//! Learning-rate schedules: the rate of each epoch as a multiple of the optimiser's base rate.

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// How the learning rate changes from epoch to epoch.
///
/// In a checkpoint a JSON object tagged by its name: `{"name":"step","every":10,"factor":0.5}`.
#[derive(Clone, Copy, Debug, PartialEq, Default, Serialize, Deserialize)]
#[serde(from = "ScheduleInFile")]
#[serde(tag = "name", rename_all = "snake_case", deny_unknown_fields)]
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
    /// Cosine annealing from η down to η·`floor` over the run's epochs E
    /// ([`crate::TrainConfig::epochs`]): η_e = η·(floor + (1 − floor)·(1 + cos(π·e/E))/2).
    /// Epochs past E (training on with [`crate::Trainer::train_epoch`]) stay at the floor.
    Cosine {
        /// Final learning rate as a fraction of η, in [0, 1].
        floor: f64,
    },
}

/// A schedule as files hold it: checkpoints written before the cosine schedule took its length
/// from the run carry `epochs` in it, which is accepted and ignored (the run's epochs rule).
#[derive(Deserialize)]
#[serde(tag = "name", rename_all = "snake_case", deny_unknown_fields)]
enum ScheduleInFile {
    Constant,
    Step {
        every: usize,
        factor: f64,
    },
    Cosine {
        floor: f64,
        #[serde(default, rename = "epochs")]
        _epochs: Option<usize>,
    },
}

impl From<ScheduleInFile> for Schedule {
    fn from(schedule: ScheduleInFile) -> Self {
        match schedule {
            ScheduleInFile::Constant => Schedule::Constant,
            ScheduleInFile::Step { every, factor } => Schedule::Step { every, factor },
            ScheduleInFile::Cosine { floor, .. } => Schedule::Cosine { floor },
        }
    }
}

impl Schedule {
    /// The learning rate for `epoch` (0-based) of a run of `epochs` epochs, given the base
    /// rate.
    pub fn learning_rate(&self, base: f64, epoch: usize, epochs: usize) -> f64 {
        match *self {
            Schedule::Constant => base,
            Schedule::Step { every, factor } => {
                base * factor.powi((epoch / every.max(1)).min(i32::MAX as usize) as i32)
            }
            Schedule::Cosine { floor } => {
                let t = (epoch as f64 / epochs.max(1) as f64).min(1.0);
                base * (floor + (1.0 - floor) * 0.5 * (1.0 + (std::f64::consts::PI * t).cos()))
            }
        }
    }

    /// Checks the schedule's parameters.
    ///
    /// # Errors
    /// [`Error::InvalidHyperparameter`] for `every` of 0, a factor outside (0, 1],
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
            Schedule::Cosine { floor } => {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_step_schedule_multiplies_by_its_factor_every_few_epochs() {
        let schedule = Schedule::Step {
            every: 2,
            factor: 0.5,
        };
        let rates: Vec<f64> = (0..5).map(|e| schedule.learning_rate(0.1, e, 5)).collect();
        assert_eq!(rates, [0.1, 0.1, 0.05, 0.05, 0.025]);
    }

    #[test]
    fn a_cosine_schedule_falls_from_the_base_to_the_floor() {
        let schedule = Schedule::Cosine { floor: 0.1 };
        // 0.1 + 0.9·(1 + cos(π·e/4))/2: 1, 0.1 + 0.45·(1 + √2/2), 0.55, 0.1 + 0.45·(1 − √2/2),
        // then the floor.
        let half = std::f64::consts::FRAC_1_SQRT_2;
        let expected = [
            1.0,
            0.1 + 0.45 * (1.0 + half),
            0.55,
            0.1 + 0.45 * (1.0 - half),
            0.1,
            0.1,
        ];
        for (e, want) in expected.into_iter().enumerate() {
            let got = schedule.learning_rate(1.0, e, 4);
            assert!((got - want).abs() < 1e-12, "epoch {e}: {got} != {want}");
        }
    }

    #[test]
    fn a_constant_schedule_keeps_the_base_rate() {
        assert_eq!(Schedule::Constant.learning_rate(0.3, 1000, 1), 0.3);
    }
}
