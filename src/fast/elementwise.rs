//! Element-wise passes over whole batches or parameter arrays: activations and their
//! derivatives, the bias of (F) and the column sums of (B4), the shards' gradients combined,
//! the finiteness checks, and the SGD rule (U). Each is a plain loop in the order of the
//! equation, compiled for AVX-512, AVX2 and the baseline by `multiversion`; Rust never fuses
//! the separate multiplies and adds, so every instruction set gives the same bits.

use std::any::{Any, TypeId};
use std::sync::OnceLock;

use crate::Float;

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

/// The logistic function in place, as [`Activation::sigmoid`] computes it, with the values of
/// the integers 0..=255 (raw bytes, such as pixels) looked up in a table built once per process
/// from that same function: the same bits, without one `exp` per element.
///
/// [`Activation::sigmoid`]: crate::Activation::sigmoid
pub(crate) fn sigmoid_in_place<F: Float>(values: &mut [F]) {
    let table = byte_sigmoids::<F>();
    if all_bytes(values) {
        look_up(values, table);
        return;
    }
    for v in values {
        *v = if is_byte(*v) {
            table[byte_index(*v)]
        } else {
            crate::Activation::sigmoid(*v)
        };
    }
}

/// Whether `v` is one of the integers 0..=255 (or −0, whose sigmoid is that of 0).
#[inline(always)]
fn is_byte<F: Float>(v: F) -> bool {
    (v >= F::zero()) & (v <= F::of(255.0)) & (v.floor() == v)
}

/// The table index of a value for which [`is_byte`] holds: adding 2⁵² moves an integer below
/// 2⁵² into the low bits of the f64's mantissa, exactly, in arithmetic that vectorises (unlike a
/// float-to-integer cast, which saturates).
#[inline(always)]
fn byte_index<F: Float>(v: F) -> usize {
    const TWO_52: f64 = 4_503_599_627_370_496.0;
    ((v.to_f64_lossless() + TWO_52).to_bits() & 0xFF) as usize
}

/// Whether [`is_byte`] holds for every value: a branch-free pass, so that it vectorises.
#[multiversion::multiversion(targets("x86_64+avx512f+avx512vl+avx2+fma", "x86_64+avx2+fma"))]
fn all_bytes<F: Float>(values: &[F]) -> bool {
    values.iter().fold(true, |all, &v| all & is_byte(v))
}

/// Replaces every value, all bytes, by its entry in `table`.
#[multiversion::multiversion(targets("x86_64+avx512f+avx512vl+avx2+fma", "x86_64+avx2+fma"))]
fn look_up<F: Float>(values: &mut [F], table: &[F; 256]) {
    values.iter_mut().for_each(|v| *v = table[byte_index(*v)]);
}

/// σ(0), σ(1), …, σ(255) in `F`, computed on first use.
fn byte_sigmoids<F: Float>() -> &'static [F; 256] {
    static F32: OnceLock<[f32; 256]> = OnceLock::new();
    static F64: OnceLock<[f64; 256]> = OnceLock::new();
    fn table<F: Float>() -> [F; 256] {
        std::array::from_fn(|k| crate::Activation::sigmoid(F::of(k as f64)))
    }
    let any: &'static dyn Any = if TypeId::of::<F>() == TypeId::of::<f32>() {
        F32.get_or_init(table::<f32>)
    } else {
        F64.get_or_init(table::<f64>)
    };
    any.downcast_ref()
        .expect("Float is implemented for f32 and f64 only")
}

/// Elements per task when a pass over parameters is split over threads (128 KiB of `f32`).
const SPLIT_CHUNK: usize = 1 << 15;

/// The SGD rule (U) for one parameter: `w − η·(g + λ·w)`, or `w − η·g` when λ = 0 (so that
/// plain SGD does the seed's two operations). Every SGD pass of the crate computes this.
#[inline(always)]
pub(crate) fn sgd_rule<F: Float>(w: F, g: F, lr: F, decay: F) -> F {
    if decay == F::zero() {
        w - lr * g
    } else {
        w - lr * (g + decay * w)
    }
}

/// Where an [`sgd`] pass puts the new parameters.
pub(crate) enum Sgd<'a, F> {
    /// Over the parameters themselves.
    InPlace(&'a mut [F]),
    /// Into the second slice, leaving the parameters (the first) as they are.
    Into(&'a [F], &'a mut [F]),
}

/// One SGD pass, [`sgd_rule`] element by element, and whether every new value is finite
/// (the sum of `new·0` in independent lanes, so that the check vectorises).
///
/// # Panics
/// If `grads` (or the output of [`Sgd::Into`]) is not as long as the parameters.
pub(crate) fn sgd<F: Float>(target: Sgd<'_, F>, grads: &[F], lr: F, decay: F) -> bool {
    // The dispatch stays outside the compiled-per-ISA loops: they take plain slices, which
    // the compiler vectorises.
    match target {
        Sgd::InPlace(w) => sgd_in_place(w, &grads[..w.len()], lr, decay),
        Sgd::Into(w, out) => sgd_into(w, &grads[..w.len()], &mut out[..w.len()], lr, decay),
    }
}

/// [`sgd`] into `out`, with λ known to be zero or not so that the branch leaves the loop.
#[multiversion::multiversion(targets("x86_64+avx512f+avx512vl+avx2+fma", "x86_64+avx2+fma"))]
fn sgd_into<F: Float>(w: &[F], g: &[F], out: &mut [F], lr: F, decay: F) -> bool {
    if decay == F::zero() {
        into_chunks(w, g, out, |w, g| sgd_rule(w, g, lr, F::zero()))
    } else {
        into_chunks(w, g, out, |w, g| sgd_rule(w, g, lr, decay))
    }
}

/// [`sgd`] over the parameters themselves, as [`sgd_into`].
#[multiversion::multiversion(targets("x86_64+avx512f+avx512vl+avx2+fma", "x86_64+avx2+fma"))]
fn sgd_in_place<F: Float>(w: &mut [F], g: &[F], lr: F, decay: F) -> bool {
    if decay == F::zero() {
        in_place_chunks(w, g, |w, g| sgd_rule(w, g, lr, F::zero()))
    } else {
        in_place_chunks(w, g, |w, g| sgd_rule(w, g, lr, decay))
    }
}

/// `rule` into `out`, whole chunks of [`LANES`] at a time, summing `new·0` in independent
/// lanes: zero exactly when every new value is finite.
#[inline(always)]
fn into_chunks<F: Float>(w: &[F], g: &[F], out: &mut [F], rule: impl Fn(F, F) -> F) -> bool {
    let (wc, wt) = w.as_chunks::<LANES>();
    let (gc, gt) = g.as_chunks::<LANES>();
    let (oc, ot) = out.as_chunks_mut::<LANES>();
    let mut lanes = [F::zero(); LANES];
    for ((w, g), o) in wc.iter().zip(gc).zip(oc.iter_mut()) {
        for k in 0..LANES {
            o[k] = rule(w[k], g[k]);
            lanes[k] += o[k] * F::zero();
        }
    }
    let mut tail = F::zero();
    for ((&w, &g), o) in wt.iter().zip(gt).zip(ot.iter_mut()) {
        *o = rule(w, g);
        tail += *o * F::zero();
    }
    lanes.iter().fold(tail, |acc, &l| acc + l) == F::zero()
}

/// [`into_chunks`] over the parameters themselves.
#[inline(always)]
fn in_place_chunks<F: Float>(w: &mut [F], g: &[F], rule: impl Fn(F, F) -> F) -> bool {
    let (wc, wt) = w.as_chunks_mut::<LANES>();
    let (gc, gt) = g.as_chunks::<LANES>();
    let mut lanes = [F::zero(); LANES];
    for (w, g) in wc.iter_mut().zip(gc) {
        for k in 0..LANES {
            w[k] = rule(w[k], g[k]);
            lanes[k] += w[k] * F::zero();
        }
    }
    let mut tail = F::zero();
    for (w, &g) in wt.iter_mut().zip(gt) {
        *w = rule(*w, g);
        tail += *w * F::zero();
    }
    lanes.iter().fold(tail, |acc, &l| acc + l) == F::zero()
}

/// [`sgd`], split into chunks over the current rayon pool when `parallel` and the parameters
/// are many enough to pay for it (the same bits: each element is computed alone).
pub(crate) fn sgd_split<F: Float>(
    parallel: bool,
    target: Sgd<'_, F>,
    grads: &[F],
    lr: F,
    decay: F,
) -> bool {
    use rayon::prelude::*;
    let len = match &target {
        Sgd::Into(w, _) => w.len(),
        Sgd::InPlace(w) => w.len(),
    };
    if !parallel || len < 2 * SPLIT_CHUNK {
        return sgd(target, grads, lr, decay);
    }
    let chunks = grads[..len].par_chunks(SPLIT_CHUNK);
    let each = |(t, g)| sgd(t, g, lr, decay);
    let and = |a: bool, b: bool| a && b;
    match target {
        Sgd::InPlace(w) => w
            .par_chunks_mut(SPLIT_CHUNK)
            .map(Sgd::InPlace)
            .zip(chunks)
            .map(each)
            .reduce(|| true, and),
        Sgd::Into(w, out) => w
            .par_chunks(SPLIT_CHUNK)
            .zip(out.par_chunks_mut(SPLIT_CHUNK))
            .map(|(w, o)| Sgd::Into(w, o))
            .zip(chunks)
            .map(each)
            .reduce(|| true, and),
    }
}

/// `dst[i] = f(src[i])`: an element-wise activation over a whole batch.
#[multiversion::multiversion(targets("x86_64+avx512f+avx512vl+avx2+fma", "x86_64+avx2+fma"))]
pub(crate) fn map_into<F: Float, M: Fn(F) -> F>(src: &[F], dst: &mut [F], f: M) {
    debug_assert_eq!(src.len(), dst.len());
    for (d, &v) in dst.iter_mut().zip(src) {
        *d = f(v);
    }
}

/// `s[i] ← s[i]·f(z[i], a[i])`: ∂L/∂A times σ′, equation (B2)'s second half.
#[multiversion::multiversion(targets("x86_64+avx512f+avx512vl+avx2+fma", "x86_64+avx2+fma"))]
pub(crate) fn scale_by<F: Float, M: Fn(F, F) -> F>(s: &mut [F], z: &[F], a: &[F], f: M) {
    debug_assert!(s.len() == z.len() && s.len() == a.len());
    for ((s, &z), &a) in s.iter_mut().zip(z).zip(a) {
        *s *= f(z, a);
    }
}

/// Adds `row` to every row of the row-major `values` (`values.len()` a multiple of its length):
/// the bias of (F), `Z = X·Wᵀ + b`.
#[multiversion::multiversion(targets("x86_64+avx512f+avx512vl+avx2+fma", "x86_64+avx2+fma"))]
pub(crate) fn add_bias_to_rows<F: Float>(values: &mut [F], row: &[F]) {
    for chunk in values.chunks_exact_mut(row.len()) {
        for (v, &b) in chunk.iter_mut().zip(row) {
            *v += b;
        }
    }
}

/// Adds every row of the row-major `values` to `sums`, first row first: the column sums of
/// (B4), ∂L/∂b = Σ over the batch of Δ.
#[multiversion::multiversion(targets("x86_64+avx512f+avx512vl+avx2+fma", "x86_64+avx2+fma"))]
pub(crate) fn sum_rows_into<F: Float>(values: &[F], sums: &mut [F]) {
    for chunk in values.chunks_exact(sums.len()) {
        for (s, &v) in sums.iter_mut().zip(chunk) {
            *s += v;
        }
    }
}

/// `out ← (first or out) + add, then × factor`, element by element and in that order (each
/// part optional): the shards' gradients summed and averaged in one pass instead of a copy,
/// an addition per shard and a scaling, with the same operations in the same order.
#[multiversion::multiversion(targets("x86_64+avx512f+avx512vl+avx2+fma", "x86_64+avx2+fma"))]
pub(crate) fn combine<F: Float>(
    out: &mut [F],
    first: Option<&[F]>,
    add: Option<&[F]>,
    factor: Option<F>,
) {
    let scale = |v: F| factor.map_or(v, |k| v * k);
    match (first, add) {
        (Some(a), Some(b)) => {
            for ((o, &a), &b) in out.iter_mut().zip(a).zip(b) {
                *o = scale(a + b);
            }
        }
        (Some(a), None) => {
            for (o, &a) in out.iter_mut().zip(a) {
                *o = scale(a);
            }
        }
        (None, Some(b)) => {
            for (o, &b) in out.iter_mut().zip(b) {
                *o = scale(*o + b);
            }
        }
        (None, None) => {
            for o in out.iter_mut() {
                *o = scale(*o);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Activation;

    /// Every value the table serves, and the values next to them that it must not serve, give
    /// exactly the bits of computing the sigmoid: on bytes alone (the lookup pass) and mixed
    /// with other values (element by element).
    fn table_matches_computing<F: Float>() {
        let mut values: Vec<F> = (0..=255).map(|k| F::of(f64::from(k))).collect();
        values.push(F::of(-0.0));
        let bytes = values.len();
        for special in [-1.0, 0.5, 254.999, 255.5, 256.0, 1e10, -1e10, 3e-300] {
            values.push(F::of(special));
        }
        values.extend([
            F::nan(),
            F::infinity(),
            F::neg_infinity(),
            F::min_positive_value(),
        ]);
        for values in [&values[..bytes], &values[..]] {
            let mut looked_up = values.to_vec();
            sigmoid_in_place(&mut looked_up);
            for (v, a) in values.iter().zip(&looked_up) {
                let computed = Activation::sigmoid(*v);
                let same = computed.to_f64_lossless().to_bits() == a.to_f64_lossless().to_bits();
                assert!(same, "sigmoid({v}) = {computed}, looked up {a}");
            }
        }
    }

    #[test]
    fn byte_table_gives_the_bits_of_computing() {
        table_matches_computing::<f32>();
        table_matches_computing::<f64>();
    }
}
