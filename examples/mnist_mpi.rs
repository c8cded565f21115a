//! Trains a dense network on MNIST data-parallel over MPI: every rank computes its block of
//! each minibatch's shards, and the shard gradients are added in shard order, so the trained
//! weights are bit-identical to a one-process run (`--plain`) for any number of ranks.
//!
//! ```text
//! cargo build --release --features mpi --example mnist_mpi
//! mpirun -n 4 target/release/examples/mnist_mpi --threads 4 --save model.safetensors
//! ```
//!
//! Every rank reads the data itself (rank 0 first, so that only it may download MNIST) and
//! checks that it holds the same training set as rank 0; every rank derives the same shuffle
//! from the seed. Rank 0 alone prints, evaluates and writes files. Errors that every rank
//! meets alike (divergence, a rank with another network or configuration) end every rank
//! with exit status 1 and one message from rank 0; an error on one rank alone (a file it
//! cannot read) aborts the whole job with `MPI_Abort`, as does a rank that dies (MPI's default
//! error handler), so no rank waits for ever.

use std::path::PathBuf;
use std::process::exit;

use clap::Parser;
use lernmi::data::PixelScale;
use lernmi::io::checkpoint::Checkpoint;
use lernmi::train::MpiTransport;
use lernmi::{Error, Network, Optimizer, RunOptions, Schedule, TrainConfig, Trainer};
use mpi::topology::{Communicator, SimpleCommunicator};
use mpi::traits::{CommunicatorCollectives, Root};
use ndarray::Array2;
use sha2::{Digest, Sha256};

#[path = "support/mod.rs"]
mod support;

#[derive(Parser, Debug)]
#[command(about = "Train a dense network on MNIST, data-parallel over MPI")]
struct Args {
    #[command(flatten)]
    input_data: support::DataArgs,
    /// Passes over the training set.
    #[arg(long, default_value_t = 12)]
    epochs: usize,
    /// Minibatch size.
    #[arg(long, default_value_t = 128)]
    batch: usize,
    /// Rows per shard: a minibatch has ⌈batch / shard⌉ shards to spread over the ranks and
    /// their threads. The weights depend on it, never on the number of ranks or threads.
    #[arg(long, default_value_t = 16)]
    shard: usize,
    /// Hidden layer sizes, comma-separated.
    #[arg(long, default_value = "256,128", value_delimiter = ',')]
    hidden: Vec<usize>,
    /// Adam's learning rate.
    #[arg(long, default_value_t = 1e-3)]
    lr: f64,
    /// Threads per rank for its shards (default: all cores; give cores / ranks per node).
    #[arg(long)]
    threads: Option<usize>,
    /// Seed for initialisation and shuffling.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Train on the first N training samples only (for quick checks).
    #[arg(long, value_name = "N")]
    limit: Option<usize>,
    /// Save the network to PATH (rank 0, after training).
    #[arg(long, value_name = "PATH")]
    save: Option<PathBuf>,
    /// Save the whole training state to PATH after every epoch (rank 0).
    #[arg(long, value_name = "PATH")]
    checkpoint: Option<PathBuf>,
    /// Continue the training saved by --checkpoint in PATH (every rank reads it, so it must
    /// be on a file system they all see), up to --epochs epochs in all.
    #[arg(long, value_name = "PATH")]
    resume: Option<PathBuf>,
    /// Train in this process alone, without MPI: the reference the MPI runs match bit for bit.
    #[arg(long)]
    plain: bool,
}

/// Why a rank stops: an error every rank meets alike, or one of this rank's own.
enum Failure {
    Shared(Error),
    Local(Box<dyn std::error::Error>),
}

impl<E: Into<Box<dyn std::error::Error>>> From<E> for Failure {
    fn from(e: E) -> Self {
        Failure::Local(e.into())
    }
}

fn main() {
    support::quiet_broken_pipe();
    let args = Args::parse();
    if args.plain {
        let result = run(&args, None).map_err(|f| match f {
            Failure::Shared(e) => Box::new(e) as Box<dyn std::error::Error>,
            Failure::Local(e) => e,
        });
        support::exit_on_error(result);
        return;
    }
    let Some(universe) = mpi::initialize() else {
        eprintln!("error: MPI is already initialised");
        exit(1);
    };
    let world = universe.world();
    match run(&args, Some(&universe)) {
        Ok(()) => {}
        Err(Failure::Shared(e)) => {
            if world.rank() == 0 {
                eprintln!("error: {e}");
            }
            drop(universe);
            exit(1);
        }
        Err(Failure::Local(e)) => {
            eprintln!("error: rank {}: {e}", world.rank());
            world.abort(1);
        }
    }
}

fn run(args: &Args, universe: Option<&mpi::environment::Universe>) -> Result<(), Failure> {
    let world = universe.map(|u| u.world());
    let rank = world.as_ref().map_or(0, |w| w.rank());
    let say = |line: String| {
        if rank == 0 {
            println!("{line}");
        }
    };
    let (train_x, train_y, test_x, test_y) = load(args, world.as_ref())?;
    let mut trainer = trainer(args, &train_x, &train_y)?;
    if let Some(universe) = universe {
        trainer
            .distribute(MpiTransport::world(universe))
            .map_err(Failure::Shared)?;
    }
    let ranks = world.as_ref().map_or(1, |w| w.size());
    let net = trainer.network();
    say(format!(
        "network {:?}, {} parameters, batch {} in shards of {}, {} epochs, {} training samples, \
         {ranks} rank{}",
        net.sizes(),
        net.parameter_count(),
        args.batch,
        args.shard,
        args.epochs,
        train_x.nrows(),
        if ranks == 1 { "" } else { "s" }
    ));
    while trainer.epoch() < args.epochs {
        let report = trainer
            .train_epoch(train_x.view(), train_y.view(), &mut ())
            .map_err(Failure::Shared)?;
        if rank != 0 {
            continue;
        }
        if let Some(path) = &args.checkpoint {
            trainer.save_checkpoint(path)?;
        }
        let test = trainer.network().evaluate(test_x.view(), test_y.view())?;
        println!(
            "epoch {:>2}: train loss {:.4}  test {} / {} = {:.2}%  {:.2} s",
            report.epoch + 1,
            report.train_loss,
            test.correct,
            test.total,
            100.0 * test.accuracy(),
            report.seconds
        );
    }
    if let (0, Some(path)) = (rank, &args.save) {
        trainer.network().save(path)?;
        say(format!("saved {}", path.display()));
    }
    Ok(())
}

type Data = (Array2<f32>, Array2<f32>, Array2<f32>, Array2<f32>);

/// The (limited) training set and the test set; under MPI, checked to be rank 0's.
fn load(args: &Args, world: Option<&SimpleCommunicator>) -> Result<Data, Failure> {
    let rank = world.map_or(0, |w| w.rank());
    let read = || {
        support::load_data(
            args.input_data.data.as_deref(),
            args.input_data.offline,
            rank != 0,
        )
    };
    // Rank 0 reads first and alone, so that only it downloads when MNIST is missing.
    let mut loaded = None;
    if rank == 0 {
        loaded = Some(read());
    }
    if let Some(w) = world {
        w.barrier();
    }
    let (mnist, _) = match loaded {
        Some(result) => result?,
        None => read()?,
    };
    let n = args.limit.unwrap_or(usize::MAX).min(mnist.train.len());
    let train_x = mnist
        .train
        .inputs::<f32>(PixelScale::Unit)
        .slice_move(ndarray::s![..n, ..]);
    let train_y = mnist
        .train
        .targets::<f32>()
        .slice_move(ndarray::s![..n, ..]);
    let test_x = mnist.test.inputs::<f32>(PixelScale::Unit);
    let test_y = mnist.test.targets::<f32>();
    if let Some(w) = world {
        same_as_rank_0(w, &train_x, &train_y)?;
    }
    Ok((train_x, train_y, test_x, test_y))
}

/// Checks that this rank's training set is rank 0's, by a hash rank 0 broadcasts.
fn same_as_rank_0(
    world: &SimpleCommunicator,
    x: &Array2<f32>,
    y: &Array2<f32>,
) -> Result<(), Failure> {
    let mut hash = Sha256::new();
    hash.update((x.nrows() as u64).to_le_bytes());
    for v in x.iter().chain(y.iter()) {
        hash.update(v.to_bits().to_le_bytes());
    }
    let mine: [u8; 32] = hash.finalize().into();
    let mut rank_0 = mine;
    world.process_at_rank(0).broadcast_into(&mut rank_0[..]);
    if mine != rank_0 {
        return Err("this rank's training data differs from rank 0's (see --data)".into());
    }
    Ok(())
}

/// A new trainer, or the one `--resume` names.
fn trainer(args: &Args, x: &Array2<f32>, y: &Array2<f32>) -> Result<Trainer, Failure> {
    let options = RunOptions {
        threads: args.threads,
        ..RunOptions::default()
    };
    if let Some(path) = &args.resume {
        let mut checkpoint = Checkpoint::<f32>::load(path)?;
        checkpoint.config.epochs = args.epochs;
        checkpoint.options = options;
        let net = &checkpoint.network;
        if net.n_inputs() != x.ncols() || net.n_outputs() != y.ncols() {
            return Err(format!("{}: the network does not fit MNIST", path.display()).into());
        }
        return Ok(checkpoint.resume()?);
    }
    let mut sizes = vec![x.ncols()];
    sizes.extend(&args.hidden);
    sizes.push(y.ncols());
    let net = Network::<f32>::builder(&sizes).seed(args.seed).build()?;
    let config = TrainConfig {
        epochs: args.epochs,
        batch_size: args.batch,
        shard_size: args.shard,
        optimizer: Optimizer::adam(args.lr),
        schedule: Schedule::Cosine { floor: 0.02 },
        seed: args.seed,
        ..TrainConfig::default()
    };
    Ok(Trainer::with_options(net, config, options)?)
}
