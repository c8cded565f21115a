//! The fused multiply-add peak of one core, measured: independent FMA chains in registers, no
//! memory traffic, for every SIMD family this CPU runs (AVX-512, AVX2+FMA, NEON) and both
//! float types. A matrix product can at best reach it, so products are reported as a fraction
//! of the peak measured in the same run (a shared machine's peak moves from minute to minute).
//!
//! Shared by `examples/throughput.rs` (`--fma-peak`) and `benches/engine.rs` (`matmul/fma_peak`).

use std::hint::black_box;
use std::time::Instant;

/// One SIMD family and float type whose FMA loop can run here.
#[derive(Clone, Copy, Debug)]
pub struct Peak {
    /// Family and type, e.g. `avx2_f32`.
    pub name: &'static str,
    /// Floating-point operations per call of `run` with one step (2 per lane per FMA).
    pub flops_per_step: f64,
    /// Runs `steps` rounds of the independent FMA chains; returns a value that depends on all
    /// of them, so the compiler cannot drop any.
    pub run: fn(usize) -> f64,
}

/// The FMA loops this CPU can run, widest first.
pub fn available() -> Vec<Peak> {
    let mut found = Vec::new();
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            found.push(x86::AVX512_F32);
            found.push(x86::AVX512_F64);
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            found.push(x86::AVX2_F32);
            found.push(x86::AVX2_F64);
        }
    }
    #[cfg(target_arch = "aarch64")]
    {
        found.push(arm::NEON_F32);
        found.push(arm::NEON_F64);
    }
    found
}

/// GFLOP/s of `peak`: the best of `rounds` timed runs of about `seconds` each.
pub fn measure(peak: &Peak, rounds: usize, seconds: f64) -> f64 {
    // Calibrate the step count so that one run takes about `seconds`.
    let mut steps = 1 << 12;
    loop {
        let start = Instant::now();
        black_box((peak.run)(steps));
        if start.elapsed().as_secs_f64() > seconds / 4.0 || steps > 1 << 34 {
            break;
        }
        steps *= 2;
    }
    (0..rounds.max(1))
        .map(|_| {
            let start = Instant::now();
            black_box((peak.run)(steps));
            peak.flops_per_step * steps as f64 / start.elapsed().as_secs_f64() / 1e9
        })
        .fold(0.0, f64::max)
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;
    use std::hint::black_box;

    use super::Peak;

    /// Generates a safe wrapper and its FMA loop: `$chains` accumulators of `$lanes` lanes (as
    /// many as the register file holds without spilling, more than latency × ports needs).
    macro_rules! fma_loop {
        ($name:ident, $label:literal, $feature:literal, $vec:ty, $zero:ident, $set1:ident,
         $fma:ident, $add:ident, $store:ident, $scalar:ty, $lanes:literal, $chains:literal) => {
            pub const $name: Peak = Peak {
                name: $label,
                flops_per_step: (2 * $lanes * $chains) as f64,
                run: |steps| {
                    #[target_feature(enable = $feature)]
                    unsafe fn inner(steps: usize) -> f64 {
                        let mut acc = [$zero(); $chains];
                        let (x, y) = ($set1(black_box(1.0)), $set1(black_box(1e-7)));
                        for _ in 0..steps {
                            for a in acc.iter_mut() {
                                *a = $fma(*a, x, y);
                            }
                        }
                        let mut sum = $zero();
                        for a in acc {
                            sum = $add(sum, a);
                        }
                        let mut out = [0.0 as $scalar; $lanes];
                        // SAFETY: `out` holds exactly one vector.
                        unsafe { $store(out.as_mut_ptr(), sum) };
                        out.iter().map(|&v| v as f64).sum()
                    }
                    // SAFETY: `available` lists this loop only when the CPU has the feature.
                    unsafe { inner(steps) }
                },
            };
        };
    }

    fma_loop!(
        AVX512_F32,
        "avx512_f32",
        "avx512f",
        __m512,
        _mm512_setzero_ps,
        _mm512_set1_ps,
        _mm512_fmadd_ps,
        _mm512_add_ps,
        _mm512_storeu_ps,
        f32,
        16,
        24
    );
    fma_loop!(
        AVX512_F64,
        "avx512_f64",
        "avx512f",
        __m512d,
        _mm512_setzero_pd,
        _mm512_set1_pd,
        _mm512_fmadd_pd,
        _mm512_add_pd,
        _mm512_storeu_pd,
        f64,
        8,
        24
    );
    fma_loop!(
        AVX2_F32,
        "avx2_f32",
        "avx2,fma",
        __m256,
        _mm256_setzero_ps,
        _mm256_set1_ps,
        _mm256_fmadd_ps,
        _mm256_add_ps,
        _mm256_storeu_ps,
        f32,
        8,
        12
    );
    fma_loop!(
        AVX2_F64,
        "avx2_f64",
        "avx2,fma",
        __m256d,
        _mm256_setzero_pd,
        _mm256_set1_pd,
        _mm256_fmadd_pd,
        _mm256_add_pd,
        _mm256_storeu_pd,
        f64,
        4,
        12
    );
}

#[cfg(target_arch = "aarch64")]
mod arm {
    use std::arch::aarch64::*;
    use std::hint::black_box;

    use super::Peak;

    macro_rules! fma_loop {
        ($name:ident, $label:literal, $vec:ty, $dup:ident, $fma:ident, $add:ident, $store:ident,
         $scalar:ty, $lanes:literal, $chains:literal) => {
            pub const $name: Peak = Peak {
                name: $label,
                flops_per_step: (2 * $lanes * $chains) as f64,
                run: |steps| {
                    // SAFETY: NEON is part of every aarch64 target Rust supports.
                    unsafe {
                        let mut acc = [$dup(0.0); $chains];
                        let (x, y) = ($dup(black_box(1.0)), $dup(black_box(1e-7)));
                        for _ in 0..steps {
                            for a in acc.iter_mut() {
                                *a = $fma(y, *a, x);
                            }
                        }
                        let mut sum = $dup(0.0);
                        for a in acc {
                            sum = $add(sum, a);
                        }
                        let mut out = [0.0 as $scalar; $lanes];
                        $store(out.as_mut_ptr(), sum);
                        out.iter().map(|&v| v as f64).sum()
                    }
                },
            };
        };
    }

    fma_loop!(
        NEON_F32,
        "neon_f32",
        float32x4_t,
        vdupq_n_f32,
        vfmaq_f32,
        vaddq_f32,
        vst1q_f32,
        f32,
        4,
        24
    );
    fma_loop!(
        NEON_F64,
        "neon_f64",
        float64x2_t,
        vdupq_n_f64,
        vfmaq_f64,
        vaddq_f64,
        vst1q_f64,
        f64,
        2,
        24
    );
}
