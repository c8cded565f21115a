//! Where a step's work runs: the trainer's own pool (or rayon's global one, or the calling
//! thread alone), the choice between one thread and the pool step by step ([`ThreadChoice`]),
//! and a helper that keeps the pool's threads looking for work through a step of many forks.

use std::time::{Duration, Instant};

use crate::{Error, Result};

/// The threads a trainer computes its shards on.
pub(crate) struct Threads {
    /// A pool of the trainer's own, when it was asked for more than one thread.
    pool: Option<rayon::ThreadPool>,
    /// The thread count asked for (`None`: rayon's global pool).
    asked: Option<usize>,
}

impl Threads {
    /// `Some(1)`: the calling thread alone; `Some(n)`: a pool of n threads; `None`: rayon's
    /// global pool.
    ///
    /// # Errors
    /// [`Error::ThreadPool`] if the pool cannot be built.
    pub(crate) fn new(asked: Option<usize>) -> Result<Self> {
        let pool = match asked {
            Some(n) if n > 1 => Some(
                rayon::ThreadPoolBuilder::new()
                    .num_threads(n)
                    .build()
                    .map_err(|e| Error::ThreadPool(e.to_string()))?,
            ),
            _ => None,
        };
        Ok(Threads { pool, asked })
    }

    /// The number of threads work may be split over.
    pub(crate) fn count(&self) -> usize {
        match (&self.pool, self.asked) {
            (Some(pool), _) => pool.current_num_threads(),
            (None, None) => rayon::current_num_threads(),
            (None, Some(n)) => n,
        }
    }

    /// Whether the trainer has a pool of its own (not rayon's global one).
    pub(crate) fn has_own_pool(&self) -> bool {
        self.pool.is_some()
    }

    /// Runs `work` inside the trainer's pool when there is one and `parallel` is set, else on
    /// the calling thread (whose rayon calls then go to the global pool).
    pub(crate) fn run<R: Send>(&self, parallel: bool, work: impl FnOnce() -> R + Send) -> R {
        match (&self.pool, parallel) {
            (Some(pool), true) => pool.install(work),
            _ => work(),
        }
    }
}

/// Chooses, step by step, between computing a minibatch on one thread or on the pool.
///
/// When other programs keep the other cores busy, waiting for a descheduled worker makes a
/// parallel step slower than a sequential one. Since both give the same bits, the trainer may
/// pick whichever has been faster lately: it keeps a moving average of the time per sample of
/// each, and parallel wins ties within 15 %. The current choice's average follows every step,
/// so a choice that turns slow is dropped at once; the other one is tried now and then to see
/// whether it has turned fast: [`TRIAL_INTERVALS`]`.0` steps after a switch, then at twice the
/// previous interval (up to [`TRIAL_INTERVALS`]`.1` steps) while trials keep confirming the
/// choice, so that trials cost little once the choice is settled.
#[derive(Clone, Debug)]
pub(crate) struct ThreadChoice {
    /// Seconds per sample, sequential and parallel (0 until measured).
    per_sample: [f64; 2],
    steps: u64,
    /// The step of the next trial of the other choice, and the interval that led to it.
    next_trial: u64,
    interval: u64,
    /// The choice when the last trial was made.
    chosen_at_trial: Option<bool>,
}

/// The first and the longest interval between trials of the other choice, in steps.
pub(crate) const TRIAL_INTERVALS: (u64, u64) = (16, 256);

/// How much slower (as a factor) the pool may be than one thread and still be chosen.
const PARALLEL_TOLERANCE: f64 = 1.15;

impl Default for ThreadChoice {
    fn default() -> Self {
        ThreadChoice {
            per_sample: [0.0; 2],
            steps: 0,
            next_trial: TRIAL_INTERVALS.0,
            interval: TRIAL_INTERVALS.0,
            chosen_at_trial: None,
        }
    }
}

impl ThreadChoice {
    /// Whether the next step runs on the pool (true) or on one thread (false).
    pub(crate) fn parallel_next(&mut self) -> bool {
        self.steps += 1;
        let [sequential, parallel] = self.per_sample;
        // Single-step timings are noisy, and a wrong switch to one thread costs more than a
        // wrong stay: one thread must be clearly faster.
        let faster = parallel == 0.0 || parallel <= PARALLEL_TOLERANCE * sequential;
        if self.steps == 2 && sequential == 0.0 {
            // Measure sequential once early on.
            return false;
        }
        if self.steps < self.next_trial {
            return faster;
        }
        let (first, longest) = TRIAL_INTERVALS;
        self.interval = if self.chosen_at_trial == Some(faster) {
            (2 * self.interval).min(longest)
        } else {
            first
        };
        self.chosen_at_trial = Some(faster);
        self.next_trial = self.steps + self.interval;
        !faster
    }

    /// Records how long a step took per sample, on the pool (`parallel`) or on one thread.
    pub(crate) fn record(&mut self, parallel: bool, seconds_per_sample: f64) {
        let slot = &mut self.per_sample[usize::from(parallel)];
        *slot = if *slot == 0.0 {
            seconds_per_sample
        } else {
            0.8 * *slot + 0.2 * seconds_per_sample
        };
    }
}

/// How long a helper of [`keeping_the_pool_awake`] waits for a job before it leaves: longer
/// than the element-wise passes between a step's products.
const HELPER_PATIENCE: Duration = Duration::from_millis(1);

/// Runs `work` on the current rayon pool while its other threads look for jobs instead of
/// sleeping: a one-shard step forks and joins a dozen times, and between those forks a sleeping
/// worker must be woken, which costs far more than a fork when the operating system has given
/// the idle CPU away. The helpers leave when `work` is done, or after [`HELPER_PATIENCE`]
/// without a job.
pub(crate) fn keeping_the_pool_awake<R>(work: impl FnOnce() -> R + Send) -> R
where
    R: Send,
{
    use std::sync::atomic::{AtomicBool, Ordering};
    let done = AtomicBool::new(false);
    let owner = rayon::current_thread_index();
    rayon::scope(|scope| {
        for _ in 1..rayon::current_num_threads() {
            scope.spawn(|_| {
                // A thread may also pick a helper up while it waits in a join of its own; the
                // job it waits for may then need that thread back. The thread running `work`
                // leaves at once (it sets `done`); any other leaves after a while without
                // work, so a helper can delay a step but never hold it up for good.
                if rayon::current_thread_index() == owner {
                    return;
                }
                let mut last_job = Instant::now();
                while !done.load(Ordering::Acquire) {
                    if rayon::yield_now() == Some(rayon::Yield::Executed) {
                        last_job = Instant::now();
                    } else if last_job.elapsed() > HELPER_PATIENCE {
                        return;
                    } else {
                        std::hint::spin_loop();
                    }
                }
            });
        }
        let result = work();
        done.store(true, Ordering::Release);
        result
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `steps` steps whose time per sample is `cost(step, parallel)`; returns the steps
    /// (1-based) on which the choice was `which`.
    fn run(steps: u64, cost: impl Fn(u64, bool) -> f64, which: bool) -> Vec<u64> {
        let mut choice = ThreadChoice::default();
        let mut chosen = Vec::new();
        for step in 1..=steps {
            let parallel = choice.parallel_next();
            if parallel == which {
                chosen.push(step);
            }
            choice.record(parallel, cost(step, parallel));
        }
        chosen
    }

    #[test]
    fn one_thread_is_tried_at_doubling_intervals_while_the_pool_stays_faster() {
        let cost = |_, parallel| if parallel { 1.0 } else { 2.0 };
        // Step 2 measures one thread; then trials 16 steps on, doubling up to 256.
        assert_eq!(run(1000, cost, false), [2, 16, 32, 64, 128, 256, 512, 768]);
    }

    #[test]
    fn a_pool_that_turns_slow_is_dropped_at_once_and_retried_from_the_first_interval() {
        let cost = |step, parallel| match (parallel, step < 100) {
            (true, true) => 1.0,
            (true, false) => 10.0,
            (false, _) => 2.0,
        };
        // Step 100 is slow on the pool: from 101 on one thread runs, and the pool is tried at
        // the trial due at 128, then 16, 32, 64, 128 steps later.
        let pool = run(400, cost, true);
        let after: Vec<u64> = pool.into_iter().filter(|&s| s > 100).collect();
        assert_eq!(after, [128, 144, 176, 240, 368]);
    }

    #[test]
    fn the_pool_wins_ties_within_the_tolerance() {
        for (pool, expected) in [(1.1, true), (1.2, false)] {
            let mut choice = ThreadChoice::default();
            choice.record(false, 1.0);
            choice.record(true, pool);
            // Steps 1 and 3: step 2 would measure one thread if it had not been.
            assert_eq!(choice.parallel_next(), expected, "pool at {pool}");
            choice.parallel_next();
            assert_eq!(choice.parallel_next(), expected, "pool at {pool}");
        }
    }
}
