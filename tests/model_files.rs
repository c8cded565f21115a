//! Model files: the safetensors layout, round trips, atomic saves, and damaged files.

mod common;

use std::path::{Path, PathBuf};

use common::TestRng;
use lernmi::io::model::write_atomically;
use lernmi::{Activation, Error, Float, Loss, Network};
use ndarray::Array2;
use safetensors::tensor::{Dtype, SafeTensors};

/// A fresh, empty directory for one test.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("lernmi-model-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn inputs<F: Float>(rows: usize, cols: usize, seed: u64) -> Array2<F> {
    let mut rng = TestRng(seed);
    Array2::from_shape_fn((rows, cols), |_| F::of(rng.next_f64()))
}

fn networks<F: Float>() -> Vec<Network<F>> {
    vec![
        Network::<F>::builder(&[6, 9, 5, 4])
            .seed(11)
            .build()
            .unwrap(),
        Network::<F>::lernmi_builder(&[6, 3, 2]).build().unwrap(),
        Network::<F>::builder(&[6, 7, 3])
            .hidden(Activation::LeakyRelu { slope: 0.125 })
            .output(Activation::Identity)
            .loss(Loss::SquaredError)
            .seed(2)
            .build()
            .unwrap(),
        Network::<F>::builder(&[6, 4, 4, 1])
            .hidden(Activation::Tanh)
            .output(Activation::Sigmoid)
            .seed(5)
            .build()
            .unwrap(),
    ]
}

fn round_trip<F: Float>() {
    let dir = scratch(&format!("round-trip-{}", F::NAME));
    let x = inputs::<F>(17, 6, 3);
    for (i, net) in networks::<F>().into_iter().enumerate() {
        let path = dir.join(format!("net{i}.safetensors"));
        net.save(&path).unwrap();
        let loaded = Network::<F>::load(&path).unwrap();
        assert_eq!(loaded, net, "network {i} differs after a round trip");
        assert_eq!(
            loaded.predict(x.view()).unwrap(),
            net.predict(x.view()).unwrap()
        );
        assert_eq!(
            Network::<F>::from_safetensors(&net.to_safetensors().unwrap()).unwrap(),
            net
        );
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn networks_round_trip_bit_for_bit_in_f32_and_f64() {
    round_trip::<f32>();
    round_trip::<f64>();
}

#[test]
fn tensors_are_named_and_shaped_like_a_pytorch_sequential() {
    let net: Network = Network::<f32>::builder(&[5, 3, 2]).seed(4).build().unwrap();
    let bytes = net.to_safetensors().unwrap();
    let file = SafeTensors::deserialize(&bytes).unwrap();
    let mut names = file.names();
    names.sort();
    assert_eq!(names, ["0.bias", "0.weight", "2.bias", "2.weight"]);
    for (l, module) in [(0, "0"), (1, "2")] {
        let layer = &net.layers()[l];
        let w = file.tensor(&format!("{module}.weight")).unwrap();
        assert_eq!(w.dtype(), Dtype::F32);
        assert_eq!(w.shape(), [layer.n_out(), layer.n_in()]);
        // Row-major (out, in), like nn.Linear.weight.
        let values: Vec<f32> = w
            .data()
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
            .collect();
        let expected: Vec<f32> = layer.weights().iter().copied().collect();
        assert_eq!(values, expected);
        let b = file.tensor(&format!("{module}.bias")).unwrap();
        assert_eq!(b.shape(), [layer.n_out()]);
    }
    let (_, header) = SafeTensors::read_metadata(&bytes).unwrap();
    let metadata = header.metadata().as_ref().unwrap();
    assert_eq!(metadata["format"], "lernmi");
    let arch: serde_json::Value = serde_json::from_str(&metadata["lernmi.architecture"]).unwrap();
    assert_eq!(arch["sizes"], serde_json::json!([5, 3, 2]));
    assert_eq!(arch["dtype"], "f32");
    assert_eq!(arch["loss"], "cross_entropy");
    assert_eq!(arch["activations"][0]["name"], "relu");
    assert_eq!(arch["activations"][1]["name"], "softmax");
    assert_eq!(arch["crate_version"], env!("CARGO_PKG_VERSION"));

    // After an input activation (the seed's quirk) every Linear moves one module down.
    let seed_net: Network = Network::<f32>::lernmi_builder(&[5, 3, 2]).build().unwrap();
    let bytes = seed_net.to_safetensors().unwrap();
    let file = SafeTensors::deserialize(&bytes).unwrap();
    let mut names = file.names();
    names.sort();
    assert_eq!(names, ["1.bias", "1.weight", "3.bias", "3.weight"]);
}

#[test]
fn loading_as_the_other_float_type_is_an_error_naming_both() {
    let net: Network<f64> = Network::<f64>::builder(&[3, 2]).build().unwrap();
    let err = Network::<f32>::from_safetensors(&net.to_safetensors().unwrap()).unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, Error::BadFile { .. }), "{text}");
    assert!(text.contains("f64") && text.contains("f32"), "{text}");
}

#[test]
fn a_failed_save_leaves_the_previous_file_intact() {
    let dir = scratch("atomic");
    let path = dir.join("model.safetensors");
    let old: Network = Network::<f32>::builder(&[4, 3, 2]).seed(1).build().unwrap();
    old.save(&path).unwrap();
    let before = std::fs::read(&path).unwrap();
    let new_bytes = Network::<f32>::builder(&[4, 3, 2])
        .seed(2)
        .build()
        .unwrap()
        .to_safetensors()
        .unwrap();
    // Fail part-way through the write, at many points: the old file must survive every time,
    // and no temporary file may be left behind.
    for cut in [0, 1, 8, new_bytes.len() / 2, new_bytes.len() - 1] {
        let result = write_atomically(&path, |w| {
            std::io::Write::write_all(w, &new_bytes[..cut])?;
            Err(std::io::Error::other("injected failure"))
        });
        let err = result.unwrap_err();
        assert!(err.to_string().contains("injected failure"), "{err}");
        assert!(err.to_string().contains("model.safetensors"), "{err}");
        assert_eq!(std::fs::read(&path).unwrap(), before, "cut at {cut}");
        assert_eq!(Network::<f32>::load(&path).unwrap(), old);
        let entries: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
        assert_eq!(entries.len(), 1, "a temporary file was left behind");
    }
    // A directory that does not exist: an error, and nothing is created.
    let missing = dir.join("no/such/dir/model.safetensors");
    let err = old.save(&missing).unwrap_err();
    assert!(matches!(err, Error::Io { .. }), "{err}");
    assert!(!dir.join("no").exists());
    // A target that is a directory: an error, and the directory is untouched.
    let err = old.save(&dir).unwrap_err();
    assert!(matches!(err, Error::Io { .. }), "{err}");
    // A successful save replaces the file.
    write_atomically(&path, |w| std::io::Write::write_all(w, &new_bytes)).unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), new_bytes);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn missing_and_unreadable_model_files_are_io_errors_naming_the_file() {
    let err = Network::<f32>::load("/nonexistent/model.safetensors").unwrap_err();
    assert!(matches!(err, Error::Io { .. }), "{err}");
    assert!(err.to_string().contains("/nonexistent/model.safetensors"));
}

/// Rebuilds a valid file with its architecture JSON edited by `edit`.
fn with_architecture(bytes: &[u8], edit: impl FnOnce(&mut serde_json::Value)) -> Vec<u8> {
    rebuild(bytes, |metadata, _| {
        let mut arch: serde_json::Value =
            serde_json::from_str(&metadata["lernmi.architecture"]).unwrap();
        edit(&mut arch);
        metadata.insert("lernmi.architecture".into(), arch.to_string());
    })
}

type Tensors = Vec<(String, (Dtype, Vec<usize>, Vec<u8>))>;

/// Re-serialises a file after `edit` has changed its metadata and tensors.
fn rebuild(
    bytes: &[u8],
    edit: impl FnOnce(&mut std::collections::HashMap<String, String>, &mut Tensors),
) -> Vec<u8> {
    let file = SafeTensors::deserialize(bytes).unwrap();
    let (_, header) = SafeTensors::read_metadata(bytes).unwrap();
    let mut metadata = header.metadata().clone().unwrap();
    let mut tensors: Tensors = file
        .tensors()
        .into_iter()
        .map(|(n, t)| (n, (t.dtype(), t.shape().to_vec(), t.data().to_vec())))
        .collect();
    edit(&mut metadata, &mut tensors);
    let views: Vec<_> = tensors
        .iter()
        .map(|(n, (d, s, b))| {
            (
                n.clone(),
                safetensors::tensor::TensorView::new(*d, s.clone(), b).unwrap(),
            )
        })
        .collect();
    safetensors::serialize(views, Some(metadata)).unwrap()
}

fn rejects(bytes: &[u8], needle: &str) {
    let err = Network::<f32>::from_safetensors(bytes).unwrap_err();
    assert!(matches!(err, Error::BadFile { .. }), "{err}");
    assert!(
        err.to_string().contains(needle),
        "expected {needle:?} in: {err}"
    );
}

#[test]
fn damaged_model_files_are_bad_file_errors_that_say_what_is_wrong() {
    let net: Network = Network::<f32>::builder(&[4, 3, 2]).seed(9).build().unwrap();
    let good = net.to_safetensors().unwrap();

    rejects(&[], "not a valid safetensors file");
    rejects(&good[..good.len() - 1], "not a valid safetensors file");
    rejects(&good[..4], "not a valid safetensors file");
    // A header length of 2⁶⁰ bytes.
    let mut huge = good.clone();
    huge[..8].copy_from_slice(&(1u64 << 60).to_le_bytes());
    rejects(&huge, "not a valid safetensors file");
    // Trailing garbage after the data.
    let mut longer = good.clone();
    longer.extend_from_slice(b"junk");
    rejects(&longer, "not a valid safetensors file");

    // Metadata problems.
    rejects(
        &rebuild(&good, |m, _| {
            m.remove("lernmi.architecture");
        }),
        "not a lernmi file",
    );
    rejects(
        &rebuild(&good, |m, _| {
            m.insert("lernmi.architecture".into(), "{not json".into());
        }),
        "malformed",
    );
    rejects(
        &with_architecture(&good, |a| a["format_version"] = 99.into()),
        "format version 99",
    );
    rejects(
        &with_architecture(&good, |a| a["sizes"] = serde_json::json!([4, 3, 2, 2])),
        "activations",
    );
    rejects(
        &with_architecture(&good, |a| a["loss"] = "hinge".into()),
        "unknown loss",
    );
    rejects(
        &with_architecture(&good, |a| a["activations"][0]["name"] = "swish".into()),
        "malformed",
    );
    rejects(
        &with_architecture(&good, |a| a["activations"][0]["name"] = "softmax".into()),
        "softmax",
    );
    // Sizes that claim a huge layer: a shape mismatch, found without allocating for it.
    rejects(
        &with_architecture(&good, |a| {
            a["sizes"] = serde_json::json!([4, 1_000_000_000_000u64, 2])
        }),
        "expected [1000000000000, 4]",
    );
    rejects(
        &with_architecture(&good, |a| a["sizes"] = serde_json::json!([4, 2, 2])),
        "shape",
    );

    // Tensor problems.
    rejects(
        &rebuild(&good, |_, t| t.retain(|(n, _)| n != "2.bias")),
        "\"2.bias\" is missing",
    );
    rejects(
        &rebuild(&good, |_, t| {
            let extra = t[0].1.clone();
            t.push(("4.weight".into(), extra));
        }),
        "unexpected tensor \"4.weight\"",
    );
    rejects(
        &rebuild(&good, |_, t| {
            let (_, (_, _, data)) = t.iter_mut().find(|(n, _)| n == "0.weight").unwrap();
            data[4..8].copy_from_slice(&f32::NAN.to_le_bytes());
        }),
        "non-finite value (NaN) at index 1",
    );
    rejects(
        &rebuild(&good, |_, t| {
            let (_, (dtype, shape, data)) = t.iter_mut().find(|(n, _)| n == "0.bias").unwrap();
            *dtype = Dtype::I32;
            *shape = vec![data.len() / 4];
        }),
        "I32",
    );
}

#[test]
fn every_truncation_and_many_byte_flips_fail_cleanly() {
    let net: Network = Network::<f32>::builder(&[3, 2, 2]).seed(1).build().unwrap();
    let good = net.to_safetensors().unwrap();
    for cut in 0..good.len() {
        assert!(Network::<f32>::from_safetensors(&good[..cut]).is_err());
    }
    // Flips in the header must be caught; flips in the data may give another valid network,
    // but never a panic or a non-finite weight.
    let header_end = 8 + u64::from_le_bytes(good[..8].try_into().unwrap()) as usize;
    for i in 0..good.len() {
        for bit in [0x01u8, 0x10, 0x80] {
            let mut bytes = good.clone();
            bytes[i] ^= bit;
            match Network::<f32>::from_safetensors(&bytes) {
                Ok(n) => {
                    assert_eq!(
                        n.sizes(),
                        net.sizes(),
                        "flip at {i} (header ends at {header_end})"
                    );
                    for l in n.layers() {
                        assert!(l.weights().iter().all(|w| w.is_finite()));
                    }
                }
                Err(e) => assert!(matches!(e, Error::BadFile { .. }), "{e}"),
            }
        }
    }
}

/// The path used in errors is the file's own.
#[test]
fn errors_from_files_name_the_file() {
    let dir = scratch("names");
    let path = dir.join("broken.safetensors");
    std::fs::write(&path, b"\x10\0\0\0\0\0\0\0{\"a\":").unwrap();
    let err = Network::<f32>::load(&path).unwrap_err();
    assert!(
        err.to_string().starts_with(&path.display().to_string()),
        "{err}"
    );
    assert!(Path::new(&path).exists());
    std::fs::remove_dir_all(&dir).ok();
}
