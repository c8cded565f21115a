//! Training throughput on MNIST for the benchmark configurations shared with the PyTorch
//! harness in `shared/bench/torch_mlp.py`: one JSON object per epoch (`impl`, `config`,
//! `threads`, `epoch`, `train_s`, `samples_per_s`, `test_acc`) and one for inference.
//!
//! Configs: `small` 784-128-10 ReLU, softmax CE, SGD 0.1, batch 64; `wide` 784-1024-1024-10
//! ReLU, softmax CE, SGD 0.05, batch 256; `lernmi` 784-15-10 sigmoid, squared error, SGD 0.1,
//! batch 1, inputs in [0, 1]. `train_s` covers shuffling, batching, forward, backward and update.
use std::time::Instant;

use clap::{Parser, ValueEnum};
use lernmi::data::PixelScale;
use lernmi::{Activation, Init, Loss, Network, Optimizer, RunOptions, TrainConfig, Trainer};

#[path = "support/mod.rs"]
mod support;

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq)]
enum Config {
    Small,
    Wide,
    Lernmi,
}

#[derive(Parser, Debug)]
#[command(about = "Training throughput on MNIST, as JSON lines")]
struct Args {
    /// Benchmark configuration.
    #[arg(long, value_enum, required_unless_present = "fma_peak")]
    config: Option<Config>,
    /// Print this core's FMA peak (GFLOP/s) for each SIMD family and float type, as one JSON
    /// line, and exit: the yardstick for the products' GFLOP/s of the same run.
    #[arg(long)]
    fma_peak: bool,
    /// Threads for the minibatch shards.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Epochs to time.
    #[arg(long, default_value_t = 2)]
    epochs: usize,
    #[command(flatten)]
    input_data: support::DataArgs,
    /// lernmi only: samples trained per epoch (0 = all 60 000).
    #[arg(long, default_value_t = 0)]
    samples: usize,
    /// Seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Rows per parallel shard (default: 64 small, 256 wide, 1 lernmi). Results depend on it,
    /// never on --threads.
    #[arg(long)]
    shard: Option<usize>,
    /// Always use every thread (no adaptive fallback to one thread).
    #[arg(long)]
    no_adapt: bool,
    /// Inference repeats (median reported).
    #[arg(long, default_value_t = 5)]
    infer_repeats: usize,
}

fn main() {
    support::quiet_broken_pipe();
    support::exit_on_error(run(&Args::parse()));
}

fn run(args: &Args) -> Result<(), Box<dyn std::error::Error>> {
    let Some(config) = args.config.filter(|_| !args.fma_peak) else {
        let peaks: serde_json::Map<_, _> = support::peak::available()
            .iter()
            .map(|p| (p.name.to_string(), support::peak::measure(p, 5, 0.1).into()))
            .collect();
        println!("{}", serde_json::json!({ "fma_peak_gflops": peaks }));
        return Ok(());
    };
    let (mnist, source) = support::load_data(
        args.input_data.data.as_deref(),
        args.input_data.offline,
        true,
    )?;
    let name = format!("{config:?}").to_lowercase();
    let (sizes, builder_lr_batch_shard): (&[usize], (f64, usize, usize)) = match config {
        Config::Small => (&[784, 128, 10], (0.1, 64, 64)),
        Config::Wide => (&[784, 1024, 1024, 10], (0.05, 256, 256)),
        Config::Lernmi => (&[784, 15, 10], (0.1, 1, 1)),
    };
    let (lr, batch, shard) = builder_lr_batch_shard;
    let builder = Network::<f32>::builder(sizes).seed(args.seed);
    let builder = if config == Config::Lernmi {
        builder
            .hidden(Activation::Sigmoid)
            .output(Activation::Sigmoid)
            .loss(Loss::SquaredError)
            .init(Init::Uniform)
    } else {
        builder
    };
    let net: Network = builder.build()?;

    let (mut train, test) = (mnist.train, mnist.test);
    if config == Config::Lernmi {
        // As the PyTorch harness: one fixed permutation, the first `samples` of it each epoch.
        train = train.shuffled(args.seed);
        if args.samples > 0 && args.samples < train.len() {
            train = train.slice(0, args.samples)?;
        }
    }
    let x = train.inputs::<f32>(PixelScale::Unit);
    let y = train.targets::<f32>();
    let test_x = test.inputs::<f32>(PixelScale::Unit);
    let test_y = test.targets::<f32>();
    // Only the float copies are needed from here on.
    drop((train, test));
    let config = TrainConfig {
        epochs: args.epochs,
        batch_size: batch,
        shard_size: args.shard.unwrap_or(shard),
        optimizer: Optimizer::sgd(lr),
        shuffle: config != Config::Lernmi,
        seed: args.seed,
        ..TrainConfig::default()
    };
    let options = RunOptions {
        threads: Some(args.threads),
        adaptive_threads: !args.no_adapt,
        ..RunOptions::default()
    };
    let mut trainer = Trainer::with_options(net, config, options)?;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(args.threads)
        .build()?;
    for _ in 0..args.epochs {
        let report = trainer.train_epoch(x.view(), y.view(), &mut ())?;
        let net = trainer.network();
        let acc = pool
            .install(|| net.evaluate(test_x.view(), test_y.view()))?
            .accuracy();
        println!(
            "{}",
            serde_json::json!({
                "impl": "lernmi", "config": name, "threads": args.threads, "epoch": report.epoch + 1,
                "train_s": report.seconds, "samples_per_s": report.samples_per_second,
                "test_acc": acc, "samples_trained": report.samples, "data": source.name(),
            })
        );
    }
    // Inference: the whole test set, forward only; median of the repeats after a warm-up.
    let net = trainer.into_network();
    let mut times = Vec::new();
    let mut acc = 0.0;
    pool.install(|| -> lernmi::Result<()> {
        net.predict(test_x.view())?;
        for _ in 0..args.infer_repeats.max(1) {
            let t0 = Instant::now();
            acc = net.evaluate(test_x.view(), test_y.view())?.accuracy();
            times.push(t0.elapsed().as_secs_f64());
        }
        Ok(())
    })?;
    times.sort_by(f64::total_cmp);
    let median = times[times.len() / 2];
    println!(
        "{}",
        serde_json::json!({
            "impl": "lernmi", "config": name, "threads": args.threads, "phase": "inference",
            "n": test_x.nrows(), "infer_s": median, "infer_min_s": times[0],
            "samples_per_s": test_x.nrows() as f64 / median, "test_acc": acc,
        })
    );
    Ok(())
}
