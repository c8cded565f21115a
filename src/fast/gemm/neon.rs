//! The aarch64 micro-kernels (NEON), for `f32` and `f64` from one macro: 8 rows of C by three
//! vectors, each product a fused multiply-add by one lane of the packed A column, so every
//! element of C is `fma` over p in order from zero: the same bits as the x86 kernels give.

use std::arch::aarch64::*;

use super::{MicroKernel, Tile};

/// Generates a kernel of 8 rows by three vectors of `$lanes` elements of `$t`: the constant,
/// the entry that checks the packed lengths, and the inner loop. `$rows` lists, per row of the
/// tile, the register of A (`a0`..`a3`) and the lane that holds its element.
macro_rules! neon_kernel {
    ($(#[$doc:meta])* $name:ident = $entry:ident, $t:ty, $vector:ty, $lanes:literal,
     a_vectors: [$($a:ident),*], rows: [$(($r:literal, $av:ident, $lane:literal)),*],
     $zero:ident, $load:ident, $store:ident, $fma_lane:ident, $add:ident) => {
        $(#[$doc])*
        pub(super) const $name: MicroKernel<$t> = MicroKernel {
            mr: 8,
            nr: 3 * $lanes,
            run: $entry,
            name: stringify!($entry),
        };

        /// # Safety
        /// As [`MicroKernel::run`]; NEON is part of every aarch64 target this crate builds for.
        unsafe fn $entry(kc: usize, a: &[$t], b: &[$t], tile: Tile<$t>) {
            const MR: usize = 8;
            const NR: usize = 3 * $lanes;
            assert!(a.len() >= kc * MR && b.len() >= kc * NR);
            assert!((1..=MR).contains(&tile.rows), "a tile has 1 to mr rows");
            // Every row is computed (the packed A holds zeros below an edge tile's rows) and
            // only the tile's rows are stored: the same operations per element, so the same
            // bits.
            let mut sums: [[$vector; 3]; MR] = [[$zero(0.0); 3]; MR];
            let (a, b) = (a.as_ptr(), b.as_ptr());
            for p in 0..kc {
                // SAFETY: p < kc, so the NR elements of B and MR of A read here lie inside the
                // packed slices, as asserted above.
                unsafe {
                    let bp = b.add(p * NR);
                    let bv = [$load(bp), $load(bp.add($lanes)), $load(bp.add(2 * $lanes))];
                    let ap = a.add(p * MR);
                    let mut _next = 0;
                    $(let $a = $load(ap.add(_next)); _next += $lanes;)*
                    $(
                        for c in 0..3 {
                            sums[$r][c] = $fma_lane::<$lane>(sums[$r][c], bv[c], $av);
                        }
                    )*
                }
            }
            for (r, sum) in sums.iter().enumerate().take(tile.rows) {
                // SAFETY: row r < tile.rows holds NR elements we may read and write (the
                // caller's promise).
                unsafe {
                    let row = tile.ptr.add(r * tile.row_stride);
                    for (c, &s) in sum.iter().enumerate() {
                        let at = row.add(c * $lanes);
                        let s = if tile.overwrite { s } else { $add($load(at), s) };
                        $store(at, s);
                    }
                }
            }
        }
    };
}

neon_kernel!(
    /// 8 × 12 block of `f32` C in 24 q registers.
    F32 = neon_f32, f32, float32x4_t, 4, a_vectors: [a0, a1],
    rows: [(0, a0, 0), (1, a0, 1), (2, a0, 2), (3, a0, 3), (4, a1, 0), (5, a1, 1), (6, a1, 2),
           (7, a1, 3)],
    vdupq_n_f32, vld1q_f32, vst1q_f32, vfmaq_laneq_f32, vaddq_f32
);
neon_kernel!(
    /// 8 × 6 block of `f64` C in 24 q registers.
    F64 = neon_f64, f64, float64x2_t, 2, a_vectors: [a0, a1, a2, a3],
    rows: [(0, a0, 0), (1, a0, 1), (2, a1, 0), (3, a1, 1), (4, a2, 0), (5, a2, 1), (6, a3, 0),
           (7, a3, 1)],
    vdupq_n_f64, vld1q_f64, vst1q_f64, vfmaq_laneq_f64, vaddq_f64
);
