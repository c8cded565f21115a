//! The crate's one error type.

use std::path::PathBuf;

/// Everything that can go wrong in `lernmi`, with the offending values in the message.
///
/// Anything a caller or a file can get wrong (layer sizes, input width, label range, batch
/// size 0, a hyperparameter out of range, a truncated IDX file) is reported through this type;
/// the crate does not panic on user input.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A network needs at least an input and an output layer.
    #[error("a network needs at least 2 layer sizes (input and output), got {got}")]
    TooFewLayers {
        /// How many sizes were given.
        got: usize,
    },
    /// A layer of width zero.
    #[error("layer {layer} has zero width (sizes {sizes:?})")]
    ZeroWidthLayer {
        /// Index into the list of sizes.
        layer: usize,
        /// All the sizes given.
        sizes: Vec<usize>,
    },
    /// Inputs whose row width does not match the network's input layer.
    #[error("input has {got} features but the network expects {expected}")]
    InputWidth {
        /// The network's input width.
        expected: usize,
        /// The width given.
        got: usize,
    },
    /// Targets whose row width does not match the network's output layer.
    #[error("targets have {got} columns but the network has {expected} outputs")]
    TargetWidth {
        /// The network's output width.
        expected: usize,
        /// The width given.
        got: usize,
    },
    /// Inputs and targets (or labels) with different numbers of rows.
    #[error("{inputs} input rows but {targets} target rows")]
    RowCountMismatch {
        /// Rows of inputs.
        inputs: usize,
        /// Rows of targets or labels.
        targets: usize,
    },
    /// An empty batch or dataset where at least one sample is needed.
    #[error("empty {what}: at least one sample is needed")]
    Empty {
        /// What was empty ("batch", "training set", ...).
        what: &'static str,
    },
    /// A class label that does not fit the number of classes.
    #[error("label {label} at index {index} is out of range for {classes} classes")]
    LabelOutOfRange {
        /// The label found.
        label: usize,
        /// Its position.
        index: usize,
        /// The number of classes.
        classes: usize,
    },
    /// A NaN or infinite value where finite numbers are required.
    #[error("{what} contains a non-finite value ({value}) at index {index}")]
    NonFinite {
        /// What held it ("inputs", "targets", "weights", ...).
        what: &'static str,
        /// Flat index of the first offending element.
        index: usize,
        /// The value found.
        value: f64,
    },
    /// A hyperparameter outside its valid range.
    #[error("invalid {name} = {value}: {reason}")]
    InvalidHyperparameter {
        /// The parameter's name.
        name: &'static str,
        /// The value given.
        value: f64,
        /// What the valid range is.
        reason: &'static str,
    },
    /// An activation used where it cannot be (softmax in a hidden layer, say).
    #[error("{activation} cannot be used {place}")]
    InvalidActivation {
        /// The activation's name.
        activation: &'static str,
        /// Where it was used and why not.
        place: &'static str,
    },
    /// A loss paired with an output activation it is undefined for.
    #[error("loss {loss} is undefined for output activation {activation}: {reason}")]
    LossActivationMismatch {
        /// The loss's name.
        loss: &'static str,
        /// The output activation's name.
        activation: &'static str,
        /// Why not.
        reason: &'static str,
    },
    /// An array whose shape does not match what it must hold.
    #[error("{what}: expected shape {expected:?}, got {got:?}")]
    Shape {
        /// What was being given.
        what: String,
        /// Expected shape.
        expected: Vec<usize>,
        /// Shape given.
        got: Vec<usize>,
    },
    /// Training diverged: the loss became NaN or infinite.
    #[error("training diverged at epoch {epoch}, batch {batch}: {cause} (batch loss {loss}); the weights before this batch are kept")]
    Diverged {
        /// Epoch (0-based).
        epoch: usize,
        /// Batch within the epoch (0-based).
        batch: usize,
        /// The batch's mean loss.
        loss: f64,
        /// What became non-finite.
        cause: &'static str,
    },
    /// A malformed data file.
    #[error("{path}: {problem}")]
    BadFile {
        /// The file.
        path: PathBuf,
        /// What was wrong with it.
        problem: String,
    },
    /// An I/O failure, with the file it concerned.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A thread pool could not be built.
    #[error("could not build a thread pool: {0}")]
    ThreadPool(String),
    /// A file that no mirror delivered intact; `tried` holds one error per mirror, in order.
    #[error("could not download {file}: {}", list_failures(.tried))]
    Download {
        /// The file's name.
        file: String,
        /// Why each mirror failed ([`Error::Fetch`] or [`Error::Checksum`]), in the order tried.
        tried: Vec<Error>,
    },
    /// A transfer that failed: an HTTP status, a network error or timeout, a body truncated,
    /// too large, or not a valid gzip stream.
    #[error("{url}: {problem}")]
    Fetch {
        /// The URL fetched.
        url: String,
        /// What went wrong.
        problem: String,
    },
    /// Downloaded contents whose SHA-256 digest (of the decompressed bytes) is not the expected one.
    #[error("{url}: SHA-256 of the decompressed contents is {actual}, expected {expected}")]
    Checksum {
        /// The URL the contents came from.
        url: String,
        /// The expected digest, in hex.
        expected: String,
        /// The digest found, in hex.
        actual: String,
    },
    /// A network that differs from the one a trainer was made for in something other than its
    /// layer sizes (those give [`Error::Shape`]).
    #[error("{what}: made for {expected}, given {got}")]
    NetworkMismatch {
        /// What differs.
        what: &'static str,
        /// What the trainer was made for.
        expected: String,
        /// What it was given.
        got: String,
    },
    /// A request for more memory than a documented limit allows, refused before allocating.
    #[error("{what} needs {needed} {unit}, more than the limit of {limit}: {hint}")]
    TooLarge {
        /// What would have been allocated.
        what: &'static str,
        /// How much it needs (saturated at `u128::MAX`).
        needed: u128,
        /// The limit.
        limit: u128,
        /// The unit of `needed` and `limit` ("parameters", "bytes").
        unit: &'static str,
        /// How to get under the limit.
        hint: &'static str,
    },
    /// A target row that softmax cross-entropy cannot learn from: its gradient A − Y holds
    /// only for targets that are probability distributions.
    #[error("target row {row} is not a probability distribution ({problem}); softmax cross-entropy needs non-negative targets that sum to 1")]
    TargetNotDistribution {
        /// The row's index.
        row: usize,
        /// What is wrong with it.
        problem: String,
    },
    /// An optimiser whose step counter is at its maximum and cannot count another step.
    #[error("the optimiser has taken {steps} steps, the most its counter holds")]
    StepCountOverflow {
        /// The step count.
        steps: u64,
    },
    /// A cell of a table file that cannot be used: empty, not a number, or not finite.
    #[error("{path}: line {line}, column {column} ({name:?}): {problem}")]
    BadCell {
        /// The file.
        path: PathBuf,
        /// The line the cell's record begins on, 1-based, the header being line 1.
        line: u64,
        /// The column, 1-based, as a spreadsheet counts.
        column: usize,
        /// The column's name in the header.
        name: String,
        /// What is wrong with the cell (its text is quoted in it).
        problem: String,
    },
    /// `LERNMI_KERNEL` names a kernel family that does not exist or that this CPU cannot run.
    #[error("LERNMI_KERNEL={requested:?}: {problem}; this CPU runs {available}")]
    KernelUnavailable {
        /// The value of the variable.
        requested: String,
        /// Unknown, or not supported by this CPU.
        problem: &'static str,
        /// The families this CPU runs, fastest first, as the variable spells them.
        available: String,
    },
    /// A dataset name that is not one of those known.
    #[error("unknown dataset {name:?}; choose one of: {}", .choices.join(", "))]
    UnknownDataset {
        /// The name given.
        name: String,
        /// The names known.
        choices: Vec<&'static str>,
    },
    /// Early stopping on a metric that training cannot compute (accuracy without a
    /// validation set that has classes).
    #[error("early stopping on {metric} needs {needs}")]
    MetricUnavailable {
        /// The metric's name.
        metric: &'static str,
        /// What computing it needs.
        needs: &'static str,
    },
    /// Data-parallel training could not exchange gradients with another process (it is gone,
    /// or it sent something other than this process expects, as when the processes were
    /// started with different networks or configurations).
    #[error("distributed training, rank {rank}: {problem}")]
    Distributed {
        /// This process's rank.
        rank: usize,
        /// What went wrong.
        problem: String,
    },
}

/// The reasons of [`Error::Download`], joined.
fn list_failures(tried: &[Error]) -> String {
    if tried.is_empty() {
        return "no mirror given".into();
    }
    tried
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// `Result` with the crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What made a training step refuse to update, with the batch's mean loss; the trainer turns
/// it into [`Error::Diverged`] with the epoch and batch.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Divergence {
    /// The loss is NaN or infinite.
    Loss(f64),
    /// A gradient is NaN or infinite.
    Gradient(f64),
    /// The update would make a weight infinite.
    Weight(f64),
}

impl Divergence {
    /// The error for this divergence at minibatch `batch` of epoch `epoch`.
    pub(crate) fn at(self, epoch: usize, batch: usize) -> Error {
        let (loss, cause) = match self {
            Divergence::Loss(loss) => (loss, "the loss is not finite"),
            Divergence::Gradient(loss) => (loss, "a gradient is not finite"),
            Divergence::Weight(loss) => (loss, "the update would make a weight infinite"),
        };
        Error::Diverged {
            epoch,
            batch,
            loss,
            cause,
        }
    }
}
