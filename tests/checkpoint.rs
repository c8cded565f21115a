//! Checkpoints: resuming gives the same bits as never stopping.

mod common;

use lernmi::data::{synthetic, PixelScale};
use lernmi::io::checkpoint::Checkpoint;
use lernmi::Schedule;
use lernmi::{Error, Float, Network, Optimizer, RunOptions, TrainConfig, Trainer};
use ndarray::Array2;

fn data<F: Float>() -> (Array2<F>, Array2<F>) {
    let set = synthetic::generate(300, 7).unwrap();
    (set.inputs::<F>(PixelScale::Unit), set.targets::<F>())
}

fn config(optimizer: Optimizer) -> TrainConfig {
    TrainConfig {
        epochs: 4,
        batch_size: 24,
        shard_size: 8,
        optimizer,
        schedule: Schedule::Cosine { floor: 0.1 },
        weight_decay: 1e-4,
        seed: 42,
        ..TrainConfig::default()
    }
}

fn threads(n: usize) -> RunOptions {
    RunOptions {
        threads: Some(n),
        ..RunOptions::default()
    }
}

/// A trainer of `net` with `config(optimizer)` on one thread.
fn trainer<F: Float>(net: Network<F>, optimizer: Optimizer) -> Trainer<F> {
    Trainer::with_options(net, config(optimizer), threads(1)).unwrap()
}

/// Trains `config.epochs` epochs straight through, and again stopping after `stop` epochs,
/// saving a checkpoint to disk, loading it and training on (with `resume_threads`).
fn check_resume<F: Float>(optimizer: Optimizer, stop: usize, resume_threads: usize) {
    let (x, y) = data::<F>();
    let fresh = || {
        Network::<F>::builder(&[x.ncols(), 16, y.ncols()])
            .seed(3)
            .build()
            .unwrap()
    };
    let mut straight = trainer(fresh(), optimizer);
    straight.fit(x.view(), y.view(), &mut ()).unwrap();
    let straight = straight.into_network();

    let mut trainer = Trainer::with_options(fresh(), config(optimizer), threads(2)).unwrap();
    for _ in 0..stop {
        trainer.train_epoch(x.view(), y.view(), &mut ()).unwrap();
    }
    let path = std::env::temp_dir().join(format!(
        "lernmi-resume-{}-{}-{stop}-{}.safetensors",
        F::NAME,
        optimizer.name(),
        std::process::id()
    ));
    trainer.save_checkpoint(&path).unwrap();
    drop(trainer);

    let mut checkpoint = Checkpoint::<F>::load(&path).unwrap();
    std::fs::remove_file(&path).ok();
    assert_eq!(checkpoint.epoch, stop);
    assert_eq!(checkpoint.config, config(optimizer));
    assert_eq!(checkpoint.options, threads(2));
    checkpoint.options.threads = Some(resume_threads);
    let mut trainer = checkpoint.resume().unwrap();
    assert_eq!(trainer.epoch(), stop);
    let reports = trainer.fit(x.view(), y.view(), &mut ()).unwrap();
    assert_eq!(reports.len(), 4 - stop);
    let resumed = trainer.into_network();
    assert_eq!(
        resumed.max_parameter_difference(&straight).unwrap(),
        0.0,
        "{} {} stopped after {stop}",
        F::NAME,
        optimizer.name()
    );
    assert_eq!(resumed, straight);
}

#[test]
fn resuming_gives_bit_identical_weights_for_every_optimizer() {
    for optimizer in [
        Optimizer::sgd(0.1),
        Optimizer::momentum(0.05, 0.9),
        Optimizer::nesterov(0.05, 0.9),
        Optimizer::adam(1e-3),
    ] {
        check_resume::<f32>(optimizer, 1, 1);
        check_resume::<f64>(optimizer, 2, 3);
    }
    check_resume::<f32>(Optimizer::adam(1e-3), 0, 2);
    check_resume::<f32>(Optimizer::adam(1e-3), 3, 1);
}

#[test]
fn a_checkpoint_holds_the_optimizer_state_and_loads_as_a_model() {
    let (x, y) = data::<f32>();
    let net: Network = Network::<f32>::builder(&[x.ncols(), 8, y.ncols()])
        .seed(1)
        .build()
        .unwrap();
    let mut trainer = trainer(net, Optimizer::adam(1e-3));
    trainer.train_epoch(x.view(), y.view(), &mut ()).unwrap();
    let bytes = trainer.checkpoint_bytes().unwrap();
    let net = trainer.network();
    let checkpoint = Checkpoint::<f32>::from_safetensors(&bytes).unwrap();
    assert_eq!(checkpoint.optimizer_state(), trainer.optimizer_state());
    assert_eq!(checkpoint.optimizer_state().steps(), 300u64.div_ceil(24));
    assert_eq!(&checkpoint.network, net);
    // The optimiser's moments are tensors beside the model's.
    let file = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut names = file.names();
    names.sort();
    assert_eq!(
        names,
        [
            "0.bias",
            "0.weight",
            "2.bias",
            "2.weight",
            "optimizer.first.0.bias",
            "optimizer.first.0.weight",
            "optimizer.first.1.bias",
            "optimizer.first.1.weight",
            "optimizer.second.0.bias",
            "optimizer.second.0.weight",
            "optimizer.second.1.bias",
            "optimizer.second.1.weight",
        ]
    );
    assert_eq!(&Network::<f32>::from_safetensors(&bytes).unwrap(), net);
    let path = std::env::temp_dir().join(format!(
        "lernmi-ckpt-model-{}.safetensors",
        std::process::id()
    ));
    std::fs::write(&path, &bytes).unwrap();
    assert_eq!(&Network::<f32>::load(&path).unwrap(), net);
    std::fs::remove_file(&path).ok();
    // A model file is not a checkpoint.
    let err = Checkpoint::<f32>::from_safetensors(&net.to_safetensors().unwrap()).unwrap_err();
    assert!(err.to_string().contains("lernmi.training"), "{err}");
}

#[test]
fn damaged_checkpoints_are_bad_file_errors() {
    let (x, y) = data::<f32>();
    let net: Network = Network::<f32>::builder(&[x.ncols(), 4, y.ncols()])
        .seed(1)
        .build()
        .unwrap();
    let mut trainer = trainer(net, Optimizer::momentum(0.05, 0.9));
    trainer.train_epoch(x.view(), y.view(), &mut ()).unwrap();
    let good = trainer.checkpoint_bytes().unwrap();
    for cut in (0..good.len()).step_by(97) {
        let err = Checkpoint::<f32>::from_safetensors(&good[..cut]).unwrap_err();
        assert!(matches!(err, Error::BadFile { .. }), "{err}");
    }
    let (_, header) = safetensors::SafeTensors::read_metadata(&good).unwrap();
    let metadata = header.metadata().clone().unwrap();
    let file = safetensors::SafeTensors::deserialize(&good).unwrap();
    let tensors = file.tensors();
    let edit = |metadata: std::collections::HashMap<String, String>,
                keep: &dyn Fn(&str) -> bool| {
        safetensors::serialize(
            tensors
                .iter()
                .filter(|(n, _)| keep(n))
                .map(|(n, t)| (n.clone(), t.clone())),
            Some(metadata),
        )
        .unwrap()
    };
    let expect = |bytes: Vec<u8>, needle: &str| {
        let err = Checkpoint::<f32>::from_safetensors(&bytes).unwrap_err();
        assert!(matches!(err, Error::BadFile { .. }), "{err}");
        assert!(
            err.to_string().contains(needle),
            "expected {needle:?} in: {err}"
        );
    };
    expect(
        edit(metadata.clone(), &|n| n != "optimizer.first.1.bias"),
        "2 layers keeps 4",
    );
    let mut adam = metadata.clone();
    let training = adam["lernmi.training"].replace(
        r#"{"name":"momentum","learning_rate":0.05,"momentum":0.9,"nesterov":false}"#,
        r#"{"name":"adam","learning_rate":0.05,"beta1":0.9,"beta2":0.999,"epsilon":1e-8}"#,
    );
    assert_ne!(training, adam["lernmi.training"], "the edit must apply");
    adam.insert("lernmi.training".into(), training);
    expect(edit(adam, &|_| true), "adam with 2 layers keeps 8");
    let mut bad_lr = metadata.clone();
    let training =
        bad_lr["lernmi.training"].replace("\"learning_rate\":0.05", "\"learning_rate\":-1.0");
    bad_lr.insert("lernmi.training".into(), training);
    expect(edit(bad_lr, &|_| true), "learning_rate");
    let mut unknown = metadata.clone();
    let training = unknown["lernmi.training"].replace("\"seed\":", "\"colour\":1,\"seed\":");
    unknown.insert("lernmi.training".into(), training);
    expect(edit(unknown, &|_| true), "colour");
}

#[test]
fn resume_refuses_another_kind_of_optimizer() {
    let net: Network = Network::<f32>::builder(&[3, 2]).build().unwrap();
    let trainer = trainer(net, Optimizer::adam(1e-3));
    let mut checkpoint =
        Checkpoint::<f32>::from_safetensors(&trainer.checkpoint_bytes().unwrap()).unwrap();
    checkpoint.config.optimizer = Optimizer::sgd(0.1);
    let err = checkpoint.resume().unwrap_err();
    assert!(matches!(err, Error::InvalidHyperparameter { .. }), "{err}");
}
