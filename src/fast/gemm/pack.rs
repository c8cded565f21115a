//! Packing: copies blocks of A and B into the strips the micro-kernels stream through.

use ndarray::ArrayView2;

use super::{copy_short, MAX_MR, MAX_NR};
use crate::Float;

#[inline(always)]
pub(super) fn pack_b<F: Float>(
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
    let transpose = rs == 1 && cs > 0 && nr.is_multiple_of(16) && super::can_transpose::<F>();
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
                        super::transpose16(
                            base.add(c0 * cs as usize + p0),
                            cs as usize,
                            (16.min(w - c0), 16.min(kc - p0)),
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
pub(super) fn pack_a<F: Float>(
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
    // Strips of 8 rows or fewer (the AVX2 kernel's 6) would store 16 short output rows per
    // block: copying row by row is faster there.
    let transpose = a.strides()[1] == 1
        && a.strides()[0] > 0
        && (9..=16).contains(&mr)
        && super::can_transpose::<F>();
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
                    super::transpose16(
                        base.add(p0),
                        lda,
                        (h, 16.min(kc - p0)),
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
                // (side by side, the h reads of each step would each start a new line).
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
