//! Validating after each epoch runs where the trainer's work runs: on its own pool with
//! `threads: Some(n)`, on the calling thread alone with `Some(1)`; never on rayon's global
//! pool.
//!
//! Its own test binary, with one test function, for the reason `tests/own_pool.rs` gives: it
//! builds the global pool itself, with sentinels that record any job reaching it.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use lernmi::{Network, Optimizer, RunOptions, TrainConfig, Trainer};
use ndarray::Array2;

const GLOBAL_THREADS: usize = 2;

/// Occupies every thread of the global pool; `escaped` becomes true when one of them runs a
/// job. Returns once every sentinel is running, and stops them when `stop` is set.
fn watch_the_global_pool(escaped: Arc<AtomicBool>, stop: Arc<AtomicBool>) {
    rayon::ThreadPoolBuilder::new()
        .num_threads(GLOBAL_THREADS)
        .build_global()
        .expect("this binary builds the global pool first");
    let running = Arc::new(AtomicUsize::new(0));
    let started = running.clone();
    rayon::spawn_broadcast(move |_| {
        started.fetch_add(1, Ordering::SeqCst);
        while !stop.load(Ordering::SeqCst) {
            if rayon::yield_now() == Some(rayon::Yield::Executed) {
                escaped.store(true, Ordering::SeqCst);
            } else {
                std::thread::sleep(Duration::from_micros(50));
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    while running.load(Ordering::SeqCst) < GLOBAL_THREADS {
        assert!(Instant::now() < deadline, "the sentinels never started");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Two epochs with a validation set of 1000 rows (several evaluation chunks) on a trainer
/// with `threads`; whether any of its work reached the global pool.
fn escapes(threads: usize, escaped: &AtomicBool) -> bool {
    let net = Network::<f32>::builder(&[8, 16, 4])
        .seed(5)
        .build()
        .unwrap();
    let x = Array2::from_shape_fn((1000, 8), |(i, j)| ((i * 7 + j * 3) % 11) as f32 / 11.0);
    let y: Vec<usize> = (0..1000).map(|i| i % 4).collect();
    let config = TrainConfig {
        epochs: 2,
        batch_size: 8,
        shard_size: 4,
        optimizer: Optimizer::sgd(0.01),
        ..TrainConfig::default()
    };
    let options = RunOptions {
        threads: Some(threads),
        ..RunOptions::default()
    };
    let mut trainer = Trainer::with_options(net, config, options).unwrap();
    escaped.store(false, Ordering::SeqCst);
    let train = x.slice(ndarray::s![..16, ..]);
    let reports = trainer
        .fit_with_validation(train, &y[..16], x.view(), &y, &mut ())
        .unwrap();
    assert!(reports.iter().all(|r| r.validation_loss.is_some()));
    std::thread::sleep(Duration::from_millis(50));
    escaped.load(Ordering::SeqCst)
}

#[test]
fn validation_never_uses_the_global_pool() {
    let escaped = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    watch_the_global_pool(escaped.clone(), stop.clone());
    // The detector works: a parallel iterator started here runs on the global pool.
    use rayon::prelude::*;
    let sum: u64 = (0..1000u64).into_par_iter().sum();
    assert_eq!(sum, 499_500);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !escaped.swap(false, Ordering::SeqCst) {
        assert!(Instant::now() < deadline, "the sentinels saw no work");
        std::thread::sleep(Duration::from_millis(1));
    }
    for threads in [1, 3] {
        assert!(
            !escapes(threads, &escaped),
            "validating with threads: Some({threads}) ran work on rayon's global pool"
        );
    }
    stop.store(true, Ordering::SeqCst);
}
