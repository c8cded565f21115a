//! Model files load in Python (`safetensors.numpy`) with the same predictions, and models
//! written by Python load here.
//!
//! Needs a Python with numpy and safetensors, so it is ignored by a plain `cargo test`;
//! `.ci/run` installs them into a virtual environment and runs
//! `LERNMI_PYTHON=… cargo test --release --test python_interop -- --ignored`.

mod common;

use std::path::Path;
use std::process::Command;

use common::TestRng;
use lernmi::{Activation, Float, Loss, Network};
use ndarray::Array2;
use safetensors::tensor::{Dtype, SafeTensors, TensorView};

fn bytes_of<F: Float>(a: &Array2<F>) -> Vec<u8> {
    let mut out = Vec::new();
    for &x in a.iter() {
        let x = x.to_f64_lossless();
        if F::NAME == "f32" {
            out.extend_from_slice(&(x as f32).to_le_bytes());
        } else {
            out.extend_from_slice(&x.to_le_bytes());
        }
    }
    out
}

fn array_of<F: Float>(view: &TensorView<'_>) -> Array2<F> {
    let shape = view.shape();
    let values: Vec<F> = if F::NAME == "f32" {
        assert_eq!(view.dtype(), Dtype::F32);
        view.data()
            .chunks_exact(4)
            .map(|b| F::of(f64::from(f32::from_le_bytes(b.try_into().unwrap()))))
            .collect()
    } else {
        assert_eq!(view.dtype(), Dtype::F64);
        view.data()
            .chunks_exact(8)
            .map(|b| F::of(f64::from_le_bytes(b.try_into().unwrap())))
            .collect()
    };
    Array2::from_shape_vec((shape[0], shape[1]), values).unwrap()
}

/// Saves `net` and an `.io` file with inputs and lernmi's predictions for Python to check.
fn write_rust_model<F: Float>(dir: &Path, name: &str, net: &Network<F>) {
    net.save(dir.join(format!("{name}.safetensors"))).unwrap();
    let mut rng = TestRng(7);
    let inputs = Array2::from_shape_fn((11, net.n_inputs()), |_| F::of(2.0 * rng.next_f64()));
    let predictions = net.predict(inputs.view()).unwrap();
    let dtype = if F::NAME == "f32" {
        Dtype::F32
    } else {
        Dtype::F64
    };
    let (xb, pb) = (bytes_of(&inputs), bytes_of(&predictions));
    let tensors = [
        (
            "inputs",
            TensorView::new(dtype, inputs.shape().to_vec(), &xb).unwrap(),
        ),
        (
            "predictions",
            TensorView::new(dtype, predictions.shape().to_vec(), &pb).unwrap(),
        ),
    ];
    let bytes = safetensors::serialize(tensors, None).unwrap();
    std::fs::write(dir.join(format!("{name}.io.safetensors")), bytes).unwrap();
}

/// Loads a model Python wrote and compares predictions with numpy's.
fn check_python_model<F: Float>(dir: &Path, name: &str, tolerance: f64) {
    let net = Network::<F>::load(dir.join(format!("{name}.safetensors"))).unwrap();
    let io = std::fs::read(dir.join(format!("{name}.io.safetensors"))).unwrap();
    let io = SafeTensors::deserialize(&io).unwrap();
    let inputs = array_of::<F>(&io.tensor("inputs").unwrap());
    let expected = array_of::<F>(&io.tensor("predictions").unwrap());
    let ours = net.predict(inputs.view()).unwrap();
    let diff = ours
        .iter()
        .zip(&expected)
        .map(|(a, b)| (a.to_f64_lossless() - b.to_f64_lossless()).abs())
        // A NaN difference is infinite (`f64::max` would drop it).
        .fold(
            0.0,
            |m, d| if d.is_nan() { f64::INFINITY } else { m.max(d) },
        );
    println!(
        "{name}.safetensors: sizes {:?} {}: lernmi vs numpy max |diff| {diff:.3e}",
        net.sizes(),
        F::NAME
    );
    assert!(diff <= tolerance, "{name}: {diff}");
}

#[test]
#[ignore = "needs Python with numpy and safetensors: .ci/run provides them and runs it"]
fn models_cross_between_lernmi_and_numpy() {
    let python = std::env::var("LERNMI_PYTHON").unwrap_or_else(|_| "python3".into());
    let dir = std::env::temp_dir().join(format!("lernmi-interop-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();

    let relu: Network = Network::<f32>::builder(&[6, 16, 8, 4])
        .seed(1)
        .build()
        .unwrap();
    write_rust_model(&dir, "rust-relu-f32", &relu);
    let leaky: Network<f64> = Network::<f64>::builder(&[6, 5, 3])
        .hidden(Activation::LeakyRelu { slope: 0.2 })
        .output(Activation::Identity)
        .loss(Loss::SquaredError)
        .seed(2)
        .build()
        .unwrap();
    write_rust_model(&dir, "rust-leaky-f64", &leaky);
    let seed: Network<f64> = Network::<f64>::lernmi_builder(&[6, 4, 2]).build().unwrap();
    write_rust_model(&dir, "rust-seed-f64", &seed);
    let tanh: Network = Network::<f32>::builder(&[6, 7, 3])
        .hidden(Activation::Tanh)
        .output(Activation::Sigmoid)
        .seed(3)
        .build()
        .unwrap();
    write_rust_model(&dir, "rust-tanh-f32", &tanh);

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/interop.py");
    let output = Command::new(&python)
        .arg(&script)
        .arg(&dir)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {python}: {e} (set LERNMI_PYTHON)"));
    print!("{}", String::from_utf8_lossy(&output.stdout));
    eprint!("{}", String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "{} failed", script.display());

    check_python_model::<f32>(&dir, "python-relu-f32", 1e-5);
    check_python_model::<f64>(&dir, "python-tanh-f64", 1e-12);
    check_python_model::<f64>(&dir, "python-seed-f64", 1e-12);
    // A Python file loaded as the wrong float type is refused.
    assert!(Network::<f64>::load(dir.join("python-relu-f32.safetensors")).is_err());
    std::fs::remove_dir_all(&dir).ok();
}
