//! Trains a dense network on MNIST and prints, per epoch, the training loss, test accuracy,
//! seconds and samples/s. The default model should pass 98 % test accuracy.
//!
//! Data: `--data DIR`, else `$LERNMI_DATA`, else `./data/mnist`, else the user's cache
//! directory; if none holds MNIST it is downloaded there, and with no network the example falls
//! back to generated MNIST-style digits (and says so loudly).

use clap::Parser;
use indicatif::ProgressBar;
use lernmi::data::PixelScale;
use lernmi::{
    Activation, BatchProgress, EpochReport, Network, Observer, Optimizer, Schedule, TrainConfig,
    Trainer,
};

#[path = "support/mod.rs"]
mod support;

#[derive(Parser, Debug)]
#[command(about = "Train a dense network on MNIST")]
struct Args {
    #[command(flatten)]
    input_data: support::DataArgs,
    /// Passes over the training set.
    #[arg(long, default_value_t = 12)]
    epochs: usize,
    /// Minibatch size.
    #[arg(long, default_value_t = 128)]
    batch: usize,
    /// Hidden layer sizes, comma-separated.
    #[arg(long, default_value = "256,128", value_delimiter = ',')]
    hidden: Vec<usize>,
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
}

fn main() {
    support::exit_on_error(run(&Args::parse()));
}

/// Draws a progress bar from the trainer's batch reports; hidden in JSON mode or off a terminal.
struct Progress {
    bar: ProgressBar,
    running_loss: f64,
    batch_size: usize,
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
        self.bar.set_message(format!(
            "epoch {} loss {:.4}",
            p.epoch + 1,
            self.running_loss
        ));
    }
    fn epoch_end(&mut self, _report: &EpochReport) {
        self.bar.finish_and_clear();
    }
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

    let (mnist, source) = support::load_data(
        args.input_data.data.as_deref(),
        args.input_data.offline,
        args.json,
    )?;
    let train_x = mnist.train.inputs::<f32>(PixelScale::Unit);
    let train_y = mnist.train.targets::<f32>();
    let test_x = mnist.test.inputs::<f32>(PixelScale::Unit);
    let test_y = mnist.test.targets::<f32>();
    drop(mnist);

    let mut sizes = vec![train_x.ncols()];
    sizes.extend(&args.hidden);
    sizes.push(train_y.ncols());
    let mut net: Network = Network::<f32>::builder(&sizes)
        .hidden(activation)
        .seed(args.seed)
        .build()?;
    let config = TrainConfig {
        epochs: args.epochs,
        batch_size: args.batch,
        optimizer,
        schedule: Schedule::Cosine {
            epochs: args.epochs.max(1),
            floor: 0.02,
        },
        seed: args.seed,
        threads: args.threads,
        shard_size: args.batch.div_ceil(2).max(1),
        ..TrainConfig::default()
    };
    say(format!(
        "network {sizes:?}, {} hidden, softmax + cross-entropy, {} lr {}, batch {}, {} epochs, {} parameters",
        activation.name(),
        optimizer.name(),
        optimizer.learning_rate(),
        args.batch,
        args.epochs,
        net.parameter_count()
    ));
    let mut trainer = Trainer::new(&net, config)?;
    let bar = support::bar(
        args.json || !std::io::IsTerminal::is_terminal(&std::io::stdout()),
        "{msg} [{bar:30}] {pos}/{len} {per_sec} eta {eta}",
    );
    let mut progress = Progress {
        bar,
        running_loss: 0.0,
        batch_size: args.batch,
    };
    let mut total_train_s = 0.0;
    for _ in 0..args.epochs {
        let report =
            trainer.train_epoch(&mut net, train_x.view(), train_y.view(), &mut progress)?;
        total_train_s += report.seconds;
        let test = net.evaluate(test_x.view(), test_y.view())?;
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
                    "data": source.name(),
                })
            );
        } else {
            println!(
                "epoch {:>2}: train loss {:.4}  test loss {:.4}  test {} / {} = {:.2}%  {:.2} s  {:.0} samples/s",
                report.epoch + 1,
                report.train_loss,
                test.loss,
                test.correct,
                test.total,
                100.0 * test.accuracy(),
                report.seconds,
                report.samples_per_second
            );
        }
    }
    say(format!("trained in {total_train_s:.1} s"));
    Ok(())
}
