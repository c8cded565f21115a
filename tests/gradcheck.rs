//! Finite-difference gradient checks (f64, central differences) for every activation × loss
//! pairing the engine accepts, on a [4, 5, 3] network with every parameter checked; and the
//! stability of softmax cross-entropy at logits of ±1000.

mod common;

use common::TestRng;
use lernmi::{Activation, Dense, Loss, Network};
use ndarray::{array, Array1, Array2};

const HIDDEN: [Activation; 5] = [
    Activation::Sigmoid,
    Activation::Tanh,
    Activation::Relu,
    Activation::LeakyRelu { slope: 0.1 },
    Activation::Identity,
];
const OUTPUT: [Activation; 6] = [
    Activation::Sigmoid,
    Activation::Tanh,
    Activation::Relu,
    Activation::LeakyRelu { slope: 0.1 },
    Activation::Identity,
    Activation::Softmax,
];

fn random(rng: &mut TestRng, shape: (usize, usize), scale: f64) -> Array2<f64> {
    Array2::from_shape_simple_fn(shape, || scale * rng.next_f64())
}

fn network(hidden: Activation, output: Activation, loss: Loss, rng: &mut TestRng) -> Network<f64> {
    let sizes = [4, 5, 3];
    let layers = sizes
        .windows(2)
        .enumerate()
        .map(|(l, p)| {
            let w = random(rng, (p[1], p[0]), 0.8);
            // Positive biases keep rectified outputs away from the kink at 0.
            let b = Array1::from_shape_simple_fn(p[1], || 0.3 + 0.2 * rng.next_f64());
            let act = if l == 0 { hidden } else { output };
            Dense::new(w, b, act).unwrap()
        })
        .collect();
    Network::from_layers(layers, loss, None).unwrap()
}

fn targets(output: Activation, loss: Loss, rng: &mut TestRng, rows: usize) -> Array2<f64> {
    match (loss, output) {
        // Probability vectors for categorical cross-entropy.
        (Loss::CrossEntropy, Activation::Softmax) => {
            let mut t = random(rng, (rows, 3), 1.0).mapv(|v| v.abs() + 0.1);
            for mut row in t.rows_mut() {
                let s = row.sum();
                row.mapv_inplace(|v| v / s);
            }
            t
        }
        (Loss::CrossEntropy, _) => random(rng, (rows, 3), 0.5).mapv(|v| v + 0.5),
        _ => random(rng, (rows, 3), 1.0),
    }
}

fn mean_loss(net: &Network<f64>, x: &Array2<f64>, y: &Array2<f64>) -> f64 {
    net.gradients(x.view(), y.view()).unwrap().0
}

/// Checks every weight and bias; returns the number of parameters checked.
fn check(hidden: Activation, output: Activation, loss: Loss, seed: u64) -> usize {
    let mut rng = TestRng(seed);
    let mut net = network(hidden, output, loss, &mut rng);
    let x = random(&mut rng, (3, 4), 1.0);
    let y = targets(output, loss, &mut rng, 3);
    let (_, analytic) = net.gradients(x.view(), y.view()).unwrap();
    let eps = 1e-6;
    let mut checked = 0;
    for l in 0..net.layers().len() {
        let (n_out, n_in) = net.layers()[l].weights().dim();
        // Index n_in stands for the bias.
        for j in 0..n_out {
            for k in 0..=n_in {
                let nudge = |net: &mut Network<f64>, delta: f64| {
                    let (mut w, mut b) = net.layers_mut()[l].parameters_mut();
                    if k == n_in {
                        b[j] += delta;
                    } else {
                        w[[j, k]] += delta;
                    }
                };
                nudge(&mut net, eps);
                let up = mean_loss(&net, &x, &y);
                nudge(&mut net, -2.0 * eps);
                let down = mean_loss(&net, &x, &y);
                nudge(&mut net, eps);
                let numeric = (up - down) / (2.0 * eps);
                let g = &analytic.layers[l];
                let exact = if k == n_in {
                    g.biases[j]
                } else {
                    g.weights[[j, k]]
                };
                let scale = exact.abs().max(numeric.abs()).max(1e-3);
                assert!(
                    (exact - numeric).abs() / scale < 1e-6,
                    "{} hidden, {} output, {}: layer {l} [{j}, {k}]: analytic {exact:e}, numeric {numeric:e}",
                    hidden.name(),
                    output.name(),
                    loss.name()
                );
                checked += 1;
            }
        }
    }
    checked
}

#[test]
fn gradients_match_finite_differences_for_every_pairing() {
    let mut pairings = 0;
    for (h, &hidden) in HIDDEN.iter().enumerate() {
        for (o, &output) in OUTPUT.iter().enumerate() {
            for loss in [Loss::SquaredError, Loss::CrossEntropy] {
                if loss.check_output(output).is_err() {
                    continue;
                }
                let checked = check(hidden, output, loss, (h * 10 + o) as u64 + 1);
                assert_eq!(checked, 5 * 4 + 5 + 3 * 5 + 3);
                pairings += 1;
            }
        }
    }
    // 5 hidden × (6 outputs with squared error + softmax and sigmoid with cross-entropy).
    assert_eq!(pairings, 5 * 8);
}

#[test]
fn cross_entropy_is_rejected_after_outputs_that_are_not_probabilities() {
    for output in [Activation::Tanh, Activation::Relu, Activation::Identity] {
        assert!(matches!(
            Loss::CrossEntropy.check_output(output),
            Err(lernmi::Error::LossActivationMismatch { .. })
        ));
    }
}

#[test]
fn softmax_cross_entropy_is_stable_for_logits_of_1000() {
    // One layer with identity weights, so the logits are the inputs.
    let layer = Dense::new(Array2::eye(2), Array1::zeros(2), Activation::Softmax).unwrap();
    let net = Network::from_layers(vec![layer], Loss::CrossEntropy, None).unwrap();
    let x = array![[1000.0, -1000.0], [-1000.0, 1000.0], [1000.0, 1000.0]];
    let y = array![[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]];
    let (loss, grads) = net.gradients(x.view(), y.view()).unwrap();
    // Per-sample losses: 0, 2000, ln 2.
    approx::assert_relative_eq!(
        loss,
        (2000.0 + std::f64::consts::LN_2) / 3.0,
        max_relative = 1e-12
    );
    assert!(grads.is_finite());
    let out = net.predict(x.view()).unwrap();
    let want = array![[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]];
    for (o, w) in out.iter().zip(&want) {
        approx::assert_abs_diff_eq!(*o, *w, epsilon = 1e-12);
    }

    let f32_net = Network::<f32>::from_layers(
        vec![Dense::new(Array2::eye(2), Array1::zeros(2), Activation::Softmax).unwrap()],
        Loss::CrossEntropy,
        None,
    )
    .unwrap();
    let (loss32, grads32) = f32_net
        .gradients(x.mapv(|v| v as f32).view(), y.mapv(|v| v as f32).view())
        .unwrap();
    assert!((loss32 - loss).abs() < 1e-3 && grads32.is_finite());
}

#[test]
fn sigmoid_binary_cross_entropy_is_stable_for_logits_of_1000() {
    let layer = Dense::new(Array2::eye(2), Array1::zeros(2), Activation::Sigmoid).unwrap();
    let net = Network::from_layers(vec![layer], Loss::CrossEntropy, None).unwrap();
    let x = array![[1000.0, -1000.0]];
    let (loss, grads) = net.gradients(x.view(), array![[0.0, 1.0]].view()).unwrap();
    approx::assert_relative_eq!(loss, 2000.0, max_relative = 1e-12);
    assert!(grads.is_finite());
}
