//! Prediction latency of the MNIST network (784-256-128-10, ReLU, softmax, f32), for
//! applications, beside ONNX Runtime's on the same network exported to ONNX.
//!
//! Groups (criterion's time per iteration is the latency of one call):
//!
//! - `latency/predict_into/{1,1000}`: [`Network::predict_into`] with a ready
//!   [`PredictScratch`], on the calling thread: no allocation, no other thread.
//! - `latency/predict/{1,1000}`: [`Network::predict`], which allocates its result and runs
//!   256-row chunks on rayon's global pool (every core).
//!
//! The bench first exports the network it times to `target/inference-bench/mnist.onnx`, so
//! that ONNX Runtime can be timed on exactly these weights in the same run:
//!
//! ```text
//! cargo bench --bench inference
//! target/pyenv/bin/python benches/onnx_latency.py target/inference-bench/mnist.onnx
//! ```
//!
//! `benches/onnx_latency.py` times ONNX Runtime at batch 1 and 1000 with a single-threaded
//! session (the match for `predict_into`) and with its default threads (the match for
//! `predict`). Inputs are in [0, 1), like MNIST pixels, for both.

use std::hint::black_box;
use std::path::PathBuf;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use lernmi::{Network, PredictScratch};
use ndarray::{s, Array2};

/// Deterministic pseudo-random numbers in [0, 1) (SplitMix64).
struct Rng(u64);

impl Rng {
    fn next_f64(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// The batch sizes timed: one sample (an application answering one request) and 1000.
const BATCHES: [usize; 2] = [1, 1000];

fn mnist_network() -> Network {
    Network::<f32>::builder(&[784, 256, 128, 10])
        .seed(1)
        .build()
        .expect("a valid architecture")
}

/// Where the exported network goes: `target/inference-bench/mnist.onnx` in the repository.
fn onnx_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/inference-bench/mnist.onnx")
}

fn latency(c: &mut Criterion) {
    let net = mnist_network();
    let path = onnx_path();
    std::fs::create_dir_all(path.parent().expect("a directory")).expect("creating the directory");
    net.save_onnx(&path).expect("exporting the network");
    eprintln!("exported the timed network to {}", path.display());

    let mut rng = Rng(7);
    let inputs = Array2::from_shape_simple_fn((1000, 784), || rng.next_f64() as f32);
    let mut outputs = Array2::zeros((1000, 10));
    let mut scratch: PredictScratch = net.predict_scratch(1000);

    let mut group = c.benchmark_group("latency");
    group
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    for rows in BATCHES {
        group.throughput(Throughput::Elements(rows as u64));
        let x = inputs.slice(s![..rows, ..]);
        group.bench_function(BenchmarkId::new("predict_into", rows), |b| {
            b.iter(|| {
                net.predict_into(
                    black_box(x),
                    outputs.slice_mut(s![..rows, ..]),
                    &mut scratch,
                )
                .expect("valid shapes")
            })
        });
        group.bench_function(BenchmarkId::new("predict", rows), |b| {
            b.iter(|| net.predict(black_box(x)).expect("valid shapes"))
        });
    }
    group.finish();
}

criterion_group!(benches, latency);
criterion_main!(benches);
