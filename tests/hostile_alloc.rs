//! A hostile header costs no more memory than the file holds.
//!
//! This test binary installs a global allocator that tracks the peak of live heap bytes, and
//! reads files whose headers claim far more data than they carry: an IDX file claiming 10⁹
//! images, a safetensors header claiming a 10⁶ × 10⁶ tensor, a model whose architecture claims
//! a layer of 10¹² neurons. Each must fail, and the peak allocation while reading must stay
//! within a small multiple of the file's size.
//!
//! Gzip bombs: small `.gz` files that inflate to far more zeros than their headers' sizes or a
//! dataset's labels allow. Reading them must cost no more than the labels and the inflater's
//! buffers, whatever the stream would inflate to.
//!
//! One test only, so nothing else allocates while the windows are open.

use std::alloc::{GlobalAlloc, Layout, System};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use flate2::write::GzEncoder;
use flate2::Compression;
use lernmi::data::idx::{parse_idx, read_idx, read_idx_with_limits, IdxLimits};
use lernmi::data::{Dataset, Mnist, MNIST_FILES};
use lernmi::io::checkpoint::Checkpoint;
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

/// What inflating a gzip stream may cost beyond the data kept: the inflater's state and
/// window, and the readers' buffers.
const GZIP_OVERHEAD: usize = 1 << 20;

/// Zeros a bomb inflates to: far more than any allowance below, quick to compress.
const BOMB_ZEROS: usize = 64 << 20;

/// An IDX header of unsigned bytes with dimensions `dims`.
fn idx_header(dims: &[u32]) -> Vec<u8> {
    let mut bytes = vec![0, 0, 0x08, dims.len() as u8];
    for d in dims {
        bytes.extend_from_slice(&d.to_be_bytes());
    }
    bytes
}

/// Writes `path` as gzip: `head`, then `zeros` zero bytes, compressed as they stream so the
/// test never holds the inflated bytes.
fn write_gzip(path: &Path, head: &[u8], zeros: usize) {
    let file = BufWriter::new(File::create(path).unwrap());
    let mut gz = GzEncoder::new(file, Compression::fast());
    gz.write_all(head).unwrap();
    let chunk = vec![0u8; 1 << 20];
    let mut left = zeros;
    while left > 0 {
        let n = left.min(chunk.len());
        gz.write_all(&chunk[..n]).unwrap();
        left -= n;
    }
    gz.finish().unwrap().flush().unwrap();
}

/// A fresh scratch directory for this test.
fn scratch() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("lernmi-bomb-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Gzip bombs beside honest labels, read as MNIST and as single files.
fn gzip_bombs_cost_no_more_than_the_labels() {
    let dir = scratch();
    // MNIST whose training images claim 5 000 000 images and inflate to 64 MiB of zeros,
    // beside 60 000 valid training labels and a valid small test set.
    let [train_images, train_labels, test_images, test_labels] =
        MNIST_FILES.map(|name| dir.join(format!("{name}.gz")));
    write_gzip(&train_images, &idx_header(&[5_000_000, 28, 28]), BOMB_ZEROS);
    let labels: Vec<u8> = (0..60_000u32).map(|i| (i % 10) as u8).collect();
    write_gzip(&train_labels, &[idx_header(&[60_000]), labels].concat(), 0);
    write_gzip(&test_images, &idx_header(&[2, 28, 28]), 2 * 784);
    write_gzip(&test_labels, &[idx_header(&[2]), vec![3, 4]].concat(), 0);
    let (result, peak) = peak_during(|| Mnist::load(&dir));
    assert!(result.is_err());
    assert!(
        peak <= allowance(60_000) + GZIP_OVERHEAD,
        "MNIST with a bomb: peak {peak} bytes"
    );

    // The same bomb alone: its header asks more than the default limit allows.
    let (result, peak) = peak_during(|| read_idx(&train_images));
    let err = result.unwrap_err().to_string();
    assert!(err.contains("limit"), "{err}");
    assert!(peak <= GZIP_OVERHEAD, "bomb alone: peak {peak} bytes");

    // With the limit raised past the bomb's header, the labels still stop it: their count is
    // checked against the images' header before any pixel is read.
    let unlimited = IdxLimits::default().with_max_bytes(u64::MAX);
    let (result, peak) =
        peak_during(|| Dataset::from_idx_with_limits(&train_images, &train_labels, 10, unlimited));
    let err = result.unwrap_err().to_string();
    assert!(err.contains("60000 labels but"), "{err}");
    assert!(
        peak <= allowance(60_000) + GZIP_OVERHEAD,
        "bomb beside labels, no limit: peak {peak} bytes"
    );

    // A header within the limit over a longer stream: refused after at most its own size.
    let honest = dir.join("honest-header.gz");
    write_gzip(&honest, &idx_header(&[1000, 28, 28]), BOMB_ZEROS);
    let (result, peak) = peak_during(|| read_idx(&honest));
    let err = result.unwrap_err().to_string();
    assert!(err.contains("trailing data"), "{err}");
    assert!(
        peak <= allowance(784_000) + GZIP_OVERHEAD,
        "honest header: peak {peak} bytes"
    );
    // A smaller limit refuses the same file at its header: 784 000 bytes declared, 512 KiB
    // allowed.
    let small = IdxLimits::default().with_max_bytes(512 << 10);
    let (result, peak) = peak_during(|| read_idx_with_limits(&honest, small));
    let err = result.unwrap_err().to_string();
    assert!(err.contains("limit of 524288 bytes"), "{err}");
    assert!(peak <= GZIP_OVERHEAD, "small limit: peak {peak} bytes");

    // The measurement itself works: a valid file of 8 MB costs at least its data.
    let valid = dir.join("valid.gz");
    write_gzip(&valid, &idx_header(&[10_000, 28, 28]), 7_840_000);
    let (result, peak) = peak_during(|| read_idx(&valid));
    assert_eq!(result.unwrap().data.len(), 7_840_000);
    assert!(peak >= 7_840_000, "valid: peak {peak} bytes");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn hostile_headers_cost_no_more_memory_than_the_file_holds() {
    gzip_bombs_cost_no_more_than_the_labels();

    // IDX: 10⁹ images of 28 × 28 declared (over the default limit), and 300 000 (under it),
    // 100 bytes present.
    for (count, problem) in [(1_000_000_000u32, "limit"), (300_000, "truncated")] {
        let mut idx = idx_header(&[count, 28, 28]);
        idx.extend_from_slice(&[7; 100]);
        let (result, peak) = peak_during(|| parse_idx(&idx[..], Path::new("claims.idx")));
        let err = result.unwrap_err().to_string();
        assert!(err.contains(problem), "{err}");
        assert!(
            peak <= allowance(idx.len()),
            "IDX, {count} images: peak {peak} bytes for a {}-byte file",
            idx.len()
        );
    }

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
