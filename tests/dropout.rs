//! Dropout and image augmentation in training: deterministic for any thread count and across
//! checkpoints, a rate of 0 the same bits as none, prediction untouched, bad settings typed
//! errors.

use lernmi::data::augment::Augment;
use lernmi::data::{synthetic, PixelScale};
use lernmi::io::checkpoint::Checkpoint;
use lernmi::nn::dropout::keeps;
use lernmi::{Activation, Error, Network, Optimizer, RunOptions, TrainConfig, Trainer};
use ndarray::{s, Array2};

fn data() -> (Array2<f32>, Array2<f32>) {
    let set = synthetic::generate(160, 11).unwrap();
    (set.inputs(PixelScale::Unit), set.targets())
}

/// A [784, 24, 16, 10] network with sigmoid hidden layers (whose σ′ reads the activations,
/// so that (B2ᴰ) must take them from before the mask).
fn net() -> Network<f32> {
    Network::<f32>::builder(&[784, 24, 16, 10])
        .hidden(Activation::Sigmoid)
        .seed(4)
        .build()
        .unwrap()
}

fn config(dropout: Vec<f64>, augment: Option<Augment>) -> TrainConfig {
    TrainConfig {
        epochs: 3,
        batch_size: 40,
        shard_size: 8,
        optimizer: Optimizer::momentum(0.05, 0.9),
        seed: 21,
        dropout,
        augment,
        ..TrainConfig::default()
    }
}

fn on(threads: usize) -> RunOptions {
    RunOptions {
        threads: Some(threads),
        adaptive_threads: false,
        ..RunOptions::default()
    }
}

fn train(config: TrainConfig, threads: usize) -> Network<f32> {
    let (x, y) = data();
    let mut trainer = Trainer::with_options(net(), config, on(threads)).unwrap();
    trainer.fit(x.view(), y.view(), &mut ()).unwrap();
    trainer.into_network()
}

fn shifts() -> Option<Augment> {
    Some(Augment::shifts(28, 28))
}

#[test]
fn dropout_masks_are_the_same_on_1_2_and_7_threads() {
    for augment in [None, shifts()] {
        let config = config(vec![0.5, 0.2], augment);
        let one = train(config.clone(), 1);
        for threads in [2, 7] {
            let other = train(config.clone(), threads);
            assert_eq!(
                one.max_parameter_difference(&other).unwrap(),
                0.0,
                "{threads} threads, {augment:?}"
            );
        }
    }
}

#[test]
fn dropout_and_augmentation_change_training() {
    let plain = train(config(vec![], None), 1);
    for (dropout, augment) in [
        (vec![0.5, 0.0], None),
        (vec![0.0, 0.3], None),
        (vec![], shifts()),
    ] {
        let other = train(config(dropout.clone(), augment), 1);
        assert!(
            plain.max_parameter_difference(&other).unwrap() > 0.0,
            "{dropout:?} {augment:?} trained the same weights as no dropout"
        );
    }
}

#[test]
fn dropout_of_zero_is_no_dropout_bit_for_bit() {
    let none = train(config(vec![], None), 2);
    let zero = train(config(vec![0.0, 0.0], None), 2);
    assert_eq!(none.max_parameter_difference(&zero).unwrap(), 0.0);
    // And on the one-sample SGD path.
    let per_sample = |dropout| TrainConfig {
        epochs: 1,
        batch_size: 1,
        shard_size: 1,
        optimizer: Optimizer::sgd(0.05),
        ..config(dropout, None)
    };
    let none = train(per_sample(vec![]), 1);
    let zero = train(per_sample(vec![0.0, 0.0]), 1);
    assert_eq!(none.max_parameter_difference(&zero).unwrap(), 0.0);
}

/// Batch size 1 with plain SGD takes the fused one-sample path, which knows no dropout: the
/// trainer must route it through the batched path, and the masks must matter there too.
#[test]
fn per_sample_sgd_with_dropout_drops() {
    let per_sample = |dropout, augment| TrainConfig {
        epochs: 1,
        batch_size: 1,
        shard_size: 1,
        optimizer: Optimizer::sgd(0.05),
        ..config(dropout, augment)
    };
    let plain = train(per_sample(vec![], None), 1);
    let dropped = train(per_sample(vec![0.5, 0.5], None), 1);
    assert!(plain.max_parameter_difference(&dropped).unwrap() > 0.0);
    assert_eq!(dropped, train(per_sample(vec![0.5, 0.5], None), 2));
    let augmented = train(per_sample(vec![], shifts()), 1);
    assert!(plain.max_parameter_difference(&augmented).unwrap() > 0.0);
}

/// `Trainer::step`, which has no training-set indices, keys its rows by the step count: the
/// same steps give the same bits on any thread count.
#[test]
fn steps_with_dropout_are_deterministic() {
    let (x, y) = data();
    let run = |dropout: Vec<f64>, threads| {
        let mut trainer =
            Trainer::with_options(net(), config(dropout, shifts()), on(threads)).unwrap();
        let losses: Vec<f64> = (0..3)
            .map(|i| {
                let rows = s![i * 40..(i + 1) * 40, ..];
                trainer.step(x.slice(rows), y.slice(rows)).unwrap()
            })
            .collect();
        (losses, trainer.into_network())
    };
    let (losses, stepped) = run(vec![0.5, 0.5], 1);
    assert_eq!(run(vec![0.5, 0.5], 7), (losses, stepped.clone()));
    let (_, plain) = run(vec![], 1);
    assert!(stepped.max_parameter_difference(&plain).unwrap() > 0.0);
}

#[test]
fn the_fraction_dropped_is_within_a_binomial_bound() {
    for rate in [0.1, 0.5, 0.8] {
        let (samples, units) = (50u64, 20_000usize);
        let dropped = (0..samples)
            .flat_map(|s| (0..units).map(move |j| (s, j)))
            .filter(|&(s, j)| !keeps(3, 1, s, 0, j, rate))
            .count() as f64;
        let n = samples as f64 * units as f64;
        let sd = (n * rate * (1.0 - rate)).sqrt();
        assert!(
            (dropped - n * rate).abs() < 5.0 * sd,
            "rate {rate}: dropped {dropped} of {n}"
        );
    }
}

#[test]
fn masks_differ_between_epochs_samples_and_layers() {
    let mask = |epoch, sample, layer| -> Vec<bool> {
        (0..256)
            .map(|j| keeps(3, epoch, sample, layer, j, 0.5))
            .collect()
    };
    let base = mask(0, 0, 0);
    assert_ne!(base, mask(1, 0, 0));
    assert_ne!(base, mask(0, 1, 0));
    assert_ne!(base, mask(0, 0, 1));
    assert_eq!(base, mask(0, 0, 0));
}

#[test]
fn stopping_and_resuming_with_dropout_and_augmentation_is_bit_identical() {
    let (x, y) = data();
    let config = config(
        vec![0.3, 0.1],
        Some(Augment {
            max_rotation: 8.0,
            ..Augment::shifts(28, 28)
        }),
    );
    let straight = train(config.clone(), 1);

    let mut trainer = Trainer::with_options(net(), config.clone(), on(2)).unwrap();
    trainer.train_epoch(x.view(), y.view(), &mut ()).unwrap();
    let bytes = trainer.checkpoint_bytes().unwrap();
    drop(trainer);
    let mut checkpoint = Checkpoint::<f32>::from_safetensors(&bytes).unwrap();
    assert_eq!(checkpoint.config, config, "the settings survive the file");
    checkpoint.options.threads = Some(7);
    let mut trainer = checkpoint.resume().unwrap();
    trainer.fit(x.view(), y.view(), &mut ()).unwrap();
    assert_eq!(
        trainer
            .network()
            .max_parameter_difference(&straight)
            .unwrap(),
        0.0
    );
}

/// A checkpoint of a run without dropout or augmentation names neither, so that readers that
/// know neither still read it; and one with them names both.
#[test]
fn checkpoints_name_dropout_and_augmentation_only_when_used() {
    let header = |config: TrainConfig| {
        let trainer = Trainer::with_options(net(), config, on(1)).unwrap();
        header(&trainer.checkpoint_bytes().unwrap()).to_owned()
    };
    let plain = header(config(vec![], None));
    assert!(
        !plain.contains("dropout") && !plain.contains("augment"),
        "{plain}"
    );
    let used = header(config(vec![0.5, 0.25], shifts()));
    assert!(used.contains(r#"dropout\":[0.5,0.25]"#), "{used}");
    assert!(used.contains(r#"augment\":{"#), "{used}");
}

/// The JSON header of a safetensors file.
fn header(bytes: &[u8]) -> &str {
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    std::str::from_utf8(&bytes[8..8 + n]).unwrap()
}

/// The trained network predicts without dropout: its outputs are those of a copy built from
/// its layers alone, and they do not change from call to call.
#[test]
fn prediction_and_evaluation_never_drop() {
    let (x, y) = data();
    let trained = train(config(vec![0.5, 0.5], shifts()), 2);
    let copy = Network::from_layers(trained.layers().to_vec(), trained.loss(), None).unwrap();
    let outputs = trained.predict(x.view()).unwrap();
    assert_eq!(outputs, copy.predict(x.view()).unwrap());
    assert_eq!(outputs, trained.predict(x.view()).unwrap());
    assert_eq!(
        trained.evaluate(x.view(), y.view()).unwrap(),
        copy.evaluate(x.view(), y.view()).unwrap()
    );
}

#[test]
fn bad_dropout_and_augmentation_settings_are_typed_errors() {
    for rate in [1.0, -0.1, f64::NAN, f64::INFINITY] {
        let err = Trainer::new(net(), config(vec![rate, 0.0], None)).unwrap_err();
        assert!(
            matches!(
                err,
                Error::InvalidHyperparameter {
                    name: "dropout",
                    ..
                }
            ),
            "{err}"
        );
    }
    for rates in [vec![0.5], vec![0.5, 0.5, 0.5]] {
        let err = Trainer::new(net(), config(rates, None)).unwrap_err();
        assert!(matches!(err, Error::Shape { .. }), "{err}");
    }
    let err = Trainer::new(net(), config(vec![], Some(Augment::shifts(28, 27)))).unwrap_err();
    assert!(
        matches!(
            err,
            Error::InputWidth {
                expected: 784,
                got: 756
            }
        ),
        "{err}"
    );
    let err = Trainer::new(net(), config(vec![], Some(Augment::shifts(0, 28)))).unwrap_err();
    assert!(matches!(err, Error::InvalidHyperparameter { .. }), "{err}");
}

/// A checkpoint whose dropout rates do not fit its network is a bad file, not a panic.
#[test]
fn a_checkpoint_with_dropout_for_another_network_is_a_bad_file() {
    let trainer = Trainer::with_options(net(), config(vec![0.5, 0.5], None), on(1)).unwrap();
    let bytes = trainer.checkpoint_bytes().unwrap();
    assert!(Checkpoint::<f32>::from_safetensors(&bytes).is_ok());
    let at = header(&bytes).find("[0.5,0.5]").unwrap() + 8;
    // Same-length edits, so that the header's length and the tensors' offsets still hold.
    for edit in [b"[0.5]    ", b"[1.0,0.5]", b"[0.5,NaN]"] {
        let mut edited = bytes.clone();
        edited[at..at + edit.len()].copy_from_slice(edit);
        let err = Checkpoint::<f32>::from_safetensors(&edited).unwrap_err();
        assert!(matches!(err, Error::BadFile { .. }), "{err}");
        assert!(
            err.to_string().contains("dropout") || edit.ends_with(b"NaN]"),
            "{err}"
        );
    }
}
