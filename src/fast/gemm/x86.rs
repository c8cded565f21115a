//! The x86-64 micro-kernels (AVX-512 and AVX2 with FMA, from one macro) and the transposes
//! that packing uses.

use std::arch::x86_64::*;

use super::{MicroKernel, Tile};

/// Transposes one block of up to 16 × 16 `f32`: see [`super::transpose16`].
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
                unsafe { _mm512_mask_storeu_ps(dst.add(q * dst_stride), store_mask, column) };
            }
        }
    }
}

/// [`transpose16`] for the AVX2 family: the 16 × 16 block as four 8 × 8 blocks, each
/// transposed in eight registers of eight lanes.
#[target_feature(enable = "avx2")]
pub(super) unsafe fn transpose16_avx2(
    src: *const f32,
    src_stride: usize,
    rows: usize,
    cols: usize,
    dst: *mut f32,
    dst_stride: usize,
    out_len: usize,
) {
    // Lane i of mask(n) is set when i < n (a negative n sets none).
    let mask = |n: isize| {
        let n = n.clamp(0, 8) as i32;
        _mm256_cmpgt_epi32(
            _mm256_set1_epi32(n),
            _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7),
        )
    };
    let load_masks = [mask(cols as isize), mask(cols as isize - 8)];
    let store_masks = [mask(out_len as isize), mask(out_len as isize - 8)];
    for (half, &load_mask) in load_masks.iter().enumerate() {
        if 8 * half >= cols {
            // No column of this half: nothing to store, and its addresses may lie past the
            // rows' ends, where even forming a pointer is not allowed.
            break;
        }
        // Columns 8·half .. 8·half + 8 of every row, transposed block by block of 8 rows
        // (a block with no rows stays zero).
        let mut columns = [[_mm256_setzero_ps(); 8]; 2];
        for (block, out) in columns.iter_mut().enumerate().take(rows.div_ceil(8)) {
            let mut r = [_mm256_setzero_ps(); 8];
            for (k, row) in r.iter_mut().enumerate() {
                let i = 8 * block + k;
                if i < rows {
                    // SAFETY: row i < rows is readable for `cols` elements (caller); the mask
                    // keeps the load to columns below cols.
                    *row = unsafe {
                        _mm256_maskload_ps(src.add(i * src_stride + 8 * half), load_mask)
                    };
                }
            }
            *out = transpose8(r);
        }
        for (j, (low, high)) in columns[0].iter().zip(&columns[1]).enumerate() {
            let q = 8 * half + j;
            if q < cols {
                // SAFETY: output row q < cols is writable for out_len elements; the masks
                // keep the stores below out_len, and the second half is only addressed when
                // out_len reaches into it.
                unsafe {
                    _mm256_maskstore_ps(dst.add(q * dst_stride), store_masks[0], *low);
                    if out_len > 8 {
                        _mm256_maskstore_ps(dst.add(q * dst_stride + 8), store_masks[1], *high);
                    }
                }
            }
        }
    }
}

/// Transposes eight rows of eight lanes: lane i of output j is lane j of input i.
#[inline]
#[target_feature(enable = "avx2")]
fn transpose8(r: [__m256; 8]) -> [__m256; 8] {
    // Pairs of rows interleaved, then quads, within each 128-bit lane: s[4k + j] holds in lane
    // L column 4L + j of rows 4k .. 4k + 4; the two lanes then meet.
    let t: [__m256; 8] = std::array::from_fn(|m| {
        let (a, b) = (r[m / 2 * 2], r[m / 2 * 2 + 1]);
        if m % 2 == 0 {
            _mm256_unpacklo_ps(a, b)
        } else {
            _mm256_unpackhi_ps(a, b)
        }
    });
    let s: [__m256; 8] = std::array::from_fn(|m| {
        let (k, j) = (m / 4, m % 4);
        let (a, b) = (t[4 * k + j / 2], t[4 * k + 2 + j / 2]);
        if j % 2 == 0 {
            _mm256_shuffle_ps::<0x44>(a, b)
        } else {
            _mm256_shuffle_ps::<0xEE>(a, b)
        }
    });
    std::array::from_fn(|q| {
        let j = q % 4;
        if q < 4 {
            _mm256_permute2f128_ps::<0x20>(s[j], s[4 + j])
        } else {
            _mm256_permute2f128_ps::<0x31>(s[j], s[4 + j])
        }
    })
}

/// Generates a micro-kernel of `$mr` rows and two vectors of `$lanes` elements of `$t`: the
/// safe-to-reach entry that checks the packed lengths, the inner loop compiled for
/// `$feature`, and the `MicroKernel` constant. The kernels differ only in register width,
/// element type and intrinsics; each element of C is `fma` over p in order from zero, so every
/// kernel gives the same bits for the same packed block.
macro_rules! micro_kernel {
    ($(#[$doc:meta])* $name:ident = $entry:ident, $inner:ident, $t:ty, $feature:literal,
     $mr:literal, edges: [$($edge:literal)*], $lanes:literal, $zero:ident, $load:ident,
     $store:ident, $set1:ident, $fmadd:ident, $add:ident) => {
        $(#[$doc])*
        pub(super) const $name: MicroKernel<$t> = MicroKernel {
            mr: $mr,
            nr: 2 * $lanes,
            run: $entry,
            name: stringify!($entry),
        };

        /// # Safety
        /// As [`MicroKernel::run`], and the CPU has `$feature`.
        unsafe fn $entry(kc: usize, a: &[$t], b: &[$t], tile: Tile<$t>) {
            assert!(a.len() >= kc * $mr && b.len() >= kc * 2 * $lanes);
            assert!((1..=$mr).contains(&tile.rows), "a tile has 1 to mr rows");
            // SAFETY: `kernel_for` hands this kernel out only after detecting `$feature`;
            // the assertion keeps the packed reads in bounds; the caller vouches for the
            // tile's rows. An edge tile runs a loop over just its rows: the same operations
            // per element, so the same bits.
            unsafe {
                match tile.rows {
                    $($edge => $inner::<$edge>(kc, a, b, tile),)*
                    _ => $inner::<$mr>(kc, a, b, tile),
                }
            }
        }

        /// Rows 0 .. H of the tile, with A packed `mr` rows per step.
        #[target_feature(enable = $feature)]
        unsafe fn $inner<const H: usize>(kc: usize, a: &[$t], b: &[$t], tile: Tile<$t>) {
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
                // SAFETY: row r < H = tile.rows of the tile holds NR elements we may read and
                // write (the caller's promise).
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
    /// 14 × 32 block of `f32` C in 28 zmm registers.
    AVX512_F32 = avx512_f32, avx512_f32_inner, f32, "avx512f", 14,
    edges: [1 2 3 4 5 6 7 8 9 10 11 12 13], 16, _mm512_setzero_ps, _mm512_loadu_ps,
    _mm512_storeu_ps, _mm512_set1_ps, _mm512_fmadd_ps, _mm512_add_ps
);
micro_kernel!(
    /// 6 × 16 block of `f32` C in 12 ymm registers.
    AVX2_F32 = avx2_f32, avx2_f32_inner, f32, "avx2,fma", 6, edges: [1 2 3 4 5], 8,
    _mm256_setzero_ps, _mm256_loadu_ps, _mm256_storeu_ps, _mm256_set1_ps, _mm256_fmadd_ps,
    _mm256_add_ps
);
micro_kernel!(
    /// 14 × 16 block of `f64` C in 28 zmm registers.
    AVX512_F64 = avx512_f64, avx512_f64_inner, f64, "avx512f", 14,
    edges: [1 2 3 4 5 6 7 8 9 10 11 12 13], 8, _mm512_setzero_pd, _mm512_loadu_pd,
    _mm512_storeu_pd, _mm512_set1_pd, _mm512_fmadd_pd, _mm512_add_pd
);
micro_kernel!(
    /// 6 × 8 block of `f64` C in 12 ymm registers.
    AVX2_F64 = avx2_f64, avx2_f64_inner, f64, "avx2,fma", 6, edges: [1 2 3 4 5], 4,
    _mm256_setzero_pd, _mm256_loadu_pd, _mm256_storeu_pd, _mm256_set1_pd, _mm256_fmadd_pd,
    _mm256_add_pd
);
