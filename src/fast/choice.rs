//! Which instruction-set family the kernels run on: the fastest the CPU has, or the one the
//! environment variable `LERNMI_KERNEL` forces (`portable`, `avx2`, `avx512` or `neon`), so that
//! every path can be tested and compared on one machine.

use std::sync::OnceLock;

use crate::{Error, Result};

/// The variable that forces a kernel family.
pub const KERNEL_VARIABLE: &str = "LERNMI_KERNEL";

/// An instruction-set family the hot kernels are written for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KernelChoice {
    /// Plain Rust loops: any CPU.
    Portable,
    /// x86-64 with AVX2 and FMA.
    Avx2,
    /// x86-64 with AVX-512F.
    Avx512,
    /// aarch64 with NEON (Advanced SIMD).
    Neon,
}

impl KernelChoice {
    /// Every family, fastest first.
    pub const ALL: [KernelChoice; 4] = [Self::Avx512, Self::Avx2, Self::Neon, Self::Portable];

    /// The name `LERNMI_KERNEL` gives the family.
    pub fn name(self) -> &'static str {
        match self {
            Self::Portable => "portable",
            Self::Avx2 => "avx2",
            Self::Avx512 => "avx512",
            Self::Neon => "neon",
        }
    }

    /// Whether this CPU runs the family. Under Miri, which does not model the intrinsics,
    /// only the portable loops run.
    pub fn available(self) -> bool {
        match self {
            Self::Portable => true,
            _ if cfg!(miri) => false,
            #[cfg(target_arch = "x86_64")]
            Self::Avx2 => {
                std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("fma")
            }
            #[cfg(target_arch = "x86_64")]
            Self::Avx512 => std::arch::is_x86_feature_detected!("avx512f"),
            #[cfg(target_arch = "aarch64")]
            Self::Neon => std::arch::is_aarch64_feature_detected!("neon"),
            #[allow(unreachable_patterns)]
            _ => false,
        }
    }

    /// The families this CPU runs, fastest first (`portable` last, always there).
    pub fn supported() -> Vec<KernelChoice> {
        Self::ALL.into_iter().filter(|k| k.available()).collect()
    }

    /// The family `LERNMI_KERNEL=value` asks for, if this CPU runs it.
    pub fn parse(value: &str) -> Result<KernelChoice> {
        let problem = match Self::ALL.into_iter().find(|k| k.name() == value) {
            Some(k) if k.available() => return Ok(k),
            Some(_) => "this CPU cannot run it",
            None => "no such kernel family",
        };
        let available = Self::supported()
            .iter()
            .map(|k| k.name())
            .collect::<Vec<_>>();
        Err(Error::KernelUnavailable {
            requested: value.to_owned(),
            problem,
            available: available.join(", "),
        })
    }
}

/// The choice, read from the environment once: the family `LERNMI_KERNEL` names if it is set,
/// else the fastest; `Err` holds a value that names no family this CPU runs.
fn read() -> &'static Result<KernelChoice, String> {
    static CHOICE: OnceLock<Result<KernelChoice, String>> = OnceLock::new();
    CHOICE.get_or_init(|| match std::env::var_os(KERNEL_VARIABLE) {
        Some(value) if !value.is_empty() => {
            let value = value.to_string_lossy();
            KernelChoice::parse(&value).map_err(|_| value.into_owned())
        }
        _ => Ok(KernelChoice::supported()[0]),
    })
}

/// The kernel family in force, or the error for a `LERNMI_KERNEL` that names none this CPU
/// runs. Training and prediction call it first, so a bad value is reported, never ignored.
pub fn kernel_choice() -> Result<KernelChoice> {
    match read() {
        Ok(k) => Ok(*k),
        Err(value) => KernelChoice::parse(value),
    }
}

/// The family the kernels run on: [`kernel_choice`]'s, or the portable loops when that is an
/// error (which the public entry points return before any kernel runs).
pub(crate) fn active() -> KernelChoice {
    read().as_ref().map_or(KernelChoice::Portable, |&k| k)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_back_or_name_the_options() {
        for k in KernelChoice::supported() {
            assert_eq!(KernelChoice::parse(k.name()).unwrap(), k);
        }
        let message = KernelChoice::parse("sse9").unwrap_err().to_string();
        assert!(message.contains("no such kernel family"), "{message}");
        assert!(message.contains("portable"), "{message}");
        for k in KernelChoice::ALL.into_iter().filter(|k| !k.available()) {
            let message = KernelChoice::parse(k.name()).unwrap_err().to_string();
            assert!(message.contains("cannot run"), "{message}");
        }
    }
}
