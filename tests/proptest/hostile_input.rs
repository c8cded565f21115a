//! Property tests: the IDX and model readers never panic, whatever the bytes.
//!
//! Random byte strings, and valid files mutated by byte flips, truncations, insertions and
//! splices, go through both readers. Every outcome must be a value or a typed error; a
//! mutation that still parses must give a consistent result (the declared dimensions hold the
//! data; a network of the original sizes with finite weights).

mod config;

use std::io::Write;
use std::path::Path;

use lernmi::data::idx::{parse_idx, read_idx};
use lernmi::io::checkpoint::Checkpoint;
use lernmi::{Error, Network, TrainConfig, Trainer};
use proptest::prelude::*;

/// A small valid IDX image file: `count` images of `rows × cols`.
fn idx_images(count: u32, rows: u32, cols: u32) -> Vec<u8> {
    let mut bytes = vec![0, 0, 0x08, 3];
    for d in [count, rows, cols] {
        bytes.extend_from_slice(&d.to_be_bytes());
    }
    bytes.extend((0..count * rows * cols).map(|i| (i * 37 % 256) as u8));
    bytes
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

fn model() -> Vec<u8> {
    Network::<f32>::builder(&[4, 3, 2])
        .seed(1)
        .build()
        .unwrap()
        .to_safetensors()
        .unwrap()
}

fn checkpoint() -> Vec<u8> {
    let net: Network = Network::<f32>::builder(&[4, 3, 2]).seed(1).build().unwrap();
    let config = TrainConfig {
        optimizer: lernmi::Optimizer::adam(1e-3),
        ..TrainConfig::default()
    };
    Trainer::new(net, config)
        .unwrap()
        .checkpoint_bytes()
        .unwrap()
}

/// One way of damaging a file.
#[derive(Clone, Debug)]
enum Mutation {
    Flip { at: usize, mask: u8 },
    Set { at: usize, value: u8 },
    Truncate { at: usize },
    Insert { at: usize, bytes: Vec<u8> },
    Splice { from: usize, to: usize, len: usize },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 1u8..=255).prop_map(|(at, mask)| Mutation::Flip { at, mask }),
        (any::<usize>(), any::<u8>()).prop_map(|(at, value)| Mutation::Set { at, value }),
        any::<usize>().prop_map(|at| Mutation::Truncate { at }),
        (
            any::<usize>(),
            proptest::collection::vec(any::<u8>(), 1..16)
        )
            .prop_map(|(at, bytes)| Mutation::Insert { at, bytes }),
        (any::<usize>(), any::<usize>(), 1usize..64).prop_map(|(from, to, len)| Mutation::Splice {
            from,
            to,
            len
        }),
    ]
}

fn apply(bytes: &mut Vec<u8>, mutations: &[Mutation]) {
    for m in mutations {
        let n = bytes.len().max(1);
        match m {
            Mutation::Flip { at, mask } => {
                if let Some(b) = bytes.get_mut(at % n) {
                    *b ^= mask;
                }
            }
            Mutation::Set { at, value } => {
                if let Some(b) = bytes.get_mut(at % n) {
                    *b = *value;
                }
            }
            Mutation::Truncate { at } => bytes.truncate(at % n),
            Mutation::Insert { at, bytes: new } => {
                let at = at % (bytes.len() + 1);
                bytes.splice(at..at, new.iter().copied());
            }
            Mutation::Splice { from, to, len } => {
                let from = from % n;
                let end = (from + len).min(bytes.len());
                let chunk: Vec<u8> = bytes.get(from..end).unwrap_or(&[]).to_vec();
                let to = to % (bytes.len() + 1);
                bytes.splice(to..to, chunk);
            }
        }
    }
}

fn check_idx(bytes: &[u8]) {
    match parse_idx(bytes, Path::new("fuzzed.idx")) {
        Ok(array) => {
            let product: usize = array.dims.iter().product();
            assert_eq!(array.data.len(), product);
            assert!(bytes.len() >= 4 + 4 * array.dims.len() + product);
        }
        Err(e) => assert!(matches!(e, Error::BadFile { .. }), "{e}"),
    }
}

fn check_model(bytes: &[u8]) {
    match Network::<f32>::from_safetensors(bytes) {
        Ok(net) => {
            assert_eq!(net.sizes(), [4, 3, 2]);
            for layer in net.layers() {
                assert!(layer.weights().iter().all(|w| w.is_finite()));
                assert!(layer.biases().iter().all(|b| b.is_finite()));
            }
        }
        Err(e) => assert!(matches!(e, Error::BadFile { .. }), "{e}"),
    }
    // Either reader sees the same bytes; as f64 a file of f32 tensors is always an error.
    assert!(Network::<f64>::from_safetensors(bytes).is_err());
    if let Err(e) = Checkpoint::<f32>::from_safetensors(bytes) {
        assert!(matches!(e, Error::BadFile { .. }), "{e}");
    }
}

proptest! {
    #![proptest_config(config::cases(512))]

    #[test]
    fn idx_reader_survives_random_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        check_idx(&bytes);
    }

    #[test]
    fn idx_reader_survives_mutated_files(
        dims in (0u32..4, 1u32..5, 1u32..5),
        mutations in proptest::collection::vec(mutation(), 1..4),
    ) {
        let mut bytes = idx_images(dims.0, dims.1, dims.2);
        apply(&mut bytes, &mutations);
        check_idx(&bytes);
    }

    #[test]
    fn model_reader_survives_random_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        check_model(&bytes);
    }

    #[test]
    fn model_reader_survives_random_headers(header in "\\PC{0,200}", data in proptest::collection::vec(any::<u8>(), 0..64)) {
        let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
        bytes.extend_from_slice(header.as_bytes());
        bytes.extend_from_slice(&data);
        check_model(&bytes);
    }

    #[test]
    fn model_reader_survives_mutated_files(mutations in proptest::collection::vec(mutation(), 1..4)) {
        let mut bytes = model();
        apply(&mut bytes, &mutations);
        check_model(&bytes);
    }

    #[test]
    fn checkpoint_reader_survives_mutated_files(mutations in proptest::collection::vec(mutation(), 1..4)) {
        let mut bytes = checkpoint();
        apply(&mut bytes, &mutations);
        if let Err(e) = Checkpoint::<f32>::from_safetensors(&bytes) {
            prop_assert!(matches!(e, Error::BadFile { .. }), "{}", e);
        }
    }
}

proptest! {
    // Gzip goes through the file system, so fewer cases.
    #![proptest_config(config::cases(96))]

    #[test]
    fn gzip_idx_reader_survives_mutated_files(
        dims in (1u32..4, 1u32..5, 1u32..5),
        mutations in proptest::collection::vec(mutation(), 1..3),
        compressed_mutation in any::<bool>(),
    ) {
        let raw = idx_images(dims.0, dims.1, dims.2);
        let mut bytes = if compressed_mutation {
            let mut gz = gzip(&raw);
            apply(&mut gz, &mutations);
            gz
        } else {
            let mut raw = raw;
            apply(&mut raw, &mutations);
            gzip(&raw)
        };
        // Keep the gzip magic so that the gzip path is the one exercised.
        if bytes.len() >= 2 {
            bytes[0] = 0x1f;
            bytes[1] = 0x8b;
        }
        let file = tempfile_with(&bytes);
        match read_idx(&file) {
            Ok(array) => prop_assert_eq!(array.data.len(), array.dims.iter().product::<usize>()),
            Err(e) => prop_assert!(matches!(e, Error::BadFile { .. }), "{}", e),
        }
        std::fs::remove_file(&file).ok();
    }
}

fn tempfile_with(bytes: &[u8]) -> std::path::PathBuf {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let path = std::env::temp_dir().join(format!(
        "lernmi-prop-{}-{}.gz",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::write(&path, bytes).unwrap();
    path
}
