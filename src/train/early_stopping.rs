//! Early stopping: the bookkeeping of "stop when a metric has not improved for a while".
//!
//! [`StopRule`] is the setting ([`crate::TrainConfig::early_stopping`]); [`EarlyStopping`] is
//! the tracking [`crate::Trainer::fit`] does with it, which a checkpoint saves.

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// The metric a [`StopRule`] watches after each epoch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// The mean loss on the validation set, or on the training set when there is no validation
    /// set (the training loss of [`crate::EpochReport::train_loss`]). Lower is better.
    Loss,
    /// The accuracy on the validation set; needs one with class labels (or rows for a softmax
    /// output). Higher is better.
    Accuracy,
}

impl Metric {
    /// Which way the metric improves.
    pub fn goal(self) -> Goal {
        match self {
            Metric::Loss => Goal::Minimize,
            Metric::Accuracy => Goal::Maximize,
        }
    }
}

/// When [`crate::Trainer::fit`] stops early: after `patience` epochs in a row in which `metric`
/// does not beat its best by more than `min_delta`. Training then goes back to the weights of
/// the best epoch, as it does at the end of the configured epochs.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StopRule {
    /// The metric watched.
    pub metric: Metric,
    /// Epochs without an improvement before stopping, at least 1.
    pub patience: usize,
    /// How much better than the best a metric must be to count as an improvement, ≥ 0.
    pub min_delta: f64,
}

impl StopRule {
    /// Stops after `patience` epochs without a lower loss ([`Metric::Loss`], `min_delta` 0).
    pub fn patience(patience: usize) -> Self {
        StopRule {
            metric: Metric::Loss,
            patience,
            min_delta: 0.0,
        }
    }

    /// Checks the rule.
    ///
    /// # Errors
    /// [`Error::InvalidHyperparameter`] for a patience of 0 or a negative or non-finite
    /// `min_delta`.
    pub fn validate(&self) -> Result<()> {
        if self.patience == 0 {
            return Err(Error::InvalidHyperparameter {
                name: "early_stopping.patience",
                value: 0.0,
                reason: "must be at least 1",
            });
        }
        if !(self.min_delta.is_finite() && self.min_delta >= 0.0) {
            return Err(Error::InvalidHyperparameter {
                name: "early_stopping.min_delta",
                value: self.min_delta,
                reason: "must be finite and non-negative",
            });
        }
        Ok(())
    }
}

/// Which way a metric improves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Goal {
    /// Lower is better (a loss).
    Minimize,
    /// Higher is better (an accuracy).
    Maximize,
}

/// What [`EarlyStopping::update`] concluded from an epoch's metric.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// A new best: keep these weights.
    Improved,
    /// No improvement yet, patience left.
    Waiting,
    /// `patience` epochs in a row without improvement: stop, and go back to the best.
    Stop,
}

/// Tracks the best value of a metric over epochs and says when to stop: after `patience`
/// epochs in a row that do not beat the best by more than `min_delta`. A NaN or infinite
/// metric never improves (so the best is always finite).
#[derive(Clone, Debug, PartialEq)]
pub struct EarlyStopping {
    patience: usize,
    min_delta: f64,
    goal: Goal,
    best: Option<(usize, f64)>,
    waited: usize,
    stopped: bool,
}

impl EarlyStopping {
    /// Stops after `patience` epochs without an improvement of more than `min_delta`.
    pub fn new(patience: usize, min_delta: f64, goal: Goal) -> Self {
        EarlyStopping {
            patience,
            min_delta,
            goal,
            best: None,
            waited: 0,
            stopped: false,
        }
    }

    /// The tracking of `rule` before the first epoch.
    pub fn of(rule: &StopRule) -> Self {
        Self::new(rule.patience, rule.min_delta, rule.metric.goal())
    }

    /// The tracking of `rule` as a checkpoint saved it.
    pub(crate) fn restored(
        rule: &StopRule,
        best: Option<(usize, f64)>,
        waited: usize,
        stopped: bool,
    ) -> Self {
        EarlyStopping {
            best,
            waited,
            stopped,
            ..Self::of(rule)
        }
    }

    /// Records the metric of `epoch` and says what to do.
    pub fn update(&mut self, epoch: usize, metric: f64) -> Verdict {
        let improved = match (self.best, self.goal) {
            _ if !metric.is_finite() => false,
            (None, _) => true,
            (Some((_, best)), Goal::Minimize) => metric < best - self.min_delta,
            (Some((_, best)), Goal::Maximize) => metric > best + self.min_delta,
        };
        if improved {
            self.best = Some((epoch, metric));
            self.waited = 0;
            return Verdict::Improved;
        }
        self.waited += 1;
        if self.waited >= self.patience {
            self.stopped = true;
            Verdict::Stop
        } else {
            Verdict::Waiting
        }
    }

    /// The best epoch and its metric so far.
    pub fn best(&self) -> Option<(usize, f64)> {
        self.best
    }

    /// Epochs since the best.
    pub fn waited(&self) -> usize {
        self.waited
    }

    /// Whether training has stopped: [`EarlyStopping::update`] said [`Verdict::Stop`], or
    /// [`crate::Trainer::fit`] ran to the end of the configured epochs. Either way the network
    /// then holds the best epoch's weights.
    pub fn stopped(&self) -> bool {
        self.stopped
    }

    /// Marks training as stopped at the end of its epochs.
    pub(crate) fn finish(&mut self) {
        self.stopped = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `metrics` until a stop; returns the verdicts.
    fn run(mut stopping: EarlyStopping, metrics: &[f64]) -> (Vec<Verdict>, EarlyStopping) {
        let mut verdicts = Vec::new();
        for (epoch, &m) in metrics.iter().enumerate() {
            let verdict = stopping.update(epoch, m);
            verdicts.push(verdict);
            if verdict == Verdict::Stop {
                break;
            }
        }
        (verdicts, stopping)
    }

    #[test]
    fn stops_after_patience_epochs_without_an_improvement_beyond_min_delta() {
        use Verdict::*;
        // Best 1.0, then 0.8 (< 1.0 − 0.05); 0.79 is not below 0.75, 0.85 neither: stop at 3.
        let losses = [1.0, 0.8, 0.79, 0.85, 0.5];
        let (verdicts, stopping) = run(EarlyStopping::new(2, 0.05, Goal::Minimize), &losses);
        assert_eq!(verdicts, [Improved, Improved, Waiting, Stop]);
        assert_eq!(stopping.best(), Some((1, 0.8)));
    }

    #[test]
    fn an_accuracy_improves_upwards_and_nan_never_improves() {
        use Verdict::*;
        let accuracies = [0.5, 0.6, f64::NAN, 0.7, 0.65, 0.69, 0.7];
        let (verdicts, stopping) = run(EarlyStopping::new(3, 0.0, Goal::Maximize), &accuracies);
        assert_eq!(
            verdicts,
            [Improved, Improved, Waiting, Improved, Waiting, Waiting, Stop]
        );
        assert_eq!(stopping.best(), Some((3, 0.7)));
    }

    #[test]
    fn an_infinite_metric_never_improves_and_a_stop_is_remembered() {
        use Verdict::*;
        let losses = [f64::INFINITY, 2.0, f64::NEG_INFINITY, 3.0];
        let (verdicts, stopping) = run(EarlyStopping::new(2, 0.0, Goal::Minimize), &losses);
        assert_eq!(verdicts, [Waiting, Improved, Waiting, Stop]);
        assert_eq!(stopping.best(), Some((1, 2.0)));
        assert!(stopping.stopped());
    }

    #[test]
    fn a_rule_needs_patience_and_a_finite_non_negative_min_delta() {
        assert!(StopRule::patience(1).validate().is_ok());
        assert!(StopRule::patience(0).validate().is_err());
        for min_delta in [-0.1, f64::NAN, f64::INFINITY] {
            let rule = StopRule {
                min_delta,
                ..StopRule::patience(3)
            };
            assert!(matches!(
                rule.validate(),
                Err(Error::InvalidHyperparameter {
                    name: "early_stopping.min_delta",
                    ..
                })
            ));
        }
    }
}
