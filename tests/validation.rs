//! Validation sets and early stopping in `Trainer::fit`: the seeded split, the reports, the
//! stop at the epoch the rule says, the best weights restored exactly, checkpoints that resume
//! to the same bits, and typed errors for bad input.

use std::collections::HashMap;
use std::ops::ControlFlow;

use lernmi::io::checkpoint::{Checkpoint, TRAINING_KEY};
use lernmi::train::validation_split;
use lernmi::{
    Activation, EpochReport, Error, Loss, Metric, Network, Observer, Optimizer, RunOptions,
    StopRule, TrainConfig, Trainer,
};
use ndarray::{Array2, Axis};
use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use serde_json::Value;

/// 64 rows of 4 features; the label is 1 when x0 + x1 > 1, flipped on every fifth row, so
/// that a large network learns, then memorises the flips and validates worse.
fn data() -> (Array2<f32>, Vec<usize>) {
    let x = Array2::from_shape_fn((64, 4), |(i, j)| {
        ((i * (13 + 6 * j) + 7 * j) % 17) as f32 / 16.0
    });
    let y = x
        .rows()
        .into_iter()
        .enumerate()
        .map(|(i, r)| usize::from(r[0] + r[1] > 1.0) ^ usize::from(i % 5 == 0))
        .collect();
    (x, y)
}

fn network() -> Network<f32> {
    Network::<f32>::builder(&[4, 32, 2])
        .seed(3)
        .build()
        .unwrap()
}

fn config(epochs: usize, rule: Option<StopRule>) -> TrainConfig {
    TrainConfig {
        epochs,
        batch_size: 8,
        shard_size: 2,
        optimizer: Optimizer::adam(0.03),
        seed: 11,
        validation_fraction: Some(0.25),
        early_stopping: rule,
        ..TrainConfig::default()
    }
}

fn options(threads: usize) -> RunOptions {
    RunOptions {
        threads: Some(threads),
        adaptive_threads: false,
        ..RunOptions::default()
    }
}

fn fit(config: TrainConfig, threads: usize) -> (Trainer<f32>, Vec<EpochReport>) {
    let (x, y) = data();
    let mut trainer = Trainer::with_options(network(), config, options(threads)).unwrap();
    let reports = trainer.fit(x.view(), &y, &mut ()).unwrap();
    (trainer, reports)
}

/// A report's epoch, training loss, samples, learning rate, validation loss and accuracy.
type Numbers = (usize, u64, usize, u64, Option<u64>, Option<u64>);

/// Everything of a report but the timings, floats as bits.
fn numbers(reports: &[EpochReport]) -> Vec<Numbers> {
    reports
        .iter()
        .map(|r| {
            (
                r.epoch,
                r.train_loss.to_bits(),
                r.samples,
                r.learning_rate.to_bits(),
                r.validation_loss.map(f64::to_bits),
                r.validation_accuracy.map(f64::to_bits),
            )
        })
        .collect()
}

/// The rule worked by hand on a metric sequence: the best epoch, and the epoch it stops at.
fn expected_stop(metrics: &[f64], rule: StopRule) -> (usize, Option<usize>) {
    let better = |m: f64, best: f64| match rule.metric {
        Metric::Loss => m < best - rule.min_delta,
        Metric::Accuracy => m > best + rule.min_delta,
    };
    let (mut best, mut waited) = (0, 0);
    for (epoch, &m) in metrics.iter().enumerate().skip(1) {
        if better(m, metrics[best]) {
            (best, waited) = (epoch, 0);
        } else {
            waited += 1;
            if waited == rule.patience {
                return (best, Some(epoch));
            }
        }
    }
    (best, None)
}

fn metric_of(report: &EpochReport, metric: Metric) -> f64 {
    match metric {
        Metric::Loss => report.validation_loss.unwrap(),
        Metric::Accuracy => report.validation_accuracy.unwrap(),
    }
}

#[test]
fn the_split_depends_on_seed_and_n_alone_and_partitions_the_rows() {
    let (train, valid) = validation_split(64, 0.25, 11).unwrap();
    assert_eq!((train.len(), valid.len()), (48, 16));
    let mut all: Vec<usize> = train.iter().chain(&valid).copied().collect();
    all.sort_unstable();
    assert_eq!(all, (0..64).collect::<Vec<_>>());
    assert!(train.windows(2).all(|w| w[0] < w[1]) && valid.windows(2).all(|w| w[0] < w[1]));
    assert_eq!(
        validation_split(64, 0.25, 11).unwrap(),
        (train, valid.clone())
    );
    assert_ne!(validation_split(64, 0.25, 12).unwrap().1, valid);
    // Not simply the first or last rows.
    assert!(valid != (0..16).collect::<Vec<_>>() && valid != (48..64).collect::<Vec<_>>());
}

#[test]
fn validation_and_weights_do_not_depend_on_the_thread_count() {
    let rule = Some(StopRule::patience(8));
    let (one, reports) = fit(config(60, rule), 1);
    assert!(reports.iter().all(|r| r.samples == 48));
    for threads in [2, 7] {
        let (other, other_reports) = fit(config(60, rule), threads);
        assert_eq!(
            numbers(&other_reports),
            numbers(&reports),
            "{threads} threads"
        );
        assert_eq!(other.network(), one.network(), "{threads} threads");
        assert_eq!(other.early_stopping(), one.early_stopping());
    }
}

#[test]
fn a_large_validation_set_gives_the_same_bits_on_any_threads() {
    // 1000 rows: several evaluation chunks, on one thread or split over a pool.
    let x = Array2::from_shape_fn((1000, 4), |(i, j)| ((i * (5 + j)) % 23) as f32 / 22.0);
    let y: Vec<usize> = (0..1000).map(|i| (i * 7 / 3) % 2).collect();
    let config = TrainConfig {
        validation_fraction: None,
        ..config(2, None)
    };
    let mut seen = Vec::new();
    for threads in [1, 2, 7] {
        let mut trainer =
            Trainer::with_options(network(), config.clone(), options(threads)).unwrap();
        let train = x.slice(ndarray::s![..40, ..]);
        let reports = trainer
            .fit_with_validation(train, &y[..40], x.view(), &y, &mut ())
            .unwrap();
        let evaluation = trainer.network().evaluate(x.view(), &y).unwrap();
        let last = reports.last().unwrap();
        assert_eq!(
            last.validation_loss,
            Some(evaluation.loss),
            "{threads} threads"
        );
        assert_eq!(last.validation_accuracy, Some(evaluation.accuracy()));
        seen.push(numbers(&reports));
    }
    assert!(seen.iter().all(|s| s == &seen[0]));
}

#[test]
fn a_fraction_trains_as_the_same_split_given_by_hand() {
    let (x, y) = data();
    let (trained, reports) = fit(config(5, None), 1);
    let (train, valid) = validation_split(64, 0.25, 11).unwrap();
    let pick = |rows: &[usize]| {
        let labels: Vec<usize> = rows.iter().map(|&i| y[i]).collect();
        (x.select(Axis(0), rows), labels)
    };
    let ((train_x, train_y), (valid_x, valid_y)) = (pick(&train), pick(&valid));
    let given = TrainConfig {
        validation_fraction: None,
        ..config(5, None)
    };
    let mut trainer = Trainer::with_options(network(), given, options(1)).unwrap();
    let by_hand = trainer
        .fit_with_validation(train_x.view(), &train_y, valid_x.view(), &valid_y, &mut ())
        .unwrap();
    assert_eq!(numbers(&by_hand), numbers(&reports));
    assert_eq!(trainer.network(), trained.network());
    let last = reports.last().unwrap();
    let evaluation = trained
        .network()
        .evaluate(valid_x.view(), &valid_y)
        .unwrap();
    assert_eq!(last.validation_loss, Some(evaluation.loss));
    assert_eq!(last.validation_accuracy, Some(evaluation.accuracy()));
}

/// Runs `rule` and checks it against the same run without one: it stops where the metric
/// sequence says, and ends with exactly the weights of a run of best + 1 epochs.
fn check_stop(rule: StopRule) {
    // The run without a rule trains the same epochs up to the stop.
    let (_, full) = fit(config(60, None), 1);
    let metrics: Vec<f64> = full.iter().map(|r| metric_of(r, rule.metric)).collect();
    let (best, stop) = expected_stop(&metrics, rule);
    let stop = stop.expect("the setup stops within 60 epochs");
    assert!(
        best > 0,
        "a best after the first epoch makes the restore visible: {metrics:?}"
    );
    let (stopped, reports) = fit(config(60, Some(rule)), 1);
    assert_eq!(reports.len(), stop + 1, "{rule:?}: {metrics:?}");
    assert_eq!(numbers(&reports), numbers(&full[..=stop]));
    let tracking = stopped.early_stopping().unwrap();
    assert_eq!(tracking.best(), Some((best, metrics[best])));
    assert!(tracking.stopped());
    let (exact, _) = fit(config(best + 1, None), 1);
    assert_eq!(stopped.network(), exact.network());
    let (last, _) = fit(config(stop + 1, None), 1);
    assert_ne!(
        stopped.network(),
        last.network(),
        "the restore changes the weights"
    );
}

#[test]
fn early_stopping_on_the_validation_loss_stops_where_the_losses_say() {
    // A patience that outlasts the noisy first epochs.
    check_stop(StopRule::patience(8));
    // Improvements of at most 0.005 do not count.
    check_stop(StopRule {
        min_delta: 0.005,
        ..StopRule::patience(8)
    });
}

#[test]
fn early_stopping_on_the_validation_accuracy_stops_where_the_accuracies_say() {
    let (_, full) = fit(config(60, None), 1);
    let first = full[0].validation_accuracy.unwrap();
    // The accuracy must improve after the first epoch for the check to mean anything.
    let rule = StopRule {
        metric: Metric::Accuracy,
        ..StopRule::patience(4)
    };
    if full.iter().any(|r| r.validation_accuracy.unwrap() > first) {
        check_stop(rule);
    } else {
        panic!("the setup's accuracy never improves: {full:?}");
    }
}

#[test]
fn without_validation_the_training_loss_decides() {
    let config = TrainConfig {
        validation_fraction: None,
        ..config(60, None)
    };
    let (_, full) = fit(config.clone(), 1);
    assert!(full
        .iter()
        .all(|r| r.validation_loss.is_none() && r.validation_accuracy.is_none()));
    let losses: Vec<f64> = full.iter().map(|r| r.train_loss).collect();
    let rule = StopRule::patience(2);
    let (best, stop) = expected_stop(&losses, rule);
    let stop = stop.expect("the training loss stalls within 60 epochs");
    let ruled = TrainConfig {
        early_stopping: Some(rule),
        ..config.clone()
    };
    let (stopped, reports) = fit(ruled, 1);
    assert_eq!(reports.len(), stop + 1);
    assert_eq!(stopped.early_stopping().unwrap().best().unwrap().0, best);
    let exact = TrainConfig {
        epochs: best + 1,
        ..config
    };
    assert_eq!(stopped.network(), fit(exact, 1).0.network());
}

#[test]
fn running_out_of_epochs_keeps_the_best_weights_and_trains_no_more() {
    let (_, full) = fit(config(30, None), 1);
    let losses: Vec<f64> = full.iter().map(|r| r.validation_loss.unwrap()).collect();
    let (best, stop) = expected_stop(&losses, StopRule::patience(100));
    assert_eq!(stop, None);
    assert!(
        best < 29,
        "the last epoch is not the best: the restore shows"
    );
    let (mut trainer, reports) = fit(config(30, Some(StopRule::patience(100))), 1);
    assert_eq!(reports.len(), 30);
    assert!(trainer.early_stopping().unwrap().stopped());
    assert_eq!(
        trainer.network(),
        fit(config(best + 1, None), 1).0.network()
    );
    let before = trainer.network().clone();
    let (x, y) = data();
    assert!(trainer.fit(x.view(), &y, &mut ()).unwrap().is_empty());
    assert_eq!(trainer.network(), &before);
}

/// Stops `fit` after epoch `after`.
struct BreakAfter(usize);

impl Observer for BreakAfter {
    fn epoch_end(&mut self, report: &EpochReport) -> ControlFlow<()> {
        if report.epoch == self.0 {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    }
}

#[test]
fn a_resumed_checkpoint_ends_as_the_uninterrupted_run() {
    let (x, y) = data();
    for (epochs, rule, dropout) in [
        (60, StopRule::patience(8), vec![]),
        (30, StopRule::patience(100), vec![]), // runs out of epochs, restores at the end
        (60, StopRule::patience(4), vec![0.3]), // dropout masks resume with the run too
    ] {
        let config = TrainConfig {
            dropout,
            ..config(epochs, Some(rule))
        };
        let (whole, whole_reports) = fit(config.clone(), 1);
        let last = whole_reports.len() - 1;
        for k in 0..=last {
            let mut first = Trainer::with_options(network(), config.clone(), options(1)).unwrap();
            let mut reports = first.fit(x.view(), &y, &mut BreakAfter(k)).unwrap();
            let bytes = first.checkpoint_bytes().unwrap();
            let checkpoint = Checkpoint::<f32>::from_safetensors(&bytes).unwrap();
            assert_eq!(checkpoint.epoch, k + 1);
            assert_eq!(&checkpoint.network, first.network());
            // A model load reads the checkpoint's network and skips the training tensors.
            assert_eq!(
                &Network::<f32>::from_safetensors(&bytes).unwrap(),
                first.network()
            );
            let mut resumed = checkpoint.resume().unwrap();
            assert_eq!(resumed.early_stopping(), first.early_stopping());
            reports.extend(resumed.fit(x.view(), &y, &mut ()).unwrap());
            assert_eq!(
                numbers(&reports),
                numbers(&whole_reports),
                "break after {k}"
            );
            assert_eq!(resumed.network(), whole.network(), "break after {k}");
            assert_eq!(resumed.early_stopping(), whole.early_stopping());
        }
    }
}

#[test]
fn accuracy_is_reported_for_classes_only() {
    let (x, y) = data();
    let one_hot = lernmi::one_hot::<f32>(&y, 2).unwrap();
    let plain = TrainConfig {
        validation_fraction: None,
        ..config(1, None)
    };
    let mut trainer = Trainer::new(network(), plain.clone()).unwrap();
    let r = trainer
        .fit_with_validation(x.view(), &y, x.view(), &one_hot, &mut ())
        .unwrap();
    assert!(
        r[0].validation_accuracy.is_some(),
        "one-hot rows for softmax"
    );
    let regression = Network::<f32>::builder(&[4, 8, 2])
        .output(Activation::Identity)
        .loss(Loss::SquaredError)
        .build()
        .unwrap();
    let mut trainer = Trainer::new(regression, plain.clone()).unwrap();
    let r = trainer
        .fit_with_validation(x.view(), &one_hot, x.view(), &one_hot, &mut ())
        .unwrap();
    assert!(r[0].validation_loss.is_some() && r[0].validation_accuracy.is_none());
}

fn invalid(err: Error, which: &str) {
    assert!(
        matches!(err, Error::InvalidHyperparameter { name, .. } if name == which),
        "expected an invalid {which}, got {err}"
    );
}

#[test]
fn bad_fractions_rules_and_validation_sets_are_typed_errors() {
    for fraction in [0.0, 1.0, -0.25, 1.5, f64::NAN, f64::INFINITY] {
        let config = TrainConfig {
            validation_fraction: Some(fraction),
            ..TrainConfig::default()
        };
        invalid(
            Trainer::new(network(), config).unwrap_err(),
            "validation_fraction",
        );
        invalid(
            validation_split(10, fraction, 0).unwrap_err(),
            "validation_fraction",
        );
    }
    let (x, y) = data();
    let (x3, y3) = (x.slice(ndarray::s![..3, ..]), &y[..3]);
    for fraction in [0.9, 0.1] {
        // 3 rows: 0.9 leaves no training row, 0.1 no validation row.
        let config = TrainConfig {
            validation_fraction: Some(fraction),
            ..TrainConfig::default()
        };
        let mut trainer = Trainer::new(network(), config).unwrap();
        invalid(
            trainer.fit(x3, y3, &mut ()).unwrap_err(),
            "validation_fraction",
        );
        assert_eq!(trainer.epoch(), 0);
    }
    let rule = |patience, min_delta| TrainConfig {
        early_stopping: Some(StopRule {
            metric: Metric::Loss,
            patience,
            min_delta,
        }),
        ..TrainConfig::default()
    };
    invalid(
        Trainer::new(network(), rule(0, 0.0)).unwrap_err(),
        "early_stopping.patience",
    );
    invalid(
        Trainer::new(network(), rule(1, -1.0)).unwrap_err(),
        "early_stopping.min_delta",
    );

    let plain = TrainConfig::default();
    let mut trainer = Trainer::new(network(), plain.clone()).unwrap();
    let wide = Array2::<f32>::zeros((4, 5));
    let err = trainer.fit_with_validation(x.view(), &y, wide.view(), &y[..4], &mut ());
    assert!(
        matches!(
            err,
            Err(Error::InputWidth {
                expected: 4,
                got: 5
            })
        ),
        "{err:?}"
    );
    let err = trainer.fit_with_validation(x.view(), &y, x.view(), &y[..4], &mut ());
    assert!(
        matches!(err, Err(Error::RowCountMismatch { .. })),
        "{err:?}"
    );
    let rows = Array2::<f32>::zeros((64, 3));
    let err = trainer.fit_with_validation(x.view(), &y, x.view(), &rows, &mut ());
    assert!(
        matches!(
            err,
            Err(Error::TargetWidth {
                expected: 2,
                got: 3
            })
        ),
        "{err:?}"
    );
    let empty = Array2::<f32>::zeros((0, 4));
    let err = trainer.fit_with_validation(x.view(), &y, empty.view(), &y[..0], &mut ());
    assert!(matches!(err, Err(Error::Empty { .. })), "{err:?}");
    let err = trainer.fit_with_validation(x.view(), &y, x.view(), &[7; 64], &mut ());
    assert!(matches!(err, Err(Error::LabelOutOfRange { .. })), "{err:?}");
    assert_eq!(trainer.epoch(), 0, "nothing trains on bad input");

    let mut split = Trainer::new(network(), config(1, None)).unwrap();
    let err = split.fit_with_validation(x.view(), &y, x.view(), &y, &mut ());
    invalid(err.unwrap_err(), "validation_fraction");

    let accuracy = TrainConfig {
        early_stopping: Some(StopRule {
            metric: Metric::Accuracy,
            ..StopRule::patience(2)
        }),
        ..plain
    };
    let mut trainer = Trainer::new(network(), accuracy.clone()).unwrap();
    let err = trainer.fit(x.view(), &y, &mut ()).unwrap_err();
    assert!(matches!(err, Error::MetricUnavailable { .. }), "{err}");
    let regression = Network::<f32>::builder(&[4, 8, 2])
        .output(Activation::Identity)
        .loss(Loss::SquaredError)
        .build()
        .unwrap();
    let rows = lernmi::one_hot::<f32>(&y, 2).unwrap();
    let mut trainer = Trainer::new(regression, accuracy).unwrap();
    let err = trainer.fit_with_validation(x.view(), &rows, x.view(), &rows, &mut ());
    assert!(
        matches!(err, Err(Error::MetricUnavailable { .. })),
        "{err:?}"
    );
}

/// Re-serialises a checkpoint after editing its training JSON and dropping tensors.
fn edited(bytes: &[u8], drop: impl Fn(&str) -> bool, edit: impl FnOnce(&mut Value)) -> Vec<u8> {
    let file = SafeTensors::deserialize(bytes).unwrap();
    let (_, header) = SafeTensors::read_metadata(bytes).unwrap();
    let mut metadata: HashMap<String, String> = header.metadata().clone().unwrap();
    let mut training: Value = serde_json::from_str(&metadata[TRAINING_KEY]).unwrap();
    edit(&mut training);
    metadata.insert(TRAINING_KEY.into(), training.to_string());
    let tensors: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = file
        .tensors()
        .into_iter()
        .filter(|(n, _)| !drop(n))
        .map(|(n, t)| (n, t.dtype(), t.shape().to_vec(), t.data().to_vec()))
        .collect();
    let views = tensors
        .iter()
        .map(|(n, d, s, b)| (n.clone(), TensorView::new(*d, s.clone(), b).unwrap()));
    safetensors::serialize(views, Some(metadata)).unwrap()
}

#[test]
fn checkpoints_without_early_stopping_keep_their_layout_and_damaged_ones_are_refused() {
    let (x, y) = data();
    let plain = TrainConfig {
        validation_fraction: None,
        ..config(2, None)
    };
    let mut trainer = Trainer::new(network(), plain).unwrap();
    trainer.train_epoch(x.view(), &y, &mut ()).unwrap();
    let bytes = trainer.checkpoint_bytes().unwrap();
    let (_, header) = SafeTensors::read_metadata(&bytes).unwrap();
    let text = &header.metadata().as_ref().unwrap()[TRAINING_KEY];
    assert!(
        !text.contains("early_stopping") && !text.contains("validation"),
        "{text}"
    );

    let mut trainer = Trainer::new(network(), config(10, Some(StopRule::patience(3)))).unwrap();
    trainer.fit(x.view(), &y, &mut BreakAfter(2)).unwrap();
    let bytes = trainer.checkpoint_bytes().unwrap();
    assert!(Checkpoint::<f32>::from_safetensors(&bytes).is_ok());
    let refused = |bytes: Vec<u8>, needle: &str| {
        let err = Checkpoint::<f32>::from_safetensors(&bytes).unwrap_err();
        assert!(matches!(err, Error::BadFile { .. }), "{err}");
        assert!(err.to_string().contains(needle), "{needle:?} in {err}");
    };
    let best = |n: &str| n.starts_with("early_stopping.best.");
    refused(
        edited(
            &bytes,
            |_| false,
            |t| t["config"]["early_stopping"] = Value::Null,
        ),
        "without config.early_stopping",
    );
    refused(
        edited(
            &bytes,
            |_| false,
            |t| t["early_stopping"]["best"][0] = 3.into(),
        ),
        "best epoch 3",
    );
    refused(
        edited(
            &bytes,
            |_| false,
            |t| t["early_stopping"]["waited"] = 4.into(),
        ),
        "4 epochs waited",
    );
    refused(edited(&bytes, best, |_| {}), "0 best-weight tensors");
    refused(
        edited(
            &bytes,
            |_| false,
            |t| t["early_stopping"]["best"] = Value::Null,
        ),
        "best-weight tensors",
    );
    refused(
        edited(
            &bytes,
            |_| false,
            |t| t["config"]["early_stopping"]["patience"] = 0.into(),
        ),
        "patience",
    );
    refused(
        edited(
            &bytes,
            |_| false,
            |t| t["config"]["validation_fraction"] = 1.into(),
        ),
        "validation_fraction",
    );
}
