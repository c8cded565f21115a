//! The float types the engine computes in: `f32` (the default) and `f64`.

use std::fmt::{Debug, Display};
use std::iter::Sum;
use std::ops::{AddAssign, DivAssign, MulAssign, SubAssign};

use ndarray::{LinalgScalar, ScalarOperand};

/// Keeps [`Float`] to `f32` and `f64`, and holds what the crate alone may call: the
/// micro-kernel's `run` is an unsafe function pointer, so it is not reachable from outside.
pub(crate) mod sealed {
    use crate::fast::gemm::MicroKernel;

    /// Implemented for `f32` and `f64` only; not nameable outside the crate.
    pub trait Sealed: Sized {
        /// The matrix-product micro-kernel for this type on this CPU.
        fn micro_kernel() -> Kernel<Self>;
    }

    /// A micro-kernel, opaque outside the crate (a generic caller could still reach
    /// [`Sealed::micro_kernel`] through a `Float` bound, and get nothing it can use).
    pub struct Kernel<F>(pub(crate) MicroKernel<F>);

    impl Sealed for f32 {
        fn micro_kernel() -> Kernel<Self> {
            Kernel(crate::fast::gemm::simd::f32_kernel())
        }
    }

    impl Sealed for f64 {
        fn micro_kernel() -> Kernel<Self> {
            Kernel(crate::fast::gemm::portable())
        }
    }
}

/// A floating-point element type for networks: implemented for `f32` and `f64` only.
///
/// Everything numeric in the crate is generic over this trait, so one network type serves
/// both the fast default (`f32`) and exact comparisons with the object graph (`f64`).
pub trait Float:
    num_traits::Float
    + num_traits::FromPrimitive
    + LinalgScalar
    + ScalarOperand
    + AddAssign
    + SubAssign
    + MulAssign
    + DivAssign
    + Sum
    + Default
    + Debug
    + Display
    + Send
    + Sync
    + sealed::Sealed
    + 'static
{
    /// The type's name as written in Rust (`"f32"` or `"f64"`).
    const NAME: &'static str;

    /// Converts an `f64`, rounding to nearest for `f32`.
    fn of(x: f64) -> Self;

    /// Widens to `f64` (exact).
    fn to_f64_lossless(self) -> f64;
}

impl Float for f32 {
    const NAME: &'static str = "f32";
    #[inline(always)]
    fn of(x: f64) -> Self {
        x as f32
    }
    #[inline(always)]
    fn to_f64_lossless(self) -> f64 {
        f64::from(self)
    }
}

impl Float for f64 {
    const NAME: &'static str = "f64";
    #[inline(always)]
    fn of(x: f64) -> Self {
        x
    }
    #[inline(always)]
    fn to_f64_lossless(self) -> f64 {
        self
    }
}
