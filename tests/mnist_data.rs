//! Reading real MNIST (counts, shapes, checksums), a table of crafted bad files, sizes too
//! large to hold, and a short training run on real data.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};

use common::{mnist, mnist_dir};
use lernmi::data::idx::{read_idx, read_images, read_labels};
use lernmi::data::{Dataset, PixelScale};
use lernmi::{one_hot, Activation, Error, Network, Optimizer, TrainConfig, Trainer};
use ndarray::Array2;
use sha2::{Digest, Sha256};

/// SHA-256 of the decompressed MNIST files, as published (the same for every faithful mirror,
/// whatever its gzip bytes).
const DECOMPRESSED_SHA256: [(&str, &str); 4] = [
    (
        "train-images-idx3-ubyte",
        "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    ),
    (
        "train-labels-idx1-ubyte",
        "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    ),
    (
        "t10k-images-idx3-ubyte",
        "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    ),
    (
        "t10k-labels-idx1-ubyte",
        "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
    ),
];

#[test]
fn real_files_have_the_canonical_counts_shapes_and_checksums() {
    let dir = mnist_dir();
    for (name, hash) in DECOMPRESSED_SHA256 {
        let gz = dir.join(format!("{name}.gz"));
        let path = if gz.is_file() { gz } else { dir.join(name) };
        // The decompressed contents, rebuilt from what the reader returns.
        let array = read_idx(&path).unwrap();
        let mut bytes = vec![0, 0, 8, array.dims.len() as u8];
        for &d in &array.dims {
            bytes.extend((d as u32).to_be_bytes());
        }
        bytes.extend(&array.data);
        let digest: String = Sha256::digest(&bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(digest, hash, "{}", path.display());
    }

    let m = mnist();
    assert_eq!((m.train.len(), m.test.len()), (60_000, 10_000));
    assert_eq!(
        (m.train.rows(), m.train.cols(), m.train.classes()),
        (28, 28, 10)
    );
    assert_eq!(m.train.images().dim(), (60_000, 784));
    assert_eq!(&m.train.labels()[..5], &[5, 0, 4, 1, 9]);
    assert_eq!(&m.test.labels()[..3], &[7, 2, 1]);
    let counts = m.train.labels().iter().fold([0usize; 10], |mut c, &l| {
        c[usize::from(l)] += 1;
        c
    });
    assert_eq!(
        counts,
        [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    );
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("lernmi-bad-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn write(dir: &Path, name: &str, bytes: &[u8], gzip: bool) -> PathBuf {
    let path = dir.join(name);
    let data = if gzip {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(bytes).unwrap();
        enc.finish().unwrap()
    } else {
        bytes.to_vec()
    };
    std::fs::write(&path, data).unwrap();
    path
}

fn idx(dims: &[u32], data: &[u8]) -> Vec<u8> {
    let mut v = vec![0, 0, 8, dims.len() as u8];
    for d in dims {
        v.extend(d.to_be_bytes());
    }
    v.extend(data);
    v
}

#[test]
fn crafted_bad_files_give_errors_that_name_the_file_and_the_problem() {
    let dir = scratch("table");
    let good_images = idx(&[2, 2, 2], &[1; 8]);
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "wrong-magic",
            {
                let mut v = good_images.clone();
                v[0] = 0x1f;
                v[1] = 0x00;
                v
            },
            "not an IDX file",
        ),
        (
            "wrong-type",
            {
                let mut v = good_images.clone();
                v[2] = 0x0d;
                v
            },
            "element type",
        ),
        ("truncated-header", good_images[..6].to_vec(), "truncated"),
        (
            "truncated-data",
            good_images[..good_images.len() - 3].to_vec(),
            "truncated",
        ),
        (
            "claims-1e9-images",
            idx(&[1_000_000_000, 28, 28], &[0; 100]),
            "more than the limit",
        ),
        (
            "claims-3e5-images",
            idx(&[300_000, 28, 28], &[0; 100]),
            "truncated",
        ),
        (
            "trailing",
            [good_images.clone(), vec![0]].concat(),
            "trailing data",
        ),
        ("empty", Vec::new(), "truncated"),
        ("zero-dims", vec![0, 0, 8, 0], "dimensions"),
    ];
    for gzip in [false, true] {
        for (name, bytes, problem) in &cases {
            let path = write(&dir, &format!("{name}-{gzip}"), bytes, gzip);
            let err = read_images(&path).unwrap_err();
            let text = err.to_string();
            assert!(matches!(err, Error::BadFile { .. }), "{name}: {text}");
            assert!(text.contains(&path.display().to_string()), "{name}: {text}");
            assert!(text.contains(problem), "{name} (gzip {gzip}): {text}");
        }
    }
    // A corrupt gzip stream.
    let mut gz = {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(&good_images).unwrap();
        enc.finish().unwrap()
    };
    let mid = gz.len() / 2;
    gz[mid] ^= 0xff;
    gz.truncate(gz.len() - 4);
    let path = write(&dir, "corrupt.gz", &gz, false);
    assert!(read_images(&path).is_err());

    // Label 11 of 10 classes, and label/image count mismatch.
    let labels = write(&dir, "labels-11", &idx(&[3], &[1, 11, 2]), true);
    let err = read_labels(&labels, 10).unwrap_err();
    assert!(
        err.to_string()
            .contains("label 11 at index 1 is out of range"),
        "{err}"
    );
    let images = write(&dir, "images", &good_images, true);
    let two_labels = write(&dir, "labels-3", &idx(&[3], &[1, 2, 3]), false);
    let err = Dataset::from_idx(&images, &two_labels, 10).unwrap_err();
    assert!(err.to_string().contains("3 labels but"), "{err}");
    assert!(err.to_string().contains("holds 2 images"), "{err}");
    // A missing file names its path.
    let err = read_idx(dir.join("missing")).unwrap_err();
    assert!(
        matches!(err, Error::Io { .. }) && err.to_string().contains("missing"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn every_truncation_and_single_byte_corruption_of_a_small_file_is_an_error_or_a_valid_read() {
    let dir = scratch("mutations");
    let good = idx(&[3, 2, 2], &[7; 12]);
    for cut in 0..good.len() {
        let path = write(&dir, "cut", &good[..cut], cut % 2 == 0);
        assert!(read_images(&path).is_err(), "cut at {cut}");
    }
    for at in 0..good.len() {
        for flip in [0x01u8, 0x80, 0xff] {
            let mut v = good.clone();
            v[at] ^= flip;
            let path = write(&dir, "flip", &v, at % 2 == 1);
            // Either an error or a consistent array; never a panic.
            if let Ok(a) = read_idx(&path) {
                assert_eq!(a.data.len(), a.dims.iter().product::<usize>());
            }
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn image_sizes_whose_product_overflows_are_an_error() {
    // rows · cols wraps to 0 in usize, so a width-0 image array would match a wrapped product.
    let side = 1usize << (usize::BITS / 2);
    let err = Dataset::new(Array2::zeros((1, 0)), vec![0], side, side, 10).unwrap_err();
    assert!(matches!(err, Error::Shape { .. }), "{err}");
    assert!(err.to_string().contains("overflow"), "{err}");
    let err = Dataset::new(Array2::zeros((1, 4)), vec![0], usize::MAX, 2, 10).unwrap_err();
    assert!(matches!(err, Error::Shape { .. }), "{err}");
    // The largest product that fits is only a shape mismatch.
    let err = Dataset::new(Array2::zeros((1, 4)), vec![0], usize::MAX, 1, 10).unwrap_err();
    assert!(matches!(err, Error::Shape { .. }), "{err}");
}

#[test]
fn one_hot_refuses_class_counts_too_large_to_hold() {
    // Each of these asks for more memory than a machine has (or than usize can count); none may
    // panic or abort.
    for classes in [usize::MAX, usize::MAX / 2, 1 << 40, (1 << 20) + 1] {
        let err = one_hot::<f32>(&[0, 1], classes).unwrap_err();
        assert!(
            matches!(
                err,
                Error::InvalidHyperparameter {
                    name: "classes",
                    ..
                }
            ),
            "{classes}: {err}"
        );
    }
    // Many labels times many classes: refused by the element count, before allocating.
    let labels = vec![0usize; 1 << 12];
    let err = one_hot::<f64>(&labels, 1 << 20).unwrap_err();
    assert!(matches!(err, Error::InvalidHyperparameter { .. }), "{err}");
    // The largest class count accepted still works.
    let t = one_hot::<f32>(&[0, (1 << 20) - 1], 1 << 20).unwrap();
    assert_eq!(t.dim(), (2, 1 << 20));
    assert_eq!((t[[0, 0]], t[[1, (1 << 20) - 1]], t.sum()), (1.0, 1.0, 2.0));
}

#[test]
fn one_epoch_of_a_small_network_on_real_mnist_passes_95_percent() {
    let m = mnist();
    let net: Network = Network::<f32>::builder(&[784, 64, 10])
        .hidden(Activation::Relu)
        .seed(1)
        .build()
        .unwrap();
    let config = TrainConfig {
        batch_size: 32,
        optimizer: Optimizer::momentum(0.05, 0.9),
        seed: 1,
        ..TrainConfig::default()
    };
    let mut trainer = Trainer::new(net, config).unwrap();
    let report = trainer
        .train_epoch(
            m.train.inputs::<f32>(PixelScale::Unit).view(),
            m.train.targets::<f32>().view(),
            &mut (),
        )
        .unwrap();
    let eval = trainer
        .network()
        .evaluate(
            m.test.inputs::<f32>(PixelScale::Unit).view(),
            m.test.targets::<f32>().view(),
        )
        .unwrap();
    assert!(
        eval.accuracy() >= 0.95,
        "test accuracy {:.4} after one epoch ({report:?})",
        eval.accuracy()
    );
}
