//! What the training examples print while they train: a progress bar fed by the trainer's
//! batch reports, and one line of figures per epoch.

use std::ops::ControlFlow;

use indicatif::ProgressBar;
use lernmi::{BatchProgress, EpochReport, Evaluation, Observer};

/// Draws a progress bar from the trainer's batch reports; hidden in JSON mode or off a terminal.
pub struct Progress {
    bar: ProgressBar,
    running_loss: f64,
    batch_size: usize,
    /// Epochs in the run, for "epoch e/E".
    epochs: usize,
}

impl Progress {
    /// A progress bar for a run of `epochs` epochs of minibatches of `batch_size`; hidden when
    /// `quiet` or when stdout is not a terminal.
    pub fn new(quiet: bool, batch_size: usize, epochs: usize) -> Self {
        let bar = super::bar(
            quiet || !std::io::IsTerminal::is_terminal(&std::io::stdout()),
            "{msg} [{bar:16}] {eta} left",
        );
        Progress {
            bar,
            running_loss: 0.0,
            batch_size,
            epochs,
        }
    }
}

impl Observer for Progress {
    fn batch_end(&mut self, p: &BatchProgress) {
        if p.batch == 0 {
            self.bar.reset();
            self.bar
                .set_length(p.batches as u64 * self.batch_size as u64);
            self.running_loss = p.loss;
        }
        self.running_loss = 0.98 * self.running_loss + 0.02 * p.loss;
        self.bar.set_position(p.samples as u64);
        if self.bar.is_hidden() {
            return;
        }
        let samples_per_s = p.samples as f64 / self.bar.elapsed().as_secs_f64().max(1e-9);
        self.bar.set_message(format!(
            "epoch {}/{} batch {}/{} loss {:.4} {samples_per_s:.0} samples/s",
            p.epoch + 1,
            self.epochs,
            p.batch + 1,
            p.batches,
            self.running_loss
        ));
    }
    fn epoch_end(&mut self, _report: &EpochReport) -> ControlFlow<()> {
        self.bar.finish_and_clear();
        ControlFlow::Continue(())
    }
}

/// One epoch's figures: the running training loss, then the loss and accuracy on a held-out
/// set named `set` ("test", "validation"), if any, then the time and speed.
pub fn epoch_line(report: &EpochReport, held_out: Option<(&str, &Evaluation)>) -> String {
    let held_out = held_out.map_or(String::new(), |(set, e)| {
        format!(
            "  {set} loss {:.4}  {set} {} / {} = {:.2}%",
            e.loss,
            e.correct,
            e.total,
            100.0 * e.accuracy()
        )
    });
    format!(
        "epoch {:>2}: train loss {:.4}{held_out}  {:.2} s  {:.0} samples/s",
        report.epoch + 1,
        report.train_loss,
        report.seconds,
        report.samples_per_second
    )
}
