//! Trains a dense network on MNIST and prints, per epoch, the training loss, test accuracy,
//! seconds and samples/s. The default recipe ([784, 512, 256, 10], Adam with a cosine schedule,
//! 20 epochs of images shifted by up to 2 pixels) should pass 98.6 % test accuracy, `--quick`
//! (4 epochs, no shifts) 98 %.
//!
//! Data: `--data DIR`, else `$LERNMI_DATA`, else `./data/mnist`, else the user's cache
//! directory; if none holds MNIST it is downloaded there, and with no network the example falls
//! back to generated MNIST-style digits (and says so loudly).
//!
//! `--plot DIR` writes the loss and accuracy per epoch and the test confusion matrix as SVG and
//! the most confidently misclassified test digits as PNG; `--show N` prints N test digits as
//! ASCII art with the network's guesses.

use std::path::PathBuf;

use clap::Parser;
use lernmi::data::{Augment, PixelScale};
use lernmi::io::checkpoint::Checkpoint;
use lernmi::{Activation, Network, Optimizer, RunOptions, Schedule, TrainConfig, Trainer};

#[path = "support/mod.rs"]
mod support;

#[derive(Parser, Debug)]
#[command(about = "Train a dense network on MNIST")]
struct Args {
    #[command(flatten)]
    input_data: support::DataArgs,
    /// The dataset: mnist, fashion-mnist or kmnist (all in MNIST's format, each found and
    /// downloaded on its own, see lernmi::data::datasets).
    #[arg(long, default_value = "mnist")]
    dataset: String,
    /// The short recipe: [784, 512, 256, 10], 4 epochs, no augmentation (unless --hidden,
    /// --epochs or --augment say otherwise).
    #[arg(long)]
    quick: bool,
    /// Passes over the training set (default 20; 4 with --quick).
    #[arg(long)]
    epochs: Option<usize>,
    /// Minibatch size.
    #[arg(long, default_value_t = 128)]
    batch: usize,
    /// Hidden layer sizes, comma-separated (default 512,256).
    #[arg(long, value_delimiter = ',')]
    hidden: Option<Vec<usize>>,
    /// Hidden activation: relu, sigmoid, tanh, leaky_relu.
    #[arg(long, default_value = "relu")]
    activation: String,
    /// Optimiser: sgd, momentum, nesterov, adam.
    #[arg(long, default_value = "adam")]
    optimizer: String,
    /// Base learning rate (default: 0.001 for adam, 0.05 for momentum, 0.1 for sgd).
    #[arg(long)]
    lr: Option<f64>,
    /// Threads for the minibatch shards (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Seed for initialisation and shuffling.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Print only JSON, one object per epoch.
    #[arg(long)]
    json: bool,
    /// Write pictures of the run into DIR (created if missing): learning-curves.svg,
    /// confusion-matrix.svg, confident-mistakes.png. Evaluates the training set after each epoch.
    #[arg(long, value_name = "DIR")]
    plot: Option<PathBuf>,
    /// After training, print the first N test digits as ASCII art with the network's guesses.
    #[arg(long, value_name = "N", conflicts_with = "json")]
    show: Option<usize>,
    /// Save the network to PATH (safetensors, written atomically) after training.
    #[arg(long, value_name = "PATH")]
    save: Option<PathBuf>,
    /// Export the network to PATH as an ONNX model (for ONNX Runtime and other runtimes; see
    /// the README's "Deploying") after training.
    #[arg(long, value_name = "PATH")]
    save_onnx: Option<PathBuf>,
    /// Start from the network saved in PATH (a model file or a checkpoint) instead of a new
    /// one; its architecture replaces --hidden and --activation. With --epochs 0 it is only
    /// evaluated.
    #[arg(long, value_name = "PATH", conflicts_with = "resume")]
    load: Option<PathBuf>,
    /// Save the whole training state to PATH after every epoch (atomically).
    #[arg(long, value_name = "PATH")]
    checkpoint: Option<PathBuf>,
    /// Continue the training saved by --checkpoint in PATH, up to --epochs epochs in all, with
    /// the checkpoint's network and hyperparameters. The result is bit-identical to a run
    /// that never stopped.
    #[arg(long, value_name = "PATH")]
    resume: Option<PathBuf>,
    /// Dropout rates of the hidden layers, comma-separated, one per hidden layer (a single
    /// rate applies to every layer of --hidden). Training only.
    #[arg(long, value_delimiter = ',', value_name = "RATES")]
    dropout: Vec<f64>,
    /// Shift every training image by up to 2 pixels each way (28 × 28 images), drawn anew
    /// each epoch; the default recipe does, --quick does not. Training only.
    #[arg(long, conflicts_with = "no_augment")]
    augment: bool,
    /// Train on the images as they are.
    #[arg(long)]
    no_augment: bool,
}

impl Args {
    /// The epochs to train: --epochs, else the recipe's.
    fn epochs(&self) -> usize {
        self.epochs.unwrap_or(if self.quick { 4 } else { 20 })
    }

    /// The hidden layer sizes: --hidden, else the recipe's.
    fn hidden(&self) -> Vec<usize> {
        self.hidden.clone().unwrap_or_else(|| vec![512, 256])
    }

    /// Whether to shift the training images: --augment or --no-augment, else the recipe's.
    fn augment(&self) -> bool {
        self.augment || !(self.no_augment || self.quick)
    }
}

fn main() {
    support::quiet_broken_pipe();
    support::exit_on_error(run(&Args::parse()));
}

fn run(args: &Args) -> Result<(), Box<dyn std::error::Error>> {
    let activation = Activation::from_name(&args.activation)
        .filter(|a| a.is_elementwise())
        .ok_or_else(|| format!("unknown hidden activation {:?}", args.activation))?;
    let optimizer = match (args.optimizer.as_str(), args.lr) {
        ("sgd", lr) => Optimizer::sgd(lr.unwrap_or(0.1)),
        ("momentum", lr) => Optimizer::momentum(lr.unwrap_or(0.05), 0.9),
        ("nesterov", lr) => Optimizer::nesterov(lr.unwrap_or(0.05), 0.9),
        ("adam", lr) => Optimizer::adam(lr.unwrap_or(1e-3)),
        (other, _) => return Err(format!("unknown optimizer {other:?}").into()),
    };
    let say = |line: String| {
        if !args.json {
            println!("{line}");
        }
    };

    let dataset = lernmi::data::datasets::dataset(&args.dataset)?;
    let (mnist, source) = support::load_dataset(
        dataset,
        args.input_data.data.as_deref(),
        args.input_data.offline,
        args.json,
    )?;
    let train_x = mnist.train.inputs::<f32>(PixelScale::Unit);
    let train_y = mnist.train.targets::<f32>();
    let test_x = mnist.test.inputs::<f32>(PixelScale::Unit);
    let test_y = mnist.test.targets::<f32>();
    drop(mnist);

    let config = TrainConfig {
        epochs: args.epochs(),
        batch_size: args.batch,
        optimizer,
        schedule: Schedule::Cosine { floor: 0.02 },
        seed: args.seed,
        shard_size: args.batch.div_ceil(2).max(1),
        dropout: match args.dropout[..] {
            [rate] => vec![rate; args.hidden().len()],
            _ => args.dropout.clone(),
        },
        augment: args.augment().then(|| Augment::shifts(28, 28)),
        ..TrainConfig::default()
    };
    let options = RunOptions {
        threads: args.threads,
        ..RunOptions::default()
    };
    let mut trainer = if let Some(path) = &args.resume {
        // The checkpoint holds the network and every hyperparameter; only the number of
        // epochs and the threads come from the command line.
        let mut checkpoint = Checkpoint::<f32>::load(path)?;
        say(format!(
            "resuming from {} after epoch {}, up to epoch {}, with the checkpoint's network and \
             hyperparameters (its run was for {} epochs)",
            path.display(),
            checkpoint.epoch,
            args.epochs(),
            checkpoint.config.epochs
        ));
        checkpoint.config.epochs = args.epochs();
        checkpoint.options = options;
        check_shape(path, &checkpoint.network, train_x.ncols(), train_y.ncols())?;
        checkpoint.resume()?
    } else {
        let net = if let Some(path) = &args.load {
            let net = Network::<f32>::load(path)?;
            check_shape(path, &net, train_x.ncols(), train_y.ncols())?;
            say(format!("loaded {}", path.display()));
            net
        } else {
            let mut sizes = vec![train_x.ncols()];
            sizes.extend(args.hidden());
            sizes.push(train_y.ncols());
            Network::<f32>::builder(&sizes)
                .hidden(activation)
                .seed(args.seed)
                .build()?
        };
        Trainer::with_options(net, config, options)?
    };
    let net = trainer.network().clone();
    let sizes = net.sizes();
    let config = trainer.config().clone();
    say(format!(
        "network {sizes:?}, {} hidden, {} output, {}, {} lr {}, batch {}, {} epochs, {} parameters",
        net.layers()[0].activation().name(),
        net.layers()[net.layers().len() - 1].activation().name(),
        net.loss().name(),
        config.optimizer.name(),
        config.optimizer.learning_rate(),
        config.batch_size,
        config.epochs,
        net.parameter_count()
    ));
    let mut progress =
        support::progress::Progress::new(args.json, config.batch_size, args.epochs());
    let mut history = Vec::new();
    let mut total_train_s = 0.0;
    let epochs_before = trainer.epoch();
    for _ in trainer.epoch()..args.epochs() {
        let report = trainer.train_epoch(train_x.view(), train_y.view(), &mut progress)?;
        total_train_s += report.seconds;
        if let Some(path) = &args.checkpoint {
            trainer.save_checkpoint(path)?;
        }
        let net = trainer.network();
        let test = net.evaluate(test_x.view(), test_y.view())?;
        if args.plot.is_some() {
            let train = net.evaluate(train_x.view(), train_y.view())?;
            history.push(support::plot::EpochPoint {
                epoch: report.epoch + 1,
                running_train_loss: report.train_loss,
                train_loss: train.loss,
                train_accuracy: train.accuracy(),
                test_loss: test.loss,
                test_accuracy: test.accuracy(),
            });
        }
        if args.json {
            println!(
                "{}",
                serde_json::json!({
                    "epoch": report.epoch + 1,
                    "train_s": report.seconds,
                    "samples_per_s": report.samples_per_second,
                    "train_loss": report.train_loss,
                    "test_loss": test.loss,
                    "test_acc": test.accuracy(),
                    "learning_rate": report.learning_rate,
                    "data": support::source_name(&source, dataset),
                })
            );
        } else {
            let line = support::progress::epoch_line(&report, Some(("test", &test)));
            println!("{line}");
        }
    }
    let trainer_epoch = trainer.epoch();
    let net = trainer.into_network();
    if trainer_epoch > epochs_before {
        say(format!("trained in {total_train_s:.1} s"));
    } else {
        // Nothing to train (--epochs 0, or a checkpoint already at --epochs): evaluate only.
        let test = net.evaluate(test_x.view(), test_y.view())?;
        if args.json {
            println!(
                "{}",
                serde_json::json!({
                    "epoch": trainer_epoch,
                    "test_loss": test.loss,
                    "test_acc": test.accuracy(),
                    "data": support::source_name(&source, dataset),
                })
            );
        } else {
            println!(
                "no training: test loss {:.4}  test {} / {} = {:.2}%",
                test.loss,
                test.correct,
                test.total,
                100.0 * test.accuracy()
            );
        }
    }
    if let Some(path) = &args.save {
        net.save(path)?;
        say(format!("saved {}", path.display()));
    }
    if let Some(path) = &args.save_onnx {
        net.save_onnx(path)?;
        say(format!("exported {} (ONNX)", path.display()));
    }
    if args.plot.is_some() || args.show.is_some() {
        let test_outputs = net.predict(test_x.view())?;
        if let Some(dir) = &args.plot {
            let title = format!(
                "{} {sizes:?}, {} hidden, {}, batch {}, {} epoch{}",
                if source.name() == "mnist" {
                    dataset.title.to_string()
                } else {
                    format!("generated digits (NOT {})", dataset.title)
                },
                net.layers()[0].activation().name(),
                config.optimizer.name(),
                config.batch_size,
                trainer_epoch,
                if trainer_epoch == 1 { "" } else { "s" }
            );
            let (x, y, out) = (test_x.view(), test_y.view(), test_outputs.view());
            for path in support::plot::write_all(dir, &title, &history, x, y, out)? {
                say(format!("wrote {}", path.display()));
            }
        }
        if let Some(count) = args.show {
            support::show::print_digits(test_x.view(), test_y.view(), test_outputs.view(), count)?;
        }
    }
    Ok(())
}

/// Checks that a loaded network fits the data: `n_in` inputs and `n_out` classes.
fn check_shape(
    path: &std::path::Path,
    net: &Network,
    n_in: usize,
    n_out: usize,
) -> Result<(), Box<dyn std::error::Error>> {
    if net.n_inputs() != n_in || net.n_outputs() != n_out {
        return Err(format!(
            "{}: the network has {} inputs and {} outputs, but the data has {n_in} features and {n_out} classes",
            path.display(),
            net.n_inputs(),
            net.n_outputs()
        )
        .into());
    }
    Ok(())
}
