//! Hand-written kernels for one sample at a time (the seed's per-sample SGD).
//!
//! With a single row, the matrix products of (F), (B2) and (B3) are matrix-vector products too
//! small for a blocked GEMM to pay off. These loops do them directly, and in **the seed's
//! summation order**: z_j starts at the bias and adds a_i·w_ji for i = 1, 2, … in turn, and a
//! neuron's sensitivity starts at 0 and adds w_ij·δ_j for j = 1, 2, … in turn, each as a
//! separate multiply and add (Rust never contracts them into fused multiply-adds). So a dense
//! network trained one sample at a time is bit-for-bit the object graph's arithmetic.
//!
//! All slices are row-major: `weights` is (n_out × n_in).

use crate::Float;

/// Independent accumulation chains per block of output rows in [`weighted_inputs`].
const BLOCK: usize = 8;

/// (F) for one sample: `z_j = b_j + Σ_i x_i·w_ji`, summed left to right.
pub(crate) fn weighted_inputs<F: Float>(weights: &[F], biases: &[F], x: &[F], z: &mut [F]) {
    let n_in = x.len();
    debug_assert_eq!(weights.len(), z.len() * n_in);
    debug_assert_eq!(biases.len(), z.len());
    let mut j = 0;
    while j + BLOCK <= z.len() {
        block::<F, BLOCK>(
            &weights[j * n_in..(j + BLOCK) * n_in],
            &biases[j..j + BLOCK],
            x,
            &mut z[j..j + BLOCK],
        );
        j += BLOCK;
    }
    while j < z.len() {
        block::<F, 1>(
            &weights[j * n_in..(j + 1) * n_in],
            &biases[j..j + 1],
            x,
            &mut z[j..j + 1],
        );
        j += 1;
    }
}

/// R output rows at once: R independent chains, each in the seed's order.
#[inline(always)]
fn block<F: Float, const R: usize>(weights: &[F], biases: &[F], x: &[F], z: &mut [F]) {
    let n_in = x.len();
    let mut acc = [F::zero(); R];
    acc.copy_from_slice(biases);
    let rows: [&[F]; R] = std::array::from_fn(|r| &weights[r * n_in..(r + 1) * n_in]);
    for (i, &xi) in x.iter().enumerate() {
        for r in 0..R {
            acc[r] += xi * rows[r][i];
        }
    }
    z.copy_from_slice(&acc);
}

/// First half of (B2) for one sample: `s_i = Σ_j δ_j·w_ji`, starting from 0, j in order.
pub(crate) fn input_sensitivities<F: Float>(weights: &[F], delta: &[F], s: &mut [F]) {
    let n_in = s.len();
    debug_assert_eq!(weights.len(), delta.len() * n_in);
    s.fill(F::zero());
    for (j, &d) in delta.iter().enumerate() {
        let row = &weights[j * n_in..(j + 1) * n_in];
        for (s, &w) in s.iter_mut().zip(row) {
            *s += w * d;
        }
    }
}

/// (B3) for one sample: `g_ji = δ_j·x_i` (added to `g` when `accumulate`).
pub(crate) fn outer<F: Float>(delta: &[F], x: &[F], g: &mut [F], accumulate: bool) {
    let n_in = x.len();
    debug_assert_eq!(g.len(), delta.len() * n_in);
    for (j, &d) in delta.iter().enumerate() {
        let row = &mut g[j * n_in..(j + 1) * n_in];
        if accumulate {
            for (g, &xi) in row.iter_mut().zip(x) {
                *g += xi * d;
            }
        } else {
            for (g, &xi) in row.iter_mut().zip(x) {
                *g = xi * d;
            }
        }
    }
}
