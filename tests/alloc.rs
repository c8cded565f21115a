//! A training step allocates nothing once its buffers exist.
//!
//! This test binary installs a counting global allocator. Counting is switched on per thread
//! (a thread-local flag), so the asserted windows see only what the measured call does on the
//! calling thread; with `threads: Some(1)` that is the whole step. Parallel steps (rayon) are
//! measured separately by counting on every thread, and only printed.
//!
//! The file holds a single test, so that nothing else in this binary runs during the windows
//! that count on every thread. `cargo test --test alloc -- --nocapture` prints the table of
//! counts; with `LERNMI_ALLOC_BACKTRACE=1` every counted allocation is attributed (inside
//! matrixmultiply or not) and backtraces are printed for the first few of each window and for
//! every allocation made outside matrixmultiply.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use lernmi::data::Augment;
use lernmi::{Activation, Init, Loss, Network, Optimizer, RunOptions, TrainConfig, Trainer};
use ndarray::linalg::general_mat_mul;
use ndarray::{s, Array2};

/// [`System`], counting the allocations (and reallocations) made inside a window.
struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);
/// Count on every thread, not only where the thread-local flag is set.
static COUNT_ALL: AtomicBool = AtomicBool::new(false);
/// Debug mode: capture a backtrace for every counted allocation.
static BACKTRACE: AtomicBool = AtomicBool::new(false);
const BACKTRACES_PER_WINDOW: usize = 3;
/// Counted allocations whose backtrace passes through `matrixmultiply` (debug mode only).
static IN_GEMM: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// This thread is inside a counting window.
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    /// This thread is inside the allocator's own bookkeeping (capturing a backtrace).
    static REENTERED: Cell<bool> = const { Cell::new(false) };
}

impl Counting {
    fn record(&self) {
        let here = COUNTING.try_with(Cell::get).unwrap_or(false);
        if !(here || COUNT_ALL.load(Ordering::Relaxed)) {
            return;
        }
        if REENTERED.try_with(Cell::get).unwrap_or(true) {
            return;
        }
        let seen = ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        if BACKTRACE.load(Ordering::Relaxed) {
            REENTERED.with(|r| r.set(true));
            let trace = std::backtrace::Backtrace::force_capture().to_string();
            let in_gemm = trace.contains("matrixmultiply::");
            if in_gemm {
                IN_GEMM.fetch_add(1, Ordering::Relaxed);
            }
            if seen < BACKTRACES_PER_WINDOW || !in_gemm {
                let thread = std::thread::current();
                let name = thread.name().unwrap_or("?");
                eprintln!("allocation {} on thread {name:?}:\n{trace}", seen + 1);
            }
            REENTERED.with(|r| r.set(false));
        }
    }
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        self.record();
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        self.record();
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        self.record();
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static A: Counting = Counting;

fn reset() {
    ALLOCATIONS.store(0, Ordering::SeqCst);
    IN_GEMM.store(0, Ordering::SeqCst);
}

/// Allocations made by `f` on the calling thread.
fn allocations_here<R>(f: impl FnOnce() -> R) -> usize {
    reset();
    COUNTING.with(|c| c.set(true));
    std::hint::black_box(f());
    COUNTING.with(|c| c.set(false));
    ALLOCATIONS.load(Ordering::SeqCst)
}

/// Allocations made by any thread while `f` runs (rayon's workers included).
fn allocations_anywhere<R>(f: impl FnOnce() -> R) -> usize {
    reset();
    COUNT_ALL.store(true, Ordering::SeqCst);
    std::hint::black_box(f());
    COUNT_ALL.store(false, Ordering::SeqCst);
    ALLOCATIONS.load(Ordering::SeqCst)
}

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

/// Inputs in [0, 1), one-hot targets.
fn data<F: lernmi::Float>(rows: usize, n_in: usize, n_out: usize) -> (Array2<F>, Array2<F>) {
    let mut rng = Rng(7);
    let x = Array2::from_shape_simple_fn((rows, n_in), || F::of(rng.next_f64()));
    let mut y = Array2::zeros((rows, n_out));
    for r in 0..rows {
        y[[r, (r * 7 + 3) % n_out]] = F::one();
    }
    (x, y)
}

const WARM_UP: usize = 2;
/// Steps measured in the asserted windows.
const MEASURED: usize = 20;

/// Allocations of `measured` steps after `WARM_UP` steps, cycling through the minibatches of
/// `x`, counted on the calling thread (`here`) or on every thread.
fn steps<F: lernmi::Float>(
    net: Network<F>,
    (config, options): (TrainConfig, RunOptions),
    (x, y): (&Array2<F>, &Array2<F>),
    measured: usize,
    here: bool,
) -> usize {
    let batch = config.batch_size;
    let batches = x.nrows() / batch;
    let mut trainer = Trainer::with_options(net, config, options).expect("valid config");
    let mut step = |i: usize| {
        let rows = (i % batches) * batch..(i % batches + 1) * batch;
        let x = x.slice(s![rows.clone(), ..]);
        let y = y.slice(s![rows, ..]);
        trainer.step(x, y).expect("finite step");
    };
    for i in 0..WARM_UP {
        step(i);
    }
    let run = || (WARM_UP..WARM_UP + measured).for_each(&mut step);
    if here {
        allocations_here(run)
    } else {
        allocations_anywhere(run)
    }
}

/// Allocations of one `train_epoch` after a warm-up epoch, on the calling thread.
fn epoch<F: lernmi::Float>(
    net: Network<F>,
    (config, options): (TrainConfig, RunOptions),
    (x, y): (&Array2<F>, &Array2<F>),
) -> usize {
    let mut trainer = Trainer::with_options(net, config, options).expect("valid config");
    trainer
        .train_epoch(x.view(), y.view(), &mut ())
        .expect("finite epoch");
    allocations_here(|| {
        trainer
            .train_epoch(x.view(), y.view(), &mut ())
            .expect("finite epoch")
    })
}

/// The `small` benchmark network: 784-128-10, ReLU, softmax, cross-entropy.
fn small() -> Network<f32> {
    Network::<f32>::builder(&[784, 128, 10])
        .build()
        .expect("valid")
}

/// The `lernmi` benchmark network, as `examples/throughput.rs`: sigmoid, squared error.
fn lernmi_f32() -> Network<f32> {
    Network::<f32>::builder(&[784, 15, 10])
        .hidden(Activation::Sigmoid)
        .output(Activation::Sigmoid)
        .loss(Loss::SquaredError)
        .init(Init::Uniform)
        .build()
        .expect("valid")
}

/// The seed's network in the dense engine (input sigmoid too), f64.
fn lernmi_f64() -> Network<f64> {
    Network::<f64>::lernmi_builder(&[784, 15, 10])
        .build()
        .expect("valid")
}

/// Batch 64 in shards of 32, as the `small` benchmark.
fn small_config(optimizer: Optimizer, threads: Option<usize>) -> (TrainConfig, RunOptions) {
    let config = TrainConfig {
        batch_size: 64,
        shard_size: 32,
        optimizer,
        ..TrainConfig::default()
    };
    let options = RunOptions {
        threads,
        ..RunOptions::default()
    };
    (config, options)
}

/// One sample at a time, on the calling thread.
fn lernmi_config(optimizer: Optimizer) -> (TrainConfig, RunOptions) {
    let config = TrainConfig {
        optimizer,
        ..TrainConfig::lernmi()
    };
    (config, RunOptions::one_thread())
}

/// Prints a count, and in debug mode how many of its allocations were in matrixmultiply.
fn report(what: &str, count: usize, note: &str) {
    let gemm = if BACKTRACE.load(Ordering::SeqCst) {
        format!("  ({} in matrixmultiply)", IN_GEMM.load(Ordering::SeqCst))
    } else {
        String::new()
    };
    println!("{what:<50} {count:>6}{gemm}{note}");
}

#[test]
fn training_steps_allocate_nothing_in_steady_state() {
    BACKTRACE.store(
        std::env::var_os("LERNMI_ALLOC_BACKTRACE").is_some_and(|v| v != "0"),
        Ordering::SeqCst,
    );
    let small_data = data::<f32>(256, 784, 10);
    let lernmi_data = data::<f32>(8, 784, 10);
    let seed_data = data::<f64>(8, 784, 10);
    let optimizers = [
        Optimizer::sgd(0.1),
        Optimizer::momentum(0.05, 0.9),
        Optimizer::nesterov(0.05, 0.9),
        Optimizer::adam(1e-3),
    ];

    // The counter works: predicting allocates at least its output array.
    let net = small();
    let x = small_data.0.slice(s![..64, ..]);
    let predict = allocations_here(|| net.predict(x).unwrap());
    report("predict, small, 64 rows (should allocate)", predict, "");
    assert!(predict > 0, "the counter saw no allocation in predict");

    // One of the products a small step makes (a shard's first layer), as `Dense::forward`
    // calls it. Not asserted: it explains the counts below.
    let w = net.layers()[0].weights();
    let x = small_data.0.slice(s![..32, ..]);
    let mut z = Array2::<f32>::zeros((32, 128));
    let gemm = allocations_here(|| general_mat_mul(1.0, &x, &w.t(), 0.0, &mut z));
    report(
        "one general_mat_mul 32x784 . 784x128",
        gemm,
        "  (not asserted)",
    );

    let mut counts: Vec<(String, usize)> = Vec::new();
    let mut count = |what: String, n: usize| {
        report(&what, n, "");
        counts.push((what, n));
    };
    for optimizer in optimizers {
        let name = optimizer.name();
        let config = small_config(optimizer, Some(1));
        count(
            format!("{MEASURED} steps, small, {name}, 1 thread"),
            steps(
                small(),
                config,
                (&small_data.0, &small_data.1),
                MEASURED,
                true,
            ),
        );
        let config = lernmi_config(optimizer);
        count(
            format!("{MEASURED} steps, lernmi f32, {name}"),
            steps(
                lernmi_f32(),
                config.clone(),
                (&lernmi_data.0, &lernmi_data.1),
                MEASURED,
                true,
            ),
        );
        count(
            format!("{MEASURED} steps, lernmi f64 (seed's), {name}"),
            steps(
                lernmi_f64(),
                config,
                (&seed_data.0, &seed_data.1),
                MEASURED,
                true,
            ),
        );
    }
    let sgd = Optimizer::sgd(0.1);
    count(
        "epoch of 256 rows (4 steps), small, sgd, 1 thread".into(),
        epoch(
            small(),
            small_config(sgd, Some(1)),
            (&small_data.0, &small_data.1),
        ),
    );
    count(
        "epoch of 8 rows (8 steps), lernmi f64, sgd".into(),
        epoch(
            lernmi_f64(),
            lernmi_config(sgd),
            (&seed_data.0, &seed_data.1),
        ),
    );
    let regularised = TrainConfig {
        dropout: vec![0.5],
        augment: Some(Augment::shifts(28, 28)),
        ..small_config(sgd, Some(1)).0
    };
    count(
        "epoch of 256 rows, small, sgd, dropout, augmentation".into(),
        epoch(
            small(),
            (regularised, RunOptions::one_thread()),
            (&small_data.0, &small_data.1),
        ),
    );

    // Parallel steps, every thread counted (rayon's workers too): reported, not asserted.
    for threads in [Some(2), None] {
        for measured in [MEASURED, 200] {
            let config = small_config(sgd, threads);
            let data = (&small_data.0, &small_data.1);
            let n = steps(small(), config, data, measured, false);
            let what = format!("{measured} steps, small, sgd, threads {threads:?}");
            report(&what, n, "  (all threads, not asserted)");
        }
    }

    let allocating: Vec<_> = counts.iter().filter(|(_, n)| *n > 0).collect();
    assert!(
        allocating.is_empty(),
        "steady-state training allocated: {allocating:?} \
         (rerun with LERNMI_ALLOC_BACKTRACE=1 -- --nocapture to see where)"
    );
}
