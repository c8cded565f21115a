//! The float types the engine computes in: `f32` (the default) and `f64`.

use std::fmt::{Debug, Display};
use std::iter::Sum;
use std::ops::{AddAssign, DivAssign, MulAssign, SubAssign};

use ndarray::{LinalgScalar, ScalarOperand};

/// Keeps [`Float`] to `f32` and `f64`.
pub(crate) mod sealed {
    /// Implemented for `f32` and `f64` only; not nameable outside the crate.
    pub trait Sealed {}

    impl Sealed for f32 {}
    impl Sealed for f64 {}
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
