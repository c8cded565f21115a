//! Bad input to the trainer, the optimiser state and the builder gives a typed error before
//! anything is allocated or changed, never a panic or an abort; comparisons see NaN.

use lernmi::nn::network::MAX_PARAMETERS;
use lernmi::train::DEFAULT_MEMORY_LIMIT;
use lernmi::{
    Activation, Error, Loss, Network, Optimizer, OptimizerState, RunOptions, TrainConfig, Trainer,
};
use ndarray::{array, Array2};

fn net(sizes: &[usize]) -> Network<f32> {
    Network::<f32>::builder(sizes).seed(2).build().unwrap()
}

/// Four one-hot samples for a (3 → 2) network.
fn samples() -> (Array2<f32>, Array2<f32>) {
    let x = Array2::from_shape_fn((4, 3), |(i, j)| (i + j) as f32 / 7.0);
    let y = array![[1.0f32, 0.0], [0.0, 1.0], [1.0, 0.0], [0.0, 1.0]];
    (x, y)
}

#[test]
fn an_optimiser_step_on_mismatched_shapes_is_an_error_and_changes_nothing() {
    let base = net(&[3, 4, 2]);
    for optimizer in [
        Optimizer::sgd(0.1),
        Optimizer::momentum(0.1, 0.9),
        Optimizer::adam(1e-3),
    ] {
        let mut state = OptimizerState::new(optimizer, &base).unwrap();
        let fresh = state.clone();
        // Another network than the state's, with gradients that fit either.
        let mut other = net(&[3, 5, 2]);
        let before = other.clone();
        for grads in [base.zero_gradients(), other.zero_gradients()] {
            let err = state.step(&mut other, &grads, 0.1, 0.0).unwrap_err();
            assert!(matches!(err, Error::Shape { .. }), "{optimizer:?}: {err}");
        }
        assert_eq!(other, before);
        // The state's network, with gradients of another shape or of fewer layers.
        let mut same = base.clone();
        let mut short = base.zero_gradients();
        short.layers.pop();
        for grads in [net(&[3, 5, 2]).zero_gradients(), short] {
            let err = state.step(&mut same, &grads, 0.1, 0.0).unwrap_err();
            assert!(matches!(err, Error::Shape { .. }), "{optimizer:?}: {err}");
        }
        assert_eq!(same, base);
        assert_eq!(
            state, fresh,
            "{optimizer:?}: a refused step changed the state"
        );
        // The right shapes still work.
        assert!(state
            .step(&mut same, &base.zero_gradients(), 0.1, 0.0)
            .unwrap());
        assert_eq!(state.steps(), 1);
    }
}

#[test]
fn the_builder_refuses_huge_networks_before_allocating() {
    for sizes in [
        vec![1 << 40, 1 << 40],
        vec![usize::MAX, usize::MAX, 2],
        vec![1 << 16, 1 << 16, 1 << 16],
        vec![1, MAX_PARAMETERS, 1],
    ] {
        let err = Network::<f32>::builder(&sizes)
            .build()
            .expect_err("a huge network was built");
        assert!(
            matches!(
                err,
                Error::TooLarge {
                    unit: "parameters",
                    ..
                }
            ),
            "{sizes:?}: {err}"
        );
    }
    // Just under the cap is accepted in principle; a small network certainly is.
    assert!(Network::<f64>::builder(&[300, 200, 10]).build().is_ok());
}

#[test]
fn a_trainer_refuses_buffers_beyond_its_memory_limit() {
    // The README's network with batch 65 536 and shard 1: a configuration `validate` accepts,
    // whose 65 536 shards would each hold all 235 146 gradients (tens of GB).
    let n = net(&[784, 256, 128, 10]);
    let config = TrainConfig {
        batch_size: 65_536,
        shard_size: 1,
        ..TrainConfig::default()
    };
    config.validate().unwrap();
    let err = Trainer::new(n.clone(), config.clone()).unwrap_err();
    match &err {
        Error::TooLarge {
            needed,
            limit,
            unit: "bytes",
            ..
        } => {
            assert_eq!(*limit, DEFAULT_MEMORY_LIMIT as u128);
            assert!(*needed > 65_536 * 235_146 * 4, "{err}");
        }
        _ => panic!("{err}"),
    }
    assert!(err.to_string().contains("shard_size"), "{err}");
    // Larger shards need far less: the same batch in shards of 32 fits the default limit.
    let sharded = TrainConfig {
        shard_size: 32,
        ..config.clone()
    };
    assert!(Trainer::new(n.clone(), sharded.clone()).is_ok());
    // And an explicit limit is honoured both ways.
    let limit = |memory_limit| RunOptions {
        memory_limit,
        ..RunOptions::default()
    };
    assert!(matches!(
        Trainer::with_options(n.clone(), sharded, limit(100 << 20)),
        Err(Error::TooLarge { .. })
    ));
    let small = TrainConfig {
        batch_size: 64,
        ..config
    };
    assert!(Trainer::with_options(n, small, limit(1 << 30)).is_ok());
}

#[test]
fn softmax_cross_entropy_needs_targets_that_are_distributions() {
    let n = net(&[3, 2]);
    let (x, y) = samples();
    n.gradients(x.view(), y.view()).unwrap();
    let bad = [
        (array![[1.0f32, 0.0], [0.5, 0.2]], 1, "sum to 0.7"),
        (array![[1.0f32, 0.0], [0.0, 0.0]], 1, "sum to 0"),
        (array![[1.5f32, -0.5], [0.0, 1.0]], 0, "entry 1 is -0.5"),
        (array![[0.5f32, 0.5], [1.0, 1.0]], 1, "sum to 2"),
    ];
    let x2 = x.slice(ndarray::s![..2, ..]);
    for (targets, row, problem) in bad {
        for err in [
            n.gradients(x2, targets.view()).unwrap_err(),
            n.evaluate(x2, targets.view()).unwrap_err(),
            Trainer::new(n.clone(), TrainConfig::default())
                .unwrap()
                .step(x2, targets.view())
                .unwrap_err(),
        ] {
            match &err {
                Error::TargetNotDistribution { row: r, .. } => assert_eq!(*r, row, "{err}"),
                _ => panic!("{targets:?}: {err}"),
            }
            assert!(err.to_string().contains(problem), "{err}");
        }
    }
    // Soft targets are fine, with the roundoff of f32 sums.
    let soft = array![[0.1f32, 0.9], [1.0 / 3.0, 2.0 / 3.0]];
    n.gradients(x2, soft.view()).unwrap();
    // Other pairings of loss and output take any finite targets.
    for (output, loss) in [
        (Activation::Sigmoid, Loss::CrossEntropy),
        (Activation::Softmax, Loss::SquaredError),
    ] {
        let other = Network::<f32>::builder(&[3, 2])
            .output(output)
            .loss(loss)
            .build()
            .unwrap();
        other
            .gradients(x2, array![[0.5f32, 0.2], [1.5, -0.5]].view())
            .unwrap();
    }
}

#[test]
fn a_nan_weight_is_an_infinite_difference() {
    let n = net(&[3, 4, 2]);
    assert_eq!(n.max_parameter_difference(&n).unwrap(), 0.0);
    for (layer, bias) in [(0, false), (1, true)] {
        let mut m = n.clone();
        let (mut weights, mut biases) = m.layers_mut()[layer].parameters_mut();
        if bias {
            biases[1] = f32::NAN;
        } else {
            weights[[1, 2]] = f32::NAN;
        }
        // Either way round, and NaN against NaN too.
        assert_eq!(n.max_parameter_difference(&m).unwrap(), f64::INFINITY);
        assert_eq!(m.max_parameter_difference(&n).unwrap(), f64::INFINITY);
        assert_eq!(m.max_parameter_difference(&m).unwrap(), f64::INFINITY);
    }
}
