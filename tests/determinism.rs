//! The same seed gives the same weights, bit for bit, whatever the thread count.

mod common;

use common::TestRng;
use lernmi::{Activation, Network, Optimizer, RunOptions, Schedule, TrainConfig, Trainer};
use ndarray::Array2;

fn data(rows: usize) -> (Array2<f32>, Array2<f32>) {
    let mut rng = TestRng(11);
    let x = Array2::from_shape_simple_fn((rows, 20), || rng.next_f64() as f32);
    // A learnable rule: the class is the index of the largest of the first 4 features.
    let mut y = Array2::zeros((rows, 4));
    for (i, row) in x.rows().into_iter().enumerate() {
        let c = (0..4).max_by(|&a, &b| row[a].total_cmp(&row[b])).unwrap();
        y[[i, c]] = 1.0;
    }
    (x, y)
}

fn train(threads: usize, optimizer: Optimizer) -> Network<f32> {
    train_sharded(threads, optimizer, 16)
}

/// Trains with minibatches of 100 rows cut into shards of `shard` rows.
fn train_sharded(threads: usize, optimizer: Optimizer, shard: usize) -> Network<f32> {
    let (x, y) = data(1000);
    let net = Network::<f32>::builder(&[20, 300, 240, 4])
        .hidden(Activation::Tanh)
        .seed(3)
        .build()
        .unwrap();
    let config = TrainConfig {
        epochs: 3,
        batch_size: 100,
        shard_size: shard,
        optimizer,
        schedule: Schedule::Cosine { floor: 0.1 },
        weight_decay: 1e-4,
        seed: 5,
        ..TrainConfig::default()
    };
    let options = RunOptions {
        threads: Some(threads),
        // Always split (the adaptive choice could fall back to one thread on a busy machine).
        // 300 × 240 weights are enough for SGD's passes to be split over the threads too.
        adaptive_threads: false,
        ..RunOptions::default()
    };
    let mut trainer = Trainer::with_options(net, config, options).unwrap();
    trainer.fit(x.view(), y.view(), &mut ()).unwrap();
    trainer.into_network()
}

#[test]
fn weights_are_bit_identical_for_1_2_and_7_threads() {
    for optimizer in [
        Optimizer::sgd(0.1),
        Optimizer::nesterov(0.05, 0.9),
        Optimizer::adam(1e-3),
    ] {
        let one = train(1, optimizer);
        let initial = Network::<f32>::builder(&[20, 300, 240, 4])
            .hidden(Activation::Tanh)
            .seed(3)
            .build()
            .unwrap();
        assert_ne!(one, initial, "{optimizer:?}: training changed nothing");
        for threads in [2, 7] {
            let many = train(threads, optimizer);
            for (a, b) in one.layers().iter().zip(many.layers()) {
                let same = a
                    .weights()
                    .iter()
                    .chain(a.biases().iter())
                    .zip(b.weights().iter().chain(b.biases().iter()))
                    .all(|(p, q)| p.to_bits() == q.to_bits());
                assert!(same, "{optimizer:?}: {threads} threads differ from 1");
            }
        }
    }
}

#[test]
fn evaluation_does_not_depend_on_the_thread_count() {
    let net = train(1, Optimizer::sgd(0.1));
    let (x, y) = data(3000);
    let eval = |threads| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
            .install(|| net.evaluate(x.view(), y.view()).unwrap())
    };
    let one = eval(1);
    assert_eq!(one.loss.to_bits(), eval(2).loss.to_bits());
    assert_eq!(one, eval(7));
    assert!(one.accuracy() > 0.5, "the rule should be learnt: {one:?}");
}

#[test]
fn a_different_seed_gives_different_weights() {
    let a = Network::<f32>::builder(&[20, 8, 4])
        .seed(1)
        .build()
        .unwrap();
    let b = Network::<f32>::builder(&[20, 8, 4])
        .seed(2)
        .build()
        .unwrap();
    let c = Network::<f32>::builder(&[20, 8, 4])
        .seed(1)
        .build()
        .unwrap();
    assert_ne!(a, b);
    assert_eq!(a, c);
}

/// With one shard per minibatch the parallelism moves inside the matrix products (column
/// blocks of C); the weights must still be the same bits for any thread count.
#[test]
fn parallel_products_are_bit_identical_for_1_2_and_7_threads() {
    let one = train_sharded(1, Optimizer::sgd(0.1), 100);
    for threads in [2, 7] {
        let many = train_sharded(threads, Optimizer::sgd(0.1), 100);
        let bits = |n: &Network<f32>| -> Vec<u32> {
            n.layers()
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
        assert_eq!(bits(&one), bits(&many), "{threads} threads differ from 1");
    }
}

#[test]
fn labels_and_their_one_hot_rows_train_the_same_bits() {
    let (x, y) = data(300);
    let labels: Vec<usize> = y
        .rows()
        .into_iter()
        .map(|r| r.iter().position(|&v| v == 1.0).unwrap())
        .collect();
    let train = |targets: lernmi::Targets<'_, f32>| {
        let net = Network::<f32>::builder(&[20, 16, 4])
            .seed(2)
            .build()
            .unwrap();
        let config = TrainConfig {
            epochs: 2,
            batch_size: 30,
            shard_size: 10,
            optimizer: Optimizer::adam(1e-2),
            ..TrainConfig::default()
        };
        let mut trainer = Trainer::new(net, config).unwrap();
        trainer.fit(x.view(), targets, &mut ()).unwrap();
        trainer.into_network()
    };
    let from_labels = train(lernmi::Targets::Labels(&labels));
    let from_rows = train(lernmi::Targets::Values(y.view()));
    assert_eq!(from_labels, from_rows);
    let trained = Network::<f32>::builder(&[20, 16, 4])
        .seed(2)
        .build()
        .unwrap();
    assert_ne!(from_labels, trained, "training must change the weights");
    let by_labels = from_labels.evaluate(x.view(), &labels).unwrap();
    let by_rows = from_labels.evaluate(x.view(), y.view()).unwrap();
    assert_eq!(by_labels, by_rows);
}
