//! ONNX export: the structure of the files, read back with a minimal protobuf reader written
//! here from the wire format, and (ignored by a plain `cargo test`, run by `.ci/run`) the real
//! check: `tests/python/onnx_check.py` runs `onnx.checker` and ONNX Runtime on the files and
//! compares ONNX Runtime's outputs with lernmi's.

use std::path::Path;
use std::process::Command;

use lernmi::data::standardize::Standardizer;
use lernmi::{Activation, Error, Float, Loss, Model, Network};
use ndarray::Array2;
use safetensors::tensor::{Dtype, TensorView};

/// A protobuf field's value, as the wire format gives it.
#[derive(Clone, Copy, Debug)]
enum Value<'a> {
    Varint(u64),
    Fixed32(u32),
    /// (No field lernmi writes is 64-bit fixed; its value is skipped.)
    Fixed64,
    Bytes(&'a [u8]),
}

fn read_varint(bytes: &[u8], at: &mut usize) -> u64 {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let b = bytes[*at];
        *at += 1;
        value |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return value;
        }
    }
    panic!("varint longer than 10 bytes");
}

/// The fields of a message, in order; panics on anything malformed.
fn fields(bytes: &[u8]) -> Vec<(u32, Value<'_>)> {
    let mut at = 0;
    let mut out = Vec::new();
    while at < bytes.len() {
        let key = read_varint(bytes, &mut at);
        let (field, wire_type) = ((key >> 3) as u32, key & 7);
        let value = match wire_type {
            0 => Value::Varint(read_varint(bytes, &mut at)),
            1 => {
                at += 8;
                Value::Fixed64
            }
            2 => {
                let len = read_varint(bytes, &mut at) as usize;
                at += len;
                Value::Bytes(&bytes[at - len..at])
            }
            5 => {
                at += 4;
                Value::Fixed32(u32::from_le_bytes(bytes[at - 4..at].try_into().unwrap()))
            }
            other => panic!("wire type {other} at byte {at}"),
        };
        out.push((field, value));
    }
    assert_eq!(at, bytes.len(), "a field runs past the end of its message");
    out
}

fn all<'a>(message: &'a [u8], field: u32) -> Vec<Value<'a>> {
    fields(message)
        .into_iter()
        .filter(|(f, _)| *f == field)
        .map(|(_, v)| v)
        .collect()
}

fn one<'a>(message: &'a [u8], field: u32) -> Value<'a> {
    let values = all(message, field);
    assert_eq!(values.len(), 1, "field {field}: {values:?}");
    values[0]
}

fn bytes(value: Value<'_>) -> &[u8] {
    match value {
        Value::Bytes(b) => b,
        other => panic!("expected a length-delimited field, got {other:?}"),
    }
}

fn text(message: &[u8], field: u32) -> String {
    String::from_utf8(bytes(one(message, field)).to_vec()).unwrap()
}

fn int(message: &[u8], field: u32) -> i64 {
    match one(message, field) {
        Value::Varint(v) => v as i64,
        other => panic!("expected a varint, got {other:?}"),
    }
}

fn texts(message: &[u8], field: u32) -> Vec<String> {
    all(message, field)
        .into_iter()
        .map(|v| String::from_utf8(bytes(v).to_vec()).unwrap())
        .collect()
}

/// ModelProto.graph.
fn graph(model: &[u8]) -> &[u8] {
    bytes(one(model, 7))
}

/// (op_type, inputs, outputs) of every node, in order.
fn nodes(model: &[u8]) -> Vec<(String, Vec<String>, Vec<String>)> {
    all(graph(model), 1)
        .into_iter()
        .map(|n| {
            let n = bytes(n);
            (text(n, 4), texts(n, 1), texts(n, 2))
        })
        .collect()
}

fn ops(model: &[u8]) -> Vec<String> {
    nodes(model).into_iter().map(|(op, _, _)| op).collect()
}

/// The initializer named `name`: dims, data type, raw data.
fn initializer<'a>(model: &'a [u8], name: &str) -> (Vec<i64>, i64, &'a [u8]) {
    let tensor = all(graph(model), 5)
        .into_iter()
        .map(bytes)
        .find(|t| text(t, 8) == name)
        .unwrap_or_else(|| panic!("no initializer {name}"));
    let dims = all(tensor, 1)
        .into_iter()
        .map(|v| match v {
            Value::Varint(d) => d as i64,
            other => panic!("dims: {other:?}"),
        })
        .collect();
    (dims, int(tensor, 2), bytes(one(tensor, 9)))
}

/// The attribute `name` of a node (AttributeProto bytes).
fn attribute<'a>(node: &'a [u8], name: &str) -> &'a [u8] {
    all(node, 5)
        .into_iter()
        .map(bytes)
        .find(|a| text(a, 1) == name)
        .unwrap_or_else(|| panic!("no attribute {name}"))
}

fn le_bytes<F: Float>(values: impl Iterator<Item = F>) -> Vec<u8> {
    let mut out = Vec::new();
    for x in values {
        let x = x.to_f64_lossless();
        if F::NAME == "f32" {
            out.extend_from_slice(&(x as f32).to_le_bytes());
        } else {
            out.extend_from_slice(&x.to_le_bytes());
        }
    }
    out
}

fn relu_net() -> Network {
    Network::<f32>::builder(&[5, 7, 3]).seed(3).build().unwrap()
}

#[test]
fn the_model_header_names_the_opset_and_holds_the_architecture() {
    let net = relu_net();
    let model = net.to_onnx_bytes().unwrap();
    assert_eq!(int(&model, 1), lernmi::io::onnx::IR_VERSION);
    assert_eq!(text(&model, 2), "lernmi");
    let opsets = all(&model, 8);
    assert_eq!(opsets.len(), 1);
    let opset = bytes(opsets[0]);
    assert!(all(opset, 1).is_empty(), "default domain");
    assert_eq!(int(opset, 2), lernmi::io::onnx::OPSET);
    // metadata_props: the same strings as the model file's metadata.
    let props: Vec<(String, String)> = all(&model, 14)
        .into_iter()
        .map(|e| (text(bytes(e), 1), text(bytes(e), 2)))
        .collect();
    let keys: Vec<&str> = props.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys, ["format", lernmi::io::model::ARCHITECTURE_KEY]);
    assert_eq!(props[0].1, "lernmi");
    let architecture: serde_json::Value = serde_json::from_str(&props[1].1).unwrap();
    assert_eq!(architecture["sizes"], serde_json::json!([5, 7, 3]));
    assert_eq!(architecture["dtype"], "f32");
    assert_eq!(architecture["activations"][1]["name"], "softmax");
}

/// (name, elem_type, dims as text: a number or the parameter's name) of a graph input/output.
fn value_info(model: &[u8], field: u32) -> (String, i64, Vec<String>) {
    let infos = all(graph(model), field);
    assert_eq!(infos.len(), 1);
    let info = bytes(infos[0]);
    let tensor = bytes(one(bytes(one(info, 2)), 1));
    let dims = all(bytes(one(tensor, 2)), 1)
        .into_iter()
        .map(|d| {
            let d = bytes(d);
            match fields(d)[0] {
                (1, Value::Varint(v)) => v.to_string(),
                (2, Value::Bytes(b)) => String::from_utf8(b.to_vec()).unwrap(),
                other => panic!("dimension {other:?}"),
            }
        })
        .collect();
    (text(info, 1), int(tensor, 1), dims)
}

#[test]
fn input_and_output_are_named_with_a_dynamic_batch() {
    let model = relu_net().to_onnx_bytes().unwrap();
    assert_eq!(
        value_info(&model, 11),
        ("input".into(), 1, vec!["batch".into(), "5".into()])
    );
    assert_eq!(
        value_info(&model, 12),
        ("output".into(), 1, vec!["batch".into(), "3".into()])
    );
    let wide: Network<f64> = Network::<f64>::builder(&[2, 300]).build().unwrap();
    let model = wide.to_onnx_bytes().unwrap();
    assert_eq!(value_info(&model, 11).1, 11, "DOUBLE");
    assert_eq!(value_info(&model, 12).2, ["batch", "300"]);
}

#[test]
fn weights_are_row_major_initializers_named_like_the_model_file() {
    for input_activation in [None, Some(Activation::Sigmoid)] {
        let net: Network<f64> = Network::<f64>::builder(&[4, 6, 2])
            .input_activation(input_activation)
            .seed(9)
            .build()
            .unwrap();
        let model = net.to_onnx_bytes().unwrap();
        let first = usize::from(input_activation.is_some());
        for (l, layer) in net.layers().iter().enumerate() {
            let m = first + 2 * l;
            let (dims, dtype, raw) = initializer(&model, &format!("{m}.weight"));
            assert_eq!(dims, [layer.n_out() as i64, layer.n_in() as i64]);
            assert_eq!(dtype, 11);
            assert_eq!(raw, le_bytes(layer.weights().iter().copied()));
            let (dims, _, raw) = initializer(&model, &format!("{m}.bias"));
            assert_eq!(dims, [layer.n_out() as i64]);
            assert_eq!(raw, le_bytes(layer.biases().iter().copied()));
        }
    }
}

#[test]
fn every_activation_becomes_its_operators() {
    let build = |hidden, output, loss| -> Network<f32> {
        Network::<f32>::builder(&[3, 4, 2])
            .hidden(hidden)
            .output(output)
            .loss(loss)
            .build()
            .unwrap()
    };
    let squared = Loss::SquaredError;
    let cases = [
        (
            build(Activation::Relu, Activation::Softmax, Loss::CrossEntropy),
            vec!["Gemm", "Relu", "Gemm", "Softmax"],
        ),
        (
            build(Activation::Tanh, Activation::Sigmoid, squared),
            vec!["Gemm", "Tanh", "Gemm", "Sigmoid"],
        ),
        (
            build(Activation::Identity, Activation::Identity, squared),
            vec!["Gemm", "Gemm"],
        ),
        (
            build(
                Activation::LeakyRelu { slope: 0.2 },
                Activation::Identity,
                squared,
            ),
            vec!["Gemm", "LeakyRelu", "Gemm"],
        ),
    ];
    for (net, expected) in cases {
        let model = net.to_onnx_bytes().unwrap();
        assert_eq!(ops(&model), expected);
        // The values chain from `input` to `output`, each Gemm with transB = 1.
        let nodes = nodes(&model);
        assert_eq!(nodes[0].1[0], "input");
        assert_eq!(nodes.last().unwrap().2, ["output"]);
        for node in all(graph(&model), 1).into_iter().map(bytes) {
            if text(node, 4) == "Gemm" {
                assert_eq!(int(attribute(node, "transB"), 3), 1);
            }
            if text(node, 4) == "Softmax" {
                assert_eq!(int(attribute(node, "axis"), 3), -1);
            }
            if text(node, 4) == "LeakyRelu" {
                match one(attribute(node, "alpha"), 2) {
                    Value::Fixed32(bits) => assert_eq!(f32::from_bits(bits), 0.2f32),
                    other => panic!("alpha {other:?}"),
                }
            }
        }
    }
}

#[test]
fn the_seeds_network_starts_with_a_sigmoid_and_f64_leaky_relu_keeps_its_slope() {
    let seed: Network<f64> = Network::<f64>::lernmi_builder(&[3, 2, 1]).build().unwrap();
    let model = seed.to_onnx_bytes().unwrap();
    assert_eq!(
        ops(&model),
        ["Sigmoid", "Gemm", "Sigmoid", "Gemm", "Sigmoid"]
    );
    assert_eq!(
        nodes(&model)[1].1,
        ["input.activated", "1.weight", "1.bias"]
    );
    // A 32-bit `alpha` would round 0.01; f64 networks spell the slope out in f64.
    let leaky: Network<f64> = Network::<f64>::builder(&[3, 4, 2])
        .hidden(Activation::LeakyRelu { slope: 0.01 })
        .build()
        .unwrap();
    let model = leaky.to_onnx_bytes().unwrap();
    assert_eq!(
        ops(&model),
        ["Gemm", "Greater", "Mul", "Where", "Gemm", "Softmax"]
    );
    let (dims, dtype, raw) = initializer(&model, "layer0.slope");
    assert!(dims.is_empty());
    assert_eq!(dtype, 11);
    assert_eq!(raw, 0.01f64.to_le_bytes());
}

#[test]
fn a_models_standardizer_comes_first_in_f64_and_in_the_metadata() {
    let standardizer = Standardizer {
        mean: vec![1.5, -2.0, 0.25],
        std: vec![2.0, 0.0, 0.1],
    };
    let net = Network::<f32>::builder(&[3, 4, 2]).seed(3).build().unwrap();
    let model = Model::new(net.clone(), Some(standardizer.clone())).unwrap();
    let onnx = model.to_onnx_bytes().unwrap();
    assert_eq!(
        ops(&onnx)[..4],
        ["Cast", "Sub", "Div", "Cast"],
        "f32: cast to double, standardise, cast back"
    );
    let (dims, data_type, raw) = initializer(&onnx, "standardize.std");
    assert_eq!((dims, data_type), (vec![3], 11), "DOUBLE, one per feature");
    // std 0 divides by 1: the feature is centred only, as Standardizer::transform does.
    assert_eq!(raw, le_bytes([2.0f64, 1.0, 0.1].into_iter()));
    let keys: Vec<String> = all(&onnx, 14)
        .into_iter()
        .map(|entry| text(bytes(entry), 1))
        .collect();
    assert!(keys.contains(&"lernmi.standardize".to_string()), "{keys:?}");
    // Without a standardizer, a model exports exactly as its network.
    let plain = Model::new(net.clone(), None).unwrap();
    assert_eq!(plain.to_onnx_bytes().unwrap(), net.to_onnx_bytes().unwrap());
    let f64_model = Model::new(
        Network::<f64>::builder(&[3, 4, 2]).seed(3).build().unwrap(),
        Some(standardizer),
    )
    .unwrap();
    assert_eq!(
        ops(&f64_model.to_onnx_bytes().unwrap())[..2],
        ["Sub", "Div"]
    );
}

#[test]
fn export_is_deterministic_and_save_writes_the_same_bytes() {
    let net = relu_net();
    let bytes = net.to_onnx_bytes().unwrap();
    assert_eq!(bytes, relu_net().to_onnx_bytes().unwrap());
    let dir = std::env::temp_dir().join(format!("lernmi-onnx-save-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("net.onnx");
    net.save_onnx(&path).unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), bytes);
    // Nothing but the file is left in the directory (the temporary file is renamed).
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
    let missing = dir.join("no-such-directory").join("net.onnx");
    match net.save_onnx(&missing) {
        Err(Error::Io { path, .. }) => assert!(path.starts_with(&dir), "{}", path.display()),
        other => panic!("expected an I/O error naming the file, got {other:?}"),
    }
    std::fs::remove_dir_all(&dir).ok();
}

/// Deterministic pseudo-random numbers in [0, 1) (SplitMix64).
struct Rng(u64);

impl Rng {
    fn next_f64(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Writes `name.onnx` and `name.io.safetensors` (inputs in [−3, 3) and lernmi's predictions)
/// for the Python side.
fn write_case<F: Float>(dir: &Path, name: &str, net: &Network<F>) {
    net.save_onnx(dir.join(format!("{name}.onnx"))).unwrap();
    let mut rng = Rng(11);
    let inputs = Array2::from_shape_fn((37, net.n_inputs()), |_| F::of(6.0 * rng.next_f64() - 3.0));
    let predictions = net.predict(inputs.view()).unwrap();
    write_io(dir, name, &inputs, &predictions);
}

/// As [`write_case`] for a model with a standardizer: raw features far from 0 and of scales
/// from 0.001 to 1000 (and one constant feature), which the graph standardises first.
fn write_standardized_case<F: Float>(dir: &Path, name: &str, net: Network<F>) {
    let n_in = net.n_inputs();
    let mean: Vec<f64> = (0..n_in).map(|i| 250.0 * i as f64 - 400.3).collect();
    let mut std: Vec<f64> = (0..n_in).map(|i| 10f64.powi(i as i32 % 7 - 3)).collect();
    std[1] = 0.0;
    let standardizer = Standardizer { mean, std };
    let mut rng = Rng(13);
    let inputs = Array2::from_shape_fn((37, n_in), |(_, c)| {
        let spread = if standardizer.std[c] > 0.0 {
            standardizer.std[c]
        } else {
            1.0
        };
        F::of(standardizer.mean[c] + spread * (4.0 * rng.next_f64() - 2.0))
    });
    let model = Model::new(net, Some(standardizer)).unwrap();
    model.save_onnx(dir.join(format!("{name}.onnx"))).unwrap();
    let predictions = model.predict(inputs.view()).unwrap();
    write_io(dir, name, &inputs, &predictions);
}

/// `name.io.safetensors`: the inputs and lernmi's predictions for them.
fn write_io<F: Float>(dir: &Path, name: &str, inputs: &Array2<F>, predictions: &Array2<F>) {
    let dtype = if F::NAME == "f32" {
        Dtype::F32
    } else {
        Dtype::F64
    };
    let (xb, pb) = (
        le_bytes(inputs.iter().copied()),
        le_bytes(predictions.iter().copied()),
    );
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

/// One network per activation (hidden and output), in both float types, and the seed's.
fn write_cases<F: Float>(dir: &Path) {
    let squared = Loss::SquaredError;
    let activations = [
        ("sigmoid", Activation::Sigmoid, Activation::Sigmoid, squared),
        ("tanh", Activation::Tanh, Activation::Tanh, squared),
        (
            "relu",
            Activation::Relu,
            Activation::Softmax,
            Loss::CrossEntropy,
        ),
        (
            "leaky-relu",
            Activation::LeakyRelu { slope: 0.01 },
            Activation::Identity,
            squared,
        ),
        (
            "leaky-relu-0.3",
            Activation::LeakyRelu { slope: 0.3 },
            Activation::LeakyRelu { slope: 0.3 },
            squared,
        ),
        (
            "identity",
            Activation::Identity,
            Activation::Identity,
            squared,
        ),
    ];
    for (seed, (name, hidden, output, loss)) in activations.into_iter().enumerate() {
        let net: Network<F> = Network::<F>::builder(&[6, 16, 8, 4])
            .hidden(hidden)
            .output(output)
            .loss(loss)
            .seed(seed as u64)
            .build()
            .unwrap();
        write_case(dir, &format!("{name}-{}", F::NAME), &net);
    }
    let seed: Network<F> = Network::<F>::lernmi_builder(&[6, 5, 3]).build().unwrap();
    write_case(dir, &format!("seed-{}", F::NAME), &seed);
    // The README's MNIST network: long sums, where the runtimes' orders of summation differ most.
    let mnist: Network<F> = Network::<F>::builder(&[784, 256, 128, 10]).build().unwrap();
    write_case(dir, &format!("mnist-{}", F::NAME), &mnist);
    // A model for raw features: the standardizer's nodes come first (the own_data example).
    let raw: Network<F> = Network::<F>::builder(&[9, 12, 3]).seed(5).build().unwrap();
    write_standardized_case(dir, &format!("standardized-{}", F::NAME), raw);
}

#[test]
#[ignore = "needs Python with onnx and onnxruntime: .ci/run provides them and runs it"]
fn onnx_runtime_agrees_with_lernmi() {
    let python = std::env::var("LERNMI_PYTHON").unwrap_or_else(|_| "python3".into());
    let dir = std::env::temp_dir().join(format!("lernmi-onnx-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    write_cases::<f32>(&dir);
    write_cases::<f64>(&dir);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/onnx_check.py");
    let output = Command::new(&python)
        .arg(&script)
        .arg(&dir)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {python}: {e} (set LERNMI_PYTHON)"));
    print!("{}", String::from_utf8_lossy(&output.stdout));
    eprint!("{}", String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "{} failed", script.display());
    std::fs::remove_dir_all(&dir).ok();
}
