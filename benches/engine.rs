//! Criterion benchmarks of the dense engine, on synthetic deterministic data (no MNIST needed).
//!
//! Groups (throughput in samples/s unless noted):
//!
//! - `train_step`: one [`Trainer::step`] on one minibatch, for the benchmark configurations of
//!   `examples/throughput.rs`: `small` (784-128-10 ReLU, softmax cross-entropy, SGD 0.1, batch
//!   64, one shard of 64 (parallel products)), `wide` (784-1024-1024-10, SGD 0.05, batch 256, one shard of 256 (parallel products)) and
//!   `lernmi` (784-15-10 sigmoid, squared error, SGD 0.1, batch 1). `threads=1` runs on the
//!   calling thread; `threads=all` uses rayon's global pool (every core).
//! - `graph_vs_engine`: learning one sample on 784-15-10, Lernmi's object graph
//!   ([`lernmi::graph::Network::learn`]) against the dense engine ([`Trainer::step`], f64,
//!   [`TrainConfig::lernmi`]), on the same input: raw bytes through the input sigmoid (the
//!   seed's setting), then values in [0, 1) without it.
//! - `inference`: [`Network::predict`] on batches of 1, 32, 128 and 1000 rows, `small` config.
//! - `matmul`: the raw matrix products on training shapes: `ndarray::linalg::general_mat_mul`
//!   (the `matrixmultiply` crate) beside the crate's own [`lernmi::fast::gemm::gemm`], f32 (and
//!   f64 on two shapes); then the other products of a wide step (`wide_*`). `LERNMI_KERNEL`
//!   picks the family the crate's products run on. **Throughput here counts
//!   floating-point operations (2·m·n·k per product), so criterion's "elem/s" reads as FLOP/s.**
//!   `matmul/fma_peak/FAMILY_TYPE` is this core's FMA peak measured in the same run, for each
//!   SIMD family the CPU runs (AVX-512, AVX2, NEON) and f32/f64: independent fused
//!   multiply-adds in registers, no memory (`examples/support/peak.rs`). On a shared machine the
//!   peak itself moves, so read the products as a fraction of the peak of the same run.
//!
//! Run everything with `cargo bench --bench engine`, one group with
//! `cargo bench --bench engine -- train_step`, a fast smoke run with `-- --quick`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkGroup, Criterion, Throughput};
use criterion::{measurement::WallTime, BenchmarkId, SamplingMode};
use lernmi::{Activation, Float, Init, Loss, Network, Optimizer, RunOptions, TrainConfig, Trainer};
use ndarray::linalg::general_mat_mul;

#[allow(dead_code)] // only the FMA loops are used here, not the timing helper
#[path = "../examples/support/peak.rs"]
mod peak;
use ndarray::{s, Array2, ArrayView2, ShapeBuilder};

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

/// `rows` synthetic samples: inputs in [0, 1) like MNIST pixels, one-hot targets.
fn data<F: Float>(rows: usize, n_in: usize, n_out: usize, seed: u64) -> (Array2<F>, Array2<F>) {
    let mut rng = Rng(seed);
    let x = Array2::from_shape_simple_fn((rows, n_in), || F::of(rng.next_f64()));
    let mut y = Array2::zeros((rows, n_out));
    for r in 0..rows {
        let class = (rng.next_f64() * n_out as f64) as usize;
        y[[r, class.min(n_out - 1)]] = F::one();
    }
    (x, y)
}

/// A benchmark configuration of `examples/throughput.rs`.
struct Config {
    name: &'static str,
    sizes: &'static [usize],
    learning_rate: f64,
    batch: usize,
    shard: usize,
}

const SMALL: Config = Config {
    name: "small",
    sizes: &[784, 128, 10],
    learning_rate: 0.1,
    batch: 64,
    shard: 64,
};
const WIDE: Config = Config {
    name: "wide",
    sizes: &[784, 1024, 1024, 10],
    learning_rate: 0.05,
    batch: 256,
    shard: 256,
};
const LERNMI: Config = Config {
    name: "lernmi",
    sizes: &[784, 15, 10],
    learning_rate: 0.1,
    batch: 1,
    shard: 1,
};

impl Config {
    /// The network: builder defaults (ReLU, softmax, cross-entropy) except for `lernmi`, which
    /// is sigmoid with squared error, as in the throughput example.
    fn network(&self) -> Network<f32> {
        let builder = Network::<f32>::builder(self.sizes);
        let builder = if self.name == "lernmi" {
            builder
                .hidden(Activation::Sigmoid)
                .output(Activation::Sigmoid)
                .loss(Loss::SquaredError)
                .init(Init::Uniform)
        } else {
            builder
        };
        builder.build().expect("valid network")
    }

    fn train_config(&self) -> TrainConfig {
        TrainConfig {
            batch_size: self.batch,
            shard_size: self.shard,
            optimizer: Optimizer::sgd(self.learning_rate),
            ..TrainConfig::default()
        }
    }
}

/// Faster settings than criterion's defaults, so the whole suite runs in about a minute or two.
fn quick(group: &mut BenchmarkGroup<'_, WallTime>) {
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2));
}

/// Number of distinct minibatches the step benchmarks cycle through.
const BATCHES: usize = 4;

fn train_step(c: &mut Criterion) {
    let mut group = c.benchmark_group("train_step");
    quick(&mut group);
    // A wide step takes tens of milliseconds: time each iteration alike, not a linear ramp.
    group.sampling_mode(SamplingMode::Flat);
    let cases = [
        (&SMALL, Some(1), "threads=1"),
        (&SMALL, None, "threads=all"),
        (&WIDE, Some(1), "threads=1"),
        (&WIDE, None, "threads=all"),
        (&LERNMI, Some(1), "threads=1"),
    ];
    for (config, threads, label) in cases {
        let options = RunOptions {
            threads,
            ..RunOptions::default()
        };
        let mut trainer = Trainer::with_options(config.network(), config.train_config(), options)
            .expect("valid config");
        let n_in = config.sizes[0];
        let n_out = *config.sizes.last().expect("sizes");
        let (x, y) = data::<f32>(config.batch * BATCHES, n_in, n_out, 1);
        let mut batch = 0;
        group.throughput(Throughput::Elements(config.batch as u64));
        group.bench_function(BenchmarkId::new(config.name, label), |b| {
            b.iter(|| {
                let rows = batch * config.batch..(batch + 1) * config.batch;
                batch = (batch + 1) % BATCHES;
                let x = x.slice(s![rows.clone(), ..]);
                let y = y.slice(s![rows, ..]);
                black_box(trainer.step(x, y).expect("finite step"))
            })
        });
    }
    group.finish();
}

fn graph_vs_engine(c: &mut Criterion) {
    let mut group = c.benchmark_group("graph_vs_engine");
    quick(&mut group);
    group.throughput(Throughput::Elements(1));
    let sizes = [784, 15, 10];
    // The seed's setting: raw pixel bytes 0..=255 through the input sigmoid.
    let (unit, y) = data::<f64>(1, sizes[0], sizes[2], 2);
    let x = unit.mapv(|v| (v * 256.0).floor());
    let (x_row, y_row) = (x.row(0).to_vec(), y.row(0).to_vec());

    let mut graph = lernmi::graph::Network::new(&sizes).expect("valid graph");
    group.bench_function("graph_learn", |b| {
        b.iter(|| black_box(graph.learn(black_box(&x_row), black_box(&y_row)).unwrap()))
    });

    // The same network (weights, input sigmoid, squared error) in the dense engine.
    let net = lernmi::graph::Network::new(&sizes)
        .and_then(|g| g.to_dense())
        .expect("valid network");
    let seeds = RunOptions::one_thread();
    let mut trainer =
        Trainer::with_options(net, TrainConfig::lernmi(), seeds).expect("valid config");
    group.bench_function("engine_step", |b| {
        b.iter(|| black_box(trainer.step(x.view(), y.view()).unwrap()))
    });

    // Without the seed's input sigmoid, on inputs in [0, 1): the graph calls no `exp` for its
    // inputs, and the engine's step is all products and the update.
    let (x, x_row) = (unit.clone(), unit.row(0).to_vec());
    let options = lernmi::graph::GraphOptions {
        input_sigmoid: false,
        ..Default::default()
    };
    let mut graph = lernmi::graph::Network::with_options(&sizes, options).expect("valid graph");
    group.bench_function("graph_learn_no_input_sigmoid", |b| {
        b.iter(|| black_box(graph.learn(black_box(&x_row), black_box(&y_row)).unwrap()))
    });
    let net = lernmi::graph::Network::with_options(&sizes, options)
        .and_then(|g| g.to_dense())
        .expect("valid network");
    let mut trainer =
        Trainer::with_options(net, TrainConfig::lernmi(), seeds).expect("valid config");
    group.bench_function("engine_step_no_input_sigmoid", |b| {
        b.iter(|| black_box(trainer.step(x.view(), y.view()).unwrap()))
    });
    group.finish();
}

fn inference(c: &mut Criterion) {
    let mut group = c.benchmark_group("inference");
    quick(&mut group);
    let net = SMALL.network();
    for rows in [1, 32, 128, 1000] {
        let (x, _) = data::<f32>(rows, SMALL.sizes[0], 10, 3);
        group.throughput(Throughput::Elements(rows as u64));
        group.bench_with_input(BenchmarkId::new("small_predict", rows), &x, |b, x| {
            b.iter(|| black_box(net.predict(x.view()).unwrap()))
        });
    }
    group.finish();
}

fn matmul(c: &mut Criterion) {
    let mut group = c.benchmark_group("matmul");
    quick(&mut group);
    // (rows, n_in, n_out): Z = X·Wᵀ with X (rows × n_in) and W (n_out × n_in) stored
    // column-major, exactly as `Dense::forward` hands them to `general_mat_mul`. 256 and 64 rows
    // are the wide and small minibatches; 64 and 32 rows their shards, which is what a training
    // step actually multiplies.
    let shapes = [
        (256, 784, 1024),
        (64, 784, 1024),
        (64, 784, 128),
        (32, 784, 128),
    ];
    for (m, k, n) in shapes {
        let (x, _) = data::<f32>(m, k, 1, 4);
        let w = weights::<f32>(n, k);
        let mut z = Array2::<f32>::zeros((m, n));
        group.throughput(Throughput::Elements((2 * m * n * k) as u64));
        let id = BenchmarkId::new("flops_f32", format!("{m}x{k}x{n}"));
        group.bench_function(id, |b| {
            b.iter(|| general_mat_mul(1.0, &x, &w.t(), 0.0, black_box(&mut z)))
        });
        bench_gemm(&mut group, "lernmi_gemm_flops_f32", x.view(), w.t());
        if (m, n) == (256, 1024) || (m, n) == (64, 128) {
            let (x, _) = data::<f64>(m, k, 1, 4);
            bench_gemm(
                &mut group,
                "lernmi_gemm_flops_f64",
                x.view(),
                weights(n, k).t(),
            );
        }
    }
    // The rest of a wide step (784-1024-1024-10, 256 rows): the second layer's X·Wᵀ, its input
    // sensitivities Δ·W, and the weight gradients Gᵀ = Aᵀ·Δ of both layers, in the layouts
    // `Dense` hands over (A and Δ row-major, W column-major).
    let (a1, _) = data::<f32>(256, 1024, 1, 6);
    let (x0, _) = data::<f32>(256, 784, 1, 7);
    let (delta, _) = data::<f32>(256, 1024, 1, 8);
    let w2 = weights::<f32>(1024, 1024);
    bench_gemm(&mut group, "wide_forward_f32", a1.view(), w2.t());
    bench_gemm(
        &mut group,
        "wide_sensitivities_f32",
        delta.view(),
        w2.view(),
    );
    bench_gemm(&mut group, "wide_gradients_f32", a1.t(), delta.view());
    bench_gemm(&mut group, "wide_gradients_f32", x0.t(), delta.view());
    for peak in peak::available() {
        const STEPS: usize = 10_000;
        group.throughput(Throughput::Elements(
            (peak.flops_per_step * STEPS as f64) as u64,
        ));
        let id = BenchmarkId::new("fma_peak", peak.name);
        group.bench_function(id, |b| b.iter(|| (peak.run)(black_box(STEPS))));
    }
    group.finish();
}

/// Random weights in [−0.5, 0.5) of an (n_out × n_in) layer, stored input by input
/// (column-major), as `Dense` keeps them.
fn weights<F: Float>(n_out: usize, n_in: usize) -> Array2<F> {
    let mut rng = Rng(5);
    Array2::from_shape_simple_fn((n_out, n_in).f(), || F::of(rng.next_f64() - 0.5))
}

/// Times `lernmi::fast::gemm::gemm` on C = A·B (C row-major), as `NAME/MxKxN` in FLOP/s.
fn bench_gemm<F: Float>(
    group: &mut BenchmarkGroup<'_, WallTime>,
    name: &str,
    a: ArrayView2<'_, F>,
    b: ArrayView2<'_, F>,
) {
    let (m, k, n) = (a.nrows(), a.ncols(), b.ncols());
    let mut c = Array2::<F>::zeros((m, n));
    let mut packing = lernmi::fast::gemm::Packing::default();
    group.throughput(Throughput::Elements((2 * m * n * k) as u64));
    let id = BenchmarkId::new(name, format!("{m}x{k}x{n}"));
    group.bench_function(id, |bench| {
        bench.iter(|| {
            let mut c = c.view_mut();
            lernmi::fast::gemm::gemm(&a, &b, F::zero(), black_box(&mut c), &mut packing)
        })
    });
}

criterion_group!(benches, train_step, graph_vs_engine, inference, matmul);
criterion_main!(benches);
