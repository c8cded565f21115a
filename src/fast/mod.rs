//! The hot kernels: the blocked matrix product ([`gemm`]) with SIMD micro-kernels chosen at run
//! time, and the one-row kernels (`sample`) that sum in the seed's order. Each function computes
//! an equation of [`nn`](crate::nn) and is tested against the plain version bit for bit.

pub mod gemm;
pub(crate) mod sample;
