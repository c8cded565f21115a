//! Early stopping: the bookkeeping of "stop when a metric has not improved for a while".

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
/// epochs in a row that do not beat the best by more than `min_delta`. A NaN never improves.
#[derive(Clone, Debug, PartialEq)]
pub struct EarlyStopping {
    patience: usize,
    min_delta: f64,
    goal: Goal,
    best: Option<(usize, f64)>,
    waited: usize,
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
        }
    }

    /// Records the metric of `epoch` and says what to do.
    pub fn update(&mut self, epoch: usize, metric: f64) -> Verdict {
        let improved = match (self.best, self.goal) {
            _ if metric.is_nan() => false,
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
}
