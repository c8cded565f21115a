//! Matrix products for batches: `C ← A·B + β·C` with packing buffers the caller keeps, so that a
//! training step allocates nothing, and micro-kernels chosen at run time (AVX-512 or AVX2 with
//! FMA for `f32`, portable loops otherwise).
//!
//! The structure is the classic one of BLIS: B is packed into strips `nr` columns wide and A
//! into strips `mr` rows tall, both `kc` deep, so that the micro-kernel streams through
//! contiguous memory while an `mr × nr` block of C stays in registers. A block of A is packed
//! once per depth block and serves every column block of B. Every element of C is summed over k
//! in the same order whatever the shapes around it and however C is cut, so [`gemm`] on one
//! thread and the crate's parallel `product` (one block of C per thread, when the trainer asks
//! for it) give the same bits.

use std::any::{Any, TypeId};

use ndarray::{ArrayView2, ArrayViewMut2};

use super::choice::{active, KernelChoice};
use crate::Float;
use pack::{pack_a, pack_b};

#[cfg(target_arch = "aarch64")]
mod neon;
mod pack;
mod portable;
#[cfg(target_arch = "x86_64")]
mod x86;

/// Depth of a packed block.
const KC: usize = 256;
/// Most rows of A per packed block when B has several column blocks. The block is packed once
/// per depth block and serves all of them, so it covers the largest training shapes (1 024
/// rows) whole; taller products are cut into blocks of equal size, each of which packs B
/// again: cheaper than packing A again for each column block.
const MC: usize = 1024;
/// Most rows of A per packed block when B has only one column block, so that there is nothing
/// to share: small enough that the block is still in L1 and L2 when the kernels read it.
const MC_ONE_BLOCK: usize = 168;
/// Most columns of B per packed block (rounded down to a multiple of the kernel's `nr`).
const NC: usize = 256;

/// One `mr × nr` tile of C as a micro-kernel sees it: rows `row_stride` elements apart, the
/// columns of a row contiguous. A tile at the bottom edge of C may have fewer rows than `mr`;
/// the kernel then computes and touches only those. Crate-private: it carries a raw pointer
/// that only [`gemm`]'s own loops may point into C.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Tile<F> {
    /// The tile's top-left element.
    pub(crate) ptr: *mut F,
    /// Elements from one row of the tile to the next.
    pub(crate) row_stride: usize,
    /// Rows to compute, 1 to `mr` (the packed A strip still holds `mr` rows per step).
    pub(crate) rows: usize,
    /// Store `A·B` (true) or add it to what the tile holds (false).
    pub(crate) overwrite: bool,
}

/// A micro-kernel: `C ← A·B` or `C ← C + A·B` for one `mr × nr` tile of C, where
/// `(A·B)[r][c] = Σ_p a[p·mr + r]·b[p·nr + c]` over `kc` packed steps, summed in order of `p`.
///
/// Crate-private: `run` is an unsafe function pointer whose contract (the tile lies inside C)
/// only [`gemm`]'s loops establish, so no caller outside the crate may build or run one.
#[derive(Clone, Copy)]
pub(crate) struct MicroKernel<F> {
    /// Rows of C per call.
    pub(crate) mr: usize,
    /// Columns of C per call.
    pub(crate) nr: usize,
    /// The kernel: (kc, packed A, packed B, tile of C).
    ///
    /// # Safety
    /// The tile's `rows` (1 to `mr`) rows of `nr` elements must be valid for reads and writes,
    /// and touched by nobody else during the call.
    pub(crate) run: unsafe fn(usize, &[F], &[F], Tile<F>),
    /// Its name, for the tests' messages.
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) name: &'static str,
}

/// The tallest `mr` and widest `nr` of any kernel.
const MAX_MR: usize = 16;
const MAX_NR: usize = 32;

/// Reusable packing buffers; they grow to the largest product seen, then stay.
#[derive(Clone, Debug, Default)]
pub struct Packing<F> {
    a: Vec<F>,
    b: Vec<F>,
    acc: Vec<F>,
    /// Split products over column blocks of C in parallel (see [`product`]).
    pub(crate) parallel: bool,
    /// Buffers for each block of a parallel product.
    blocks: Vec<Packing<F>>,
}

/// The fewest rows or columns of C a parallel product hands to one task.
const MIN_PARALLEL_BLOCK: usize = 64;

/// `c ← a·b + β·c`, split over as many blocks of C as rayon has threads when
/// `packing.parallel` is set: blocks of rows when A is the larger operand (m > n), else blocks
/// of columns (each at least 64 rows or columns, a multiple of the kernel's `mr` or `nr`).
/// Each task packs its own part of the split operand and all of the other, so splitting the
/// larger one packs the least twice. Every element of C is computed by the same operations in
/// the same order however C is split (the depth blocking depends on k alone, and edge tiles run
/// the same kernel), so the result is bit-identical to the sequential product for any number
/// of threads.
pub(crate) fn product<F: Float>(
    a: &ArrayView2<'_, F>,
    b: &ArrayView2<'_, F>,
    beta: F,
    c: &mut ArrayViewMut2<'_, F>,
    packing: &mut Packing<F>,
) {
    use ndarray::Axis;
    use rayon::prelude::*;
    assert_shapes(a, b, c);
    let (m, n) = (a.nrows(), b.ncols());
    let by_rows = m > n;
    let (extent, step) = if by_rows {
        (m, kernel::<F>().mr)
    } else {
        (n, kernel::<F>().nr)
    };
    let parts = rayon::current_num_threads().min(extent / MIN_PARALLEL_BLOCK);
    if !packing.parallel || parts < 2 {
        return gemm(a, b, beta, c, packing);
    }
    let size = extent.div_ceil(parts).next_multiple_of(step);
    let blocks = extent.div_ceil(size);
    if packing.blocks.len() < blocks {
        packing.blocks.resize_with(blocks, Packing::default);
    }
    let packings = packing.blocks[..blocks].par_iter_mut();
    if by_rows {
        packings
            .zip(a.axis_chunks_iter(Axis(0), size).into_par_iter())
            .zip(c.axis_chunks_iter_mut(Axis(0), size).into_par_iter())
            .for_each(|((packing, a), mut c)| gemm(&a, b, beta, &mut c, packing));
    } else {
        packings
            .zip(b.axis_chunks_iter(Axis(1), size).into_par_iter())
            .zip(c.axis_chunks_iter_mut(Axis(1), size).into_par_iter())
            .for_each(|((packing, b), mut c)| gemm(a, &b, beta, &mut c, packing));
    }
}

/// `c ← a·b + β·c` (β is 0 or 1 in practice), shapes (m × k)·(k × n) → (m × n), any strides,
/// on the calling thread. Public for benchmarks; the network calls it through its layers.
///
/// # Panics
/// If the shapes do not agree: `b` must have as many rows as `a` has columns, and `c` must be
/// (rows of `a`) × (columns of `b`). The check runs once per call, in every build, since the
/// micro-kernels write into `c` through raw pointers.
///
/// The micro-kernel is the one of the family in force (see [`crate::fast::choice`]).
pub fn gemm<F: Float>(
    a: &ArrayView2<'_, F>,
    b: &ArrayView2<'_, F>,
    beta: F,
    c: &mut ArrayViewMut2<'_, F>,
    packing: &mut Packing<F>,
) {
    gemm_with(kernel::<F>(), a, b, beta, c, packing);
}

/// [`gemm`] with a given micro-kernel. The packing and write-back loops are compiled for
/// AVX-512 and AVX2 too (as are the per-sample kernels).
#[multiversion::multiversion(targets("x86_64+avx512f+avx512vl+avx2+fma", "x86_64+avx2+fma"))]
pub(crate) fn gemm_with<F: Float>(
    kernel: MicroKernel<F>,
    a: &ArrayView2<'_, F>,
    b: &ArrayView2<'_, F>,
    beta: F,
    c: &mut ArrayViewMut2<'_, F>,
    packing: &mut Packing<F>,
) {
    assert_shapes(a, b, c);
    let (m, k) = a.dim();
    let n = b.ncols();
    if m == 0 || n == 0 {
        return;
    }
    let (mr, nr) = (kernel.mr, kernel.nr);
    // Depth blocks of equal size (784 = 3 × 262 rather than 3 × 256 + 16): each block is one
    // more pass over C, so a thin last block would cost a pass for little work.
    let kc_step = k.div_ceil(k.div_ceil(KC).max(1));
    let nc_step = NC - NC % nr;
    let most_rows = if n > nc_step { MC } else { MC_ONE_BLOCK };
    let mc_step = m.div_ceil(m.div_ceil(most_rows)).next_multiple_of(mr);
    let packed_a = aligned(&mut packing.a, mc_step * kc_step);
    let packed_b = aligned(
        &mut packing.b,
        nc_step.min(n.next_multiple_of(nr)) * kc_step,
    );
    let acc = aligned(&mut packing.acc, mr * nr);
    if k == 0 {
        c.mapv_inplace(|v| beta * v);
        return;
    }
    let blocks = |ic: usize, pc: usize, jc: usize| Blocks {
        rows: (ic, mc_step.min(m - ic)),
        depth: kc_step.min(k - pc),
        columns: (jc, nc_step.min(n - jc)),
        // The first depth block applies β, later ones add.
        keep: if pc == 0 { beta } else { F::one() },
    };
    if n > nc_step {
        // Several column blocks: each block of A is packed once and serves all of them.
        for ic in (0..m).step_by(mc_step) {
            for pc in (0..k).step_by(kc_step) {
                let kc = kc_step.min(k - pc);
                pack_a(a, ic, mc_step.min(m - ic), pc, kc, mr, packed_a);
                for jc in (0..n).step_by(nc_step) {
                    pack_b(b, pc, kc, jc, nc_step.min(n - jc), nr, packed_b);
                    sweep(&kernel, blocks(ic, pc, jc), packed_a, packed_b, c, acc);
                }
            }
        }
    } else {
        // One column block: B is packed once per depth block and serves every block of A.
        for pc in (0..k).step_by(kc_step) {
            let kc = kc_step.min(k - pc);
            pack_b(b, pc, kc, 0, n, nr, packed_b);
            for ic in (0..m).step_by(mc_step) {
                pack_a(a, ic, mc_step.min(m - ic), pc, kc, mr, packed_a);
                sweep(&kernel, blocks(ic, pc, 0), packed_a, packed_b, c, acc);
            }
        }
    }
}

/// Panics unless `a·b` fits `c`: what every raw write into C in [`gemm`] relies on.
#[inline]
fn assert_shapes<F>(a: &ArrayView2<'_, F>, b: &ArrayView2<'_, F>, c: &ArrayViewMut2<'_, F>) {
    assert!(
        a.ncols() == b.nrows() && c.dim() == (a.nrows(), b.ncols()),
        "gemm: shapes do not agree: a {:?} · b {:?} into c {:?}",
        a.dim(),
        b.dim(),
        c.dim()
    );
}

/// Where one packed block of A meets one packed block of B: `(start, length)` of the rows and
/// columns of C, the depth, and `keep` (C ← keep·C + A·B).
struct Blocks<F> {
    rows: (usize, usize),
    depth: usize,
    columns: (usize, usize),
    keep: F,
}

/// Runs the micro-kernel over every tile of one packed block of A times one packed block of B.
#[inline(always)]
fn sweep<F: Float>(
    kernel: &MicroKernel<F>,
    blocks: Blocks<F>,
    packed_a: &[F],
    packed_b: &[F],
    c: &mut ArrayViewMut2<'_, F>,
    acc: &mut [F],
) {
    let (mr, nr) = (kernel.mr, kernel.nr);
    let Blocks {
        rows: (ic, mc),
        depth: kc,
        columns: (jc, nc),
        keep,
    } = blocks;
    // Once per block pair: every tile below lies inside C, which the direct writes rely on.
    assert!(
        ic + mc <= c.nrows() && jc + nc <= c.ncols(),
        "block outside C"
    );
    let (rs, cs) = (c.strides()[0], c.strides()[1]);
    for (si, i0) in (ic..ic + mc).step_by(mr).enumerate() {
        let h = mr.min(ic + mc - i0);
        let a_strip = &packed_a[si * kc * mr..(si + 1) * kc * mr];
        for (sj, j0) in (jc..jc + nc).step_by(nr).enumerate() {
            let w = nr.min(jc + nc - j0);
            let b_strip = &packed_b[sj * kc * nr..(sj + 1) * kc * nr];
            let direct = w == nr && cs == 1 && rs > 0;
            if direct && (keep == F::zero() || keep == F::one()) {
                // Straight into C: the tile's h rows are inside the view (i0 + h ≤ ic + mc ≤
                // rows, j0 + nr ≤ jc + nc ≤ columns, as asserted above), its rows are
                // contiguous, and this thread owns C.
                let tile = Tile {
                    // SAFETY: (i0, j0) lies inside the view, as just said.
                    ptr: unsafe { c.as_mut_ptr().offset(i0 as isize * rs + j0 as isize) },
                    row_stride: rs as usize,
                    rows: h,
                    overwrite: keep == F::zero(),
                };
                // SAFETY: the tile's rows are inside the view we borrow mutably.
                unsafe { (kernel.run)(kc, a_strip, b_strip, tile) };
            } else {
                let tile = Tile {
                    ptr: acc.as_mut_ptr(),
                    row_stride: nr,
                    rows: h,
                    overwrite: true,
                };
                // SAFETY: `acc` holds mr·nr elements and is borrowed mutably here.
                unsafe { (kernel.run)(kc, a_strip, b_strip, tile) };
                write_block(c, acc, nr, (i0, h), (j0, w), keep);
            }
        }
    }
}

/// Writes the `h × w` top-left corner of an accumulator block into C at (i0, j0):
/// `c ← keep·c + acc` (with `keep` 0 meaning a plain store).
#[inline(always)]
fn write_block<F: Float>(
    c: &mut ArrayViewMut2<'_, F>,
    acc: &[F],
    nr: usize,
    (i0, h): (usize, usize),
    (j0, w): (usize, usize),
    keep: F,
) {
    let update = |dst: &mut F, s: F| {
        *dst = if keep == F::zero() {
            s
        } else if keep == F::one() {
            *dst + s
        } else {
            keep * *dst + s
        }
    };
    let (rs, cs) = (c.strides()[0], c.strides()[1]);
    let base = c.as_mut_ptr();
    assert!(
        i0 + h <= c.nrows() && j0 + w <= c.ncols(),
        "block outside C"
    );
    if cs == 1 {
        // Rows of C contiguous (the usual case): whole-row slices, which vectorise.
        for r in 0..h {
            // SAFETY: row i0 + r, columns j0 .. j0 + w lie inside the view (checked above) and
            // are contiguous since the column stride is 1; nothing else aliases them here.
            let dst = unsafe {
                std::slice::from_raw_parts_mut(base.offset((i0 + r) as isize * rs + j0 as isize), w)
            };
            let src = &acc[r * nr..r * nr + w];
            if keep == F::zero() {
                copy_short(dst, src);
            } else if keep == F::one() {
                dst.iter_mut().zip(src).for_each(|(d, &s)| *d += s);
            } else {
                dst.iter_mut()
                    .zip(src)
                    .for_each(|(d, &s)| *d = keep * *d + s);
            }
        }
        return;
    }
    for r in 0..h {
        for (q, &s) in acc[r * nr..r * nr + w].iter().enumerate() {
            // SAFETY: (i0 + r, j0 + q) lies inside the view (i0 + h ≤ rows, j0 + w ≤ cols, as
            // the caller's loops guarantee), so the offset addresses one of its elements.
            unsafe {
                let dst = base.offset((i0 + r) as isize * rs + (j0 + q) as isize * cs);
                update(&mut *dst, s);
            }
        }
    }
}

/// Copies a few elements (one packed row or column, at most 32) inline: `copy_from_slice`
/// would call `memmove` for every few dozen bytes, a call that costs more than the copy.
#[inline(always)]
fn copy_short<F: Float>(dst: &mut [F], src: &[F]) {
    /// A copy of exactly N elements, which the compiler emits as a few vector moves.
    #[inline(always)]
    fn exactly<F: Float, const N: usize>(dst: &mut [F], src: &[F]) -> bool {
        match (<&mut [F; N]>::try_from(dst), <&[F; N]>::try_from(src)) {
            (Ok(d), Ok(s)) => {
                *d = *s;
                true
            }
            _ => false,
        }
    }
    debug_assert_eq!(dst.len(), src.len());
    let done = match dst.len() {
        6 => exactly::<F, 6>(dst, src),
        14 => exactly::<F, 14>(dst, src),
        16 => exactly::<F, 16>(dst, src),
        32 => exactly::<F, 32>(dst, src),
        _ => false,
    };
    if !done {
        for (d, &s) in dst.iter_mut().zip(src) {
            *d = s;
        }
    }
}

/// `len` elements of `buffer` starting on a 64-byte boundary (the buffer grows as needed).
///
/// The micro-kernels load packed strips a cache line at a time; a vector load that straddles
/// two lines costs two loads.
fn aligned<F: Float>(buffer: &mut Vec<F>, len: usize) -> &mut [F] {
    let slack = 64 / std::mem::size_of::<F>();
    if buffer.len() < len + slack {
        buffer.resize(len + slack, F::zero());
    }
    let skip = buffer.as_ptr().align_offset(64).min(slack);
    &mut buffer[skip..skip + len]
}

/// The micro-kernel for `F` on the kernel family in force (see [`crate::fast::choice`]).
pub(crate) fn kernel<F: Float>() -> MicroKernel<F> {
    kernel_for::<F>(active()).unwrap_or_else(portable::kernel)
}

/// The micro-kernel for `F` on `family`: `None` when this CPU cannot run the family or the
/// family has no kernel for `F`. Only this check hands out a SIMD kernel, whose safety rests
/// on the CPU having the instructions.
pub(crate) fn kernel_for<F: Float>(family: KernelChoice) -> Option<MicroKernel<F>> {
    /// The kernel as `MicroKernel<F>` when `T` is `F` itself.
    fn typed<F: Float, T: 'static>(kernel: MicroKernel<T>) -> Option<MicroKernel<F>> {
        (&kernel as &dyn Any)
            .downcast_ref::<MicroKernel<F>>()
            .copied()
    }
    if !family.available() {
        return None;
    }
    let (for_f32, for_f64) = match family {
        KernelChoice::Portable => return Some(portable::kernel()),
        #[cfg(target_arch = "x86_64")]
        KernelChoice::Avx512 => (x86::AVX512_F32, x86::AVX512_F64),
        #[cfg(target_arch = "x86_64")]
        KernelChoice::Avx2 => (x86::AVX2_F32, x86::AVX2_F64),
        #[cfg(target_arch = "aarch64")]
        KernelChoice::Neon => (neon::F32, neon::F64),
        #[allow(unreachable_patterns)]
        _ => return None,
    };
    typed::<F, f32>(for_f32).or_else(|| typed::<F, f64>(for_f64))
}

/// Every kernel for `F` this CPU runs, fastest family first, portable last.
#[cfg(test)]
pub(crate) fn supported<F: Float>() -> Vec<MicroKernel<F>> {
    KernelChoice::ALL
        .into_iter()
        .filter_map(kernel_for::<F>)
        .collect()
}

/// Whether [`transpose16`] can run here: `F` is `f32` and the AVX-512 or the AVX2 family is
/// in force.
fn can_transpose<F: Float>() -> bool {
    TypeId::of::<F>() == TypeId::of::<f32>()
        && matches!(active(), KernelChoice::Avx512 | KernelChoice::Avx2)
        && cfg!(target_arch = "x86_64")
}

/// Transposes one block of up to 16 × 16: `dst[q·dst_stride + i] = src[i·src_stride + q]`
/// for rows `i < rows` and columns `q < cols`, with rows `rows..16` taken as zeros, and only
/// the first `out_len` elements of each output row written. Packing with it reads whole
/// cache lines of each source row instead of one element per row at a time.
///
/// # Safety
/// [`can_transpose::<F>()`](can_transpose) must hold; `src` must be readable for `cols`
/// elements from each of the `rows` row starts; `dst` writable for `out_len` elements at
/// each of the `cols` output row starts; `rows, cols, out_len ≤ 16`.
unsafe fn transpose16<F: Float>(
    src: *const F,
    src_stride: usize,
    (rows, cols): (usize, usize),
    dst: *mut F,
    dst_stride: usize,
    out_len: usize,
) {
    #[cfg(target_arch = "x86_64")]
    {
        let transpose = match active() {
            KernelChoice::Avx512 => x86::transpose16,
            _ => x86::transpose16_avx2,
        };
        // SAFETY: F is f32 and the family in force (AVX-512, else AVX2, by can_transpose) is
        // available; the rest is the caller's promise.
        unsafe {
            transpose(
                src.cast(),
                src_stride,
                rows,
                cols,
                dst.cast(),
                dst_stride,
                out_len,
            )
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (src, src_stride, rows, cols, dst, dst_stride, out_len);
        unreachable!("can_transpose is false off x86_64")
    }
}

/// Every micro-kernel this CPU runs, for both float types, bit for bit against a plain sum in
/// the kernels' order (fused multiply-adds over p from zero for the SIMD kernels, a separate
/// multiply and add for the portable one), into a tile of a wider C, storing and adding, and
/// for edge tiles of fewer rows.
#[cfg(test)]
mod kernel_tests {
    use ndarray::{Array2, ShapeBuilder};

    use super::{supported, MicroKernel, Tile};
    use crate::Float;

    /// Runs `kernel` on a copy of `c` for a tile of `rows` rows.
    fn run<F: Float>(
        kernel: MicroKernel<F>,
        kc: usize,
        ab: (&[F], &[F]),
        c: &[F],
        (rows, stride, overwrite): (usize, usize, bool),
    ) -> Vec<F> {
        let mut c = c.to_vec();
        let tile = Tile {
            ptr: c.as_mut_ptr(),
            row_stride: stride,
            rows,
            overwrite,
        };
        // SAFETY: c holds mr ≥ rows rows of `stride` ≥ nr elements, borrowed mutably here.
        unsafe { (kernel.run)(kc, ab.0, ab.1, tile) };
        c
    }

    /// The plain sum for C[r][q] in the kernel's order.
    fn plain<F: Float>(
        kernel: &MicroKernel<F>,
        kc: usize,
        (a, b): (&[F], &[F]),
        r: usize,
        q: usize,
    ) -> F {
        let (mr, nr) = (kernel.mr, kernel.nr);
        (0..kc).fold(F::zero(), |s, p| {
            let (x, y) = (a[p * mr + r], b[p * nr + q]);
            if kernel.name == "portable" {
                s + x * y
            } else {
                x.mul_add(y, s)
            }
        })
    }

    fn check<F: Float>(kernel: MicroKernel<F>) {
        let (mr, nr) = (kernel.mr, kernel.nr);
        let stride = nr + 5;
        let bits = |v: &[F]| {
            v.iter()
                .map(|x| x.to_f64_lossless().to_bits())
                .collect::<Vec<_>>()
        };
        for kc in [1, 7, 64, 300] {
            // Values with long mantissas, so that fused and unfused sums differ.
            let a: Vec<F> = (0..kc * mr)
                .map(|i| F::of(((i * 7) % 13) as f64 / 7.3 - 0.7))
                .collect();
            let b: Vec<F> = (0..kc * nr)
                .map(|i| F::of(((i * 5) % 11) as f64 / 9.1 - 0.6))
                .collect();
            for overwrite in [true, false] {
                let before: Vec<F> = (0..mr * stride)
                    .map(|i| F::of((i % 9) as f64 / 3.0))
                    .collect();
                let full = run(kernel, kc, (&a, &b), &before, (mr, stride, overwrite));
                let want: Vec<F> = (0..mr * stride)
                    .map(|i| {
                        let (r, q, old) = (i / stride, i % stride, before[i]);
                        match q < nr {
                            false => old,
                            true if overwrite => plain(&kernel, kc, (&a, &b), r, q),
                            true => old + plain(&kernel, kc, (&a, &b), r, q),
                        }
                    })
                    .collect();
                assert_eq!(
                    bits(&full),
                    bits(&want),
                    "{} kc {kc} overwrite {overwrite}",
                    kernel.name
                );
                // An edge tile: its rows as in the full tile, the rest untouched.
                for rows in 1..mr {
                    let edge = run(kernel, kc, (&a, &b), &before, (rows, stride, overwrite));
                    let split = rows * stride;
                    assert_eq!(
                        bits(&edge[..split]),
                        bits(&full[..split]),
                        "{} rows {rows}",
                        kernel.name
                    );
                    assert_eq!(
                        bits(&edge[split..]),
                        bits(&before[split..]),
                        "{} rows {rows}",
                        kernel.name
                    );
                }
            }
        }
    }

    /// `a·b + β·c` as the product computes it, element by element: over each depth block
    /// (cut as [`gemm_with`] cuts k), the kernel's sum from zero, then stored or added to C.
    #[allow(clippy::needless_range_loop)] // index loops mirror the maths being checked
    fn blocked<F: Float>(
        fused: bool,
        a: &Array2<F>,
        b: &Array2<F>,
        beta: F,
        c: &Array2<F>,
    ) -> Array2<F> {
        let (m, k, n) = (a.nrows(), a.ncols(), b.ncols());
        let kc = k.div_ceil(k.div_ceil(super::KC).max(1)).max(1);
        Array2::from_shape_fn((m, n), |(i, j)| {
            let mut out = beta * c[[i, j]];
            for p0 in (0..k).step_by(kc) {
                let s = (p0..k.min(p0 + kc)).fold(F::zero(), |s, p| {
                    if fused {
                        a[[i, p]].mul_add(b[[p, j]], s)
                    } else {
                        s + a[[i, p]] * b[[p, j]]
                    }
                });
                out = if p0 == 0 && beta == F::zero() {
                    s
                } else {
                    out + s
                };
            }
            out
        })
    }

    /// Whole products through every kernel this CPU runs, for both float types, shapes with
    /// several blocks of rows, depth and columns, and every layout: bit for bit the blocked sum
    /// above, so the SIMD families (AVX-512, AVX2, NEON) all give the same bits.
    fn products_agree<F: Float>() {
        let value = |i: usize, j: usize, seed: usize| {
            F::of(((i * 31 + j * 17 + seed) % 23) as f64 / 7.3 - 1.4)
        };
        for kernel in supported::<F>() {
            let fused = kernel.name != "portable";
            let mut packing = super::Packing::default();
            for &(m, k, n) in &[
                (1, 1, 1),
                (15, 33, 31),
                (70, 300, 200),
                (200, 20, 300),
                (300, 520, 40),
            ] {
                for (fa, fb) in [(false, false), (true, true), (true, false)] {
                    let a = Array2::from_shape_fn((m, k).set_f(fa), |(i, j)| value(i, j, 1));
                    let b = Array2::from_shape_fn((k, n).set_f(fb), |(i, j)| value(i, j, 2));
                    let c0 = Array2::from_shape_fn((m, n), |(i, j)| value(i, j, 3));
                    for beta in [F::zero(), F::one()] {
                        let mut c = c0.clone();
                        super::gemm_with(
                            kernel,
                            &a.view(),
                            &b.view(),
                            beta,
                            &mut c.view_mut(),
                            &mut packing,
                        );
                        let want = blocked(fused, &a, &b, beta, &c0);
                        let bits = |x: &Array2<F>| {
                            x.iter()
                                .map(|v| v.to_f64_lossless().to_bits())
                                .collect::<Vec<_>>()
                        };
                        assert!(
                            bits(&c) == bits(&want),
                            "{} {} {m}x{k}x{n} {fa} {fb} β {beta}",
                            kernel.name,
                            F::NAME
                        );
                    }
                }
            }
        }
    }

    #[test]
    #[cfg_attr(miri, ignore = "large products: too slow under Miri")]
    fn products_of_every_kernel_match_the_blocked_sum_bit_for_bit() {
        products_agree::<f32>();
        products_agree::<f64>();
    }

    #[test]
    fn every_kernel_matches_a_plain_sum_bit_for_bit() {
        for kernel in supported::<f32>() {
            check(kernel);
        }
        for kernel in supported::<f64>() {
            check(kernel);
        }
    }
}

/// Each x86 transpose this CPU runs against the definition, for every block size and output
/// length: the values, the zeros below `rows`, and nothing written past `out_len` or `cols`.
/// The source holds exactly the elements the contract makes readable, so that a sanitizer
/// run sees any read beyond them.
#[cfg(all(test, target_arch = "x86_64", not(miri)))]
mod transpose_tests {
    type Transpose = unsafe fn(*const f32, usize, usize, usize, *mut f32, usize, usize);

    fn check(transpose: Transpose, rows: usize, cols: usize, out_len: usize) {
        let (src_stride, dst_stride) = (19, 17);
        let len = if rows == 0 {
            0
        } else {
            (rows - 1) * src_stride + cols
        };
        let src: Vec<f32> = (0..len).map(|v| v as f32 + 1.0).collect();
        let mut dst = vec![-1.0f32; 16 * dst_stride];
        // SAFETY: the transposes this module gets can run here; src holds cols elements from
        // each of the rows row starts and dst 16 rows of dst_stride ≥ out_len.
        unsafe {
            transpose(
                src.as_ptr(),
                src_stride,
                rows,
                cols,
                dst.as_mut_ptr(),
                dst_stride,
                out_len,
            )
        };
        for q in 0..16 {
            for i in 0..dst_stride {
                let want = match (q < cols, i < out_len, i < rows) {
                    (true, true, true) => src[i * src_stride + q],
                    (true, true, false) => 0.0,
                    _ => -1.0,
                };
                let got = dst[q * dst_stride + i];
                assert_eq!(
                    got, want,
                    "rows {rows}, cols {cols}, out_len {out_len}: [{q}][{i}]"
                );
            }
        }
    }

    #[test]
    fn transposes_match_the_definition_for_every_size() {
        let mut transposes: Vec<Transpose> = Vec::new();
        if is_x86_feature_detected!("avx512f") {
            transposes.push(super::x86::transpose16);
        }
        if is_x86_feature_detected!("avx2") {
            transposes.push(super::x86::transpose16_avx2);
        }
        for transpose in transposes {
            for rows in 0..=16 {
                for cols in 0..=16 {
                    for out_len in 0..=16 {
                        check(transpose, rows, cols, out_len);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{Array2, ShapeBuilder};

    fn filled(rows: usize, cols: usize, fortran: bool, seed: u32) -> Array2<f32> {
        let shape = (rows, cols).set_f(fortran);
        Array2::from_shape_fn(shape, |(i, j)| {
            (((i as u32 * 31 + j as u32 * 17 + seed) % 23) as f32 - 11.0) / 8.0
        })
    }

    /// The largest |got − want|, with a NaN anywhere counted as ∞ (`f32::max` would skip it).
    fn max_error(got: &Array2<f32>, want: &Array2<f32>) -> f32 {
        assert_eq!(got.dim(), want.dim());
        got.iter().zip(want).fold(0.0, |e, (g, w)| {
            let d = (g - w).abs();
            if d.is_nan() {
                f32::INFINITY
            } else {
                e.max(d)
            }
        })
    }

    #[test]
    fn max_error_counts_nan_as_infinite() {
        let want = Array2::zeros((2, 2));
        let mut got = want.clone();
        got[[1, 1]] = f32::NAN;
        assert_eq!(max_error(&got, &want), f32::INFINITY);
        got[[0, 0]] = 0.5;
        assert_eq!(max_error(&got, &want), f32::INFINITY);
    }

    /// Small products in every layout, with views of negative strides and C a window of a
    /// larger array, against ndarray: small enough for Miri, which checks every raw access of
    /// the packing and write-back loops here (with the portable kernel).
    #[test]
    fn small_products_in_every_layout_match_ndarray() {
        use ndarray::s;
        let mut packing = Packing::default();
        for &(m, k, n) in &[(1, 1, 1), (3, 5, 7), (5, 2, 9), (9, 17, 3), (4, 0, 3)] {
            for (fa, fb, fc) in [
                (false, false, false),
                (true, true, true),
                (true, false, true),
            ] {
                let a = filled(m, k, fa, 1);
                let b = filled(k, n, fb, 2);
                let mut big = filled(m + 2, n + 3, fc, 3);
                let mut c = big.slice_mut(s![1..m + 1, 2..n + 2]);
                let want = a.dot(&b) + &c;
                gemm(&a.view(), &b.view(), 1.0, &mut c, &mut packing);
                assert_eq!(max_error(&c.to_owned(), &want), 0.0, "{m}x{k}x{n}");
                // Reversed rows of A and columns of B: negative strides.
                let (ar, br) = (a.slice(s![..;-1, ..]), b.slice(s![.., ..;-1]));
                let mut cr = Array2::zeros((m, n));
                gemm(&ar, &br, 0.0, &mut cr.view_mut(), &mut packing);
                assert_eq!(max_error(&cr, &ar.dot(&br)), 0.0, "reversed {m}x{k}x{n}");
                // C reversed too: written through a negative row stride.
                let mut cn = Array2::zeros((m, n));
                gemm(
                    &a.view(),
                    &b.view(),
                    0.0,
                    &mut cn.slice_mut(s![..;-1, ..]),
                    &mut packing,
                );
                let want = a.dot(&b).slice(s![..;-1, ..]).to_owned();
                assert_eq!(max_error(&cn, &want), 0.0, "C reversed {m}x{k}x{n}");
            }
        }
        // The rows of `big` outside the window are untouched.
        let mut big = Array2::<f32>::from_elem((6, 6), 7.0);
        let (a, b) = (filled(4, 3, false, 1), filled(3, 4, false, 2));
        gemm(
            &a.view(),
            &b.view(),
            0.0,
            &mut big.slice_mut(s![1..5, 1..5]),
            &mut packing,
        );
        let outside = big
            .indexed_iter()
            .filter(|((i, j), _)| !(1..5).contains(i) || !(1..5).contains(j));
        assert!(outside.into_iter().all(|(_, &v)| v == 7.0));
    }

    #[test]
    #[should_panic(expected = "shapes do not agree")]
    fn product_checks_shapes_too() {
        let (a, b) = (Array2::<f64>::ones((3, 4)), Array2::<f64>::ones((4, 5)));
        let mut c = Array2::zeros((3, 4));
        let mut packing = Packing {
            parallel: true,
            ..Packing::default()
        };
        product(&a.view(), &b.view(), 0.0, &mut c.view_mut(), &mut packing);
    }

    #[test]
    #[cfg_attr(miri, ignore = "large products: too slow under Miri")]
    fn products_match_ndarray_for_odd_shapes_and_layouts() {
        let mut packing = Packing::default();
        for &(m, k, n) in &[
            (1, 1, 1),
            (3, 5, 7),
            (14, 32, 32),
            (15, 33, 31),
            (70, 300, 200),
            (200, 20, 1100),
            (30, 600, 50),
            // Several blocks of rows, depth and columns; then several of rows and depth in one
            // column block.
            (1100, 300, 290),
            (400, 520, 40),
        ] {
            for (fa, fb, fc) in [
                (false, false, false),
                (true, false, true),
                (false, true, false),
                (true, true, true),
            ] {
                let a = filled(m, k, fa, 1);
                let b = filled(k, n, fb, 2);
                let mut c = filled(m, n, fc, 3);
                let want = a.dot(&b) + &c;
                gemm(&a.view(), &b.view(), 1.0, &mut c.view_mut(), &mut packing);
                let err = max_error(&c, &want);
                assert!(
                    err < 1e-3,
                    "{m}x{k}x{n} layouts {fa} {fb} {fc}: error {err}"
                );
                gemm(&a.view(), &b.view(), 0.0, &mut c.view_mut(), &mut packing);
                let err = max_error(&c, &a.dot(&b));
                assert!(err < 1e-3, "β = 0, {m}x{k}x{n}: error {err}");
            }
        }
        // f64 takes the portable kernel.
        let a = Array2::from_shape_fn((9, 13), |(i, j)| (i * 13 + j) as f64 / 50.0);
        let b = Array2::from_shape_fn((13, 10), |(i, j)| (i + 2 * j) as f64 / 30.0);
        let mut c = Array2::zeros((9, 10));
        gemm(
            &a.view(),
            &b.view(),
            0.0,
            &mut c.view_mut(),
            &mut Packing::default(),
        );
        assert!((&c - &a.dot(&b)).iter().all(|d| d.abs() < 1e-12));
    }
}
