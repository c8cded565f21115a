//! Property tests: the CSV, NPY and NPZ readers never panic, whatever the bytes.
//!
//! Random byte strings, and valid files mutated by byte flips, truncations, insertions and
//! splices, go through every reader. Every outcome must be a value or a typed error; a file
//! that still parses must give a consistent result (one label per row of features, finite
//! features, labels below the class count).

mod config;
#[path = "../common/formats.rs"]
mod formats;

use std::path::Path;

use formats::{npy, zip};
use lernmi::data::csv::{parse_classes, parse_values, CsvOptions};
use lernmi::data::npy::{NpyArray, Npz};
use lernmi::Error;
use proptest::prelude::*;

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

/// A valid CSV table: `rows` rows of `cols` features and a label, some cells quoted.
fn csv_table(rows: usize, cols: usize, text_labels: bool) -> Vec<u8> {
    let mut text: String = (0..cols).map(|c| format!("f{c},")).collect();
    text.push_str("label\n");
    for r in 0..rows {
        for c in 0..cols {
            let x = (r * 7 + c * 3) as f64 * 0.37 - 2.0;
            text.push_str(&if (r + c) % 3 == 0 {
                format!("\"{x}\",")
            } else {
                format!("{x:e},")
            });
        }
        let label = if text_labels {
            ["b", "a", "c"][r % 3].to_string()
        } else {
            (r % 4).to_string()
        };
        text.push_str(&label);
        text.push('\n');
    }
    text.into_bytes()
}

fn check_csv(bytes: &[u8]) {
    let path = Path::new("fuzzed.csv");
    let options = CsvOptions::new("label");
    match parse_classes::<f32>(bytes, path, &options) {
        Ok(table) => {
            assert_eq!(table.features.nrows(), table.labels.len());
            assert_eq!(table.features.ncols(), table.feature_names.len());
            assert!(table.features.iter().all(|x| x.is_finite()));
            assert!(table.labels.iter().all(|&l| l < table.classes));
            if let Some(names) = &table.class_names {
                assert_eq!(names.len(), table.classes);
                assert!(names.windows(2).all(|w| w[0] < w[1]));
            }
        }
        Err(e) => assert!(
            matches!(e, Error::BadFile { .. } | Error::BadCell { .. }),
            "{e}"
        ),
    }
    match parse_values::<f64>(bytes, path, &options) {
        Ok(table) => {
            assert_eq!(table.features.nrows(), table.targets.len());
            assert!(table.targets.iter().all(|x| x.is_finite()));
        }
        Err(e) => assert!(
            matches!(e, Error::BadFile { .. } | Error::BadCell { .. }),
            "{e}"
        ),
    }
}

/// A valid `.npy` file of one of the supported types, versions and orders.
fn npy_file(kind: usize, version: u8, fortran: bool, rows: usize, cols: usize) -> Vec<u8> {
    let descr = [
        "<f4", ">f8", "|u1", "<i2", ">i4", "<u8", "|i1", ">u2", "<i8", ">f4",
    ][kind % 10];
    let size: usize = descr[2..].parse().unwrap();
    let data: Vec<u8> = (0..rows * cols * size)
        .map(|i| (i * 29 % 251) as u8 & 0x3f)
        .collect();
    npy(version, descr, fortran, &format!("({rows}, {cols})"), &data)
}

fn check_npy(bytes: &[u8]) {
    let path = Path::new("fuzzed.npy");
    match NpyArray::parse(bytes, path) {
        Ok(array) => {
            let elements: usize = array.shape().iter().product();
            assert!(elements <= bytes.len());
            if let Ok(features) = array.features::<f32>() {
                assert_eq!(features.len(), elements);
                assert!(features.iter().all(|x| x.is_finite()));
            }
            if let Ok(labels) = array.labels() {
                assert_eq!(labels.len(), elements);
            }
            for e in [array.features::<f64>().err(), array.labels().err()]
                .into_iter()
                .flatten()
            {
                assert!(matches!(e, Error::BadFile { .. }), "{e}");
            }
        }
        Err(e) => assert!(matches!(e, Error::BadFile { .. }), "{e}"),
    }
}

fn check_npz(bytes: Vec<u8>) {
    match Npz::from_bytes(bytes, "fuzzed.npz", 1 << 16) {
        Ok(npz) => {
            for name in npz.names() {
                for e in [npz.features::<f32>(name).err(), npz.labels(name).err()]
                    .into_iter()
                    .flatten()
                {
                    assert!(matches!(e, Error::BadFile { .. }), "{e}");
                }
            }
        }
        Err(e) => assert!(matches!(e, Error::BadFile { .. }), "{e}"),
    }
}

proptest! {
    #![proptest_config(config::cases(512))]

    #[test]
    fn csv_readers_survive_random_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        check_csv(&bytes);
    }

    #[test]
    fn csv_readers_survive_random_text(text in "[a-c0-9,.\"\\n\\r eE+-]{0,120}") {
        check_csv(format!("x,label\n{text}").as_bytes());
    }

    #[test]
    fn csv_readers_survive_mutated_files(
        shape in (0usize..5, 0usize..4),
        text_labels in any::<bool>(),
        mutations in proptest::collection::vec(mutation(), 1..4),
    ) {
        let mut bytes = csv_table(shape.0, shape.1, text_labels);
        apply(&mut bytes, &mutations);
        check_csv(&bytes);
    }

    #[test]
    fn npy_reader_survives_random_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        check_npy(&bytes);
        let mut with_magic = b"\x93NUMPY\x01\x00".to_vec();
        with_magic.extend_from_slice(&bytes);
        check_npy(&with_magic);
    }

    #[test]
    fn npy_reader_survives_random_headers(
        header in "\\PC{0,120}",
        version in 1u8..4,
        data in proptest::collection::vec(any::<u8>(), 0..64),
    ) {
        check_npy(&formats::npy_with_dict(version, &header, &data));
    }

    #[test]
    fn npy_reader_survives_mutated_files(
        kind in 0usize..10,
        version in 1u8..4,
        fortran in any::<bool>(),
        shape in (0usize..4, 1usize..4),
        mutations in proptest::collection::vec(mutation(), 1..4),
    ) {
        let mut bytes = npy_file(kind, version, fortran, shape.0, shape.1);
        apply(&mut bytes, &mutations);
        check_npy(&bytes);
    }

    #[test]
    fn npz_reader_survives_random_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        check_npz(bytes.clone());
        // The same bytes behind a valid end record pointing into them.
        let mut zipped = bytes;
        let len = zipped.len() as u32;
        zipped.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
        zipped.extend_from_slice(&[0, 0, 0, 0, 1, 0, 1, 0]);
        zipped.extend_from_slice(&len.to_le_bytes());
        zipped.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
        check_npz(zipped);
    }

    #[test]
    fn npz_reader_survives_mutated_files(
        kinds in (0usize..10, 0usize..10),
        deflate in any::<bool>(),
        mutations in proptest::collection::vec(mutation(), 1..4),
    ) {
        let x = npy_file(kinds.0, 1, false, 2, 3);
        let y = npy_file(kinds.1, 2, true, 3, 1);
        let mut bytes = zip(&[("x.npy", &x), ("y.npy", &y)], deflate);
        apply(&mut bytes, &mutations);
        check_npz(bytes);
    }
}
