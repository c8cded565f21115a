//! Bad input to the trainer, the optimiser state and the builder gives a typed error before
//! anything is allocated or changed, never a panic or an abort; comparisons see NaN.

use lernmi::Network;

fn net(sizes: &[usize]) -> Network<f32> {
    Network::<f32>::builder(sizes).seed(2).build::<f32>().unwrap()
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
