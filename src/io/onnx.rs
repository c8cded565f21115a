//! ONNX export: a [`Network`] as a standard ONNX model, for ONNX Runtime and every other runtime
//! that reads ONNX.
//!
//! # The graph
//!
//! One input, `input` (batch × n_in), and one output, `output` (batch × n_out), both with the
//! symbolic batch dimension `batch`. The nodes, in order:
//!
//! - for a [`Model`] with a standardizer, `Div(Sub(input, standardize.mean), standardize.std)`
//!   in `f64` (between two `Cast`s in an `f32` graph), as [`Standardizer::transform`] computes;
//! - the input activation, for networks that have one (the seed's `Sigmoid`);
//! - per layer, `Gemm(a, W, b)` with `transB = 1` (the weights are stored n_out × n_in, as
//!   PyTorch's `nn.Linear`), then the activation: `Sigmoid`, `Tanh`, `Relu`, `Softmax` on the
//!   last axis, no node for the identity, and for a leaky ReLU `LeakyRelu` in `f32` networks or
//!   `Where(Greater(z, 0), z, Mul(z, slope))` in `f64` networks (the `alpha` attribute of
//!   `LeakyRelu` is a 32-bit float, which would round an `f64` slope).
//!
//! The weights and biases are initializers named as in the model files (`0.weight`, `0.bias`,
//! `2.weight`, …: the `nn.Sequential` layout of [`crate::io::model`]), stored little-endian in
//! `raw_data` as `FLOAT` or `DOUBLE`, the network's float type. `metadata_props` holds the same
//! two entries as a model file's metadata: `"format": "lernmi"` and `"lernmi.architecture"`, the
//! architecture as JSON. The operator set is [`OPSET`] of the default domain, IR version
//! [`IR_VERSION`]. Exporting the same network twice gives the same bytes.
//!
//! # The encoding
//!
//! The file is a protobuf message (`ModelProto` of `onnx.proto`). Export writes only, and only
//! a handful of fields, so the encoder here is the few protobuf primitives it needs (varints,
//! keys, length-delimited fields) with the field numbers of the official `onnx.proto`, rather
//! than a protobuf crate and its code generator or derive macros in every build. The weights are
//! copied once, into their `raw_data` fields; [`Network::save_onnx`] streams those pieces to
//! the file. `tests/python/onnx_check.py` runs `onnx.checker` (full check) on exported files
//! and compares ONNX Runtime's outputs with lernmi's.

use std::io::Write;
use std::path::Path;

use crate::data::standardize::{Standardizer, METADATA_KEY as STANDARDIZE_KEY};
use crate::{Activation, Error, Float, Model, Network, Result};

/// The version of the default (`ai.onnx`) operator set the exported graphs use.
///
/// Every operator used has had its present meaning since opset 13 (`Softmax` along one axis);
/// 16 is the lowest that Rust's ONNX importers (burn's `onnx-ir`) ask for, and every maintained
/// runtime reads it.
pub const OPSET: i64 = 16;
/// The ONNX IR version that goes with [`OPSET`].
pub const IR_VERSION: i64 = 8;
/// The name of the graph's input.
pub const INPUT: &str = "input";
/// The name of the graph's output.
pub const OUTPUT: &str = "output";
/// The name of the symbolic batch dimension of the input and the output.
pub const BATCH: &str = "batch";

/// The largest message protobuf implementations parse (2 GiB − 1).
const MAX_MESSAGE: u64 = i32::MAX as u64;

/// The name errors use when the bytes are not bound for a file.
const IN_MEMORY: &str = "<in-memory ONNX model>";

/// Protobuf's wire format: the primitives the export needs.
mod wire {
    /// Wire type of varint-encoded fields (int32, int64, enums).
    pub const VARINT: u8 = 0;
    /// Wire type of length-delimited fields (strings, bytes, messages).
    pub const LEN: u8 = 2;
    /// Wire type of 32-bit fields (float).
    pub const I32: u8 = 5;

    /// Appends `value` as a base-128 varint, low groups first.
    pub fn varint(out: &mut Vec<u8>, mut value: u64) {
        while value >= 0x80 {
            out.push((value as u8 & 0x7f) | 0x80);
            value >>= 7;
        }
        out.push(value as u8);
    }

    /// The number of bytes [`varint`] writes for `value`.
    pub fn varint_len(value: u64) -> usize {
        (64 - (value | 1).leading_zeros() as usize).div_ceil(7)
    }

    /// Appends a field key: the field number and the wire type.
    pub fn key(out: &mut Vec<u8>, field: u32, wire_type: u8) {
        varint(out, u64::from(field) << 3 | u64::from(wire_type));
    }

    /// Appends an int64 (or int32, or enum) field; negative values take ten bytes, as
    /// protobuf's two's-complement encoding of int64 has it.
    pub fn int(out: &mut Vec<u8>, field: u32, value: i64) {
        key(out, field, VARINT);
        varint(out, value as u64);
    }

    /// Appends a float field.
    pub fn float(out: &mut Vec<u8>, field: u32, value: f32) {
        key(out, field, I32);
        out.extend_from_slice(&value.to_le_bytes());
    }

    /// Appends a length-delimited field: a string, bytes, or an encoded message.
    pub fn bytes(out: &mut Vec<u8>, field: u32, value: &[u8]) {
        key(out, field, LEN);
        varint(out, value.len() as u64);
        out.extend_from_slice(value);
    }

    /// Appends the key and the length of a length-delimited field whose `len` bytes follow.
    pub fn len_prefix(out: &mut Vec<u8>, field: u32, len: usize) {
        key(out, field, LEN);
        varint(out, len as u64);
    }
}

/// Field numbers of `onnx.proto`, by message.
mod field {
    pub mod model {
        pub const IR_VERSION: u32 = 1;
        pub const PRODUCER_NAME: u32 = 2;
        pub const PRODUCER_VERSION: u32 = 3;
        pub const DOC_STRING: u32 = 6;
        pub const GRAPH: u32 = 7;
        pub const OPSET_IMPORT: u32 = 8;
        pub const METADATA_PROPS: u32 = 14;
    }
    pub mod opset_id {
        pub const VERSION: u32 = 2;
    }
    pub mod string_entry {
        pub const KEY: u32 = 1;
        pub const VALUE: u32 = 2;
    }
    pub mod graph {
        pub const NODE: u32 = 1;
        pub const NAME: u32 = 2;
        pub const INITIALIZER: u32 = 5;
        pub const INPUT: u32 = 11;
        pub const OUTPUT: u32 = 12;
    }
    pub mod node {
        pub const INPUT: u32 = 1;
        pub const OUTPUT: u32 = 2;
        pub const NAME: u32 = 3;
        pub const OP_TYPE: u32 = 4;
        pub const ATTRIBUTE: u32 = 5;
    }
    pub mod attribute {
        pub const NAME: u32 = 1;
        pub const F: u32 = 2;
        pub const I: u32 = 3;
        pub const TYPE: u32 = 20;
        /// `AttributeType` values.
        pub const FLOAT: i64 = 1;
        pub const INT: i64 = 2;
    }
    pub mod tensor {
        pub const DIMS: u32 = 1;
        pub const DATA_TYPE: u32 = 2;
        pub const NAME: u32 = 8;
        pub const RAW_DATA: u32 = 9;
        /// `DataType` values.
        pub const FLOAT: i64 = 1;
        pub const DOUBLE: i64 = 11;
    }
    pub mod value_info {
        pub const NAME: u32 = 1;
        pub const TYPE: u32 = 2;
    }
    pub mod type_proto {
        pub const TENSOR_TYPE: u32 = 1;
        pub const ELEM_TYPE: u32 = 1;
        pub const SHAPE: u32 = 2;
    }
    pub mod shape {
        pub const DIM: u32 = 1;
        pub const DIM_VALUE: u32 = 1;
        pub const DIM_PARAM: u32 = 2;
    }
}

/// The `TensorProto.DataType` of `F`.
fn data_type<F: Float>() -> i64 {
    if F::NAME == "f32" {
        field::tensor::FLOAT
    } else {
        field::tensor::DOUBLE
    }
}

/// A node attribute.
enum Attribute {
    Int(&'static str, i64),
    Float(&'static str, f32),
}

impl Attribute {
    fn encode(&self) -> Vec<u8> {
        use field::attribute::*;
        let mut out = Vec::new();
        match *self {
            Attribute::Int(name, value) => {
                wire::bytes(&mut out, NAME, name.as_bytes());
                wire::int(&mut out, TYPE, INT);
                wire::int(&mut out, I, value);
            }
            Attribute::Float(name, value) => {
                wire::bytes(&mut out, NAME, name.as_bytes());
                wire::int(&mut out, TYPE, FLOAT);
                wire::float(&mut out, F, value);
            }
        }
        out
    }
}

/// A `ValueInfoProto` for a (batch × width) tensor of `F`.
fn batch_value_info<F: Float>(name: &str, width: usize) -> Vec<u8> {
    let mut batch = Vec::new();
    wire::bytes(&mut batch, field::shape::DIM_PARAM, BATCH.as_bytes());
    let mut columns = Vec::new();
    wire::int(&mut columns, field::shape::DIM_VALUE, width as i64);
    let mut shape = Vec::new();
    wire::bytes(&mut shape, field::shape::DIM, &batch);
    wire::bytes(&mut shape, field::shape::DIM, &columns);
    let mut tensor = Vec::new();
    wire::int(&mut tensor, field::type_proto::ELEM_TYPE, data_type::<F>());
    wire::bytes(&mut tensor, field::type_proto::SHAPE, &shape);
    let mut type_proto = Vec::new();
    wire::bytes(&mut type_proto, field::type_proto::TENSOR_TYPE, &tensor);
    let mut info = Vec::new();
    wire::bytes(&mut info, field::value_info::NAME, name.as_bytes());
    wire::bytes(&mut info, field::value_info::TYPE, &type_proto);
    info
}

/// The graph's fields, each encoded whole (key, length, message), in order: their
/// concatenation is the `GraphProto`. Initializers are kept as separate pieces so that the
/// weights are copied only once.
struct GraphPieces<F> {
    pieces: Vec<Vec<u8>>,
    /// Names of the nodes so far, to keep them distinct.
    nodes: usize,
    _float: std::marker::PhantomData<F>,
}

impl<F: Float> GraphPieces<F> {
    fn node(&mut self, op: &str, inputs: &[&str], output: &str, attributes: &[Attribute]) {
        use field::node::*;
        let mut node = Vec::new();
        for input in inputs {
            wire::bytes(&mut node, INPUT, input.as_bytes());
        }
        wire::bytes(&mut node, OUTPUT, output.as_bytes());
        let name = format!("{op}_{}", self.nodes);
        self.nodes += 1;
        wire::bytes(&mut node, NAME, name.as_bytes());
        wire::bytes(&mut node, OP_TYPE, op.as_bytes());
        for attribute in attributes {
            wire::bytes(&mut node, ATTRIBUTE, &attribute.encode());
        }
        let mut piece = Vec::new();
        wire::bytes(&mut piece, field::graph::NODE, &node);
        self.pieces.push(piece);
    }

    /// An initializer of shape `dims` holding `values` in row-major order, written straight
    /// into its piece.
    fn initializer<'a, T: Float>(
        &mut self,
        name: &str,
        dims: &[usize],
        values: impl Iterator<Item = &'a T>,
    ) {
        use field::tensor::*;
        let count: usize = dims.iter().product();
        let data_len = count * std::mem::size_of::<T>();
        let mut head = Vec::new();
        for &d in dims {
            wire::int(&mut head, DIMS, d as i64);
        }
        wire::int(&mut head, DATA_TYPE, data_type::<T>());
        wire::bytes(&mut head, NAME, name.as_bytes());
        let body_len = head.len() + 1 + wire::varint_len(data_len as u64) + data_len;
        let mut piece = Vec::with_capacity(body_len + 1 + wire::varint_len(body_len as u64));
        wire::len_prefix(&mut piece, field::graph::INITIALIZER, body_len);
        piece.extend_from_slice(&head);
        wire::len_prefix(&mut piece, RAW_DATA, data_len);
        for &x in values {
            if T::NAME == "f32" {
                piece.extend_from_slice(&(x.to_f64_lossless() as f32).to_le_bytes());
            } else {
                piece.extend_from_slice(&x.to_f64_lossless().to_le_bytes());
            }
        }
        debug_assert_eq!(
            piece.len(),
            body_len + 1 + wire::varint_len(body_len as u64)
        );
        self.pieces.push(piece);
    }

    /// Nodes standardising `input` as [`Standardizer::transform`] does, in `f64` and rounded once
    /// to `F` (an `f32` graph casts to `DOUBLE` and back); returns the name of the result. A
    /// feature of standard deviation 0 is divided by 1, which leaves it centred only, exactly.
    fn standardize(&mut self, standardizer: &Standardizer, width: usize) -> String {
        let divisors: Vec<f64> = standardizer
            .std
            .iter()
            .map(|&s| if s > 0.0 { s } else { 1.0 })
            .collect();
        self.initializer("standardize.mean", &[width], standardizer.mean.iter());
        self.initializer("standardize.std", &[width], divisors.iter());
        let wide = F::NAME == "f32";
        let x = if wide {
            let to = Attribute::Int("to", field::tensor::DOUBLE);
            self.node("Cast", &[INPUT], "input.f64", &[to]);
            "input.f64"
        } else {
            INPUT
        };
        self.node("Sub", &[x, "standardize.mean"], "input.centred", &[]);
        let out = if wide {
            "input.standardized.f64"
        } else {
            "input.standardized"
        };
        self.node("Div", &["input.centred", "standardize.std"], out, &[]);
        if wide {
            let to = Attribute::Int("to", field::tensor::FLOAT);
            self.node("Cast", &[out], "input.standardized", &[to]);
        }
        "input.standardized".to_string()
    }

    /// Nodes computing `activation` of the value `z` into the value `out` (the callers leave
    /// the identity out: they name `z` `out` instead).
    fn activation(&mut self, activation: Activation, z: &str, out: &str, place: &str) {
        match activation {
            Activation::Identity => self.node("Identity", &[z], out, &[]),
            Activation::Sigmoid => self.node("Sigmoid", &[z], out, &[]),
            Activation::Tanh => self.node("Tanh", &[z], out, &[]),
            Activation::Relu => self.node("Relu", &[z], out, &[]),
            Activation::Softmax => self.node("Softmax", &[z], out, &[Attribute::Int("axis", -1)]),
            Activation::LeakyRelu { slope } if F::NAME == "f32" => {
                let alpha = Attribute::Float("alpha", slope as f32);
                self.node("LeakyRelu", &[z], out, &[alpha]);
            }
            Activation::LeakyRelu { slope } => {
                // lernmi's definition, z > 0 ? z : slope·z, op for op, in the network's type.
                let (zero, slope_name) = (format!("{place}.zero"), format!("{place}.slope"));
                self.initializer(&zero, &[], [F::zero()].iter());
                self.initializer(&slope_name, &[], [F::of(slope)].iter());
                let positive = format!("{place}.positive");
                let scaled = format!("{place}.scaled");
                self.node("Greater", &[z, &zero], &positive, &[]);
                self.node("Mul", &[z, &slope_name], &scaled, &[]);
                self.node("Where", &[&positive, z, &scaled], out, &[]);
            }
        }
    }
}

/// The `ModelProto` in pieces whose concatenation is the file.
///
/// # Errors
/// [`Error::BadFile`] naming `path` if the weights alone pass protobuf's size limit (checked
/// before anything is copied).
fn model_pieces<F: Float>(
    network: &Network<F>,
    standardizer: Option<&Standardizer>,
    path: &Path,
) -> Result<Vec<Vec<u8>>> {
    let parameter_bytes = network.parameter_count() as u64 * std::mem::size_of::<F>() as u64;
    check_size(parameter_bytes, path)?;
    // The architecture JSON and the tensor names, exactly as a model file holds them.
    let (tensors, metadata) = crate::io::model::network_tensors(network);
    let names: Vec<String> = tensors.into_iter().map(|(name, _)| name).collect();
    let mut metadata: Vec<(String, String)> = metadata.into_iter().collect();
    if let Some(s) = standardizer {
        metadata.push((STANDARDIZE_KEY.to_string(), s.to_metadata()));
    }
    metadata.sort();
    let mut graph = graph_pieces(network, standardizer, &names);
    let graph_len: usize = graph.iter().map(Vec::len).sum();
    let mut pieces = Vec::with_capacity(graph.len() + 1);
    pieces.push(model_head(network, &metadata, graph_len));
    pieces.append(&mut graph);
    Ok(pieces)
}

/// The `GraphProto`'s fields; `names` holds each layer's weight and bias names, in order.
fn graph_pieces<F: Float>(
    network: &Network<F>,
    standardizer: Option<&Standardizer>,
    names: &[String],
) -> Vec<Vec<u8>> {
    let mut graph = GraphPieces::<F> {
        pieces: Vec::new(),
        nodes: 0,
        _float: std::marker::PhantomData,
    };
    let mut name = Vec::new();
    wire::bytes(&mut name, field::graph::NAME, b"lernmi");
    graph.pieces.push(name);
    let mut x = INPUT.to_string();
    if let Some(s) = standardizer {
        x = graph.standardize(s, network.n_inputs());
    }
    if let Some(act) = network
        .input_activation()
        .filter(|a| *a != Activation::Identity)
    {
        graph.activation(act, &x, "input.activated", "input_activation");
        x = "input.activated".to_string();
    }
    let last = network.layers().len() - 1;
    for (l, layer) in network.layers().iter().enumerate() {
        let (weight, bias) = (&names[2 * l], &names[2 * l + 1]);
        let (n_out, n_in) = (layer.n_out(), layer.n_in());
        graph.initializer(weight, &[n_out, n_in], layer.weights().iter());
        graph.initializer(bias, &[n_out], layer.biases().iter());
        let out = if l == last {
            OUTPUT.to_string()
        } else {
            format!("layer{l}.a")
        };
        let identity = layer.activation() == Activation::Identity;
        let z = if identity {
            out.clone()
        } else {
            format!("layer{l}.z")
        };
        let transposed = [Attribute::Int("transB", 1)];
        graph.node("Gemm", &[&x, weight, bias], &z, &transposed);
        if !identity {
            graph.activation(layer.activation(), &z, &out, &format!("layer{l}"));
        }
        x = out;
    }
    for (f, value, width) in [
        (field::graph::INPUT, INPUT, network.n_inputs()),
        (field::graph::OUTPUT, OUTPUT, network.n_outputs()),
    ] {
        let mut piece = Vec::new();
        wire::bytes(&mut piece, f, &batch_value_info::<F>(value, width));
        graph.pieces.push(piece);
    }
    graph.pieces
}

/// The `ModelProto`'s fields up to the key and length of its graph, `graph_len` bytes that
/// follow.
fn model_head<F: Float>(
    network: &Network<F>,
    metadata: &[(String, String)],
    graph_len: usize,
) -> Vec<u8> {
    let mut head = Vec::new();
    wire::int(&mut head, field::model::IR_VERSION, IR_VERSION);
    wire::bytes(&mut head, field::model::PRODUCER_NAME, b"lernmi");
    let version = env!("CARGO_PKG_VERSION").as_bytes();
    wire::bytes(&mut head, field::model::PRODUCER_VERSION, version);
    let doc = format!("lernmi network, sizes {:?}", network.sizes());
    wire::bytes(&mut head, field::model::DOC_STRING, doc.as_bytes());
    let mut opset = Vec::new();
    wire::int(&mut opset, field::opset_id::VERSION, OPSET);
    wire::bytes(&mut head, field::model::OPSET_IMPORT, &opset);
    for (key, value) in metadata {
        let mut entry = Vec::new();
        wire::bytes(&mut entry, field::string_entry::KEY, key.as_bytes());
        wire::bytes(&mut entry, field::string_entry::VALUE, value.as_bytes());
        wire::bytes(&mut head, field::model::METADATA_PROPS, &entry);
    }
    wire::len_prefix(&mut head, field::model::GRAPH, graph_len);
    head
}

/// The pieces' total length, refused past the size protobuf parsers accept.
fn checked_len(pieces: &[Vec<u8>], path: &Path) -> Result<usize> {
    let total: u64 = pieces.iter().map(|p| p.len() as u64).sum();
    check_size(total, path)?;
    Ok(total as usize)
}

fn check_size(total: u64, path: &Path) -> Result<()> {
    if total > MAX_MESSAGE {
        return Err(Error::BadFile {
            path: path.to_path_buf(),
            problem: format!(
                "the ONNX model takes {total} bytes, more than the {MAX_MESSAGE} a protobuf \
                 message can hold"
            ),
        });
    }
    Ok(())
}

/// The pieces concatenated in memory.
fn joined(pieces: Vec<Vec<u8>>, path: &Path) -> Result<Vec<u8>> {
    let mut bytes = Vec::with_capacity(checked_len(&pieces, path)?);
    for piece in pieces {
        bytes.extend_from_slice(&piece);
    }
    Ok(bytes)
}

/// The pieces streamed to `path`, atomically.
fn write(pieces: Vec<Vec<u8>>, path: &Path) -> Result<()> {
    checked_len(&pieces, path)?;
    crate::io::safetensors::write_atomically(path, |w| {
        pieces.iter().try_for_each(|piece| w.write_all(piece))
    })
}

impl<F: Float> Network<F> {
    /// The network as the bytes of an ONNX model (see [`crate::io::onnx`] for the graph).
    ///
    /// ```
    /// # use lernmi::Network;
    /// let net: Network = Network::<f32>::builder(&[4, 8, 3]).seed(7).build()?;
    /// let bytes = net.to_onnx_bytes()?;
    /// assert_eq!(bytes, net.to_onnx_bytes()?); // deterministic
    /// # Ok::<(), lernmi::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::BadFile`] if the model would exceed protobuf's 2 GiB message limit.
    pub fn to_onnx_bytes(&self) -> Result<Vec<u8>> {
        let path = Path::new(IN_MEMORY);
        joined(model_pieces(self, None, path)?, path)
    }

    /// Saves the network to `path` as an ONNX model, atomically (see
    /// [`crate::io::safetensors::write_atomically`]): the graph is described in [`crate::io::onnx`].
    ///
    /// # Errors
    /// [`Error::Io`] naming the file if it cannot be written (the previous file is then
    /// intact); [`Error::BadFile`] if the model would exceed protobuf's 2 GiB message limit.
    pub fn save_onnx(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        write(model_pieces(self, None, path)?, path)
    }
}

impl<F: Float> Model<F> {
    /// The model as the bytes of an ONNX model: the network's graph (see [`crate::io::onnx`])
    /// after its standardizer's nodes, so that the runtime takes raw features as
    /// [`Model::predict`] does. The standardizer is also in `metadata_props`, under
    /// [`STANDARDIZE_KEY`](crate::data::standardize::METADATA_KEY).
    ///
    /// # Errors
    /// As [`Network::to_onnx_bytes`].
    pub fn to_onnx_bytes(&self) -> Result<Vec<u8>> {
        let path = Path::new(IN_MEMORY);
        joined(
            model_pieces(self.network(), self.standardizer(), path)?,
            path,
        )
    }

    /// Saves the model to `path` as an ONNX model, atomically, as [`Model::to_onnx_bytes`]
    /// encodes it.
    ///
    /// # Errors
    /// As [`Network::save_onnx`].
    pub fn save_onnx(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        write(
            model_pieces(self.network(), self.standardizer(), path)?,
            path,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_match_protobufs_encoding() {
        let cases: [(u64, &[u8]); 5] = [
            (0, &[0]),
            (1, &[1]),
            (127, &[0x7f]),
            (300, &[0xac, 0x02]),
            (
                u64::MAX,
                &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01],
            ),
        ];
        for (value, expected) in cases {
            let mut out = Vec::new();
            wire::varint(&mut out, value);
            assert_eq!(out, expected, "{value}");
            assert_eq!(wire::varint_len(value), expected.len(), "{value}");
        }
        // int64 −1, as `Softmax(axis = -1)` writes it: ten bytes.
        let mut out = Vec::new();
        wire::int(&mut out, 3, -1);
        assert_eq!(out.len(), 11);
        assert_eq!(out[0], 3 << 3);
    }

    #[test]
    fn models_past_two_gibibytes_are_refused() {
        let path = Path::new("big.onnx");
        assert!(check_size(MAX_MESSAGE, path).is_ok());
        let err = check_size(MAX_MESSAGE + 1, path).unwrap_err();
        assert!(matches!(err, Error::BadFile { .. }), "{err}");
    }
}
