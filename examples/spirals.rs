//! Writes a classification problem of known answer as CSV, for trying `own_data` and for CI:
//! two interleaved spirals in the plane, `x,y,label` with label 0 or 1.
//!
//! ```text
//! cargo run --release --example spirals -- --out DIR [--train 2000] [--test 1000] [--noise 0.02]
//! ```
//!
//! writes `DIR/train.csv` and `DIR/test.csv`. No straight line separates the classes: a
//! network learns them only through its hidden layers. The coordinates are shifted and scaled
//! apart (x around 500, y in thousandths), as the columns of real tables often are; own_data
//! standardises them before training.

use std::fmt::Write as _;
use std::path::PathBuf;

use clap::Parser;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

#[path = "support/mod.rs"]
mod support;

#[derive(Parser, Debug)]
#[command(about = "Write two interleaved spirals as train.csv and test.csv")]
struct Args {
    /// Directory to write train.csv and test.csv into (created if missing).
    #[arg(long)]
    out: PathBuf,
    /// Training samples.
    #[arg(long, default_value_t = 2000)]
    train: usize,
    /// Test samples.
    #[arg(long, default_value_t = 1000)]
    test: usize,
    /// Standard deviation of the noise added to each point, relative to the spirals' radius.
    #[arg(long, default_value_t = 0.02)]
    noise: f64,
    /// Turns of each spiral.
    #[arg(long, default_value_t = 1.5)]
    turns: f64,
    /// Seed of the generator.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

fn main() {
    support::quiet_broken_pipe();
    support::exit_on_error(run(&Args::parse()));
}

fn run(args: &Args) -> Result<(), Box<dyn std::error::Error>> {
    std::fs::create_dir_all(&args.out)?;
    let mut rng = ChaCha8Rng::seed_from_u64(args.seed);
    for (name, count) in [("train.csv", args.train), ("test.csv", args.test)] {
        let path = args.out.join(name);
        std::fs::write(&path, spirals_csv(count, args, &mut rng))?;
        println!("wrote {} ({count} samples)", path.display());
    }
    Ok(())
}

/// `count` points, alternately of spiral 0 and spiral 1, as CSV with a header.
fn spirals_csv(count: usize, args: &Args, rng: &mut ChaCha8Rng) -> String {
    let mut csv = String::from("x,y,label\n");
    for i in 0..count {
        let label = i % 2;
        // Uniform in the radius from near the centre to 1; the angle grows with the radius,
        // and the second spiral is the first turned by half a turn.
        let r: f64 = rng.random_range(0.05..1.0);
        let angle = r * args.turns * std::f64::consts::TAU + label as f64 * std::f64::consts::PI;
        let x = r * angle.cos() + args.noise * normal(rng);
        let y = r * angle.sin() + args.noise * normal(rng);
        let _ = writeln!(csv, "{:.6},{:.9},{label}", 500.0 + 100.0 * x, 0.001 * y);
    }
    csv
}

/// A standard normal draw (Box–Muller).
fn normal(rng: &mut ChaCha8Rng) -> f64 {
    let u: f64 = rng.random_range(f64::EPSILON..1.0);
    let v: f64 = rng.random();
    (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
}
