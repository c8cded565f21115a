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

use ndarray::{ArrayView2, ArrayViewMut2};

use crate::Float;

/// Depth of a packed block.
const KC: usize = 256;
/// Most rows of A per packed block when B has several column blocks. The block is packed once
/// per depth block and serves all of them, so it covers the largest training shapes (1 024
/// rows) whole; taller products are cut into blocks of equal size, each of which packs B
/// again. Measured against packing A for each column block: 4–11 % faster on wide's products.
const MC: usize = 1024;
/// Most rows of A per packed block when B has only one column block, so that there is nothing
/// to share: small enough that the block is still in L1 and L2 when the kernels read it
/// (784 × 64 × 128, small's weight gradient, is 6 % slower with 1 024).
const MC_ONE_BLOCK: usize = 168;
/// Columns of B per packed block (a multiple of every kernel's `nr`).
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

/// The portable kernel: plain loops, any float type.
pub(crate) fn portable<F: Float>() -> MicroKernel<F> {
    MicroKernel {
        mr: 4,
        nr: 8,
        run: portable_kernel::<F>,
        name: "portable",
    }
}

/// # Safety
/// As [`MicroKernel::run`].
unsafe fn portable_kernel<F: Float>(kc: usize, a: &[F], b: &[F], tile: Tile<F>) {
    let mut sums = [[F::zero(); 8]; 4];
    for (ap, bp) in a[..kc * 4].chunks_exact(4).zip(b[..kc * 8].chunks_exact(8)) {
        for r in 0..4 {
            for c in 0..8 {
                sums[r][c] += ap[r] * bp[c];
            }
        }
    }
    for (r, row) in sums.iter().enumerate().take(tile.rows) {
        // SAFETY: the caller guarantees the tile's rows of 8 are ours to read and write.
        let out = unsafe { std::slice::from_raw_parts_mut(tile.ptr.add(r * tile.row_stride), 8) };
        for (o, &s) in out.iter_mut().zip(row) {
            *o = if tile.overwrite { s } else { *o + s };
        }
    }
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
        (m, F::micro_kernel().0.mr)
    } else {
        (n, F::micro_kernel().0.nr)
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
/// The packing and write-back loops are compiled for AVX-512 and AVX2 too (as are
/// the per-sample kernels); the micro-kernel is chosen separately.
#[multiversion::multiversion(targets("x86_64+avx512f+avx512vl+avx2+fma", "x86_64+avx2+fma"))]
pub fn gemm<F: Float>(
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
    let kernel = F::micro_kernel().0;
    let (mr, nr) = (kernel.mr, kernel.nr);
    // Depth blocks of equal size (784 = 3 × 262 rather than 3 × 256 + 16): each block is one
    // more pass over C, so a thin last block would cost a pass for little work.
    let kc_step = k.div_ceil(k.div_ceil(KC).max(1));
    let most_rows = if n > NC { MC } else { MC_ONE_BLOCK };
    let mc_step = m.div_ceil(m.div_ceil(most_rows)).next_multiple_of(mr);
    let packed_a = aligned(&mut packing.a, mc_step * kc_step);
    let packed_b = aligned(&mut packing.b, NC.min(n.next_multiple_of(nr)) * kc_step);
    let acc = aligned(&mut packing.acc, mr * nr);
    if k == 0 {
        c.mapv_inplace(|v| beta * v);
        return;
    }
    let blocks = |ic: usize, pc: usize, jc: usize| Blocks {
        rows: (ic, mc_step.min(m - ic)),
        depth: kc_step.min(k - pc),
        columns: (jc, NC.min(n - jc)),
        // The first depth block applies β, later ones add.
        keep: if pc == 0 { beta } else { F::one() },
    };
    if n > NC {
        // Several column blocks: each block of A is packed once and serves all of them.
        for ic in (0..m).step_by(mc_step) {
            for pc in (0..k).step_by(kc_step) {
                let kc = kc_step.min(k - pc);
                pack_a(a, ic, mc_step.min(m - ic), pc, kc, mr, packed_a);
                for jc in (0..n).step_by(NC) {
                    pack_b(b, pc, kc, jc, NC.min(n - jc), nr, packed_b);
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
/// would call `memmove` for every 56 or 128 bytes, which cost a tenth of a training step.
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
/// two lines costs two, and measured, an unaligned packed B halved the kernel's speed.
fn aligned<F: Float>(buffer: &mut Vec<F>, len: usize) -> &mut [F] {
    let slack = 64 / std::mem::size_of::<F>();
    if buffer.len() < len + slack {
        buffer.resize(len + slack, F::zero());
    }
    let skip = buffer.as_ptr().align_offset(64).min(slack);
    &mut buffer[skip..skip + len]
}

#[inline(always)]
fn pack_b<F: Float>(
    b: &ArrayView2<'_, F>,
    pc: usize,
    kc: usize,
    jc: usize,
    nc: usize,
    nr: usize,
    out: &mut [F],
) {
    let (rs, cs) = (b.strides()[0], b.strides()[1]);
    if cs == 1 && kc > 0 {
        // Rows contiguous: one copy per depth step and strip.
        let row = |p: usize| {
            b.row(pc + p)
                .to_slice()
                .expect("a row of unit column stride is contiguous")
        };
        return pack_lines(row, kc, jc, nc, nr, out);
    }
    let transpose = rs == 1 && cs > 0 && nr.is_multiple_of(16) && simd::can_transpose::<F>();
    for (s, j0) in (jc..jc + nc).step_by(nr).enumerate() {
        let w = nr.min(jc + nc - j0);
        let strip = &mut out[s * kc * nr..(s + 1) * kc * nr];
        let block = b.slice(ndarray::s![pc..pc + kc, j0..j0 + w]);
        if transpose {
            // Columns contiguous: 16 × 16 blocks transposed in registers, each column read
            // a cache line at a time.
            if w < nr {
                strip.fill(F::zero());
            }
            let base = block.as_ptr();
            for c0 in (0..w).step_by(16) {
                for p0 in (0..kc).step_by(16) {
                    // SAFETY: can_transpose holds; columns c0 .. c0 + rows of the block are
                    // readable for kc − p0 ≥ cols elements from row p0 (unit row stride);
                    // output rows p0 .. p0 + cols of the strip hold nr ≥ c0 + 16 elements.
                    unsafe {
                        simd::transpose16(
                            base.add(c0 * cs as usize + p0),
                            cs as usize,
                            16.min(w - c0),
                            16.min(kc - p0),
                            strip.as_mut_ptr().add(p0 * nr + c0),
                            nr,
                            16,
                        )
                    };
                }
            }
            continue;
        }
        // Read the w columns side by side, so the strip is written in order.
        let cols: [Option<&[F]>; MAX_NR] = std::array::from_fn(|c| {
            if c < w {
                block.column(c).to_slice()
            } else {
                None
            }
        });
        let contiguous = cols[..w].iter().all(Option::is_some);
        let cols: [&[F]; MAX_NR] = std::array::from_fn(|c| cols[c].unwrap_or(&[]));
        for (p, dst) in strip.chunks_exact_mut(nr).enumerate() {
            if contiguous {
                for (d, col) in dst[..w].iter_mut().zip(&cols) {
                    *d = col[p];
                }
            } else {
                for (c, d) in dst[..w].iter_mut().enumerate() {
                    *d = block[[p, c]];
                }
            }
            dst[w..].fill(F::zero());
        }
    }
}

/// Packs from lines that run along the strips: strip `s` of `width` (zero-padded) gets, at
/// depth step `p`, elements `from + s·width ..` of `line(p)`, for `p < kc`.
///
/// Sixteen lines at a time across every strip, so that each line is read front to back (which
/// the hardware prefetcher follows) and, for long lines, the next sixteen are prefetched,
/// rather than a few
/// elements from each of kc lines in turn: lines 4 KiB apart put every read on a new page,
/// and the copies waited on memory.
#[inline(always)]
fn pack_lines<'a, F: Float + 'a>(
    line: impl Fn(usize) -> &'a [F],
    kc: usize,
    from: usize,
    len: usize,
    width: usize,
    out: &mut [F],
) {
    // Short lines (a few strips) are back in cache before a prefetch would pay for itself.
    let ahead = len >= 256;
    for p0 in (0..kc).step_by(16) {
        let lines: [&[F]; 16] =
            std::array::from_fn(|i| if p0 + i < kc { line(p0 + i) } else { &[] });
        let next: [&[F]; 16] = std::array::from_fn(|i| {
            if ahead && p0 + 16 + i < kc {
                line(p0 + 16 + i)
            } else {
                &[]
            }
        });
        for (s, j0) in (from..from + len).step_by(width).enumerate() {
            let w = width.min(from + len - j0);
            let strip = &mut out[s * kc * width..(s + 1) * kc * width];
            for (p, (line, next)) in (p0..kc).zip(lines.iter().zip(&next)) {
                if let Some(ahead) = next.get(j0..j0 + w) {
                    prefetch(ahead);
                }
                let dst = &mut strip[p * width..(p + 1) * width];
                copy_short(&mut dst[..w], &line[j0..j0 + w]);
                dst[w..].fill(F::zero());
            }
        }
    }
}

/// Asks for the cache lines of `values` to be brought towards the core (into L2).
#[inline(always)]
fn prefetch<F>(values: &[F]) {
    #[cfg(all(target_arch = "x86_64", not(miri)))]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T1};
        let bytes = std::mem::size_of_val(values);
        let start = values.as_ptr().cast::<i8>();
        for offset in (0..bytes).step_by(64) {
            // SAFETY: a prefetch is only a hint and never faults; the address lies inside
            // `values`.
            unsafe { _mm_prefetch::<_MM_HINT_T1>(start.add(offset)) };
        }
    }
    #[cfg(any(not(target_arch = "x86_64"), miri))]
    let _ = values;
}

/// Packs `a[ic..ic+mc, pc..pc+kc]` as strips of `mr` rows, each `kc × mr`, zero-padded.
#[inline(always)]
fn pack_a<F: Float>(
    a: &ArrayView2<'_, F>,
    ic: usize,
    mc: usize,
    pc: usize,
    kc: usize,
    mr: usize,
    out: &mut [F],
) {
    if a.strides()[0] == 1 && kc > 0 {
        // Columns contiguous: one copy per depth step and strip.
        let column = |p: usize| {
            a.column(pc + p)
                .to_slice()
                .expect("a column of unit row stride is contiguous")
        };
        return pack_lines(column, kc, ic, mc, mr, out);
    }
    let transpose =
        a.strides()[1] == 1 && a.strides()[0] > 0 && mr <= 16 && simd::can_transpose::<F>();
    for (s, i0) in (ic..ic + mc).step_by(mr).enumerate() {
        let h = mr.min(ic + mc - i0);
        let strip = &mut out[s * kc * mr..(s + 1) * kc * mr];
        let block = a.slice(ndarray::s![i0..i0 + h, pc..pc + kc]);
        if transpose {
            // Rows contiguous: 16 × 16 blocks transposed in registers (rows h .. mr come out
            // as the zero padding).
            let (base, lda) = (block.as_ptr(), a.strides()[0] as usize);
            for p0 in (0..kc).step_by(16) {
                // SAFETY: can_transpose holds; rows i0 .. i0 + h are readable for kc − p0 ≥
                // cols elements from column p0 (unit column stride); output rows p0 .. p0 +
                // cols of the strip hold mr elements each.
                unsafe {
                    simd::transpose16(
                        base.add(p0),
                        lda,
                        h,
                        16.min(kc - p0),
                        strip.as_mut_ptr().add(p0 * mr),
                        mr,
                        mr,
                    )
                };
            }
        } else {
            // Rows contiguous: read the h rows side by side, so the strip is written in order.
            let rows: [Option<&[F]>; MAX_MR] =
                std::array::from_fn(|r| if r < h { block.row(r).to_slice() } else { None });
            if rows[..h].iter().all(Option::is_some) {
                // Row by row: contiguous reads, and writes `mr` apart, without bounds checks
                // (reading the h rows side by side cost a tenth of a small training step).
                assert!(strip.len() >= kc * mr && h <= mr);
                let out = strip.as_mut_ptr();
                for (r, row) in rows[..h].iter().flatten().enumerate() {
                    let row = &row[..kc];
                    for (p, &v) in row.iter().enumerate() {
                        // SAFETY: p < kc and r < h ≤ mr, so p·mr + r < kc·mr ≤ strip.len().
                        unsafe { *out.add(p * mr + r) = v };
                    }
                }
                if h < mr {
                    for dst in strip.chunks_exact_mut(mr) {
                        dst[h..].fill(F::zero());
                    }
                }
            } else {
                for (p, dst) in strip.chunks_exact_mut(mr).enumerate() {
                    for (r, d) in dst[..h].iter_mut().enumerate() {
                        *d = block[[r, p]];
                    }
                    dst[h..].fill(F::zero());
                }
            }
        }
    }
}

/// SIMD micro-kernels for `f32`, chosen at run time.
pub(crate) mod simd {
    use super::MicroKernel;

    /// The fastest kernel this CPU supports.
    pub(crate) fn f32_kernel() -> MicroKernel<f32> {
        supported()
            .into_iter()
            .flatten()
            .next()
            .unwrap_or_else(super::portable)
    }

    /// The SIMD kernels this CPU can run, fastest first. None under Miri, which does not
    /// model their intrinsics; it checks the portable kernel and the loops around it.
    fn supported() -> [Option<MicroKernel<f32>>; 2] {
        #[cfg(all(target_arch = "x86_64", not(miri)))]
        {
            let avx512 = std::arch::is_x86_feature_detected!("avx512f").then_some(MicroKernel {
                mr: 14,
                nr: 32,
                run: x86::avx512,
                name: "avx512 14x32",
            });
            let avx2 = (std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma"))
            .then_some(MicroKernel {
                mr: 6,
                nr: 16,
                run: x86::avx2,
                name: "avx2+fma 6x16",
            });
            [avx512, avx2]
        }
        #[cfg(any(not(target_arch = "x86_64"), miri))]
        [None, None]
    }

    /// Whether [`transpose16`] can run here: `F` is `f32` and the CPU has AVX-512F (never
    /// under Miri).
    pub(crate) fn can_transpose<F: crate::Float>() -> bool {
        #[cfg(target_arch = "x86_64")]
        {
            !cfg!(miri)
                && std::any::TypeId::of::<F>() == std::any::TypeId::of::<f32>()
                && std::arch::is_x86_feature_detected!("avx512f")
        }
        #[cfg(not(target_arch = "x86_64"))]
        false
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
    pub(crate) unsafe fn transpose16<F: crate::Float>(
        src: *const F,
        src_stride: usize,
        rows: usize,
        cols: usize,
        dst: *mut F,
        dst_stride: usize,
        out_len: usize,
    ) {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: F is f32 (can_transpose), the rest is the caller's promise.
        unsafe {
            x86::transpose16(
                src.cast(),
                src_stride,
                rows,
                cols,
                dst.cast(),
                dst_stride,
                out_len,
            )
        }
        #[cfg(not(target_arch = "x86_64"))]
        unreachable!("can_transpose is false off x86_64")
    }

    #[cfg(target_arch = "x86_64")]
    // Under Miri only the portable kernel runs (see `supported`).
    #[cfg_attr(miri, allow(dead_code))]
    mod x86 {
        use std::arch::x86_64::*;

        use super::super::Tile;

        /// See [`super::transpose16`].
        #[target_feature(enable = "avx512f")]
        pub(super) unsafe fn transpose16(
            src: *const f32,
            src_stride: usize,
            rows: usize,
            cols: usize,
            dst: *mut f32,
            dst_stride: usize,
            out_len: usize,
        ) {
            let load_mask: __mmask16 = ((1u32 << cols) - 1) as __mmask16;
            let store_mask: __mmask16 = ((1u32 << out_len) - 1) as __mmask16;
            let mut r = [_mm512_setzero_ps(); 16];
            for (i, row) in r.iter_mut().enumerate().take(rows) {
                // SAFETY: row i < rows is readable for `cols` elements (caller).
                *row = unsafe { _mm512_maskz_loadu_ps(load_mask, src.add(i * src_stride)) };
            }
            // Pairs of rows interleaved, then quads, within each 128-bit lane: u[4k + j] holds
            // in lane L column 4L + j of rows 4k .. 4k + 4.
            let mut t = [_mm512_setzero_ps(); 16];
            for m in 0..8 {
                t[2 * m] = _mm512_unpacklo_ps(r[2 * m], r[2 * m + 1]);
                t[2 * m + 1] = _mm512_unpackhi_ps(r[2 * m], r[2 * m + 1]);
            }
            let mut u = [_mm512_setzero_ps(); 16];
            for k in 0..4 {
                let t = &t[4 * k..4 * k + 4];
                u[4 * k] = _mm512_shuffle_ps::<0x44>(t[0], t[2]);
                u[4 * k + 1] = _mm512_shuffle_ps::<0xEE>(t[0], t[2]);
                u[4 * k + 2] = _mm512_shuffle_ps::<0x44>(t[1], t[3]);
                u[4 * k + 3] = _mm512_shuffle_ps::<0xEE>(t[1], t[3]);
            }
            // Then gather the four lanes of each column across the quads.
            for j in 0..4 {
                let v = _mm512_shuffle_f32x4::<0x88>(u[j], u[4 + j]);
                let w = _mm512_shuffle_f32x4::<0xDD>(u[j], u[4 + j]);
                let v2 = _mm512_shuffle_f32x4::<0x88>(u[8 + j], u[12 + j]);
                let w2 = _mm512_shuffle_f32x4::<0xDD>(u[8 + j], u[12 + j]);
                let columns = [
                    _mm512_shuffle_f32x4::<0x88>(v, v2),
                    _mm512_shuffle_f32x4::<0x88>(w, w2),
                    _mm512_shuffle_f32x4::<0xDD>(v, v2),
                    _mm512_shuffle_f32x4::<0xDD>(w, w2),
                ];
                for (lane, column) in columns.into_iter().enumerate() {
                    let q = 4 * lane + j;
                    if q < cols {
                        // SAFETY: output row q < cols is writable for out_len elements.
                        unsafe {
                            _mm512_mask_storeu_ps(dst.add(q * dst_stride), store_mask, column)
                        };
                    }
                }
            }
        }

        /// Generates a micro-kernel of `$mr` rows and two vectors of `$lanes` columns: the safe
        /// entry that checks the packed lengths, and the inner loop compiled for `$feature`.
        /// The AVX-512 and AVX2 kernels differ only in register width and intrinsics.
        macro_rules! micro_kernel {
            ($(#[$doc:meta])* $entry:ident, $inner:ident, $feature:literal, $mr:literal,
             edges: [$($edge:literal)*], $lanes:literal, $zero:ident, $load:ident,
             $store:ident, $set1:ident, $fmadd:ident, $add:ident) => {
                $(#[$doc])*
                ///
                /// # Safety
                /// As [`MicroKernel::run`](super::super::MicroKernel::run).
                pub(super) unsafe fn $entry(kc: usize, a: &[f32], b: &[f32], tile: Tile<f32>) {
                    assert!(a.len() >= kc * $mr && b.len() >= kc * 2 * $lanes);
                    assert!((1..=$mr).contains(&tile.rows), "a tile has 1 to mr rows");
                    // SAFETY: `f32_kernel` hands this kernel out only after detecting
                    // `$feature`; the assertion keeps the packed reads in bounds; the caller
                    // vouches for the tile's rows. An edge tile runs a loop over just its
                    // rows: the same operations per element, so the same bits.
                    unsafe {
                        match tile.rows {
                            $($edge => $inner::<$edge>(kc, a, b, tile),)*
                            _ => $inner::<$mr>(kc, a, b, tile),
                        }
                    }
                }

                /// Rows 0 .. H of the tile, with A packed `mr` rows per step.
                #[target_feature(enable = $feature)]
                unsafe fn $inner<const H: usize>(
                    kc: usize,
                    a: &[f32],
                    b: &[f32],
                    tile: Tile<f32>,
                ) {
                    const NR: usize = 2 * $lanes;
                    let mut sums = [[$zero(); 2]; H];
                    let (a, b) = (a.as_ptr(), b.as_ptr());
                    for p in 0..kc {
                        // SAFETY: p < kc, so p·NR + NR − 1 < kc·NR ≤ b.len() and
                        // p·mr + mr − 1 < kc·mr ≤ a.len(), as asserted by the entry.
                        unsafe {
                            let b0 = $load(b.add(p * NR));
                            let b1 = $load(b.add(p * NR + $lanes));
                            let ap = a.add(p * $mr);
                            for (r, sum) in sums.iter_mut().enumerate() {
                                let x = $set1(*ap.add(r));
                                sum[0] = $fmadd(x, b0, sum[0]);
                                sum[1] = $fmadd(x, b1, sum[1]);
                            }
                        }
                    }
                    for (r, sum) in sums.iter().enumerate() {
                        // SAFETY: row r < H = tile.rows of the tile holds NR elements we may
                        // read and write (the caller's promise).
                        unsafe {
                            let row = tile.ptr.add(r * tile.row_stride);
                            let (mut s0, mut s1) = (sum[0], sum[1]);
                            if !tile.overwrite {
                                s0 = $add($load(row), s0);
                                s1 = $add($load(row.add($lanes)), s1);
                            }
                            $store(row, s0);
                            $store(row.add($lanes), s1);
                        }
                    }
                }
            };
        }

        micro_kernel!(
            /// 14 × 32 block of C in 28 zmm registers.
            avx512, avx512_inner, "avx512f", 14, edges: [1 2 3 4 5 6 7 8 9 10 11 12 13], 16,
            _mm512_setzero_ps, _mm512_loadu_ps, _mm512_storeu_ps, _mm512_set1_ps,
            _mm512_fmadd_ps, _mm512_add_ps
        );
        micro_kernel!(
            /// 6 × 16 block of C in 12 ymm registers.
            avx2, avx2_inner, "avx2,fma", 6, edges: [1 2 3 4 5], 8, _mm256_setzero_ps,
            _mm256_loadu_ps, _mm256_storeu_ps, _mm256_set1_ps, _mm256_fmadd_ps, _mm256_add_ps
        );
    }

    /// Every x86 kernel this CPU can run, against a plain sum, into a tile of a wider C, both
    /// storing and adding (the AVX2 kernel is tested here too on AVX-512 machines, where the
    /// products never choose it).
    #[cfg(all(test, target_arch = "x86_64"))]
    mod tests {
        use super::super::{MicroKernel, Tile};

        /// Runs `kernel` on a copy of `c` for a tile of `rows` rows.
        fn run(
            kernel: MicroKernel<f32>,
            kc: usize,
            ab: (&[f32], &[f32]),
            c: &[f32],
            (rows, stride, overwrite): (usize, usize, bool),
        ) -> Vec<f32> {
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

        fn check(kernel: MicroKernel<f32>) {
            let (mr, nr) = (kernel.mr, kernel.nr);
            let stride = nr + 5;
            for kc in [1, 7, 64, 300] {
                let a: Vec<f32> = (0..kc * mr)
                    .map(|i| ((i * 7) % 13) as f32 / 8.0 - 0.7)
                    .collect();
                let b: Vec<f32> = (0..kc * nr)
                    .map(|i| ((i * 5) % 11) as f32 / 8.0 - 0.6)
                    .collect();
                for overwrite in [true, false] {
                    let before: Vec<f32> = (0..mr * stride).map(|i| (i % 9) as f32).collect();
                    let full = run(kernel, kc, (&a, &b), &before, (mr, stride, overwrite));
                    for r in 0..mr {
                        for q in 0..stride {
                            let (got, old) = (full[r * stride + q], before[r * stride + q]);
                            if q >= nr {
                                assert_eq!(
                                    got, old,
                                    "{}: column {q} outside the tile",
                                    kernel.name
                                );
                                continue;
                            }
                            let sum: f32 = (0..kc).map(|p| a[p * mr + r] * b[p * nr + q]).sum();
                            let want = if overwrite { sum } else { old + sum };
                            assert!(
                                (got - want).abs() <= 1e-3 * (1.0 + want.abs()),
                                "{} kc {kc} overwrite {overwrite} ({r}, {q}): {got} vs {want}",
                                kernel.name
                            );
                        }
                    }
                    // An edge tile: its rows bit for bit as in the full tile, the rest untouched.
                    for rows in 1..mr {
                        let edge = run(kernel, kc, (&a, &b), &before, (rows, stride, overwrite));
                        let split = rows * stride;
                        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                        assert_eq!(
                            bits(&edge[..split]),
                            bits(&full[..split]),
                            "{} rows {rows}",
                            kernel.name
                        );
                        assert_eq!(
                            edge[split..],
                            before[split..],
                            "{} rows {rows}",
                            kernel.name
                        );
                    }
                }
            }
        }

        #[test]
        fn x86_kernels_match_a_plain_sum() {
            for kernel in super::supported().into_iter().flatten() {
                check(kernel);
            }
            check(super::super::portable());
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
