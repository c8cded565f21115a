//! The portable micro-kernel: plain loops, any float type, any CPU.

use super::{MicroKernel, Tile};
use crate::Float;

/// The portable kernel: plain loops, any float type.
pub(super) fn kernel<F: Float>() -> MicroKernel<F> {
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
