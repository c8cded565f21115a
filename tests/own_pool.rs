//! A trainer with `threads: Some(n)` runs all of its work on its own pool, never on rayon's
//! global one.
//!
//! This file is its own test binary so that it can build the global pool itself: two threads,
//! each kept busy by a sentinel that runs whatever job reaches the global pool and records it.
//! Any rayon work started outside the trainer's pool (a parallel product called from the
//! test's thread, say) is injected into the global pool and is run, and seen, by a sentinel.
//! One test function only, so that no other test's work reaches the global pool meanwhile.

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
            // Runs a job waiting in the global pool, if any (a sentinel's own broadcast job is
            // already running, so anything found came from elsewhere).
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

/// A batch of `rows` one-hot samples for an (8 → 4) network.
fn batch(rows: usize) -> (Array2<f32>, Array2<f32>) {
    let x = Array2::from_shape_fn((rows, 8), |(i, j)| ((i * 7 + j * 3) % 11) as f32 / 11.0);
    let y = Array2::from_shape_fn((rows, 4), |(i, j)| f32::from(u8::from(i % 4 == j)));
    (x, y)
}

/// Runs steps of `rows[0]`, `rows[1]`, … rows on a fresh 2-thread trainer (adaptive, so the
/// trainer picks one thread or the pool step by step) and reports whether any of its work
/// reached the global pool.
fn escapes(rows: &[usize], escaped: &AtomicBool) -> bool {
    // A hidden layer wide enough (≥ 128) that its products split when asked to.
    let net = Network::<f32>::builder(&[8, 256, 4])
        .seed(5)
        .build()
        .unwrap();
    let config = TrainConfig {
        batch_size: 8,
        shard_size: 4,
        optimizer: Optimizer::sgd(0.01),
        ..TrainConfig::default()
    };
    let options = RunOptions {
        threads: Some(2),
        ..RunOptions::default()
    };
    let mut trainer = Trainer::with_options(net, config, options).unwrap();
    escaped.store(false, Ordering::SeqCst);
    for &r in rows {
        let (x, y) = batch(r);
        trainer.step(x.view(), y.view()).unwrap();
    }
    // Give a sentinel that ran an escaped job the moment it needs to record it.
    std::thread::sleep(Duration::from_millis(50));
    escaped.load(Ordering::SeqCst)
}

#[test]
fn a_trainer_with_its_own_pool_never_uses_the_global_pool() {
    let escaped = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    watch_the_global_pool(escaped.clone(), stop.clone());
    // The detector works: a parallel iterator started here runs on the global pool.
    use rayon::prelude::*;
    let sum: u64 = (0..1000u64).into_par_iter().sum();
    assert_eq!(sum, 499_500);
    // A sentinel records the job after running it, so the flag may trail the result.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !escaped.swap(false, Ordering::SeqCst) {
        assert!(
            Instant::now() < deadline,
            "the sentinels did not see work on the global pool"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    // A short batch (one shard: its products split over the trainer's pool), then full
    // batches of two shards, the first of them computed on the calling thread (the adaptive
    // trainer measures one thread on its second step): that shard's products must not be
    // split any more. And a one-row step (the fused per-sample path) after a short batch.
    let cases: [&[usize]; 2] = [&[3, 8, 8, 8], &[3, 1]];
    for rows in cases {
        assert!(
            !escapes(rows, &escaped),
            "steps of {rows:?} rows ran work on rayon's global pool, outside the trainer's"
        );
    }
    stop.store(true, Ordering::SeqCst);
}
