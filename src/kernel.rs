//! Hand-written kernels for one sample at a time (the seed's per-sample SGD).
//!
//! With a single row, the matrix products of (F), (B2) and (B3) are matrix-vector products too
//! small for a blocked GEMM to pay off. These loops do them directly, and in **the seed's
//! summation order**: z_j starts at the bias and adds a_i·w_ji for i = 1, 2, … in turn, and a
//! neuron's sensitivity starts at 0 and adds w_ij·δ_j for j = 1, 2, … in turn, each as a
//! separate multiply and add (Rust never contracts them into fused multiply-adds). So a dense
//! network trained one sample at a time is bit-for-bit the object graph's arithmetic.
//!
//! Weights are stored as Lernmi orders its Links: input by input, and for each input its
//! weights to every output (column-major for the (n_out × n_in) matrix), so `weights[i·n_out + j]`
//! is w_ji.
//!
//! Each kernel is compiled for AVX-512, for AVX2 and for the baseline, and the best the CPU
//! supports is chosen at run time (the `multiversion` crate), so no build flags are needed.

use crate::Float;

/// (F) for one sample: `z_j = b_j + Σ_i x_i·w_ji`, each z_j summed left to right over i.
/// The loop runs along j, where the weights of one input are contiguous.
#[multiversion::multiversion(targets("x86_64+avx512f+avx512vl+avx2+fma", "x86_64+avx2+fma"))]
pub(crate) fn weighted_inputs<F: Float>(weights: &[F], biases: &[F], x: &[F], z: &mut [F]) {
    let n_out = z.len();
    debug_assert_eq!(weights.len(), n_out * x.len());
    if n_out <= NARROW && x.len() > 1 {
        return narrow_weighted_inputs(weights, biases, x, z);
    }
    z.copy_from_slice(biases);
    for (&xi, column) in x.iter().zip(weights.chunks_exact(n_out)) {
        for (z, &w) in z.iter_mut().zip(column) {
            *z += xi * w;
        }
    }
}

/// Layers at most this wide keep all of z in one register-sized array.
const NARROW: usize = 16;

/// [`weighted_inputs`] for n_out ≤ 16: every input adds one full-width vector. The lanes past
/// n_out read the next inputs' weights and are discarded; the inputs too close to the end of
/// the weights for a full-width read are added one lane at a time.
#[inline(always)]
fn narrow_weighted_inputs<F: Float>(weights: &[F], biases: &[F], x: &[F], z: &mut [F]) {
    let n_out = z.len();
    let mut acc = [F::zero(); NARROW];
    acc[..n_out].copy_from_slice(biases);
    // Inputs i whose full-width read weights[i·n_out .. i·n_out + 16] stays in bounds.
    let wide = (weights.len().saturating_sub(NARROW) / n_out + 1).min(x.len());
    let wide = if weights.len() >= NARROW { wide } else { 0 };
    for (i, &xi) in x[..wide].iter().enumerate() {
        if let Some(w) = weights[i * n_out..].first_chunk::<NARROW>() {
            for k in 0..NARROW {
                acc[k] += xi * w[k];
            }
        }
    }
    for (i, &xi) in x.iter().enumerate().skip(wide) {
        for (k, &w) in weights[i * n_out..(i + 1) * n_out].iter().enumerate() {
            acc[k] += xi * w;
        }
    }
    z.copy_from_slice(&acc[..n_out]);
}

/// First half of (B2) for one sample: `s_i = Σ_j w_ji·δ_j`, starting from 0, j in order.
#[multiversion::multiversion(targets("x86_64+avx512f+avx512vl+avx2+fma", "x86_64+avx2+fma"))]
pub(crate) fn input_sensitivities<F: Float>(weights: &[F], delta: &[F], s: &mut [F]) {
    let n_out = delta.len();
    debug_assert_eq!(weights.len(), n_out * s.len());
    for (s, column) in s.iter_mut().zip(weights.chunks_exact(n_out)) {
        *s = column
            .iter()
            .zip(delta)
            .fold(F::zero(), |acc, (&w, &d)| acc + w * d);
    }
}

/// (B3) for one sample: `g_ji = x_i·δ_j` (added to `g` when `accumulate`).
#[multiversion::multiversion(targets("x86_64+avx512f+avx512vl+avx2+fma", "x86_64+avx2+fma"))]
pub(crate) fn outer<F: Float>(delta: &[F], x: &[F], g: &mut [F], accumulate: bool) {
    let n_out = delta.len();
    debug_assert_eq!(g.len(), n_out * x.len());
    // Narrow layers: write full 16-lane vectors of x_i·δ with δ padded by zeros. The lanes past
    // n_out land on the next input's gradients as 0 (or +0) and are overwritten next.
    let mut start = 0;
    if n_out < NARROW && g.len() >= NARROW {
        let mut padded = [F::zero(); NARROW];
        padded[..n_out].copy_from_slice(delta);
        let wide = ((g.len() - NARROW) / n_out + 1).min(x.len());
        for (i, &xi) in x[..wide].iter().enumerate() {
            if let Some(column) = g[i * n_out..].first_chunk_mut::<NARROW>() {
                if accumulate {
                    for k in 0..NARROW {
                        column[k] += xi * padded[k];
                    }
                } else {
                    for k in 0..NARROW {
                        column[k] = xi * padded[k];
                    }
                }
            }
        }
        start = wide;
    }
    for (&xi, column) in x[start..]
        .iter()
        .zip(g[start * n_out..].chunks_exact_mut(n_out))
    {
        if accumulate {
            for (g, &d) in column.iter_mut().zip(delta) {
                *g += xi * d;
            }
        } else {
            for (g, &d) in column.iter_mut().zip(delta) {
                *g = xi * d;
            }
        }
    }
}

/// Lanes of independent accumulators in [`finite_under`], so that the check vectorises.
const LANES: usize = 16;

/// Whether `rule` is finite at every index of the equally long `inputs`: sums `rule(..)·0`
/// (0 for a finite value, NaN otherwise) in 16 independent lanes.
#[multiversion::multiversion(targets("x86_64+avx512f+avx512vl+avx2+fma", "x86_64+avx2+fma"))]
pub(crate) fn finite_under<F: Float, const N: usize>(
    inputs: [&[F]; N],
    rule: impl Fn([F; N]) -> F,
) -> bool {
    let len = inputs.first().map_or(0, |s| s.len());
    debug_assert!(inputs.iter().all(|s| s.len() == len));
    let chunked: [(&[[F; LANES]], &[F]); N] =
        std::array::from_fn(|m| inputs[m].as_chunks::<LANES>());
    let full = chunked.first().map_or(0, |c| c.0.len());
    let mut lanes = [F::zero(); LANES];
    for c in 0..full {
        let chunk: [&[F; LANES]; N] = std::array::from_fn(|m| &chunked[m].0[c]);
        for (k, lane) in lanes.iter_mut().enumerate() {
            *lane += rule(std::array::from_fn(|m| chunk[m][k])) * F::zero();
        }
    }
    let tail_len = chunked.first().map_or(0, |c| c.1.len());
    let tail = (0..tail_len).fold(F::zero(), |acc, i| {
        acc + rule(std::array::from_fn(|m| chunked[m].1[i])) * F::zero()
    });
    lanes.iter().fold(tail, |acc, &l| acc + l) == F::zero()
}

/// SGD on contiguous parameters: `w ← w − η·(g + λ·w)` (λ = 0 skips the decay term).
#[multiversion::multiversion(targets("x86_64+avx512f+avx512vl+avx2+fma", "x86_64+avx2+fma"))]
pub(crate) fn sgd<F: Float>(weights: &mut [F], grads: &[F], lr: F, decay: F) {
    debug_assert_eq!(weights.len(), grads.len());
    if decay == F::zero() {
        for (w, &g) in weights.iter_mut().zip(grads) {
            *w -= lr * g;
        }
    } else {
        for (w, &g) in weights.iter_mut().zip(grads) {
            *w -= lr * (g + decay * *w);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The kernels against plain loops in the seed's order, bit for bit, for many shapes.
    #[allow(clippy::needless_range_loop)] // index loops mirror the maths being checked
    #[test]
    fn kernels_match_plain_loops_bit_for_bit() {
        let mut seed = 1u64;
        let mut next = || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 11) as f64 / (1u64 << 53) as f64 - 0.5
        };
        for n_in in [1, 2, 3, 7, 16, 17, 100] {
            for n_out in [1, 2, 5, 8, 15, 16, 17, 40] {
                let w: Vec<f64> = (0..n_in * n_out).map(|_| next()).collect();
                let b: Vec<f64> = (0..n_out).map(|_| next()).collect();
                let x: Vec<f64> = (0..n_in).map(|_| next()).collect();
                let d: Vec<f64> = (0..n_out).map(|_| next()).collect();
                let mut z = vec![0.0; n_out];
                weighted_inputs(&w, &b, &x, &mut z);
                for j in 0..n_out {
                    let mut want = b[j];
                    for i in 0..n_in {
                        want += x[i] * w[i * n_out + j];
                    }
                    assert_eq!(z[j].to_bits(), want.to_bits(), "z, {n_in}x{n_out}, j {j}");
                }
                let mut s = vec![0.0; n_in];
                input_sensitivities(&w, &d, &mut s);
                let mut g = vec![1.0; n_in * n_out];
                outer(&d, &x, &mut g, false);
                for i in 0..n_in {
                    let mut want = 0.0;
                    for j in 0..n_out {
                        want += w[i * n_out + j] * d[j];
                        assert_eq!(g[i * n_out + j].to_bits(), (x[i] * d[j]).to_bits());
                    }
                    assert_eq!(s[i].to_bits(), want.to_bits(), "s, {n_in}x{n_out}, i {i}");
                }
                let mut acc = g.clone();
                outer(&d, &x, &mut acc, true);
                for i in 0..n_in {
                    for j in 0..n_out {
                        let k = i * n_out + j;
                        assert_eq!(
                            acc[k].to_bits(),
                            (g[k] + x[i] * d[j]).to_bits(),
                            "acc {n_in}x{n_out}"
                        );
                    }
                }
                let mut f = w.clone();
                sgd(&mut f, &g, 0.1, 0.0);
                assert!(f
                    .iter()
                    .zip(&w)
                    .zip(&g)
                    .all(|((f, w), g)| *f == w - 0.1 * g));
                assert!(finite_under([&f[..], &g[..]], |[a, b]| a + b));
                f[n_in * n_out / 2] = f64::INFINITY;
                assert!(!finite_under([&f[..]], |[a]| a));
            }
        }
    }
}
