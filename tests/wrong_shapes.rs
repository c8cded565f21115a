//! Every public function that takes shapes, called with wrong ones: each returns an error or,
//! where its documentation says so under `# Panics`, panics cleanly. None may write or read
//! outside the arrays it is given (run this file under AddressSanitizer to see that too; see
//! the README's "Checking the unsafe code").

use std::panic::{catch_unwind, AssertUnwindSafe};

use lernmi::data::Dataset;
use lernmi::fast::gemm::{gemm, Packing};
use lernmi::{
    one_hot, Activation, Dense, Error, LayerGradients, Loss, Network, TrainConfig, Trainer,
};
use ndarray::{Array1, Array2};

/// Asserts that `f` panics (and that the panic unwinds, so memory is still intact).
fn panics<R>(what: &str, f: impl FnOnce() -> R) {
    let result = catch_unwind(AssertUnwindSafe(f));
    assert!(result.is_err(), "{what}: returned instead of panicking");
}

/// Asserts an [`Error::Shape`] whose description names `operand`.
fn shape_error(result: lernmi::Result<()>, operand: &str) {
    match result {
        Err(Error::Shape { what, .. }) => {
            assert!(what.contains(operand), "{what} does not name {operand}")
        }
        other => panic!("{operand}: expected a shape error, got {other:?}"),
    }
}

#[test]
fn gemm_panics_on_shapes_that_do_not_agree() {
    let a = Array2::<f32>::ones((64, 64));
    let b = Array2::<f32>::ones((64, 64));
    let mut packing = Packing::default();
    // The probe: a 64 × 64 product into a 4 × 4 C corrupted the heap.
    for c_shape in [(4, 4), (64, 63), (63, 64), (65, 64), (0, 0)] {
        let mut c = Array2::<f32>::zeros(c_shape);
        panics(&format!("gemm into {c_shape:?}"), || {
            gemm(&a.view(), &b.view(), 0.0, &mut c.view_mut(), &mut packing)
        });
    }
    // Inner dimensions that differ, for f32 (SIMD kernels) and f64 (portable kernel).
    let b = Array2::<f32>::ones((65, 64));
    let mut c = Array2::<f32>::zeros((64, 64));
    panics("gemm with k ≠ k", || {
        gemm(&a.view(), &b.view(), 1.0, &mut c.view_mut(), &mut packing)
    });
    let a = Array2::<f64>::ones((30, 40));
    let b = Array2::<f64>::ones((40, 50));
    let mut c = Array2::<f64>::zeros((3, 5));
    panics("gemm f64 into a small C", || {
        gemm(
            &a.view(),
            &b.view(),
            0.0,
            &mut c.view_mut(),
            &mut Packing::default(),
        )
    });
    // The right shapes still work, after all those panics, with the same packing.
    let (a, b) = (Array2::<f32>::ones((64, 64)), Array2::<f32>::ones((64, 64)));
    let mut c = Array2::<f32>::zeros((64, 64));
    gemm(&a.view(), &b.view(), 0.0, &mut c.view_mut(), &mut packing);
    assert!(c.iter().all(|&v| v == 64.0));
}

/// An 8-output layer with 3 inputs (narrow: its one-row products take the AVX-512 kernels
/// where there are any) and a 40 × 20 one (the blocked product).
fn layers<F: lernmi::Float>() -> [Dense<F>; 2] {
    let layer = |n_out, n_in| {
        Dense::new(
            Array2::from_elem((n_out, n_in), F::of(0.5)),
            Array1::zeros(n_out),
            Activation::Sigmoid,
        )
        .unwrap()
    };
    [layer(8, 3), layer(40, 20)]
}

fn forward_errors<F: lernmi::Float>() {
    let mut packing = Packing::<F>::default();
    for layer in layers::<F>() {
        let (n_in, n_out) = (layer.n_in(), layer.n_out());
        for batch in [1, 5] {
            let zeros = |shape: (usize, usize)| Array2::<F>::zeros(shape);
            let run = |x: (usize, usize), z: (usize, usize), a: (usize, usize)| {
                let (x, mut z, mut a) = (zeros(x), zeros(z), zeros(a));
                layer.forward(
                    x.view(),
                    z.view_mut(),
                    a.view_mut(),
                    &mut Packing::default(),
                )
            };
            let good = (batch, n_out);
            // Far too wide an input read past the weights in the one-row AVX-512 kernel.
            shape_error(run((batch, 4000), good, good), "inputs");
            shape_error(run((batch, n_in - 1), good, good), "inputs");
            shape_error(
                run((batch, n_in), (batch, n_out + 1), good),
                "weighted_inputs",
            );
            shape_error(
                run((batch, n_in), (batch + 1, n_out), good),
                "weighted_inputs",
            );
            shape_error(run((batch, n_in), good, (batch, 1)), "activations");
            run((batch, n_in), good, good).unwrap();
            let (x, mut z, mut a) = (zeros((batch, n_in)), zeros(good), zeros(good));
            layer
                .forward(x.view(), z.view_mut(), a.view_mut(), &mut packing)
                .unwrap();
        }
    }
}

#[test]
fn dense_forward_rejects_wrong_shapes() {
    forward_errors::<f32>();
    forward_errors::<f64>();
}

fn backward_errors<F: lernmi::Float>() {
    let mut packing = Packing::<F>::default();
    for layer in layers::<F>() {
        let (n_in, n_out) = (layer.n_in(), layer.n_out());
        for batch in [1, 5] {
            let zeros = |shape: (usize, usize)| Array2::<F>::zeros(shape);
            let mut grads = layer.zero_gradients();
            let mut gradients =
                |x: (usize, usize), d: (usize, usize), g: &mut LayerGradients<F>| {
                    let (x, d) = (zeros(x), zeros(d));
                    layer.parameter_gradients(x.view(), d.view(), g, true, &mut packing)
                };
            let (x, d) = ((batch, n_in), (batch, n_out));
            shape_error(gradients((batch, n_in + 7), d, &mut grads), "inputs");
            shape_error(
                gradients(x, (batch, 4000), &mut grads),
                "output_sensitivities",
            );
            shape_error(
                gradients(x, (batch + 1, n_out), &mut grads),
                "output_sensitivities",
            );
            let mut small = LayerGradients {
                weights: zeros((1, 1)),
                biases: Array1::zeros(n_out),
            };
            shape_error(gradients(x, d, &mut small), "gradients.weights");
            let mut no_biases = LayerGradients {
                weights: zeros((n_out, n_in)),
                biases: Array1::zeros(0),
            };
            shape_error(gradients(x, d, &mut no_biases), "gradients.biases");
            gradients(x, d, &mut grads).unwrap();

            let sensitivities = |d: (usize, usize), s: (usize, usize)| {
                let (d, mut s) = (zeros(d), zeros(s));
                layer.input_sensitivities(d.view(), s.view_mut(), &mut Packing::default())
            };
            shape_error(sensitivities((batch, 4000), x), "output_sensitivities");
            shape_error(sensitivities(d, (batch, n_in + 1)), "input_sensitivities");
            shape_error(sensitivities(d, (batch + 2, n_in)), "input_sensitivities");
            sensitivities(d, x).unwrap();
        }
    }
}

#[test]
fn dense_backward_rejects_wrong_shapes() {
    backward_errors::<f32>();
    backward_errors::<f64>();
}

#[test]
fn dense_new_rejects_wrong_shapes() {
    let result = Dense::new(
        Array2::<f32>::ones((4, 3)),
        Array1::zeros(5),
        Activation::Relu,
    );
    assert!(matches!(result, Err(Error::Shape { .. })), "{result:?}");
    let result = Dense::new(
        Array2::<f32>::ones((0, 3)),
        Array1::zeros(0),
        Activation::Relu,
    );
    assert!(
        matches!(result, Err(Error::ZeroWidthLayer { .. })),
        "{result:?}"
    );
}

#[test]
fn layer_gradients_panic_on_other_shapes() {
    let [layer, other] = layers::<f32>();
    let (a, b) = (layer.zero_gradients(), other.zero_gradients());
    panics("LayerGradients::add_assign", || a.clone().add_assign(&b));
    panics("LayerGradients::assign", || a.clone().assign(&b));
}

#[test]
fn activations_and_losses_panic_on_other_shapes() {
    let (z, a) = (Array2::<f32>::zeros((4, 3)), Array2::<f32>::zeros((4, 2)));
    for activation in [Activation::Relu, Activation::Sigmoid, Activation::Softmax] {
        let mut out = a.clone();
        panics("Activation::forward", || {
            activation.forward(z.view(), out.view_mut())
        });
        let mut s = z.clone();
        panics("Activation::backward_in_place", || {
            activation.backward_in_place(z.view(), a.view(), s.view_mut())
        });
    }
    let y = Array2::<f32>::zeros((4, 3));
    for (loss, output) in [
        (Loss::SquaredError, Activation::Sigmoid),
        (Loss::CrossEntropy, Activation::Softmax),
        (Loss::CrossEntropy, Activation::Sigmoid),
    ] {
        panics("Loss::sum", || {
            loss.sum(output, z.view(), a.view(), y.view())
        });
        let mut s = Array2::<f32>::zeros((4, 3));
        panics("Loss::output_sensitivities", || {
            loss.output_sensitivities(output, z.view(), a.view(), y.view(), s.view_mut())
        });
    }
}

#[test]
fn network_functions_reject_wrong_shapes() {
    let net = Network::<f32>::builder(&[3, 4, 2]).build().unwrap();
    let good_x = Array2::<f32>::zeros((5, 3));
    // One-hot rows: softmax cross-entropy (the default) takes distributions only.
    let good_y = Array2::<f32>::from_shape_fn((5, 2), |(_, c)| if c == 0 { 1.0 } else { 0.0 });
    for x in [
        Array2::zeros((5, 4)),
        Array2::zeros((1, 4000)),
        Array2::zeros((0, 3)),
    ] {
        assert!(net.check_inputs(x.view()).is_err());
        assert!(net.predict(x.view()).is_err());
        assert!(net.classify(x.view()).is_err());
        let y = Array2::<f32>::zeros((x.nrows(), 2));
        assert!(net.evaluate(x.view(), y.view()).is_err());
        assert!(net.gradients(x.view(), y.view()).is_err());
    }
    for y in [
        Array2::zeros((5, 3)),
        Array2::zeros((4, 2)),
        Array2::zeros((1, 4000)),
    ] {
        let result = net.check_targets(good_x.view(), y.view());
        assert!(
            matches!(
                result,
                Err(Error::TargetWidth { .. } | Error::RowCountMismatch { .. })
            ),
            "{result:?}"
        );
        assert!(net.evaluate(good_x.view(), y.view()).is_err());
        assert!(net.gradients(good_x.view(), y.view()).is_err());
    }
    net.gradients(good_x.view(), good_y.view()).unwrap();
    // Layers that do not chain, and networks of other sizes compared.
    let [a, b] = layers::<f32>();
    let result = Network::from_layers(vec![a, b], Loss::SquaredError, None);
    assert!(matches!(result, Err(Error::Shape { .. })), "{result:?}");
    let other = Network::<f32>::builder(&[3, 5, 2]).build().unwrap();
    assert!(net.max_parameter_difference(&other).is_err());
}

#[test]
fn trainer_rejects_wrong_shapes() {
    let net = Network::<f32>::builder(&[3, 4, 2]).build().unwrap();
    let config = TrainConfig {
        epochs: 1,
        batch_size: 2,
        ..TrainConfig::default()
    };
    let mut trainer = Trainer::new(net, config).unwrap();
    let x = Array2::<f32>::zeros((4, 3));
    let wide = Array2::<f32>::zeros((4, 4000));
    let y = Array2::<f32>::zeros((4, 2));
    let short = Array2::<f32>::zeros((3, 2));
    assert!(trainer.step(wide.view(), y.view()).is_err());
    assert!(trainer.step(x.view(), short.view()).is_err());
    let one = (
        Array2::<f32>::zeros((1, 4000)),
        Array2::<f32>::zeros((1, 2)),
    );
    assert!(trainer.step(one.0.view(), one.1.view()).is_err());
    assert!(trainer
        .train_epoch(x.view(), short.view(), &mut ())
        .is_err());
    assert!(trainer.fit(wide.view(), y.view(), &mut ()).is_err());
    // Labels: one per row, each below the output count.
    let two = Array2::<f32>::zeros((2, 3));
    assert!(trainer.step(two.view(), &[0]).is_err());
    let err = trainer.step(two.view(), &[0, 2]).unwrap_err();
    assert!(
        matches!(
            err,
            lernmi::Error::LabelOutOfRange {
                label: 2,
                index: 1,
                ..
            }
        ),
        "{err}"
    );
    assert!(trainer.step(two.view(), &[0, 1]).is_ok());
}

#[test]
fn data_functions_reject_wrong_shapes() {
    let result = one_hot::<f32>(&[0, 3, 1], 3);
    assert!(
        matches!(result, Err(Error::LabelOutOfRange { .. })),
        "{result:?}"
    );
    let images = Array2::<u8>::zeros((2, 12));
    let result = Dataset::new(images.clone(), vec![0, 1], 3, 5, 10);
    assert!(matches!(result, Err(Error::Shape { .. })), "{result:?}");
    let result = Dataset::new(images.clone(), vec![0, 1, 2], 3, 4, 10);
    assert!(
        matches!(result, Err(Error::RowCountMismatch { .. })),
        "{result:?}"
    );
    // Sizes far from the images' width.
    let result = Dataset::new(images, vec![0, 1], 1 << 62, 4, 10);
    assert!(result.is_err(), "{result:?}");
}

#[test]
fn replaced_layers_that_do_not_chain_are_an_error() {
    let mut net = Network::<f32>::builder(&[3, 4, 2]).build().unwrap();
    // `layers_mut` hands out the layers themselves, so a caller can put a wider one in.
    net.layers_mut()[0] =
        Dense::new(Array2::ones((5, 3)), Array1::zeros(5), Activation::Relu).unwrap();
    for batch in [1, 300] {
        let x = Array2::<f32>::zeros((batch, 3));
        let y = Array2::<f32>::zeros((batch, 2));
        let predicted = catch_unwind(AssertUnwindSafe(|| net.predict(x.view())));
        assert!(
            matches!(predicted, Ok(Err(Error::Shape { .. }))),
            "predict: {predicted:?}"
        );
        let evaluated = catch_unwind(AssertUnwindSafe(|| net.evaluate(x.view(), y.view())));
        assert!(matches!(evaluated, Ok(Err(_))), "evaluate: {evaluated:?}");
        let gradients = catch_unwind(AssertUnwindSafe(|| net.gradients(x.view(), y.view())));
        assert!(matches!(gradients, Ok(Err(_))), "gradients");
    }
}
