//! Data-parallel training over fake ranks (threads talking through channels, no MPI): the
//! weights and losses are bit-identical to one plain trainer's for any number of ranks.

mod common;

use std::any::Any;
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError, Sender};
use std::time::Duration;

use common::TestRng;
use lernmi::train::reduce::{shard_range, Value};
use lernmi::train::Transport;
use lernmi::{Activation, Error, Network, Optimizer, RunOptions, Schedule, TrainConfig, Trainer};
use ndarray::Array2;

type Message = Box<dyn Any + Send>;

/// One fake rank: a channel to and from every other rank.
struct ThreadTransport {
    rank: usize,
    to: Vec<Sender<Message>>,
    from: Vec<Receiver<Message>>,
}

/// `n` connected fake ranks.
fn fake_ranks(n: usize) -> Vec<ThreadTransport> {
    let mut to: Vec<Vec<Sender<Message>>> = (0..n).map(|_| Vec::new()).collect();
    let mut from: Vec<Vec<Receiver<Message>>> = (0..n).map(|_| Vec::new()).collect();
    for sender in to.iter_mut() {
        for receiver in from.iter_mut() {
            let (s, r) = channel();
            sender.push(s);
            receiver.push(r);
        }
    }
    // to[a][b] sends from a to b, received by from[b][a].
    to.into_iter()
        .zip(from)
        .enumerate()
        .map(|(rank, (to, from))| ThreadTransport { rank, to, from })
        .collect()
}

impl ThreadTransport {
    fn error(&self, problem: String) -> Error {
        Error::Distributed {
            rank: self.rank,
            problem,
        }
    }
}

impl Transport for ThreadTransport {
    fn rank(&self) -> usize {
        self.rank
    }

    fn size(&self) -> usize {
        self.to.len()
    }

    fn send<T: Value>(&mut self, to: usize, values: &[T]) -> lernmi::Result<()> {
        self.to[to]
            .send(Box::new(values.to_vec()))
            .map_err(|_| self.error(format!("rank {to} is gone")))
    }

    fn receive<T: Value>(&mut self, from: usize, values: &mut [T]) -> lernmi::Result<()> {
        // A generous timeout turns a deadlock into a failure instead of a hung test.
        let message = match self.from[from].recv_timeout(Duration::from_secs(120)) {
            Ok(m) => m,
            Err(RecvTimeoutError::Timeout) => return Err(self.error("timed out".into())),
            Err(RecvTimeoutError::Disconnected) => {
                return Err(self.error(format!("rank {from} is gone")))
            }
        };
        match message.downcast::<Vec<T>>() {
            Ok(v) if v.len() == values.len() => {
                values.copy_from_slice(&v);
                Ok(())
            }
            _ => Err(self.error(format!("unexpected message from rank {from}"))),
        }
    }

    fn broadcast<T: Value>(&mut self, root: usize, values: &mut [T]) -> lernmi::Result<()> {
        if self.rank == root {
            for other in (0..self.size()).filter(|&r| r != root) {
                self.send(other, values)?;
            }
            Ok(())
        } else {
            self.receive(root, values)
        }
    }
}

fn data(rows: usize) -> (Array2<f32>, Array2<f32>) {
    let mut rng = TestRng(17);
    let x = Array2::from_shape_simple_fn((rows, 12), || rng.next_f64() as f32);
    let mut y = Array2::zeros((rows, 3));
    for (i, row) in x.rows().into_iter().enumerate() {
        let c = (0..3).max_by(|&a, &b| row[a].total_cmp(&row[b])).unwrap();
        y[[i, c]] = 1.0;
    }
    (x, y)
}

fn network(seed: u64) -> Network<f32> {
    Network::<f32>::builder(&[12, 40, 30, 3])
        .hidden(Activation::Tanh)
        .seed(seed)
        .build()
        .unwrap()
}

/// Batches of 100 rows in 7 shards of 16 (the last 4); 1030 rows end on a batch of 30 rows,
/// 2 shards, so with 3 or more ranks some ranks have no shard in it.
fn config(optimizer: Optimizer) -> TrainConfig {
    TrainConfig {
        epochs: 2,
        batch_size: 100,
        shard_size: 16,
        optimizer,
        schedule: Schedule::Cosine { floor: 0.1 },
        weight_decay: 1e-4,
        seed: 9,
        ..TrainConfig::default()
    }
}

/// The trained network and the per-epoch losses.
type Trained = (Network<f32>, Vec<f64>);

fn plain(optimizer: Optimizer) -> Trained {
    plain_with(config(optimizer))
}

fn plain_with(config: TrainConfig) -> Trained {
    let (x, y) = data(1030);
    let mut trainer = Trainer::new(network(4), config).unwrap();
    let reports = trainer.fit(x.view(), y.view(), &mut ()).unwrap();
    let losses = reports.iter().map(|r| r.train_loss).collect();
    (trainer.into_network(), losses)
}

/// Trains on every fake rank; rank r's network is built from `seeds[r]`.
fn on_ranks(optimizer: Optimizer, seeds: &[u64]) -> Vec<lernmi::Result<Trained>> {
    on_ranks_scaled(optimizer, seeds, 1.0)
}

/// [`on_ranks`] with the inputs multiplied by `scale`.
fn on_ranks_scaled(
    optimizer: Optimizer,
    seeds: &[u64],
    scale: f32,
) -> Vec<lernmi::Result<Trained>> {
    on_ranks_with(config(optimizer), seeds, scale)
}

/// [`on_ranks_scaled`] with any configuration.
fn on_ranks_with(config: TrainConfig, seeds: &[u64], scale: f32) -> Vec<lernmi::Result<Trained>> {
    let threads: Vec<_> = fake_ranks(seeds.len())
        .into_iter()
        .zip(seeds.to_vec())
        .map(|(transport, seed)| {
            let config = config.clone();
            std::thread::spawn(move || {
                let (x, y) = data(1030);
                let x = x * scale;
                let options = RunOptions {
                    threads: Some(1 + transport.rank % 2),
                    ..RunOptions::default()
                };
                let mut trainer = Trainer::with_options(network(seed), config, options)?;
                trainer.distribute(transport)?;
                let reports = trainer.fit(x.view(), y.view(), &mut ())?;
                let losses = reports.iter().map(|r| r.train_loss).collect();
                Ok((trainer.into_network(), losses))
            })
        })
        .collect();
    threads.into_iter().map(|t| t.join().unwrap()).collect()
}

fn assert_bit_identical(expected: &Trained, got: &Trained, what: &str) {
    let bits = |net: &Network<f32>| -> Vec<u32> {
        net.layers()
            .iter()
            .flat_map(|l| {
                l.weights()
                    .iter()
                    .chain(l.biases().iter())
                    .map(|w| w.to_bits())
                    .collect::<Vec<_>>()
            })
            .collect()
    };
    assert!(bits(&expected.0) == bits(&got.0), "{what}: weights differ");
    let loss_bits = |l: &[f64]| l.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
    assert_eq!(
        loss_bits(&expected.1),
        loss_bits(&got.1),
        "{what}: losses differ"
    );
}

#[test]
fn weights_are_bit_identical_for_1_2_3_and_8_ranks() {
    for optimizer in [Optimizer::adam(3e-3), Optimizer::momentum(0.05, 0.9)] {
        let expected = plain(optimizer);
        for ranks in [1, 2, 3, 8] {
            for (rank, result) in on_ranks(optimizer, &vec![4; ranks]).into_iter().enumerate() {
                let got = result.unwrap();
                let what = format!("{} rank {rank} of {ranks}", optimizer.name());
                assert_bit_identical(&expected, &got, &what);
            }
        }
    }
}

#[test]
fn dropout_masks_are_the_same_on_any_number_of_ranks() {
    // The masks are keyed by each row's index in the data set, not by rank or thread.
    let dropout = TrainConfig {
        dropout: vec![0.25, 0.25],
        ..config(Optimizer::adam(3e-3))
    };
    let expected = plain_with(dropout.clone());
    let without = plain(Optimizer::adam(3e-3));
    assert!(expected.0 != without.0, "dropout changed nothing");
    for ranks in [2, 3] {
        for (rank, result) in on_ranks_with(dropout.clone(), &vec![4; ranks], 1.0)
            .into_iter()
            .enumerate()
        {
            let what = format!("dropout, rank {rank} of {ranks}");
            assert_bit_identical(&expected, &result.unwrap(), &what);
        }
    }
}

#[test]
fn training_changes_the_weights() {
    // Guards the test above against comparing two untrained networks.
    let (trained, _) = plain(Optimizer::adam(3e-3));
    assert!(trained != network(4));
}

#[test]
fn a_rank_with_another_network_stops_every_rank_alike() {
    let results = on_ranks(Optimizer::adam(3e-3), &[4, 4, 5]);
    for (rank, result) in results.into_iter().enumerate() {
        match result {
            Err(Error::Distributed { rank: r, problem }) => {
                assert_eq!(r, rank);
                assert!(problem.contains("rank 2 has another network"), "{problem}");
            }
            other => panic!(
                "rank {rank}: expected a distributed error, got {:?}",
                other.map(|_| ())
            ),
        }
    }
}

#[test]
fn divergence_stops_every_rank_with_the_same_error() {
    // Huge inputs and rate overflow the weights within a few steps, on every rank alike.
    let results = on_ranks_scaled(Optimizer::sgd(1e4), &[4, 4, 4], 1e36);
    let errors: Vec<String> = results
        .into_iter()
        .map(|r| match r {
            Err(e @ Error::Diverged { .. }) => e.to_string(),
            other => panic!("expected divergence, got {:?}", other.map(|_| ())),
        })
        .collect();
    let (x, y) = data(1030);
    let mut trainer = Trainer::new(network(4), config(Optimizer::sgd(1e4))).unwrap();
    let alone = trainer
        .fit((x * 1e36).view(), y.view(), &mut ())
        .unwrap_err();
    assert!(
        errors.iter().all(|e| *e == alone.to_string()),
        "{errors:?} vs {alone}"
    );
}

#[test]
fn a_rank_that_is_gone_is_an_error_not_a_hang() {
    let threads: Vec<_> = fake_ranks(3)
        .into_iter()
        .map(|transport| {
            std::thread::spawn(move || {
                let (x, y) = data(1030);
                let rank = transport.rank;
                let mut trainer = Trainer::new(network(4), config(Optimizer::adam(3e-3)))?;
                trainer.distribute(transport)?;
                if rank == 2 {
                    // The last rank leaves after joining, its channels closing.
                    return Ok(None);
                }
                trainer.fit(x.view(), y.view(), &mut ()).map(Some)
            })
        })
        .collect();
    for (rank, thread) in threads.into_iter().enumerate() {
        match thread.join().unwrap() {
            Ok(None) => assert_eq!(rank, 2),
            Err(Error::Distributed { rank: r, .. }) => assert_eq!(r, rank),
            Err(e) => panic!("rank {rank}: {e}"),
            Ok(Some(_)) => panic!("rank {rank} trained without rank 2"),
        }
    }
}

#[test]
fn shard_ranges_tile_the_shards_in_rank_order() {
    for ranks in 1..=9 {
        for shards in 1..=20 {
            let mut next = 0;
            for rank in 0..ranks {
                let range = shard_range(rank, ranks, shards);
                assert_eq!(range.start, next);
                assert!(range.len() <= shards.div_ceil(ranks));
                next = range.end;
            }
            assert_eq!(next, shards, "{ranks} ranks, {shards} shards");
        }
    }
}

/// Compile-time: a trainer that trains data-parallel can still move to another thread.
#[test]
fn a_distributed_trainer_is_send() {
    fn send<T: Send>(_: &T) {}
    let mut trainer = Trainer::new(network(4), config(Optimizer::adam(3e-3))).unwrap();
    trainer.distribute(fake_ranks(1).pop().unwrap()).unwrap();
    send(&trainer);
}
