//! Trains a classifier on your own table: a CSV file with a header row, one label column and
//! numeric feature columns (see `lernmi::data::csv`).
//!
//! ```text
//! cargo run --release --example own_data -- --csv train.csv --label label [--test test.csv] \
//!     [--validation 0.1] [--hidden 128,64] [--epochs N] [--patience P] \
//!     [--save model.safetensors] [--save-onnx model.onnx] [--json]
//! cargo run --release --example own_data -- --load model.safetensors --label label --test test.csv
//! ```
//!
//! The features are standardised with the training data's means and standard deviations, and
//! the standardizer is saved in the model file with the network, so `--load` predicts on raw
//! features. Text labels become classes 0, 1, … in sorted order; the test file's labels are
//! matched to the training file's by name. Prints one line per epoch, then the test accuracy;
//! with `--json`, one JSON object per epoch and a last one with `test_acc`.

use std::path::{Path, PathBuf};

use clap::Parser;
use lernmi::data::csv::{read_classes, CsvClasses, CsvOptions};
use lernmi::data::standardize::Standardizer;
use lernmi::train::validation_split;
use lernmi::{
    BatchProgress, EpochReport, Evaluation, Model, Network, Observer, Optimizer, RunOptions,
    StopRule, TrainConfig, Trainer,
};
use ndarray::{Array2, Axis};
use std::ops::ControlFlow;

#[path = "support/mod.rs"]
mod support;

/// What the steps of this example return.
type Outcome<T> = Result<T, Box<dyn std::error::Error>>;

/// Feature rows and their classes.
type Rows = (Array2<f32>, Vec<usize>);

#[derive(Parser, Debug)]
#[command(about = "Train a dense network on your own CSV data")]
struct Args {
    /// The training data: CSV with a header row.
    #[arg(long, value_name = "PATH", required_unless_present = "load")]
    csv: Option<PathBuf>,
    /// The header name of the label column.
    #[arg(long)]
    label: String,
    /// Test data, in the same columns; evaluated after training (or after --load).
    #[arg(long, value_name = "PATH")]
    test: Option<PathBuf>,
    /// The fraction of the training rows (shuffled by --seed) held out for validation; its
    /// loss and accuracy are printed after every epoch.
    #[arg(long, value_name = "FRACTION")]
    validation: Option<f64>,
    /// Stop when the validation loss has not improved for P epochs, and keep the network of
    /// the best epoch (needs --validation).
    #[arg(long, value_name = "P", requires = "validation")]
    patience: Option<usize>,
    /// Hidden layer sizes, comma-separated.
    #[arg(long, default_value = "128,64", value_delimiter = ',')]
    hidden: Vec<usize>,
    /// Passes over the training set (at most, with --patience).
    #[arg(long, default_value_t = 50)]
    epochs: usize,
    /// Minibatch size.
    #[arg(long, default_value_t = 32)]
    batch: usize,
    /// Adam's learning rate.
    #[arg(long, default_value_t = 0.003)]
    lr: f64,
    /// Seed for initialisation, shuffling and the validation split.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Threads for the minibatch shards (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Save the model (network, standardizer and class names) to PATH after training.
    #[arg(long, value_name = "PATH")]
    save: Option<PathBuf>,
    /// Also save the model as ONNX to PATH (standardisation included: it takes raw features).
    #[arg(long, value_name = "PATH")]
    save_onnx: Option<PathBuf>,
    /// Do not train: evaluate the model saved in PATH on --test.
    #[arg(long, value_name = "PATH", conflicts_with_all = ["csv", "save", "save_onnx", "validation"])]
    load: Option<PathBuf>,
    /// Print only JSON, one object per epoch and a last one with the test accuracy.
    #[arg(long)]
    json: bool,
}

fn main() {
    support::quiet_broken_pipe();
    support::exit_on_error(run(&Args::parse()));
}

fn run(args: &Args) -> Outcome<()> {
    // The training file's feature names, to read the test file's columns in the same order;
    // a loaded model takes the test file's columns in file order.
    let (model, feature_names) = match (&args.load, &args.csv) {
        (Some(path), _) => {
            let model = Model::<f32>::load(path)?;
            if !args.json {
                println!("loaded {}", path.display());
            }
            (model, None)
        }
        (None, Some(csv)) => train(args, csv)?,
        (None, None) => return Err("give --csv to train, or --load to evaluate".into()),
    };
    let Some(test_path) = &args.test else {
        if args.load.is_some() {
            return Err("--load needs --test, the data to evaluate the model on".into());
        }
        return Ok(());
    };
    let mut options = CsvOptions::new(&args.label);
    if let Some(names) = feature_names {
        options = options.features(names);
    }
    let test = read_classes::<f32>(test_path, &options)?;
    let labels = labels_by_name(&test, model.class_names(), test_path)?;
    let eval = model.evaluate(test.features.view(), &labels)?;
    if args.json {
        let line = serde_json::json!({
            "test_loss": eval.loss,
            "test_acc": eval.accuracy(),
            "test_samples": eval.total,
        });
        println!("{line}");
    } else {
        println!(
            "test loss {:.4}  test {} / {} = {:.2}%",
            eval.loss,
            eval.correct,
            eval.total,
            100.0 * eval.accuracy()
        );
    }
    Ok(())
}

/// Reads and standardises the training data, trains, and returns the model and the feature
/// names.
fn train(args: &Args, csv: &Path) -> Outcome<(Model<f32>, Option<Vec<String>>)> {
    let data = read_classes::<f32>(csv, &CsvOptions::new(&args.label))?;
    let (mut train_x, train_y, validation) = split(&data, args.validation, args.seed)?;
    // The statistics of the training rows alone: the validation rows stay unseen.
    let standardizer = Standardizer::fit(train_x.view())?;
    standardizer.transform(train_x.view_mut())?;
    let (mut valid_x, valid_y) = validation.unwrap_or_default();
    if !valid_y.is_empty() {
        standardizer.transform(valid_x.view_mut())?;
    }
    let mut sizes = vec![train_x.ncols()];
    sizes.extend(&args.hidden);
    sizes.push(data.classes);
    let net = Network::<f32>::builder(&sizes).seed(args.seed).build()?;
    let config = TrainConfig {
        epochs: args.epochs,
        batch_size: args.batch,
        optimizer: Optimizer::adam(args.lr),
        seed: args.seed,
        early_stopping: args.patience.map(StopRule::patience),
        ..TrainConfig::default()
    };
    let options = RunOptions {
        threads: args.threads,
        ..RunOptions::default()
    };
    let mut trainer = Trainer::with_options(net, config, options)?;
    if !args.json {
        println!(
            "{}: {} training rows, {} features {:?}, {} classes; network {sizes:?}, {} parameters",
            csv.display(),
            train_x.nrows(),
            data.feature_names.len(),
            data.feature_names,
            data.classes,
            trainer.network().parameter_count()
        );
    }
    let mut printer = EpochPrinter {
        progress: support::progress::Progress::new(args.json, args.batch, args.epochs),
        json: args.json,
        validation_rows: valid_y.len(),
    };
    let reports = if valid_y.is_empty() {
        trainer.fit(train_x.view(), &train_y, &mut printer)?
    } else {
        trainer.fit_with_validation(
            train_x.view(),
            &train_y,
            valid_x.view(),
            &valid_y,
            &mut printer,
        )?
    };
    if let (Some((best, loss)), false) =
        (trainer.early_stopping().and_then(|s| s.best()), args.json)
    {
        let ran = reports.len();
        let why = if ran < args.epochs {
            "stopped early; "
        } else {
            ""
        };
        println!(
            "{why}kept epoch {}, of the lowest validation loss {loss:.4}",
            best + 1
        );
    }
    let net = trainer.into_network();
    let mut model = Model::new(net, Some(standardizer))?;
    if let Some(names) = &data.class_names {
        model = model.with_class_names(names.clone())?;
    }
    if let Some(path) = &args.save {
        model.save(path)?;
        if !args.json {
            println!("saved {}", path.display());
        }
    }
    if let Some(path) = &args.save_onnx {
        model.save_onnx(path)?;
        if !args.json {
            println!("saved {}", path.display());
        }
    }
    Ok((model, Some(data.feature_names)))
}

/// The training rows and labels, and the validation rows and labels if `fraction` is given:
/// the library's seeded split ([`lernmi::train::validation_split`]).
fn split(
    data: &CsvClasses<f32>,
    fraction: Option<f64>,
    seed: u64,
) -> Outcome<(Array2<f32>, Vec<usize>, Option<Rows>)> {
    let Some(fraction) = fraction else {
        return Ok((data.features.clone(), data.labels.clone(), None));
    };
    let (train, validation) = validation_split(data.labels.len(), fraction, seed)?;
    let rows = |idx: &[usize]| {
        (
            data.features.select(Axis(0), idx),
            idx.iter().map(|&i| data.labels[i]).collect::<Vec<_>>(),
        )
    };
    let (train_x, train_y) = rows(&train);
    Ok((train_x, train_y, Some(rows(&validation))))
}

/// Prints each epoch's figures (with the validation set's, when there is one) under the
/// progress bar.
struct EpochPrinter {
    progress: support::progress::Progress,
    json: bool,
    /// Rows of the validation set (0: none).
    validation_rows: usize,
}

impl Observer for EpochPrinter {
    fn batch_end(&mut self, progress: &BatchProgress) {
        self.progress.batch_end(progress);
    }

    fn epoch_end(&mut self, report: &EpochReport) -> ControlFlow<()> {
        let _ = self.progress.epoch_end(report);
        let validation = match (report.validation_loss, report.validation_accuracy) {
            (Some(loss), Some(accuracy)) => Some(Evaluation {
                loss,
                correct: (accuracy * self.validation_rows as f64).round() as usize,
                total: self.validation_rows,
            }),
            _ => None,
        };
        if self.json {
            let mut line = serde_json::json!({
                "epoch": report.epoch + 1,
                "train_loss": report.train_loss,
                "train_s": report.seconds,
                "samples_per_s": report.samples_per_second,
            });
            if let Some(e) = &validation {
                line["val_loss"] = e.loss.into();
                line["val_acc"] = e.accuracy().into();
            }
            println!("{line}");
        } else {
            let held_out = validation.as_ref().map(|e| ("validation", e));
            println!("{}", support::progress::epoch_line(report, held_out));
        }
        ControlFlow::Continue(())
    }
}

/// The classes of `table`'s rows in the numbering of `names` (the training file's text
/// labels), or as they are for integer labels.
fn labels_by_name(
    table: &CsvClasses<f32>,
    names: Option<&[String]>,
    path: &Path,
) -> Outcome<Vec<usize>> {
    match (names, &table.class_names) {
        (None, None) => Ok(table.labels.clone()),
        (Some(names), Some(own)) => {
            let map: Vec<usize> = own
                .iter()
                .map(|label| {
                    names.iter().position(|n| n == label).ok_or_else(|| {
                        format!(
                            "{}: label {label:?} is not one of the model's classes {names:?}",
                            path.display()
                        )
                    })
                })
                .collect::<Result<_, _>>()?;
            Ok(table.labels.iter().map(|&c| map[c]).collect())
        }
        (Some(_), None) => Err(format!(
            "{}: integer labels, but the model was trained on text labels",
            path.display()
        )
        .into()),
        (None, Some(_)) => Err(format!(
            "{}: text labels, but the model was trained on integer labels",
            path.display()
        )
        .into()),
    }
}
