//! The hot kernels: the blocked matrix product ([`gemm`]) with SIMD micro-kernels chosen at run
//! time ([`choice`]), the one-row kernels (`sample`) that sum in the seed's order, and the
//! element-wise passes (`elementwise`). Each function computes an equation of
//! [`nn`](crate::nn) and is tested against the plain version bit for bit.

pub mod choice;
pub(crate) mod elementwise;
pub mod gemm;
pub(crate) mod sample;

pub use choice::{kernel_choice, KernelChoice};
