//! Inverted dropout on hidden activations, equations (D) and (B2ᴰ) of
//! [`notation`](crate::notation), with masks drawn from a counter-based hash.
//!
//! Whether unit `j` of hidden layer `l` is dropped for a sample is a pure function of
//! (seed, epoch, sample, l, j): no generator state is carried from one draw to the next. A
//! minibatch's masks therefore do not depend on how its rows are cut into shards, on which
//! thread computes a shard, or on where a run was stopped and resumed: the trained weights stay
//! bit-identical for any thread count and across checkpoints.
//!
//! ```
//! use lernmi::nn::dropout::keeps;
//!
//! // The same key always gives the same answer.
//! assert_eq!(keeps(7, 0, 12, 0, 3, 0.5), keeps(7, 0, 12, 0, 3, 0.5));
//! // A rate of 0 keeps everything.
//! assert!((0..100).all(|j| keeps(7, 0, 12, 0, j, 0.0)));
//! ```

use ndarray::{s, Array2, ArrayView2, ArrayViewMut2, Zip};

use crate::keyed::{draw, prefix, unit_interval};
use crate::{Float, Network};

/// Whether dropout at `rate` keeps unit `unit` of hidden layer `layer` for sample `sample` in
/// epoch `epoch` of a run seeded `seed`: a uniform number u in [0, 1) is drawn from a hash of
/// all five, and the unit is kept when u ≥ rate, so with probability 1 − rate.
///
/// The trainer keys a sample by its index in the training set; [`crate::Trainer::step`], which
/// has no training set, keys row r of a step taken after n steps by 2⁶³ + (n·2¹⁶ mod 2⁶³) + r.
pub fn keeps(seed: u64, epoch: u64, sample: u64, layer: usize, unit: usize, rate: f64) -> bool {
    let bits = draw(prefix(seed, epoch, sample, layer as u64), unit as u64);
    unit_interval(bits) >= rate
}

/// The factor (D) multiplies a kept unit's activation by: 1 / (1 − rate), rounded to `F`.
pub fn keep_factor<F: Float>(rate: f64) -> F {
    F::of(1.0 / (1.0 - rate))
}

/// The dropout buffers of one shard: per hidden layer with a positive rate, the mask M_l of
/// (D) and the activations before it, which σ′ needs in (B2ᴰ).
#[derive(Clone, Debug)]
pub(crate) struct Masks<F: Float> {
    /// The rate of every layer (0 for the output layer and layers without dropout).
    rates: Vec<f64>,
    /// M_l, (capacity, n_l), entries 0 or 1 / (1 − p_l); (0, 0) where the rate is 0.
    factors: Vec<Array2<F>>,
    /// A_l before (D), shaped like `factors[l]`.
    undropped: Vec<Array2<F>>,
}

impl<F: Float> Masks<F> {
    /// Buffers for batches of up to `capacity` rows of `network` with one rate per hidden
    /// layer (`rates`, already validated), or `None` when every rate is 0: dropout at rate 0
    /// is no dropout, computed without a pass over the activations.
    pub(crate) fn new(network: &Network<F>, rates: &[f64], capacity: usize) -> Option<Self> {
        if rates.iter().all(|&p| p == 0.0) {
            return None;
        }
        let rates: Vec<f64> = (0..network.layers().len())
            .map(|l| rates.get(l).copied().unwrap_or(0.0))
            .collect();
        let buffer = |l: usize| match rates[l] > 0.0 {
            true => Array2::zeros((capacity, network.layers()[l].n_out())),
            false => Array2::zeros((0, 0)),
        };
        Some(Masks {
            factors: (0..rates.len()).map(buffer).collect(),
            undropped: (0..rates.len()).map(buffer).collect(),
            rates,
        })
    }

    /// The elements these buffers hold for `capacity` rows, for a memory estimate.
    pub(crate) fn elements(network: &Network<F>, rates: &[f64], capacity: usize) -> u128 {
        let widths: u128 = network
            .layers()
            .iter()
            .zip(rates)
            .filter(|(_, &p)| p > 0.0)
            .map(|(layer, _)| layer.n_out() as u128)
            .sum();
        2 * widths * capacity as u128
    }

    /// Draws the masks of the rows keyed `samples` (one key per row, at most the capacity).
    pub(crate) fn draw(&mut self, seed: u64, epoch: u64, samples: &[u64]) {
        for (l, factors) in self.factors.iter_mut().enumerate() {
            let rate = self.rates[l];
            if rate == 0.0 {
                continue;
            }
            let kept = keep_factor::<F>(rate);
            for (r, &sample) in samples.iter().enumerate() {
                let row_prefix = prefix(seed, epoch, sample, l as u64);
                for (j, m) in factors.row_mut(r).iter_mut().enumerate() {
                    let dropped = unit_interval(draw(row_prefix, j as u64)) < rate;
                    *m = if dropped { F::zero() } else { kept };
                }
            }
        }
    }

    /// (D) on layer `l`'s activations `a` (the batch's rows): keeps a copy of them, then
    /// multiplies them by the mask. Nothing for a layer without dropout.
    pub(crate) fn apply(&mut self, l: usize, mut a: ArrayViewMut2<'_, F>) {
        if self.rates[l] == 0.0 {
            return;
        }
        let rows = a.nrows();
        self.undropped[l].slice_mut(s![..rows, ..]).assign(&a);
        Zip::from(&mut a)
            .and(&self.factors[l].slice(s![..rows, ..]))
            .for_each(|a, &m| *a *= m);
    }

    /// The first half of (B2ᴰ) for layer `l`: multiplies `g` = ∂L/∂(A_l ⊙ M_l) by M_l, making
    /// it ∂L/∂A_l; returns A_l before dropout, which σ′ needs, or `None` for a layer without
    /// dropout (whose activations were never changed).
    pub(crate) fn unapply(
        &self,
        l: usize,
        mut g: ArrayViewMut2<'_, F>,
    ) -> Option<ArrayView2<'_, F>> {
        if self.rates[l] == 0.0 {
            return None;
        }
        let rows = g.nrows();
        Zip::from(&mut g)
            .and(&self.factors[l].slice(s![..rows, ..]))
            .for_each(|g, &m| *g *= m);
        Some(self.undropped[l].slice(s![..rows, ..]))
    }
}

#[cfg(test)]
mod tests {
    use ndarray::Array1;

    use super::*;
    use crate::keyed::mix;
    use crate::{Activation, Dense, Loss};

    const RATES: [f64; 2] = [0.5, 0.3];
    const KEYS: [u64; 4] = [7, 0, 123_456, 3];

    /// A [4, 6, 5, 3] network: sigmoid then tanh hidden layers (σ′ from the activations),
    /// softmax with cross-entropy.
    fn network() -> Network<f64> {
        let sizes = [4, 6, 5, 3];
        let acts = [Activation::Sigmoid, Activation::Tanh, Activation::Softmax];
        let mut state = 0x1234_5678u64;
        let mut next = || {
            state = mix(state);
            unit_interval(state) * 2.0 - 1.0
        };
        let layers = sizes
            .windows(2)
            .zip(acts)
            .map(|(p, act)| {
                let w = Array2::from_shape_simple_fn((p[1], p[0]), &mut next);
                let b = Array1::from_shape_simple_fn(p[1], &mut next);
                Dense::new(w, b, act).unwrap()
            })
            .collect();
        Network::from_layers(layers, Loss::CrossEntropy, None).unwrap()
    }

    fn batch() -> (Array2<f64>, Array2<f64>) {
        let x = Array2::from_shape_fn((4, 4), |(r, c)| ((r * 4 + c) as f64 * 0.37).sin());
        let y = Array2::from_shape_fn((4, 3), |(r, c)| if c == r % 3 { 1.0 } else { 0.0 });
        (x, y)
    }

    /// The summed loss and gradients with the masks of [`KEYS`].
    fn loss_and_gradients(net: &Network<f64>) -> (f64, crate::Gradients<f64>) {
        let (x, y) = batch();
        let mut masks = Masks::new(net, &RATES, 4).unwrap();
        masks.draw(5, 2, &KEYS);
        let mut ws = net.workspace(4);
        let mut g = net.zero_gradients();
        let loss =
            net.summed_gradients(x.view(), y.view(), &mut ws, &mut g, None, Some(&mut masks));
        (loss, g)
    }

    #[test]
    fn masks_are_the_public_draws() {
        let net = network();
        let mut masks = Masks::<f64>::new(&net, &RATES, 4).unwrap();
        masks.draw(5, 2, &KEYS);
        let mut dropped = 0;
        for (l, &rate) in RATES.iter().enumerate() {
            for (r, &key) in KEYS.iter().enumerate() {
                for j in 0..net.layers()[l].n_out() {
                    let want = match keeps(5, 2, key, l, j, rate) {
                        true => 1.0 / (1.0 - rate),
                        false => 0.0,
                    };
                    assert_eq!(masks.factors[l][[r, j]], want, "layer {l} row {r} unit {j}");
                    dropped += usize::from(want == 0.0);
                }
            }
        }
        assert!(dropped > 0, "the masks of this test drop nothing");
        assert_eq!(
            masks.factors[2].dim(),
            (0, 0),
            "the output layer never drops"
        );
    }

    /// The masks a shard draws for a wide layer drop a fraction within 5 standard deviations
    /// of the rate, and scale every kept unit by 1 / (1 − rate).
    #[test]
    fn a_wide_layer_drops_the_rate_within_a_binomial_bound() {
        let net = Network::<f32>::builder(&[2, 10_000, 2]).build().unwrap();
        let keys: Vec<u64> = (100..120).collect();
        for rate in [0.05, 0.3, 0.9] {
            let mut masks = Masks::new(&net, &[rate], keys.len()).unwrap();
            masks.draw(1, 4, &keys);
            let kept = keep_factor::<f32>(rate);
            assert!(masks.factors[0].iter().all(|&m| m == 0.0 || m == kept));
            let dropped = masks.factors[0].iter().filter(|&&m| m == 0.0).count() as f64;
            let n = masks.factors[0].len() as f64;
            let sd = (n * rate * (1.0 - rate)).sqrt();
            assert!(
                (dropped - n * rate).abs() < 5.0 * sd,
                "rate {rate}: {dropped} of {n}"
            );
        }
    }

    /// (B2ᴰ) against central differences of the loss, every weight and bias, with the masks
    /// held fixed.
    #[test]
    fn gradients_with_a_fixed_mask_match_finite_differences() {
        let mut net = network();
        let (_, analytic) = loss_and_gradients(&net);
        let (plain_x, plain_y) = batch();
        let (_, undropped) = net.gradients(plain_x.view(), plain_y.view()).unwrap();
        assert_ne!(analytic, undropped, "the masks change the gradients");
        let eps = 1e-6;
        for l in 0..net.layers().len() {
            let (n_out, n_in) = net.layers()[l].weights().dim();
            for j in 0..n_out {
                for k in 0..=n_in {
                    let nudge = |net: &mut Network<f64>, by: f64| {
                        let layer = &mut net.layers_mut()[l];
                        let (mut w, mut b) = layer.parameters_mut();
                        let p = if k == n_in { &mut b[j] } else { &mut w[[j, k]] };
                        *p += by;
                    };
                    nudge(&mut net, eps);
                    let up = loss_and_gradients(&net).0;
                    nudge(&mut net, -2.0 * eps);
                    let down = loss_and_gradients(&net).0;
                    nudge(&mut net, eps);
                    let numeric = (up - down) / (2.0 * eps);
                    let g = &analytic.layers[l];
                    let exact = if k == n_in {
                        g.biases[j]
                    } else {
                        g.weights[[j, k]]
                    };
                    assert!(
                        (numeric - exact).abs() <= 1e-6 * (1.0 + exact.abs()),
                        "layer {l} ({j}, {k}): analytic {exact}, numeric {numeric}"
                    );
                }
            }
        }
    }

    /// A rate just below 1 still keeps a unit now and then, with the factor 1 / (1 − p).
    #[test]
    fn keep_factor_is_the_inverse_of_the_keep_probability() {
        assert_eq!(keep_factor::<f64>(0.5), 2.0);
        assert_eq!(keep_factor::<f32>(0.0), 1.0);
        assert_eq!(keep_factor::<f64>(0.75), 4.0);
    }
}
