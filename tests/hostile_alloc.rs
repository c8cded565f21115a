//! A hostile header costs no more memory than the file holds.
//!
//! This test binary installs a global allocator that tracks the peak of live heap bytes, and
//! reads files whose headers claim far more data than they carry: an IDX file claiming 10⁹
//! images, a safetensors header claiming a 10⁶ × 10⁶ tensor, a model whose architecture claims
//! a layer of 10¹² neurons. Each must fail, and the peak allocation while reading must stay
//! within a small multiple of the file's size. One test only, so nothing else allocates while
//! the windows are open.

use std::alloc::{GlobalAlloc, Layout, System};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

use lernmi::checkpoint::Checkpoint;
use lernmi::data::idx::parse_idx;
use lernmi::Network;

struct Peak;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

impl Peak {
    fn grow(&self, bytes: usize) {
        let live = LIVE.fetch_add(bytes, Ordering::Relaxed) + bytes;
        PEAK.fetch_max(live, Ordering::Relaxed);
    }
    fn shrink(&self, bytes: usize) {
        LIVE.fetch_sub(bytes, Ordering::Relaxed);
    }
}

unsafe impl GlobalAlloc for Peak {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        self.grow(layout.size());
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        self.grow(layout.size());
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        self.shrink(layout.size());
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        self.grow(new_size);
        self.shrink(layout.size());
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Peak = Peak;

/// The peak of extra live bytes while `f` runs.
fn peak_during<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let base = LIVE.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    let out = f();
    (out, PEAK.load(Ordering::Relaxed) - base)
}

/// What reading a file of `len` bytes may cost: a few copies of it, plus 64 KiB of overhead.
fn allowance(len: usize) -> usize {
    4 * len + 64 * 1024
}

fn safetensors_with_header(header: &str, data: &[u8]) -> Vec<u8> {
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(header.as_bytes());
    bytes.extend_from_slice(data);
    bytes
}

#[test]
fn hostile_headers_cost_no_more_memory_than_the_file_holds() {
    // IDX: 10⁹ images of 28 × 28 declared, 100 bytes present.
    let mut idx = vec![0, 0, 0x08, 3];
    for d in [1_000_000_000u32, 28, 28] {
        idx.extend_from_slice(&d.to_be_bytes());
    }
    idx.extend_from_slice(&[7; 100]);
    let (result, peak) = peak_during(|| parse_idx(&idx[..], Path::new("claims.idx")));
    let err = result.unwrap_err().to_string();
    assert!(err.contains("truncated"), "{err}");
    assert!(
        peak <= allowance(idx.len()),
        "IDX: peak {peak} bytes for a {}-byte file",
        idx.len()
    );

    // Safetensors: a tensor claiming 10¹² elements, with 16 bytes of data.
    let header = r#"{"0.weight":{"dtype":"F32","shape":[1000000,1000000],"data_offsets":[0,16]}}"#;
    let bytes = safetensors_with_header(header, &[0; 16]);
    let (result, peak) = peak_during(|| Network::<f32>::from_safetensors(&bytes));
    assert!(result.is_err());
    assert!(
        peak <= allowance(bytes.len()),
        "safetensors: peak {peak} bytes"
    );

    // A header length field claiming 100 MB (the format's maximum) on a short file.
    let mut bytes = 100_000_000u64.to_le_bytes().to_vec();
    bytes.extend_from_slice(b"{}");
    let (result, peak) = peak_during(|| Network::<f32>::from_safetensors(&bytes));
    assert!(result.is_err());
    assert!(
        peak <= allowance(bytes.len()),
        "header length: peak {peak} bytes"
    );

    // A valid file whose architecture claims a hidden layer of 10¹² neurons.
    let net: Network = Network::<f32>::builder(&[4, 3, 2]).build().unwrap();
    let good = net.to_safetensors().unwrap();
    let (_, header) = safetensors::SafeTensors::read_metadata(&good).unwrap();
    let mut metadata = header.metadata().clone().unwrap();
    let arch = metadata["lernmi.architecture"].replace("[4,3,2]", "[4,1000000000000,2]");
    assert_ne!(arch, metadata["lernmi.architecture"]);
    metadata.insert("lernmi.architecture".into(), arch);
    let file = safetensors::SafeTensors::deserialize(&good).unwrap();
    let bytes = safetensors::serialize(file.tensors(), Some(metadata)).unwrap();
    let (result, peak) = peak_during(|| Network::<f32>::from_safetensors(&bytes));
    assert!(result.unwrap_err().to_string().contains("shape"));
    assert!(
        peak <= allowance(bytes.len()),
        "architecture: peak {peak} bytes"
    );
    let (result, peak) = peak_during(|| Checkpoint::<f32>::from_safetensors(&bytes));
    assert!(result.is_err());
    assert!(
        peak <= allowance(bytes.len()),
        "checkpoint: peak {peak} bytes"
    );

    // The measurement itself works: reading a valid model allocates at least its weights.
    let (result, peak) = peak_during(|| Network::<f32>::from_safetensors(&good));
    assert!(result.is_ok());
    assert!(peak >= 4 * net.parameter_count(), "peak {peak} bytes");
}
