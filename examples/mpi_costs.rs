//! What data-parallel training costs per step over MPI, for the figures and the scaling model
//! in PERFORMANCE.md: one JSON line per network with the per-step compute time on one rank
//! (wall and CPU), a gradient's one-way message time between ranks 0 and 1, its broadcast
//! from the last rank, and a whole distributed step on all ranks (medians).
//!
//! ```text
//! cargo build --release --features mpi --example mpi_costs
//! mpirun -n 2 target/release/examples/mpi_costs                 # ranks on one machine
//! mpirun -n 16 --hostfile hosts target/release/examples/mpi_costs --threads 1
//! ```
//!
//! Timings mean something only on an otherwise quiet machine and network.

use std::time::Instant;

use clap::Parser;
use lernmi::train::MpiTransport;
use lernmi::{Network, Optimizer, RunOptions, TrainConfig, Trainer};
use mpi::topology::Communicator;
use mpi::traits::{CommunicatorCollectives, Destination, Root, Source};
use ndarray::Array2;

#[derive(Parser, Debug)]
#[command(about = "Per-step compute and message costs of data-parallel training, as JSON")]
struct Args {
    /// Timed repetitions of each measurement (after 3 untimed ones).
    #[arg(long, default_value_t = 30)]
    reps: usize,
    /// Threads per rank for its shards.
    #[arg(long, default_value_t = 1)]
    threads: usize,
}

/// Seconds of CPU time this process has used (all its threads).
fn cpu_seconds() -> f64 {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `t` is a valid timespec for the call to write; the clock id is a constant.
    let ok = unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut t) } == 0;
    if ok {
        t.tv_sec as f64 + t.tv_nsec as f64 * 1e-9
    } else {
        f64::NAN
    }
}

/// The median of `reps` runs of `f` (after 3 untimed ones): (wall, CPU) seconds.
fn median(reps: usize, mut f: impl FnMut()) -> (f64, f64) {
    for _ in 0..3 {
        f();
    }
    let mut times: Vec<(f64, f64)> = (0..reps.max(1))
        .map(|_| {
            let (wall, cpu) = (Instant::now(), cpu_seconds());
            f();
            (wall.elapsed().as_secs_f64(), cpu_seconds() - cpu)
        })
        .collect();
    let mid = times.len() / 2;
    times.sort_by(|a, b| a.0.total_cmp(&b.0));
    let wall = times[mid].0;
    times.sort_by(|a, b| a.1.total_cmp(&b.1));
    (wall, times[mid].1)
}

fn trainer(sizes: &[usize], batch: usize, shard: usize, threads: usize) -> Trainer {
    let net = Network::<f32>::builder(sizes)
        .seed(1)
        .build()
        .expect("a valid network");
    let config = TrainConfig {
        epochs: 1,
        batch_size: batch,
        shard_size: shard,
        optimizer: Optimizer::sgd(0.01),
        ..TrainConfig::default()
    };
    let options = RunOptions {
        threads: Some(threads),
        adaptive_threads: false,
        ..RunOptions::default()
    };
    Trainer::with_options(net, config, options).expect("a valid trainer")
}

fn main() {
    let args = Args::parse();
    let universe = mpi::initialize().expect("MPI initialises once");
    let world = universe.world();
    let (rank, size) = (world.rank(), world.size());
    for (name, sizes, batch, shard) in [
        ("mnist 784-256-128-10", vec![784, 256, 128, 10], 128, 16),
        ("wide 784-1024-1024-10", vec![784, 1024, 1024, 10], 256, 32),
    ] {
        let x = Array2::from_shape_fn((batch, 784), |(i, j)| ((i * 7 + j) % 13) as f32 / 13.0);
        let y = Array2::from_shape_fn((batch, 10), |(i, j)| f32::from(u8::from(i % 10 == j)));
        let mut plain = trainer(&sizes, batch, shard, args.threads);
        let parameters = plain.network().parameter_count();
        let mut step = || {
            plain.step(x.view(), y.view()).expect("a finite step");
        };
        // One rank computes a whole step alone while the others wait.
        let compute = if rank == 0 {
            median(args.reps, &mut step)
        } else {
            (0.0, 0.0)
        };
        world.barrier();
        let mut gradient = vec![0.5f32; parameters];
        let one_way = if size > 1 {
            let mut ping_pong = || match rank {
                0 => {
                    world.process_at_rank(1).send(&gradient[..]);
                    world.process_at_rank(1).receive_into(&mut gradient[..]);
                }
                1 => {
                    world.process_at_rank(0).receive_into(&mut gradient[..]);
                    world.process_at_rank(0).send(&gradient[..]);
                }
                _ => {}
            };
            median(args.reps, &mut ping_pong).0 / 2.0
        } else {
            0.0
        };
        world.barrier();
        let broadcast = median(args.reps, || {
            world.barrier();
            world
                .process_at_rank(size - 1)
                .broadcast_into(&mut gradient[..]);
        })
        .0;
        let mut spread = trainer(&sizes, batch, shard, args.threads);
        spread
            .distribute(MpiTransport::world(&universe))
            .expect("ranks agree");
        let distributed = median(args.reps, || {
            spread.step(x.view(), y.view()).expect("a finite step");
        })
        .0;
        if rank == 0 {
            println!(
                "{}",
                serde_json::json!({
                    "network": name,
                    "parameters": parameters,
                    "gradient_bytes": parameters * 4,
                    "batch": batch,
                    "shards": batch.div_ceil(shard),
                    "ranks": size,
                    "threads": args.threads,
                    "step_wall_s": compute.0,
                    "step_cpu_s": compute.1,
                    "one_way_message_s": one_way,
                    "broadcast_s": broadcast,
                    "distributed_step_s": distributed,
                })
            );
        }
        world.barrier();
    }
}
