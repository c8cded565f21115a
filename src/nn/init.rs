//! Seeded weight initialisation.
//!
//! Every scheme is deterministic: the same seed gives the same weights on every machine and
//! thread count. [`Init::Lernmi`] reproduces the seed program bit for bit: each layer draws from
//! its own Mersenne Twister seeded with 1, in Link order (bias first).

use ndarray::{Array1, Array2};
use ndarray_rand::rand_distr::StandardNormal;
use ndarray_rand::RandomExt;
use rand::distr::StandardUniform;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::Float;

/// How a layer's initial weights and biases are drawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Init {
    /// Glorot & Bengio: weights uniform in ±√(6 / (n_in + n_out)), biases zero. Suits sigmoid and tanh.
    XavierUniform,
    /// He et al.: weights normal with standard deviation √(2 / n_in), biases zero. Suits the rectifiers.
    #[default]
    He,
    /// Weights and biases uniform in [−0.5, 0.5), the seed's distribution, drawn from the seeded
    /// generator (ChaCha8) rather than the seed's Mersenne Twister.
    Uniform,
    /// Exactly the seed's weights: each layer has its own MT19937 seeded with 1
    /// (`init_genrand(1)`, 53-bit doubles), w = r − 0.5, drawn for the bias first, then for
    /// each input neuron, and for each of those over the output neurons. The seed value of
    /// [`Init::draw`] is ignored.
    Lernmi,
}

impl Init {
    /// The scheme's name.
    pub fn name(&self) -> &'static str {
        match self {
            Init::XavierUniform => "xavier",
            Init::He => "he",
            Init::Uniform => "uniform",
            Init::Lernmi => "lernmi",
        }
    }

    /// Draws weights (n_out × n_in) and biases (n_out) for layer number `layer` of a network
    /// initialised from `seed`. Each layer has its own random stream, so adding a layer does
    /// not change the others.
    pub fn draw<F: Float>(
        &self,
        n_in: usize,
        n_out: usize,
        seed: u64,
        layer: usize,
    ) -> (Array2<F>, Array1<F>) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(layer as u64);
        // Uniform in [low, high) from a standard uniform r ∈ [0, 1).
        let uniform = |low: f64, high: f64| move |r: f64| F::of(low + (high - low) * r);
        let unit = |shape: (usize, usize), rng: &mut ChaCha8Rng| -> Array2<f64> {
            Array2::random_using(shape, StandardUniform, rng)
        };
        match self {
            Init::XavierUniform => {
                let a = (6.0 / (n_in + n_out) as f64).sqrt();
                let weights = unit((n_out, n_in), &mut rng).mapv(uniform(-a, a));
                (weights, Array1::zeros(n_out))
            }
            Init::He => {
                let sd = (2.0 / n_in as f64).sqrt();
                let normal: Array2<f64> =
                    Array2::random_using((n_out, n_in), StandardNormal, &mut rng);
                (normal.mapv(|x| F::of(sd * x)), Array1::zeros(n_out))
            }
            Init::Uniform => {
                let weights = unit((n_out, n_in), &mut rng).mapv(uniform(-0.5, 0.5));
                let biases: Array1<f64> = Array1::random_using(n_out, StandardUniform, &mut rng);
                let biases = biases.mapv(uniform(-0.5, 0.5));
                (weights, biases)
            }
            Init::Lernmi => {
                let mut mt = Mt19937::new(1);
                let mut biases = Array1::zeros(n_out);
                let mut weights = Array2::zeros((n_out, n_in));
                for j in 0..n_out {
                    biases[j] = F::of(mt.next_f64() - 0.5);
                }
                for i in 0..n_in {
                    for j in 0..n_out {
                        weights[[j, i]] = F::of(mt.next_f64() - 0.5);
                    }
                }
                (weights, biases)
            }
        }
    }
}

/// The 32-bit Mersenne Twister (Matsumoto & Nishimura, 1998), the generator behind Ruby's
/// `Random` and numpy's `RandomState`, with its `genrand_res53` doubles.
pub(crate) struct Mt19937 {
    state: [u32; 624],
    index: usize,
}

impl Mt19937 {
    /// `init_genrand(seed)`.
    pub(crate) fn new(seed: u32) -> Self {
        let mut state = [0u32; 624];
        state[0] = seed;
        for i in 1..624 {
            let prev = state[i - 1];
            state[i] = 1_812_433_253u32
                .wrapping_mul(prev ^ (prev >> 30))
                .wrapping_add(i as u32);
        }
        Mt19937 { state, index: 624 }
    }

    fn twist(&mut self) {
        const UPPER: u32 = 0x8000_0000;
        const LOWER: u32 = 0x7fff_ffff;
        for i in 0..624 {
            let y = (self.state[i] & UPPER) | (self.state[(i + 1) % 624] & LOWER);
            let mut next = self.state[(i + 397) % 624] ^ (y >> 1);
            if y & 1 != 0 {
                next ^= 0x9908_b0df;
            }
            self.state[i] = next;
        }
        self.index = 0;
    }

    /// `genrand_int32`.
    pub(crate) fn next_u32(&mut self) -> u32 {
        if self.index >= 624 {
            self.twist();
        }
        let mut y = self.state[self.index];
        self.index += 1;
        y ^= y >> 11;
        y ^= (y << 7) & 0x9d2c_5680;
        y ^= (y << 15) & 0xefc6_0000;
        y ^ (y >> 18)
    }

    /// `genrand_res53`: a double in [0, 1) with 53 random bits.
    pub(crate) fn next_f64(&mut self) -> f64 {
        let a = f64::from(self.next_u32() >> 5);
        let b = f64::from(self.next_u32() >> 6);
        (a * 67_108_864.0 + b) * (1.0 / 9_007_199_254_740_992.0)
    }
}

#[cfg(test)]
#[allow(clippy::excessive_precision)] // reference values pasted as printed (%.17g)
mod tests {
    use super::*;

    #[test]
    fn mersenne_twister_matches_the_reference_implementation() {
        // First outputs of mt19937ar.c with init_genrand(5489), the C++ std::mt19937 default;
        // the 10000th is the value the C++ standard requires (4123659995).
        let mut mt = Mt19937::new(5489);
        assert_eq!(mt.next_u32(), 3_499_211_612);
        assert_eq!(mt.next_u32(), 581_869_302);
        let mut mt = Mt19937::new(5489);
        let last = (0..10_000).map(|_| mt.next_u32()).last();
        assert_eq!(last, Some(4_123_659_995));
    }

    #[test]
    fn lernmi_init_starts_with_the_seed_sequence() {
        let (w, b) = Init::Lernmi.draw::<f64>(3, 2, 0, 0);
        assert_eq!(b[0], -0.082977995297425999);
        assert_eq!(b[1], 0.2203244934421581);
        assert_eq!(w[[0, 0]], -0.49988562518265511);
    }
}
