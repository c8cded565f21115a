//! Bad input gives a typed error that names the problem, never a panic.

use lernmi::graph::{GraphOptions, Network as Graph};
use lernmi::{
    one_hot, Activation, Error, Loss, Network, Optimizer, RunOptions, Schedule, TrainConfig,
    Trainer,
};
use ndarray::{array, Array2};

fn net() -> Network<f32> {
    Network::<f32>::builder(&[3, 4, 2]).build().unwrap()
}

#[test]
fn input_width_mismatch() {
    let err = net().predict(Array2::zeros((2, 5)).view()).unwrap_err();
    assert!(
        matches!(
            err,
            Error::InputWidth {
                expected: 3,
                got: 5
            }
        ),
        "{err}"
    );
    assert_eq!(
        err.to_string(),
        "input has 5 features but the network expects 3"
    );
    let mut g = Graph::new(&[3, 2]).unwrap();
    assert!(matches!(
        g.learn(&[1.0], &[0.0, 1.0]),
        Err(Error::InputWidth {
            expected: 3,
            got: 1
        })
    ));
    assert!(matches!(
        g.learn(&[1.0; 3], &[0.0]),
        Err(Error::TargetWidth {
            expected: 2,
            got: 1
        })
    ));
}

#[test]
fn empty_batch() {
    let n = net();
    let err = n.predict(Array2::zeros((0, 3)).view()).unwrap_err();
    assert!(matches!(err, Error::Empty { what: "batch" }), "{err}");
    let mut t = Trainer::new(n, TrainConfig::default()).unwrap();
    let err = t
        .train_epoch(
            Array2::zeros((0, 3)).view(),
            Array2::zeros((0, 2)).view(),
            &mut (),
        )
        .unwrap_err();
    assert!(matches!(err, Error::Empty { .. }), "{err}");
}

#[test]
fn bad_learning_rates_and_hyperparameters() {
    let n = net();
    for lr in [f64::NAN, -0.1, 0.0, f64::INFINITY, 1e9] {
        let config = TrainConfig {
            optimizer: Optimizer::sgd(lr),
            ..TrainConfig::default()
        };
        let err = Trainer::new(n.clone(), config).expect_err("bad learning rate accepted");
        assert!(
            matches!(
                err,
                Error::InvalidHyperparameter {
                    name: "learning_rate",
                    ..
                }
            ),
            "{lr}: {err}"
        );
    }
    let bad = [
        TrainConfig {
            batch_size: 0,
            ..TrainConfig::default()
        },
        TrainConfig {
            shard_size: 0,
            ..TrainConfig::default()
        },
        TrainConfig {
            batch_size: 1 << 40,
            ..TrainConfig::default()
        },
        TrainConfig {
            weight_decay: -1.0,
            ..TrainConfig::default()
        },
        TrainConfig {
            optimizer: Optimizer::momentum(0.1, 1.5),
            ..TrainConfig::default()
        },
        TrainConfig {
            optimizer: Optimizer::Adam {
                learning_rate: 0.1,
                beta1: 0.9,
                beta2: 0.999,
                epsilon: 0.0,
            },
            ..TrainConfig::default()
        },
        TrainConfig {
            schedule: Schedule::Step {
                every: 0,
                factor: 0.5,
            },
            ..TrainConfig::default()
        },
        TrainConfig {
            schedule: Schedule::Cosine { floor: 2.0 },
            ..TrainConfig::default()
        },
    ];
    for config in bad {
        let err = Trainer::new(n.clone(), config.clone()).err();
        assert!(
            matches!(err, Some(Error::InvalidHyperparameter { .. })),
            "{config:?}"
        );
    }
    for threads in [0, 1_000_000_000] {
        let options = RunOptions {
            threads: Some(threads),
            ..RunOptions::default()
        };
        let err = Trainer::with_options(n.clone(), TrainConfig::default(), options).err();
        assert!(
            matches!(err, Some(Error::InvalidHyperparameter { .. })),
            "{threads} threads"
        );
    }
    let err = Graph::with_options(
        &[2, 1],
        GraphOptions {
            learning_rate: -1.0,
            ..GraphOptions::default()
        },
    )
    .unwrap_err();
    assert!(matches!(err, Error::InvalidHyperparameter { .. }));
}

#[test]
fn zero_width_and_too_few_layers() {
    let err = Network::<f32>::builder(&[3, 0, 2]).build().unwrap_err();
    assert!(
        matches!(err, Error::ZeroWidthLayer { layer: 1, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("layer 1 has zero width"));
    assert!(matches!(
        Network::<f32>::builder(&[3]).build(),
        Err(Error::TooFewLayers { got: 1 })
    ));
    assert!(matches!(
        Graph::new(&[0, 2]),
        Err(Error::ZeroWidthLayer { layer: 0, .. })
    ));
    assert!(matches!(
        Graph::new(&[]),
        Err(Error::TooFewLayers { got: 0 })
    ));
}

#[test]
fn labels_out_of_range() {
    let err = one_hot::<f32>(&[0, 1, 11], 10).unwrap_err();
    assert!(
        matches!(
            err,
            Error::LabelOutOfRange {
                label: 11,
                index: 2,
                classes: 10
            }
        ),
        "{err}"
    );
    let images = Array2::<u8>::zeros((2, 4));
    let err = lernmi::data::Dataset::new(images, vec![1, 10], 2, 2, 10).unwrap_err();
    assert!(
        matches!(
            err,
            Error::LabelOutOfRange {
                label: 10,
                index: 1,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn non_finite_inputs_and_targets() {
    let n = net();
    let err = n.predict(array![[1.0, f32::NAN, 0.0]].view()).unwrap_err();
    assert!(
        matches!(
            err,
            Error::NonFinite {
                what: "inputs",
                index: 1,
                ..
            }
        ),
        "{err}"
    );
    let err = n
        .gradients(
            array![[1.0, 0.0, 0.0]].view(),
            array![[f32::INFINITY, 0.0]].view(),
        )
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::NonFinite {
                what: "targets",
                ..
            }
        ),
        "{err}"
    );
    let mut g = Graph::new(&[2, 1]).unwrap();
    assert!(matches!(
        g.run(&[f64::NAN, 0.0]),
        Err(Error::NonFinite { .. })
    ));
}

#[test]
fn mismatched_rows_and_target_widths() {
    let n = net();
    let err = n
        .evaluate(Array2::zeros((3, 3)).view(), Array2::zeros((2, 2)).view())
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::RowCountMismatch {
                inputs: 3,
                targets: 2
            }
        ),
        "{err}"
    );
    let err = n
        .evaluate(Array2::zeros((3, 3)).view(), Array2::zeros((3, 5)).view())
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::TargetWidth {
                expected: 2,
                got: 5
            }
        ),
        "{err}"
    );
}

#[test]
fn invalid_architectures() {
    let err = Network::<f32>::builder(&[3, 4, 2])
        .hidden(Activation::Softmax)
        .build()
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::InvalidActivation {
                activation: "softmax",
                ..
            }
        ),
        "{err}"
    );
    let err = Network::<f32>::builder(&[3, 2])
        .output(Activation::Relu)
        .loss(Loss::CrossEntropy)
        .build()
        .unwrap_err();
    assert!(matches!(err, Error::LossActivationMismatch { .. }), "{err}");
    let err = Network::<f32>::builder(&[3, 2])
        .output(Activation::LeakyRelu { slope: f64::NAN })
        .loss(Loss::SquaredError)
        .build()
        .unwrap_err();
    assert!(matches!(err, Error::InvalidHyperparameter { .. }), "{err}");
    let w = Array2::<f32>::zeros((2, 3));
    let err = lernmi::Dense::new(w, ndarray::Array1::zeros(3), Activation::Sigmoid).unwrap_err();
    assert!(matches!(err, Error::Shape { .. }), "{err}");
}

#[test]
fn divergence_stops_training_and_keeps_the_last_finite_weights() {
    // Identity output, squared error and a huge learning rate: the weights blow up quickly.
    let n = Network::<f32>::builder(&[2, 2])
        .output(Activation::Identity)
        .loss(Loss::SquaredError)
        .seed(1)
        .build()
        .unwrap();
    let x = array![[1e3f32, -1e3], [2e3, 5e2]];
    let y = array![[1.0f32, 0.0], [0.0, 1.0]];
    let config = TrainConfig {
        epochs: 1000,
        batch_size: 1,
        optimizer: Optimizer::sgd(1e4),
        ..TrainConfig::default()
    };
    let mut trainer = Trainer::new(n, config).unwrap();
    let err = trainer.fit(x.view(), y.view(), &mut ()).unwrap_err();
    let n = trainer.into_network();
    assert!(matches!(err, Error::Diverged { .. }), "{err}");
    assert!(err.to_string().starts_with("training diverged at epoch"));
    for layer in n.layers() {
        assert!(layer
            .weights()
            .iter()
            .chain(layer.biases().iter())
            .all(|w| w.is_finite()));
    }
}

#[test]
fn a_failed_minibatch_update_changes_no_parameter() {
    // The batch optimisers check every new parameter before any is written (plain SGD computes
    // them into arrays of its own and exchanges them only when all are finite): a NaN in the
    // last layer's gradient, or an update that overflows there, must leave the first layer
    // untouched too, and a good step afterwards must still work.
    for optimizer in [
        Optimizer::sgd(0.1),
        Optimizer::nesterov(0.1, 0.9),
        Optimizer::adam(1e-3),
    ] {
        let mut net = Network::<f32>::builder(&[300, 250, 3])
            .seed(4)
            .build()
            .unwrap();
        let mut state = lernmi::train::optimizer::OptimizerState::new(optimizer, &net).unwrap();
        let before = net.clone();
        let mut grads = net.zero_gradients();
        grads.layers[0].weights.fill(0.25);
        for bad in [f32::NAN, f32::MAX] {
            grads.layers[1].weights[[2, 7]] = bad;
            assert!(
                !state.step(&mut net, &grads, 1e3, 0.0).unwrap(),
                "{optimizer:?}: a step with {bad} in a gradient went through"
            );
            assert_eq!(
                net, before,
                "{optimizer:?}: a failed step changed the network"
            );
        }
        grads.layers[1].weights[[2, 7]] = 0.5;
        assert!(
            state.step(&mut net, &grads, 0.1, 0.0).unwrap(),
            "{optimizer:?}"
        );
        assert_ne!(net, before, "{optimizer:?}: a good step changed nothing");
        assert!(
            state.step(&mut net, &grads, 0.1, 0.0).unwrap(),
            "{optimizer:?}: a second good step"
        );
    }
}
