//! Checkpoints whose numbers are out of range, and edited checkpoints that cannot resume:
//! typed errors naming the field, never a panic or a huge allocation.

use std::collections::HashMap;

use lernmi::io::checkpoint::{Checkpoint, TRAINING_KEY};
use lernmi::train::MAX_BATCH;
use lernmi::Schedule;
use lernmi::{Error, Network, Optimizer, RunOptions, TrainConfig, Trainer};
use ndarray::Array2;
use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use serde_json::{json, Value};

fn config(optimizer: Optimizer) -> TrainConfig {
    TrainConfig {
        epochs: 3,
        batch_size: 4,
        shard_size: 2,
        optimizer,
        seed: 5,
        ..TrainConfig::default()
    }
}

/// A checkpoint after one epoch on a few rows, and its network.
fn checkpoint(optimizer: Optimizer) -> (Vec<u8>, Network) {
    let net: Network = Network::<f32>::builder(&[3, 4, 2]).seed(1).build().unwrap();
    let x = Array2::from_shape_fn((8, 3), |(i, j)| ((i * 3 + j) % 5) as f32 / 5.0);
    let y = Array2::from_shape_fn((8, 2), |(i, j)| if i % 2 == j { 1.0 } else { 0.0 });
    let mut trainer =
        Trainer::with_options(net, config(optimizer), RunOptions::one_thread()).unwrap();
    trainer.train_epoch(x.view(), y.view(), &mut ()).unwrap();
    (trainer.checkpoint_bytes().unwrap(), trainer.into_network())
}

/// Re-serialises a checkpoint after its tensors' bytes and its training JSON text are edited.
fn rebuild(
    bytes: &[u8],
    edit_tensor: impl Fn(&str, &mut Vec<u8>),
    edit_training: impl FnOnce(&str) -> String,
) -> Vec<u8> {
    let file = SafeTensors::deserialize(bytes).unwrap();
    let (_, header) = SafeTensors::read_metadata(bytes).unwrap();
    let mut metadata: HashMap<String, String> = header.metadata().clone().unwrap();
    let training = edit_training(&metadata[TRAINING_KEY]);
    metadata.insert(TRAINING_KEY.into(), training);
    let tensors: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = file
        .tensors()
        .into_iter()
        .map(|(n, t)| {
            let mut data = t.data().to_vec();
            edit_tensor(&n, &mut data);
            (n, t.dtype(), t.shape().to_vec(), data)
        })
        .collect();
    let views = tensors
        .iter()
        .map(|(n, d, s, b)| (n.clone(), TensorView::new(*d, s.clone(), b).unwrap()));
    safetensors::serialize(views, Some(metadata)).unwrap()
}

fn with_training(bytes: &[u8], edit: impl FnOnce(&mut Value)) -> Vec<u8> {
    rebuild(
        bytes,
        |_, _| {},
        |text| {
            let mut training: Value = serde_json::from_str(text).unwrap();
            edit(&mut training);
            training.to_string()
        },
    )
}

fn expect_bad_file(bytes: &[u8], needle: &str) {
    let err = Checkpoint::<f32>::from_safetensors(bytes).unwrap_err();
    assert!(matches!(err, Error::BadFile { .. }), "{needle}: {err}");
    assert!(
        err.to_string().contains(needle),
        "expected {needle:?} in: {err}"
    );
}

#[test]
fn counts_beyond_any_run_are_refused_when_loading() {
    let (good, _) = checkpoint(Optimizer::adam(1e-3));
    let loaded = Checkpoint::<f32>::from_safetensors(&good).unwrap();
    assert_eq!((loaded.epoch, loaded.optimizer_state().steps()), (1, 2));
    let steps = with_training(&good, |t| t["optimizer_steps"] = json!(u64::MAX));
    expect_bad_file(&steps, "optimizer_steps");
    let steps = with_training(&good, |t| t["optimizer_steps"] = json!(1u64 << 60));
    expect_bad_file(&steps, "optimizer_steps");
    let epoch = with_training(&good, |t| t["epoch"] = json!(u64::MAX));
    expect_bad_file(&epoch, "epoch");
    let epoch = with_training(&good, |t| t["epoch"] = json!(1u64 << 40));
    expect_bad_file(&epoch, "epoch");
    // The bounds themselves load: they are far beyond any run, not a guess at one.
    let at_bounds = with_training(&good, |t| {
        t["epoch"] = json!(lernmi::io::checkpoint::MAX_EPOCH);
        t["optimizer_steps"] = json!(lernmi::io::checkpoint::MAX_OPTIMIZER_STEPS);
    });
    let loaded = Checkpoint::<f32>::from_safetensors(&at_bounds).unwrap();
    assert_eq!(loaded.epoch, lernmi::io::checkpoint::MAX_EPOCH);
}

#[test]
fn every_hyperparameter_out_of_range_is_refused_naming_it() {
    let (adam, _) = checkpoint(Optimizer::adam(1e-3));
    let (momentum, _) = checkpoint(Optimizer::momentum(0.05, 0.9));
    let step = |every, factor| json!({"name": "step", "every": every, "factor": factor});
    let cases = [
        (
            &adam,
            "learning_rate",
            "/config/optimizer/learning_rate",
            json!(-1.0),
        ),
        (
            &adam,
            "learning_rate",
            "/config/optimizer/learning_rate",
            json!(1e300),
        ),
        (
            &adam,
            "learning_rate",
            "/config/optimizer/learning_rate",
            json!(0.0),
        ),
        (&adam, "beta1", "/config/optimizer/beta1", json!(1.0)),
        (&adam, "beta2", "/config/optimizer/beta2", json!(-0.5)),
        (&adam, "epsilon", "/config/optimizer/epsilon", json!(0.0)),
        (
            &momentum,
            "momentum",
            "/config/optimizer/momentum",
            json!(1.5),
        ),
        (&adam, "weight_decay", "/config/weight_decay", json!(-1e-3)),
        (&adam, "batch_size", "/config/batch_size", json!(0)),
        (
            &adam,
            "batch_size",
            "/config/batch_size",
            json!(MAX_BATCH + 1),
        ),
        (&adam, "batch_size", "/config/batch_size", json!(u64::MAX)),
        (&adam, "shard_size", "/config/shard_size", json!(0)),
        (&adam, "threads", "/config/threads", json!(0)),
        (&adam, "threads", "/config/threads", json!(1u64 << 40)),
        (
            &adam,
            "schedule step factor",
            "/config/schedule",
            step(1, 2.0),
        ),
        (
            &adam,
            "schedule step every",
            "/config/schedule",
            step(0, 0.5),
        ),
        (
            &adam,
            "cosine schedule floor",
            "/config/schedule",
            json!({"name": "cosine", "epochs": 3, "floor": -1.0}),
        ),
    ];
    for (bytes, needle, pointer, value) in cases {
        let edited = with_training(bytes, |t| *t.pointer_mut(pointer).unwrap() = value);
        expect_bad_file(&edited, needle);
    }
    // JSON has no NaN or infinity: a number too large for an f64 is malformed.
    let huge = rebuild(
        &adam,
        |_, _| {},
        |text| {
            let edited = text.replace("\"weight_decay\":0.0", "\"weight_decay\":1e999");
            assert_ne!(edited, text, "the edit must apply");
            edited
        },
    );
    expect_bad_file(&huge, "malformed");
}

#[test]
fn a_negative_second_moment_is_refused() {
    let (good, _) = checkpoint(Optimizer::adam(1e-3));
    let negative = rebuild(
        &good,
        |name, data| {
            if name == "optimizer.second.1.bias" {
                data[..4].copy_from_slice(&(-1.0f32).to_le_bytes());
            }
        },
        str::to_string,
    );
    expect_bad_file(&negative, "optimizer.second.1.bias");
    // The first moment may be negative.
    let first = rebuild(
        &good,
        |name, data| {
            if name == "optimizer.first.1.bias" {
                data[..4].copy_from_slice(&(-1.0f32).to_le_bytes());
            }
        },
        str::to_string,
    );
    Checkpoint::<f32>::from_safetensors(&first).unwrap();
}

fn expect_shape_error(checkpoint: Checkpoint, sizes: &[usize]) {
    let err = checkpoint.resume().unwrap_err();
    match &err {
        Error::Shape { expected, got, .. } => {
            assert_eq!(expected, &[3, 4, 2], "{err}");
            assert_eq!(got, sizes, "{err}");
        }
        other => panic!("expected a shape error, got {other}"),
    }
}

#[test]
fn resuming_with_an_edited_network_is_a_shape_error() {
    for optimizer in [Optimizer::momentum(0.05, 0.9), Optimizer::adam(1e-3)] {
        let (bytes, _) = checkpoint(optimizer);
        let load = || Checkpoint::<f32>::from_safetensors(&bytes).unwrap();
        for sizes in [
            &[3, 5, 2][..],
            &[3, 4, 3],
            &[3, 4, 2, 2],
            &[3, 4, 4, 2],
            &[3, 4],
            &[3, 2],
        ] {
            let mut edited = load();
            edited.network = Network::<f32>::builder(sizes).seed(2).build().unwrap();
            expect_shape_error(edited, sizes);
        }
        // Other weights of the same shape resume.
        let mut other = load();
        other.network = Network::<f32>::builder(&[3, 4, 2]).seed(9).build().unwrap();
        other.resume().unwrap();
    }
}

#[test]
fn resuming_after_an_absurd_epoch_is_an_error() {
    let (bytes, _) = checkpoint(Optimizer::sgd(0.1));
    let mut edited = Checkpoint::<f32>::from_safetensors(&bytes).unwrap();
    edited.epoch = usize::MAX;
    let err = edited.resume().unwrap_err();
    assert!(
        matches!(err, Error::InvalidHyperparameter { name: "epoch", .. }),
        "{err}"
    );
    // Past the configured epochs (training on with `train_epoch`) is fine.
    let mut edited = Checkpoint::<f32>::from_safetensors(&bytes).unwrap();
    edited.epoch = 10;
    let trainer = edited.resume().unwrap();
    assert_eq!(trainer.epoch(), 10);
}

#[test]
fn a_checkpoint_written_after_the_configured_epochs_loads() {
    let (bytes, _) = checkpoint(Optimizer::sgd(0.1));
    // Files written before a cosine schedule took its length from the run carry `epochs`.
    let later = with_training(&bytes, |t| {
        t["epoch"] = json!(7);
        t["config"]["schedule"] = json!({"name": "cosine", "epochs": 3, "floor": 0.0});
    });
    let loaded = Checkpoint::<f32>::from_safetensors(&later).unwrap();
    assert_eq!(loaded.epoch, 7);
    assert_eq!(loaded.config.schedule, Schedule::Cosine { floor: 0.0 });
}
