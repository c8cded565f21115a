//! The seed's experiment, both ways: a [784, 15, 10] sigmoid network trained one sample at a
//! time in file order at rate 0.1 from the seed's initial weights, by Lernmi's object graph and
//! by the dense engine. With the defaults it should reproduce the original's 8685/10000 both
//! ways (8139/10000 with `--inputs unit`), and the two end with the same weights.
use std::time::Instant;

use clap::{Parser, ValueEnum};
use lernmi::data::PixelScale;
use lernmi::graph::{GraphOptions, Network as Graph};
use lernmi::{Network, RunOptions, TrainConfig, Trainer};

#[path = "support/mod.rs"]
mod support;

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Inputs {
    /// Pixel bytes 0..255, as the seed fed them.
    Raw,
    /// Pixels scaled to [0, 1].
    Unit,
}

#[derive(Parser, Debug)]
#[command(about = "Lernmi's MNIST experiment, by the object graph and by the dense engine")]
struct Args {
    #[command(flatten)]
    input_data: support::DataArgs,
    /// How pixels are fed to the network.
    #[arg(long, value_enum, default_value = "raw")]
    inputs: Inputs,
    /// Feed inputs to the first layer as they are (the seed squashes them through the sigmoid).
    #[arg(long)]
    no_input_sigmoid: bool,
    /// Training samples, in file order (default: all 60 000).
    #[arg(long)]
    samples: Option<usize>,
    /// Print only JSON: one object per implementation, then one comparing them.
    #[arg(long)]
    json: bool,
}

fn main() {
    support::quiet_broken_pipe();
    support::exit_on_error(run(&Args::parse()));
}

fn run(args: &Args) -> Result<(), Box<dyn std::error::Error>> {
    let (mnist, source) = support::load_data(
        args.input_data.data.as_deref(),
        args.input_data.offline,
        args.json,
    )?;
    let scale = match args.inputs {
        Inputs::Raw => PixelScale::Raw,
        Inputs::Unit => PixelScale::Unit,
    };
    let samples = args
        .samples
        .unwrap_or(mnist.train.len())
        .min(mnist.train.len());
    let train = mnist.train.slice(0, samples.max(1))?;
    let train_x = train.inputs::<f64>(scale);
    let train_y = train.targets::<f64>();
    let test_x = mnist.test.inputs::<f64>(scale);
    let test_y = mnist.test.targets::<f64>();
    let test_labels = mnist.test.labels_usize();

    let options = GraphOptions {
        input_sigmoid: !args.no_input_sigmoid,
        ..GraphOptions::default()
    };
    let mut graph = Graph::with_options(&[train_x.ncols(), 15, 10], options)?;
    let dense: Network<f64> = graph.to_dense()?;

    // The object graph: Lernmi's learn(), one sample at a time.
    let start = Instant::now();
    for (x, t) in train_x.rows().into_iter().zip(train_y.rows()) {
        graph.learn(
            x.as_slice().ok_or("rows are contiguous")?,
            t.as_slice().ok_or("rows are contiguous")?,
        )?;
    }
    let graph_s = start.elapsed().as_secs_f64();
    let mut graph_correct = 0;
    for (x, &label) in test_x.rows().into_iter().zip(&test_labels) {
        let out = graph.run(x.as_slice().ok_or("rows are contiguous")?)?;
        let guess = (0..out.len()).fold(0, |best, k| if out[k] > out[best] { k } else { best });
        graph_correct += usize::from(guess == label);
    }

    // The dense engine: the same per-sample SGD, as matrix products.
    let seeds = RunOptions::one_thread();
    let mut trainer = Trainer::with_options(dense, TrainConfig::lernmi(), seeds)?;
    let report = trainer.train_epoch(train_x.view(), train_y.view(), &mut ())?;
    let dense = trainer.into_network();
    let dense_eval = dense.evaluate(test_x.view(), test_y.view())?;

    let max_diff = graph.to_dense()?.max_parameter_difference(&dense)?;

    let results = [
        ("graph", graph_s, graph_correct),
        ("dense", report.seconds, dense_eval.correct),
    ];
    let speedup = graph_s / report.seconds;
    if args.json {
        for (name, secs, correct) in results {
            println!(
                "{}",
                serde_json::json!({
                    "impl": name, "samples": samples, "train_s": secs,
                    "samples_per_s": samples as f64 / secs,
                    "test_acc": correct as f64 / test_labels.len() as f64,
                    "test_correct": correct, "data": source.name(),
                })
            );
        }
        println!(
            "{}",
            serde_json::json!({ "speedup": speedup, "max_weight_diff": max_diff })
        );
    } else {
        println!(
            "Lernmi [784, 15, 10], {:?} inputs{}, {samples} samples in file order, rate 0.1",
            args.inputs,
            if args.no_input_sigmoid {
                ""
            } else {
                " through the input sigmoid"
            }
        );
        for (name, secs, correct) in results {
            println!(
                "{name:>5}: {:>9.0} samples/s ({secs:.2} s)   test {correct} / {}",
                samples as f64 / secs,
                test_labels.len()
            );
        }
        println!(
            "speed-up of the engine: {speedup:.1}x;  largest weight difference: {max_diff:.3e}"
        );
    }
    Ok(())
}
