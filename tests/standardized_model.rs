//! Models with their standardizer: saved in the model file's metadata, applied after a load,
//! and damaged entries refused with typed errors.

use std::collections::HashMap;
use std::path::PathBuf;

use lernmi::data::standardize::{Standardizer, METADATA_KEY};
use lernmi::io::model::CLASSES_KEY;
use lernmi::{Error, Model, Network};
use ndarray::{array, Array2};
use safetensors::tensor::SafeTensors;

/// A path for one test's file, in a fresh directory.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("lernmi-stdmodel-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir.join("model.safetensors")
}

/// Raw features of very different scales, as tables have them.
fn raw() -> Array2<f64> {
    array![
        [1200.0, 0.003, -7.0],
        [800.0, 0.001, -9.5],
        [1500.0, 0.004, -6.0],
        [950.0, 0.002, -8.0],
    ]
}

fn model() -> Model<f64> {
    let net = Network::<f64>::builder(&[3, 5, 2]).seed(3).build().unwrap();
    let standardizer = Standardizer::fit(raw().view()).unwrap();
    Model::new(net, Some(standardizer))
        .unwrap()
        .with_class_names(vec!["no".into(), "yes".into()])
        .unwrap()
}

#[test]
fn a_saved_model_predicts_on_raw_features_after_a_load() {
    let model = model();
    let path = scratch("roundtrip");
    model.save(&path).unwrap();
    let loaded = Model::<f64>::load(&path).unwrap();
    assert_eq!(loaded, model);
    assert_eq!(loaded.class_names().unwrap(), ["no", "yes"]);
    let raw = raw();
    let predicted = loaded.predict(raw.view()).unwrap();
    assert_eq!(predicted, model.predict(raw.view()).unwrap());
    // The network itself sees standardised features, not the raw ones.
    let mut standardised = raw.clone();
    model
        .standardizer()
        .unwrap()
        .transform(standardised.view_mut())
        .unwrap();
    assert_eq!(
        predicted,
        model.network().predict(standardised.view()).unwrap()
    );
    assert_ne!(predicted, model.network().predict(raw.view()).unwrap());
    let in_memory = Model::<f64>::from_safetensors(&model.to_safetensors().unwrap()).unwrap();
    assert_eq!(in_memory, model);
}

#[test]
fn a_network_file_loads_as_a_model_without_standardizer() {
    let net = Network::<f32>::builder(&[3, 4, 2]).seed(5).build().unwrap();
    let path = scratch("plain");
    net.save(&path).unwrap();
    let model = Model::<f32>::load(&path).unwrap();
    assert!(model.standardizer().is_none() && model.class_names().is_none());
    let x = raw().mapv(|v| v as f32);
    assert_eq!(
        model.predict(x.view()).unwrap(),
        net.predict(x.view()).unwrap()
    );
    assert_eq!(model.network(), &net);
}

#[test]
fn network_load_refuses_a_file_with_a_standardizer() {
    let path = scratch("refuse");
    model().save(&path).unwrap();
    let err = Network::<f64>::load(&path).unwrap_err();
    assert!(matches!(err, Error::BadFile { .. }), "{err}");
    assert!(err.to_string().contains("Model::load"), "{err}");
    let bytes = std::fs::read(&path).unwrap();
    assert!(Network::<f64>::from_safetensors(&bytes).is_err());
}

#[test]
fn a_standardizer_for_another_width_is_refused() {
    let net = Network::<f64>::builder(&[2, 3, 2]).build().unwrap();
    let standardizer = Standardizer::fit(raw().view()).unwrap();
    let err = Model::new(net.clone(), Some(standardizer)).unwrap_err();
    assert!(matches!(err, Error::NetworkMismatch { .. }), "{err}");
    let err = Model::new(net, None)
        .unwrap()
        .with_class_names(vec!["one".into()])
        .unwrap_err();
    assert!(matches!(err, Error::NetworkMismatch { .. }), "{err}");
}

/// The model's file with its metadata edited by `edit`.
fn edited(edit: impl FnOnce(&mut HashMap<String, String>)) -> Vec<u8> {
    let bytes = model().to_safetensors().unwrap();
    let file = SafeTensors::deserialize(&bytes).unwrap();
    let (_, header) = SafeTensors::read_metadata(&bytes).unwrap();
    let mut metadata = header.metadata().clone().unwrap();
    edit(&mut metadata);
    safetensors::serialize(file.tensors(), Some(metadata)).unwrap()
}

#[test]
fn damaged_entries_are_bad_files_naming_the_problem() {
    let cases: [(&str, &str, &str); 6] = [
        (METADATA_KEY, "not json", METADATA_KEY),
        (
            METADATA_KEY,
            r#"{"mean":[0,0,0],"std":[1,1]}"#,
            "standard deviations",
        ),
        (
            METADATA_KEY,
            r#"{"mean":[0,0,0],"std":[1,-1,1]}"#,
            "negative",
        ),
        (METADATA_KEY, r#"{"mean":[0,0],"std":[1,1]}"#, "3 inputs"),
        (CLASSES_KEY, r#"["a","b","c"]"#, "class names"),
        (CLASSES_KEY, r#"{"a":1}"#, CLASSES_KEY),
    ];
    for (key, value, needle) in cases {
        let bytes = edited(|m| {
            m.insert(key.into(), value.into());
        });
        let err = Model::<f64>::from_safetensors(&bytes).unwrap_err();
        assert!(matches!(err, Error::BadFile { .. }), "{value}: {err}");
        assert!(err.to_string().contains(needle), "{value}: {err}");
    }
    // Without the entries the same file is a model without them.
    let bytes = edited(|m| {
        m.remove(METADATA_KEY);
        m.remove(CLASSES_KEY);
    });
    let model = Model::<f64>::from_safetensors(&bytes).unwrap();
    assert!(model.standardizer().is_none() && model.class_names().is_none());
}
