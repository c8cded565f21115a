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

use super::elementwise::sgd_rule;
use crate::Float;

/// (F) for one sample: `z_j = b_j + Σ_i x_i·w_ji`, each z_j summed left to right over i.
/// The loop runs along j, where the weights of one input are contiguous.
///
/// # Panics
/// Unless `weights` holds `z.len() · x.len()` values and `biases` `z.len()`: the AVX-512
/// kernels read that many through raw pointers, so the check is real in every build.
pub(crate) fn weighted_inputs<F: Float>(weights: &[F], biases: &[F], x: &[F], z: &mut [F]) {
    assert!(
        z.len().checked_mul(x.len()) == Some(weights.len()) && biases.len() == z.len(),
        "weighted_inputs: {} weights, {} biases for {} inputs and {} outputs",
        weights.len(),
        biases.len(),
        x.len(),
        z.len()
    );
    #[cfg(target_arch = "x86_64")]
    if z.len() <= avx512::NARROW && avx512::available() {
        if let (Some(w), Some(b), Some(x), Some(z)) = (
            as_type::<_, f32>(weights),
            as_type::<_, f32>(biases),
            as_type::<_, f32>(x),
            as_type_mut::<_, f32>(z),
        ) {
            // SAFETY: AVX-512F is available, z.len() ≤ 16, and the slices have the lengths
            // asserted above.
            unsafe { avx512::weighted_inputs_f32(w, b, x, z) };
            return;
        }
        if let (Some(w), Some(b), Some(x), Some(z)) = (
            as_type::<_, f64>(weights),
            as_type::<_, f64>(biases),
            as_type::<_, f64>(x),
            as_type_mut::<_, f64>(z),
        ) {
            // SAFETY: as above.
            unsafe { avx512::weighted_inputs_f64(w, b, x, z) };
            return;
        }
    }
    weighted_inputs_portable(weights, biases, x, z)
}

/// [`weighted_inputs`] in plain Rust, compiled for each instruction set by `multiversion`.
#[multiversion::multiversion(targets("x86_64+avx512f+avx512vl+avx2+fma", "x86_64+avx2+fma"))]
fn weighted_inputs_portable<F: Float>(weights: &[F], biases: &[F], x: &[F], z: &mut [F]) {
    let n_out = z.len();
    debug_assert_eq!(weights.len(), n_out * x.len());
    if n_out <= NARROW && x.len() > 1 {
        return narrow_weighted_inputs(weights, biases, x, z);
    }
    z.copy_from_slice(biases);
    // Four inputs per pass over z: a quarter of the loads and stores of z, while the weights
    // still stream row after row. Each z_j still adds its terms one at a time in input order,
    // so the bits are those of one input per pass.
    let fours = x.len() / 4 * 4;
    let (x4, x1) = x.split_at(fours);
    let (w4, w1) = weights.split_at(fours * n_out);
    for (x, w) in x4.chunks_exact(4).zip(w4.chunks_exact(4 * n_out)) {
        let (w0, w) = w.split_at(n_out);
        let (w1, w) = w.split_at(n_out);
        let (w2, w3) = w.split_at(n_out);
        for (j, z) in z.iter_mut().enumerate() {
            let t = *z + x[0] * w0[j];
            let t = t + x[1] * w1[j];
            let t = t + x[2] * w2[j];
            *z = t + x[3] * w3[j];
        }
    }
    for (&xi, column) in x1.iter().zip(w1.chunks_exact(n_out)) {
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
///
/// # Panics
/// Unless `weights` holds `delta.len() · s.len()` values.
#[multiversion::multiversion(targets("x86_64+avx512f+avx512vl+avx2+fma", "x86_64+avx2+fma"))]
pub(crate) fn input_sensitivities<F: Float>(weights: &[F], delta: &[F], s: &mut [F]) {
    let n_out = delta.len();
    assert!(
        n_out.checked_mul(s.len()) == Some(weights.len()),
        "input_sensitivities: shapes"
    );
    for (s, column) in s.iter_mut().zip(weights.chunks_exact(n_out)) {
        *s = column
            .iter()
            .zip(delta)
            .fold(F::zero(), |acc, (&w, &d)| acc + w * d);
    }
}

/// (B3) for one sample: `g_ji = x_i·δ_j` (added to `g` when `accumulate`).
///
/// # Panics
/// Unless `g` holds `delta.len() · x.len()` values.
#[multiversion::multiversion(targets("x86_64+avx512f+avx512vl+avx2+fma", "x86_64+avx2+fma"))]
pub(crate) fn outer<F: Float>(delta: &[F], x: &[F], g: &mut [F], accumulate: bool) {
    let n_out = delta.len();
    assert!(n_out.checked_mul(x.len()) == Some(g.len()), "outer: shapes");
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

/// (B3) and (U) fused for one sample under plain SGD: `w_ji ← w_ji − η·(x_i·δ_j)`, or with
/// weight decay λ `w_ji ← w_ji − η·(x_i·δ_j + λ·w_ji)`: the same operations, in the same order,
/// as [`outer`] followed by [`sgd`](super::elementwise::sgd), without writing the gradient anywhere.
///
/// With `write` false nothing changes and the result says whether every new weight would be
/// finite; with `write` true the weights are updated (and the result is true).
pub(crate) fn sgd_outer<F: Float>(
    weights: &mut [F],
    x: &[F],
    delta: &[F],
    lr: F,
    decay: F,
    write: bool,
) -> bool {
    // Real in every build: the AVX-512 kernels walk the weights through raw pointers.
    assert!(
        delta.len().checked_mul(x.len()) == Some(weights.len()),
        "sgd_outer: {} weights for {} inputs and {} outputs",
        weights.len(),
        x.len(),
        delta.len()
    );
    #[cfg(target_arch = "x86_64")]
    if avx512::available() {
        if let (Some(w), Some(x), Some(d)) = (
            as_type_mut::<_, f32>(weights),
            as_type::<_, f32>(x),
            as_type::<_, f32>(delta),
        ) {
            let (lr, decay) = (lr.to_f64_lossless() as f32, decay.to_f64_lossless() as f32);
            // SAFETY: AVX-512F is available, and the lengths are asserted above.
            return unsafe { avx512::sgd_outer_f32(w, x, d, lr, decay, write) };
        }
        if let (Some(w), Some(x), Some(d)) = (
            as_type_mut::<_, f64>(weights),
            as_type::<_, f64>(x),
            as_type::<_, f64>(delta),
        ) {
            let (lr, decay) = (lr.to_f64_lossless(), decay.to_f64_lossless());
            // SAFETY: as above.
            return unsafe { avx512::sgd_outer_f64(w, x, d, lr, decay, write) };
        }
    }
    sgd_outer_portable(weights, x, delta, lr, decay, write)
}

/// [`sgd_outer`] in plain Rust, compiled for each instruction set by `multiversion`.
#[multiversion::multiversion(targets("x86_64+avx512f+avx512vl+avx2+fma", "x86_64+avx2+fma"))]
fn sgd_outer_portable<F: Float>(
    weights: &mut [F],
    x: &[F],
    delta: &[F],
    lr: F,
    decay: F,
    write: bool,
) -> bool {
    let n_out = delta.len();
    let mut check = F::zero();
    for (&xi, column) in x.iter().zip(weights.chunks_exact_mut(n_out)) {
        for (w, &d) in column.iter_mut().zip(delta) {
            let new = sgd_rule(*w, xi * d, lr, decay);
            if write {
                *w = new;
            } else {
                check += new * F::zero();
            }
        }
    }
    check == F::zero()
}

/// Σ|v| in f64, in eight independent lanes so that it vectorises; NaN or ∞ anywhere makes the
/// sum NaN or ∞.
#[multiversion::multiversion(targets("x86_64+avx512f+avx512vl+avx2+fma", "x86_64+avx2+fma"))]
pub(crate) fn sum_abs<F: Float>(v: &[F]) -> f64 {
    let mut lanes = [0.0f64; 8];
    let (chunks, tail) = v.as_chunks::<8>();
    for chunk in chunks {
        for (lane, &x) in lanes.iter_mut().zip(chunk) {
            *lane += x.to_f64_lossless().abs();
        }
    }
    let tail: f64 = tail.iter().map(|x| x.to_f64_lossless().abs()).sum();
    lanes.iter().sum::<f64>() + tail
}

/// max |v| in f64, in eight independent lanes so that it vectorises. NaN is ignored (as by
/// `f64::max`); ∞ is the maximum.
#[multiversion::multiversion(targets("x86_64+avx512f+avx512vl+avx2+fma", "x86_64+avx2+fma"))]
pub(crate) fn max_abs<F: Float>(v: &[F]) -> f64 {
    let mut lanes = [0.0f64; 8];
    let (chunks, tail) = v.as_chunks::<8>();
    for chunk in chunks {
        for (lane, &x) in lanes.iter_mut().zip(chunk) {
            *lane = lane.max(x.to_f64_lossless().abs());
        }
    }
    let tail = tail
        .iter()
        .fold(0.0f64, |m, x| m.max(x.to_f64_lossless().abs()));
    lanes.iter().fold(tail, |m, &l| m.max(l))
}

#[cfg(target_arch = "x86_64")]
/// `Some` when `F` is `T` itself: the same slice, typed as what it is (to reach the kernels
/// written for `f32` or `f64` from generic code).
pub(crate) fn as_type<F: Float, T: 'static>(s: &[F]) -> Option<&[T]> {
    // SAFETY: F is T itself, so the cast changes nothing but the type's name.
    (std::any::TypeId::of::<F>() == std::any::TypeId::of::<T>())
        .then(|| unsafe { std::slice::from_raw_parts(s.as_ptr().cast(), s.len()) })
}

#[cfg(target_arch = "x86_64")]
/// [`as_type`] for a mutable slice.
pub(crate) fn as_type_mut<F: Float, T: 'static>(s: &mut [F]) -> Option<&mut [T]> {
    // SAFETY: as in `as_type`.
    (std::any::TypeId::of::<F>() == std::any::TypeId::of::<T>())
        .then(|| unsafe { std::slice::from_raw_parts_mut(s.as_mut_ptr().cast(), s.len()) })
}

/// AVX-512 versions of the one-sample kernels, written with intrinsics: a layer of up to 16
/// outputs keeps all of z in one or two registers, and masked loads and stores handle widths
/// that are not a multiple of the vector. Every lane does the same separate multiply and add
/// (never fused) as the scalar code, so the results are the same bits.
#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;

    /// The widest layer the register-resident forward kernels take.
    pub(super) const NARROW: usize = 16;

    /// Whether the AVX-512 family is in force (so the CPU has AVX-512F; never under Miri,
    /// which does not model these intrinsics: the portable loops compute the same bits).
    pub(super) fn available() -> bool {
        crate::fast::choice::active() == crate::fast::KernelChoice::Avx512
    }

    /// The mask of the first `n` of 16 lanes.
    fn mask16(n: usize) -> __mmask16 {
        if n >= 16 {
            0xFFFF
        } else {
            ((1u32 << n) - 1) as __mmask16
        }
    }

    /// The mask of the first `n` of 8 lanes.
    fn mask8(n: usize) -> __mmask8 {
        if n >= 8 {
            0xFF
        } else {
            ((1u32 << n) - 1) as __mmask8
        }
    }

    /// Where the lanes of a chunk of `L` weights fall, for each phase p (the row, k mod n, of
    /// the chunk's first weight k): lane t holds row `rows[p][t]` of the column `offsets[p][t]`
    /// after the chunk's first. Built by counting, without divisions, at compile time.
    struct Phases<const L: usize> {
        offsets: [[i32; L]; NARROW],
        rows: [[u8; L]; NARROW],
    }

    impl<const L: usize> Phases<L> {
        /// The phases of columns of `n ≤ 16` rows (n = 0 gives an unused table).
        const fn new(n: usize) -> Self {
            let mut phases = Phases {
                offsets: [[0; L]; NARROW],
                rows: [[0; L]; NARROW],
            };
            let mut p = 0;
            while p < n {
                let (mut column, mut row, mut t) = (0u8, p, 0);
                while t < L {
                    phases.offsets[p][t] = column as i32;
                    phases.rows[p][t] = row as u8;
                    row += 1;
                    if row == n {
                        row = 0;
                        column += 1;
                    }
                    t += 1;
                }
                p += 1;
            }
            phases
        }

        /// The tables for every width 0..=16, built at compile time.
        const fn all() -> [Self; NARROW + 1] {
            let mut all = [const { Phases::new(0) }; NARROW + 1];
            let mut n = 1;
            while n <= NARROW {
                all[n] = Phases::new(n);
                n += 1;
            }
            all
        }
    }

    static PHASES_16: [Phases<16>; NARROW + 1] = Phases::all();
    static PHASES_8: [Phases<8>; NARROW + 1] = Phases::all();

    /// `z = b + Σ_i x_i·w_i` with z (n ≤ 16) in one register, i in order.
    ///
    /// # Safety
    /// AVX-512F must be available; `z.len() ≤ 16`, `b.len() == z.len()` and
    /// `w.len() == z.len() · x.len()`.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn weighted_inputs_f32(w: &[f32], b: &[f32], x: &[f32], z: &mut [f32]) {
        let n = z.len();
        let m = mask16(n);
        // SAFETY: masked loads and stores touch only the first n lanes, which lie inside the
        // slices by the caller's contract.
        unsafe {
            let mut acc = _mm512_maskz_loadu_ps(m, b.as_ptr());
            let mut p = w.as_ptr();
            for &xi in x {
                let product = _mm512_mul_ps(_mm512_set1_ps(xi), _mm512_maskz_loadu_ps(m, p));
                acc = _mm512_add_ps(acc, product);
                p = p.add(n);
            }
            _mm512_mask_storeu_ps(z.as_mut_ptr(), m, acc);
        }
    }

    /// [`weighted_inputs_f32`] for f64: z (n ≤ 16) in two registers.
    ///
    /// # Safety
    /// As [`weighted_inputs_f32`].
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn weighted_inputs_f64(w: &[f64], b: &[f64], x: &[f64], z: &mut [f64]) {
        let n = z.len();
        let (lo, hi) = (mask8(n), mask8(n.saturating_sub(8)));
        // SAFETY: as in `weighted_inputs_f32`; the high half is masked off entirely for n ≤ 8.
        unsafe {
            let mut acc_lo = _mm512_maskz_loadu_pd(lo, b.as_ptr());
            let mut acc_hi = _mm512_maskz_loadu_pd(hi, b.as_ptr().add(n.min(8)));
            let mut p = w.as_ptr();
            for &xi in x {
                let xv = _mm512_set1_pd(xi);
                let w_lo = _mm512_maskz_loadu_pd(lo, p);
                let w_hi = _mm512_maskz_loadu_pd(hi, p.add(n.min(8)));
                acc_lo = _mm512_add_pd(acc_lo, _mm512_mul_pd(xv, w_lo));
                acc_hi = _mm512_add_pd(acc_hi, _mm512_mul_pd(xv, w_hi));
                p = p.add(n);
            }
            _mm512_mask_storeu_pd(z.as_mut_ptr(), lo, acc_lo);
            _mm512_mask_storeu_pd(z.as_mut_ptr().add(n.min(8)), hi, acc_hi);
        }
    }

    /// Sixteen 32-bit lane offsets, as vpermps takes them.
    ///
    /// # Safety
    /// AVX-512F; `p` points to 16 readable i32.
    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn offsets_16(p: *const i32) -> __m512i {
        // SAFETY: by the contract.
        unsafe { _mm512_loadu_si512(p.cast()) }
    }

    /// Eight 32-bit lane offsets, widened to the 64-bit lanes vpermpd takes.
    ///
    /// # Safety
    /// AVX-512F; `p` points to 8 readable i32.
    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn offsets_8(p: *const i32) -> __m512i {
        // SAFETY: by the contract.
        unsafe { _mm512_cvtepi32_epi64(_mm256_loadu_si256(p.cast())) }
    }

    /// Generates `sgd_outer` for one element type (`$column`, and `$outer` for layers of at most
    /// 16 outputs): the f32 and f64 versions differ only in their intrinsics and lane count.
    ///
    /// The generated function walks the weights as one flat array in whole vectors. Column by
    /// column, a masked store into one column and the masked load of the next share a 64-byte
    /// block, which the CPU does not forward, so each load would wait for the store.
    /// Flat, every vector is loaded and stored once, and each lane k = i·n + j takes x_i and δ_j
    /// from per-phase patterns: the chunk starting at k₀ begins in column ⌊k₀/n⌋ at row k₀ mod n
    /// (its phase), and the lane offsets into x and the δ values depend on the phase only.
    macro_rules! sgd_outer_kernels {
        (
            column: $column:ident, flat: $outer:ident, body: $body:ident, float: $t:ty,
            lanes: $lanes:expr, phases: $phases:ident, mask: $mask:ty, mask_of: $maskfn:ident,
            full: $full:expr, vector: $vec:ty, offsets: $offsets:ident, permute: $permute:ident,
            loadu: $loadu:ident, maskz_loadu: $maskz_loadu:ident, set1: $set1:ident,
            setzero: $setzero:ident, mul: $mul:ident, add: $add:ident, sub: $sub:ident,
            mask_storeu: $mask_storeu:ident, mask_cmp: $mask_cmp:ident, cmp: $cmp:ident,
        ) => {
            /// See [`super::sgd_outer`]: column by column for layers wider than 16, through
            /// the flat walk for narrower ones.
            ///
            /// # Safety
            /// AVX-512F must be available; `w.len() == d.len() · x.len()`.
            #[target_feature(enable = "avx512f")]
            pub(super) unsafe fn $column(
                w: &mut [$t],
                x: &[$t],
                d: &[$t],
                lr: $t,
                decay: $t,
                write: bool,
            ) -> bool {
                let n = d.len();
                if n <= NARROW {
                    // SAFETY: the caller's contract is `$outer`'s.
                    return unsafe { $outer(w, x, d, lr, decay, write) };
                }
                let (lrv, decayv, zero) = ($set1(lr), $set1(decay), $setzero());
                let mut check = zero;
                // SAFETY: every access is masked to the lanes inside column i of w (length n) or d.
                unsafe {
                    for (i, &xi) in x.iter().enumerate() {
                        let xv = $set1(xi);
                        let column = w.as_mut_ptr().add(i * n);
                        let mut start = 0;
                        while start < n {
                            let m = $maskfn(n - start);
                            let g = $mul(xv, $maskz_loadu(m, d.as_ptr().add(start)));
                            let old = $maskz_loadu(m, column.add(start));
                            let step = if decay == 0.0 {
                                g
                            } else {
                                $add(g, $mul(decayv, old))
                            };
                            let new = $sub(old, $mul(lrv, step));
                            if write {
                                $mask_storeu(column.add(start), m, new);
                            } else {
                                check = $add(check, $mul(new, zero));
                            }
                            start += $lanes;
                        }
                    }
                }
                // Masked-off lanes hold 0 − η·0 = 0, so only real weights can make a lane NaN.
                $cmp::<_CMP_EQ_OQ>(check, zero) == $full
            }

            /// [`sgd_outer_f32`] (or `_f64`) for narrow layers (n ≤ 16): see `sgd_outer_kernels!`.
            ///
            /// # Safety
            /// As [`sgd_outer_f32`] (or `_f64`), and `d.len() ≤ 16`.
            #[target_feature(enable = "avx512f")]
            unsafe fn $outer(
                w: &mut [$t],
                x: &[$t],
                d: &[$t],
                lr: $t,
                decay: $t,
                write: bool,
            ) -> bool {
                // SAFETY: the contract is passed on unchanged.
                unsafe {
                    match (write, decay == 0.0) {
                        (true, true) => $body::<true, false>(w, x, d, lr, decay),
                        (true, false) => $body::<true, true>(w, x, d, lr, decay),
                        (false, true) => $body::<false, false>(w, x, d, lr, decay),
                        (false, false) => $body::<false, true>(w, x, d, lr, decay),
                    }
                }
            }

            /// The body of [`$outer`], specialised on writing and on weight decay.
            ///
            /// # Safety
            /// As [`$outer`].
            #[target_feature(enable = "avx512f")]
            unsafe fn $body<const WRITE: bool, const DECAY: bool>(
                w: &mut [$t],
                x: &[$t],
                d: &[$t],
                lr: $t,
                decay: $t,
            ) -> bool {
                const L: usize = $lanes;
                let n = d.len();
                if n == 0 || x.is_empty() {
                    return true;
                }
                let phases = &$phases[n];
                let mut deltas = [[0 as $t; L]; NARROW];
                for (p, row) in deltas.iter_mut().enumerate().take(n) {
                    for (t, value) in row.iter_mut().enumerate() {
                        *value = d[usize::from(phases.rows[p][t])];
                    }
                }
                let (lrv, decayv, zero) = ($set1(lr), $set1(decay), $setzero());
                let mut bad: $mask = 0;
                // The next chunk's column and phase, by arithmetic (a table lookup here would chain
                // every chunk's addresses on a load from the one before).
                let (whole, rest) = (L / n, L % n);
                let step = |column: usize, phase: usize| {
                    let (column, phase) = (column + whole, phase + rest);
                    if phase >= n {
                        (column + 1, phase - n)
                    } else {
                        (column, phase)
                    }
                };
                let (len, mut column, mut phase, mut k) = (w.len(), 0usize, 0usize, 0usize);
                // One chunk of 16 weights starting at k; `m` masks it to w's end, `window` is x from
                // `column` on.
                let mut chunk = |k: usize, m: $mask, window: $vec, phase: usize| {
                    // SAFETY: `m` keeps the access inside w; the tables are local arrays.
                    unsafe {
                        let lane_offsets = $offsets(phases.offsets[phase].as_ptr());
                        let xv = $permute(lane_offsets, window);
                        let g = $mul(xv, $loadu(deltas[phase].as_ptr()));
                        let old = $maskz_loadu(m, w.as_ptr().add(k));
                        let step = if DECAY { $add(g, $mul(decayv, old)) } else { g };
                        let new = $sub(old, $mul(lrv, step));
                        if WRITE {
                            $mask_storeu(w.as_mut_ptr().add(k), m, new);
                        } else {
                            // new·0 is NaN exactly where new is not finite.
                            let z = $mul(new, zero);
                            bad |= $mask_cmp::<_CMP_UNORD_Q>(m, z, z);
                        }
                    }
                };
                // SAFETY: full chunks and full windows lie inside w and x by the loop conditions;
                // the rest is masked to their ends.
                unsafe {
                    while k + L <= len && column + L <= x.len() {
                        chunk(k, $full, $loadu(x.as_ptr().add(column)), phase);
                        k += L;
                        (column, phase) = step(column, phase);
                    }
                    while k < len {
                        let window =
                            $maskz_loadu($maskfn(x.len() - column), x.as_ptr().add(column));
                        chunk(k, $maskfn(len - k), window, phase);
                        k += L;
                        (column, phase) = step(column, phase);
                    }
                }
                bad == 0
            }
        };
    }

    sgd_outer_kernels! {
        column: sgd_outer_f32, flat: sgd_outer_flat_f32, body: flat_f32, float: f32, lanes: 16,
        phases: PHASES_16, mask: __mmask16, mask_of: mask16, full: 0xFFFF, vector: __m512,
        offsets: offsets_16, permute: _mm512_permutexvar_ps, loadu: _mm512_loadu_ps,
        maskz_loadu: _mm512_maskz_loadu_ps, set1: _mm512_set1_ps, setzero: _mm512_setzero_ps,
        mul: _mm512_mul_ps, add: _mm512_add_ps, sub: _mm512_sub_ps,
        mask_storeu: _mm512_mask_storeu_ps, mask_cmp: _mm512_mask_cmp_ps_mask,
        cmp: _mm512_cmp_ps_mask,
    }

    sgd_outer_kernels! {
        column: sgd_outer_f64, flat: sgd_outer_flat_f64, body: flat_f64, float: f64, lanes: 8,
        phases: PHASES_8, mask: __mmask8, mask_of: mask8, full: 0xFF, vector: __m512d,
        offsets: offsets_8, permute: _mm512_permutexvar_pd, loadu: _mm512_loadu_pd,
        maskz_loadu: _mm512_maskz_loadu_pd, set1: _mm512_set1_pd, setzero: _mm512_setzero_pd,
        mul: _mm512_mul_pd, add: _mm512_add_pd, sub: _mm512_sub_pd,
        mask_storeu: _mm512_mask_storeu_pd, mask_cmp: _mm512_mask_cmp_pd_mask,
        cmp: _mm512_cmp_pd_mask,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fast::elementwise::{finite_under, sgd, Sgd};

    /// The one-row entry points check their lengths in every build: the AVX-512 kernels
    /// behind them read and write through raw pointers.
    #[test]
    fn entry_points_reject_wrong_lengths() {
        use std::panic::catch_unwind;
        let w = vec![0.5f32; 24];
        let (b, x) = (vec![0.0f32; 8], vec![1.0f32; 3]);
        let wide = vec![1.0f32; 4000];
        for (what, result) in [
            (
                "weighted_inputs, wide x",
                catch_unwind(|| weighted_inputs(&w, &b, &wide, &mut [0.0; 8])),
            ),
            (
                "weighted_inputs, short biases",
                catch_unwind(|| weighted_inputs(&w, &b[..7], &x, &mut [0.0; 8])),
            ),
            (
                "input_sensitivities",
                catch_unwind(|| input_sensitivities(&w, &b, &mut [0.0; 4])),
            ),
            (
                "outer",
                catch_unwind(|| outer(&b, &wide, &mut w.clone(), false)),
            ),
            (
                "sgd_outer",
                catch_unwind(|| {
                    sgd_outer(&mut w.clone(), &wide, &b, 0.1, 0.0, true);
                }),
            ),
        ] {
            assert!(result.is_err(), "{what} accepted wrong lengths");
        }
        let mut z = [0.0f32; 8];
        weighted_inputs(&w, &b, &x, &mut z);
        assert_eq!(z, [1.5; 8]);
    }

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
                for decay in [0.0, 0.01] {
                    let mut separate = w.clone();
                    sgd(Sgd::InPlace(&mut separate), &g, 0.1, decay);
                    let mut fused = w.clone();
                    assert!(sgd_outer(&mut fused, &x, &d, 0.1, decay, false));
                    assert_eq!(fused, w, "a check must not write");
                    assert!(sgd_outer(&mut fused, &x, &d, 0.1, decay, true));
                    assert!(fused
                        .iter()
                        .zip(&separate)
                        .all(|(a, b)| a.to_bits() == b.to_bits()));
                    // The same in f32, through the AVX-512 kernel where there is one.
                    let w32: Vec<f32> = w.iter().map(|&v| v as f32).collect();
                    let x32: Vec<f32> = x.iter().map(|&v| v as f32).collect();
                    let d32: Vec<f32> = d.iter().map(|&v| v as f32).collect();
                    let mut g32 = vec![0.0f32; w32.len()];
                    outer(&d32, &x32, &mut g32, false);
                    let mut separate32 = w32.clone();
                    sgd(Sgd::InPlace(&mut separate32), &g32, 0.1, decay as f32);
                    let mut fused32 = w32.clone();
                    assert!(sgd_outer(&mut fused32, &x32, &d32, 0.1, decay as f32, true));
                    assert!(fused32
                        .iter()
                        .zip(&separate32)
                        .all(|(a, b)| a.to_bits() == b.to_bits()));
                    let b32: Vec<f32> = b.iter().map(|&v| v as f32).collect();
                    let mut z32 = vec![0.0f32; n_out];
                    weighted_inputs(&w32, &b32, &x32, &mut z32);
                    for j in 0..n_out {
                        let mut want = b32[j];
                        for i in 0..n_in {
                            want += x32[i] * w32[i * n_out + j];
                        }
                        assert_eq!(z32[j].to_bits(), want.to_bits(), "z32, {n_in}x{n_out}");
                    }
                    let mut huge = w.clone();
                    huge[0] = f64::MAX;
                    let before = huge.clone();
                    // η chosen so that the first weight steps from f64::MAX to +∞.
                    let lr = -1e300 / (x[0] * d[0]);
                    assert!(!sgd_outer(&mut huge, &x, &d, lr, 0.0, false));
                    assert_eq!(huge, before);
                }
                let mut f = w.clone();
                sgd(Sgd::InPlace(&mut f), &g, 0.1, 0.0);
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
