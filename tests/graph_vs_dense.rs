//! The object graph and the dense engine, started from the same weights and fed the same
//! samples in the same order, end with the same weights (f64).

mod common;

use common::mnist;
use lernmi::data::PixelScale;
use lernmi::graph::{GraphInit, GraphOptions, Network as Graph};
use lernmi::{Network, TrainConfig, Trainer};

fn max_weight_difference(graph: &Graph, dense: &Network<f64>) -> f64 {
    graph
        .to_dense()
        .unwrap()
        .max_parameter_difference(dense)
        .unwrap()
}

/// Per-sample SGD on `samples` real MNIST images; returns the largest weight difference.
fn train_both(samples: usize, scale: PixelScale, options: GraphOptions, batch: usize) -> f64 {
    let mnist = mnist();
    let train = mnist.train.slice(0, samples).unwrap();
    let inputs = train.inputs::<f64>(scale);
    let targets = train.targets::<f64>();

    let mut graph = Graph::with_options(&[784, 15, 10], options).unwrap();
    let dense = graph.to_dense().unwrap();
    assert_eq!(
        max_weight_difference(&graph, &dense),
        0.0,
        "conversion must be exact"
    );

    for start in (0..samples).step_by(batch) {
        let end = (start + batch).min(samples);
        for i in start..end {
            graph
                .accumulate(
                    inputs.row(i).as_slice().unwrap(),
                    targets.row(i).as_slice().unwrap(),
                )
                .unwrap();
        }
        graph.apply_gradients(end - start);
    }
    let config = TrainConfig {
        batch_size: batch,
        shard_size: batch,
        ..TrainConfig::lernmi()
    };
    let mut trainer = Trainer::new(dense, config).unwrap();
    trainer
        .train_epoch(inputs.view(), targets.view(), &mut ())
        .unwrap();
    let dense = trainer.into_network();
    max_weight_difference(&graph, &dense)
}

#[test]
fn seed_setting_agrees_after_2000_per_sample_steps() {
    let diff = train_both(2000, PixelScale::Raw, GraphOptions::default(), 1);
    assert!(diff < 1e-9, "largest weight difference {diff:e}");
    // Stronger than asked: one sample at a time, the engine's kernels sum in the seed's order,
    // so the weights are the same bits (see src/kernel.rs).
    assert_eq!(
        diff, 0.0,
        "per-sample training is no longer bit-identical to the graph"
    );
}

#[test]
fn plain_unit_inputs_and_seeded_init_agree_after_1500_steps() {
    let options = GraphOptions {
        input_sigmoid: false,
        init: GraphInit::Seeded(42),
        learning_rate: 0.1,
    };
    let diff = train_both(1500, PixelScale::Unit, options, 1);
    assert!(diff < 1e-9, "largest weight difference {diff:e}");
}

#[test]
fn minibatches_of_8_agree() {
    let diff = train_both(1000, PixelScale::Unit, GraphOptions::default(), 8);
    assert!(diff < 1e-9, "largest weight difference {diff:e}");
}

#[test]
fn conversions_round_trip_and_reject_what_the_graph_cannot_express() {
    let graph = Graph::new(&[4, 3, 2]).unwrap();
    let dense = graph.to_dense().unwrap();
    let back = Graph::from_dense(&dense, 0.1).unwrap();
    assert_eq!(back.link_layers(), graph.link_layers());
    assert_eq!(dense.input_activation(), Some(lernmi::Activation::Sigmoid));

    let relu = Network::<f64>::builder(&[4, 3, 2]).build().unwrap();
    assert!(matches!(
        Graph::from_dense(&relu, 0.1),
        Err(lernmi::Error::LossActivationMismatch { .. })
    ));
}

#[test]
fn dense_lernmi_init_equals_the_graph_init() {
    let graph = Graph::new(&[784, 15, 10]).unwrap();
    let dense = Network::<f64>::lernmi_builder(&[784, 15, 10])
        .build()
        .unwrap();
    assert_eq!(graph.to_dense().unwrap(), dense);
    let seeded = Graph::with_options(
        &[5, 4, 3],
        GraphOptions {
            input_sigmoid: false,
            init: GraphInit::Seeded(9),
            learning_rate: 0.1,
        },
    )
    .unwrap();
    let dense = Network::<f64>::lernmi_builder(&[5, 4, 3])
        .init(lernmi::Init::Uniform)
        .seed(9)
        .input_activation(None)
        .build()
        .unwrap();
    assert_eq!(seeded.to_dense().unwrap(), dense);
}
