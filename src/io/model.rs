//! Model files: a [`Network`] in the [safetensors] format, and atomic writes.
//!
//! # The file layout
//!
//! The tensors are named and shaped as in the `state_dict` of a PyTorch `nn.Sequential` whose
//! modules are, in order: the input activation (only for networks that have one, such as the
//! seed's), then for every layer an `nn.Linear` followed by its activation module (`nn.ReLU`,
//! `nn.Sigmoid`, `nn.Identity`, …). A layer's `nn.Linear` is therefore module `2·l` (or `2·l + 1`
//! after an input activation), and its tensors are
//!
//! | tensor | shape | |
//! |---|---|---|
//! | `{m}.weight` | (n_out, n_in) | row-major, as `nn.Linear.weight` |
//! | `{m}.bias` | (n_out) | |
//!
//! so a 784-256-10 ReLU network holds `0.weight`, `0.bias`, `2.weight`, `2.bias`. The element
//! type is `F32` or `F64`, the network's float type. The file's `__metadata__` holds two
//! strings: `"format": "lernmi"` and `"lernmi.architecture"`, a JSON object such as
//!
//! ```json
//! {"format_version":1,"crate_version":"0.1.0","dtype":"f32","sizes":[784,256,10],
//!  "activations":[{"name":"relu"},{"name":"softmax"}],"loss":"cross_entropy",
//!  "input_activation":null,
//!  "layers":[{"weight":"0.weight","bias":"0.bias"},{"weight":"2.weight","bias":"2.bias"}]}
//! ```
//!
//! (`leaky_relu` carries its `"slope"`). A file written elsewhere loads if it has this metadata
//! and these tensors; `tests/python/interop.py` writes and reads such files with
//! `safetensors.numpy`.
//!
//! # Hostile files
//!
//! Loading trusts nothing: the safetensors header is validated (offsets, sizes, overflow) before
//! any tensor is touched, every tensor must have exactly the shape the architecture gives, every
//! value must be finite, and tensors are only ever copied out of the bytes the file holds, so a
//! header that claims huge layers costs no memory. A file larger than
//! [`DEFAULT_MAX_FILE_BYTES`] (or the limit given to [`Network::load_with_limit`]) is refused
//! before it is read. Every problem is an [`Error::BadFile`] naming the file.
//!
//! # Atomic saves
//!
//! [`Network::save`] writes through [`write_atomically`]: a save that fails or is interrupted
//! leaves the previous file as it was.
//!
//! [safetensors]: https://github.com/huggingface/safetensors

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};

use ndarray::ArrayView2;

use crate::data::standardize::{Standardizer, METADATA_KEY as STANDARDIZE_KEY};
use crate::io::safetensors::{bad_file, read_file, serialize, OwnedTensor, TensorFile};
pub use crate::io::safetensors::{write_atomically, DEFAULT_MAX_FILE_BYTES};
use crate::{Activation, Dense, Error, Evaluation, Float, Loss, Network, Result, Targets};

/// The value of the `"format"` metadata key in files this crate writes.
pub const FORMAT: &str = "lernmi";
/// The metadata key holding the architecture as JSON.
pub const ARCHITECTURE_KEY: &str = "lernmi.architecture";
/// The version of the file layout this crate writes and reads.
pub const FORMAT_VERSION: u32 = 1;

/// The name errors use for bytes that did not come from a file.
const IN_MEMORY: &str = "<in-memory model>";

/// The prefix of the optimiser's tensors in a checkpoint ([`crate::io::checkpoint`]), which a
/// model load skips.
pub const OPTIMIZER_PREFIX: &str = "optimizer.";
/// The prefix of the early-stopping best weights in a checkpoint, which a model load skips.
pub const BEST_WEIGHTS_PREFIX: &str = "early_stopping.best.";
/// The prefixes of a checkpoint's training tensors, which a model load skips.
pub(crate) const TRAINING_PREFIXES: [&str; 2] = [OPTIMIZER_PREFIX, BEST_WEIGHTS_PREFIX];

/// The names of one layer's tensors.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct LayerNames {
    weight: String,
    bias: String,
}

/// The architecture JSON in a model file's metadata.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Architecture {
    format_version: u32,
    crate_version: String,
    dtype: String,
    sizes: Vec<usize>,
    activations: Vec<Activation>,
    loss: String,
    input_activation: Option<Activation>,
    layers: Vec<LayerNames>,
}

/// The tensor names of `layers` layers in the `nn.Sequential` layout (see the module docs).
fn layer_names(layers: usize, input_activation: bool) -> Vec<LayerNames> {
    let first = usize::from(input_activation);
    (0..layers)
        .map(|l| LayerNames {
            weight: format!("{}.weight", first + 2 * l),
            bias: format!("{}.bias", first + 2 * l),
        })
        .collect()
}

/// The tensors of a network and its metadata, ready to serialise.
pub(crate) fn network_tensors<F: Float>(
    network: &Network<F>,
) -> (Vec<(String, OwnedTensor)>, HashMap<String, String>) {
    let names = layer_names(network.layers().len(), network.input_activation().is_some());
    let architecture = Architecture {
        format_version: FORMAT_VERSION,
        crate_version: env!("CARGO_PKG_VERSION").to_string(),
        dtype: F::NAME.to_string(),
        sizes: network.sizes(),
        activations: network.layers().iter().map(Dense::activation).collect(),
        loss: network.loss().name().to_string(),
        input_activation: network.input_activation(),
        layers: names.clone(),
    };
    let mut tensors = Vec::with_capacity(2 * names.len());
    for (layer, names) in network.layers().iter().zip(names) {
        tensors.push((names.weight, OwnedTensor::matrix(layer.weights())));
        tensors.push((names.bias, OwnedTensor::vector(layer.biases())));
    }
    let metadata = HashMap::from([
        ("format".to_string(), FORMAT.to_string()),
        (
            ARCHITECTURE_KEY.to_string(),
            serde_json::to_string(&architecture).expect("the architecture serialises to JSON"),
        ),
    ]);
    (tensors, metadata)
}

/// The network the file describes. Tensors other than the network's are an error unless their
/// names start with one of `allowed_prefixes`.
pub(crate) fn read_network<F: Float>(
    file: &TensorFile<'_>,
    allowed_prefixes: &[&str],
) -> Result<Network<F>> {
    let path = file.path;
    let arch: Architecture = file.json(ARCHITECTURE_KEY)?;
    let names = check_architecture::<F>(&arch, path)?;
    let loss = Loss::from_name(&arch.loss)
        .ok_or_else(|| bad_file(path, format!("unknown loss {:?}", arch.loss)))?;
    // Every tensor the file holds must be one we read (or explicitly allowed).
    for name in file.names() {
        let ours = names.iter().any(|n| n.weight == name || n.bias == name);
        if !ours && !allowed_prefixes.iter().any(|p| name.starts_with(p)) {
            return Err(bad_file(
                path,
                format!(
                    "unexpected tensor {name:?} for a network of sizes {:?}",
                    arch.sizes
                ),
            ));
        }
    }
    let mut dense = Vec::with_capacity(names.len());
    for (l, names) in names.iter().enumerate() {
        let (n_in, n_out) = (arch.sizes[l], arch.sizes[l + 1]);
        let weights = file.matrix::<F>(&names.weight, n_out, n_in)?;
        let biases = file.vector::<F>(&names.bias, n_out)?;
        let layer = Dense::new(weights, biases, arch.activations[l])
            .map_err(|e| bad_file(path, format!("layer {l}: {e}")))?;
        dense.push(layer);
    }
    Network::from_layers(dense, loss, arch.input_activation)
        .map_err(|e| bad_file(path, e.to_string()))
}

/// Checks an architecture against this crate and `F`: the format version, the float type, and
/// sizes, activations and tensor names that agree. Returns the tensor names.
fn check_architecture<F: Float>(arch: &Architecture, path: &Path) -> Result<Vec<LayerNames>> {
    if arch.format_version != FORMAT_VERSION {
        return Err(bad_file(
            path,
            format!(
                "file format version {} (written by lernmi {}); this is lernmi {} and reads version {FORMAT_VERSION}",
                arch.format_version,
                arch.crate_version,
                env!("CARGO_PKG_VERSION")
            ),
        ));
    }
    if arch.dtype != F::NAME {
        return Err(bad_file(
            path,
            format!(
                "the model is {}, but it is being loaded as Network<{}>",
                arch.dtype,
                F::NAME
            ),
        ));
    }
    let layers = arch.sizes.len().saturating_sub(1);
    if arch.sizes.len() < 2 {
        return Err(bad_file(
            path,
            format!(
                "a network needs at least 2 layer sizes, got {:?}",
                arch.sizes
            ),
        ));
    }
    if arch.activations.len() != layers || arch.layers.len() != layers {
        return Err(bad_file(
            path,
            format!(
                "{} layer sizes need {layers} activations and {layers} layer entries, got {} and {}",
                arch.sizes.len(),
                arch.activations.len(),
                arch.layers.len()
            ),
        ));
    }
    let expected_names = layer_names(layers, arch.input_activation.is_some());
    if arch.layers != expected_names {
        return Err(bad_file(
            path,
            format!(
                "tensor names {:?} do not follow the nn.Sequential layout, which gives {:?}",
                arch.layers, expected_names
            ),
        ));
    }
    Ok(expected_names)
}

impl<F: Float> Network<F> {
    /// The network as the bytes of a safetensors file (the layout in [`crate::io::model`]).
    ///
    /// # Errors
    /// [`Error::BadFile`] if serialisation fails (it does not for a valid network).
    pub fn to_safetensors(&self) -> Result<Vec<u8>> {
        let (tensors, metadata) = network_tensors(self);
        serialize(&tensors, metadata, Path::new(IN_MEMORY))
    }

    /// A network from the bytes of a safetensors file in the layout of [`crate::io::model`] (or of
    /// a checkpoint, whose optimiser state is ignored).
    ///
    /// # Errors
    /// [`Error::BadFile`] for anything malformed: see [`Network::load`].
    pub fn from_safetensors(bytes: &[u8]) -> Result<Self> {
        let file = TensorFile::parse(bytes, Path::new(IN_MEMORY))?;
        refuse_standardized(&file)?;
        read_network(&file, &TRAINING_PREFIXES)
    }

    /// Saves the network to `path` in safetensors format, atomically: see [`write_atomically`].
    ///
    /// ```
    /// # use lernmi::Network;
    /// let net: Network = Network::<f32>::builder(&[4, 8, 3]).seed(7).build()?;
    /// let path = std::env::temp_dir().join(format!("lernmi-doc-{}.safetensors", std::process::id()));
    /// net.save(&path)?;
    /// assert_eq!(Network::<f32>::load(&path)?, net);
    /// # std::fs::remove_file(&path).ok();
    /// # Ok::<(), lernmi::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Io`] naming the file if it cannot be written; the previous file is then intact.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let (tensors, metadata) = network_tensors(self);
        let bytes = serialize(&tensors, metadata, path)?;
        write_atomically(path, |w| w.write_all(&bytes))
    }

    /// Loads a network saved by [`Network::save`] (or written in the same layout elsewhere).
    /// A checkpoint file ([`crate::io::checkpoint`]) loads too: its optimiser state is ignored.
    ///
    /// # Errors
    /// [`Error::Io`] if the file cannot be read; [`Error::BadFile`] naming the file for a
    /// malformed safetensors file, missing or malformed metadata, another float type, a missing,
    /// extra or misshapen tensor, a non-finite value, an invalid architecture, or a file larger
    /// than [`DEFAULT_MAX_FILE_BYTES`].
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        Self::load_with_limit(path, DEFAULT_MAX_FILE_BYTES)
    }

    /// [`Network::load`] for a file of at most `max_bytes` bytes (instead of
    /// [`DEFAULT_MAX_FILE_BYTES`]).
    ///
    /// # Errors
    /// As [`Network::load`]; [`Error::BadFile`] if the file is larger than `max_bytes`.
    pub fn load_with_limit(path: impl AsRef<Path>, max_bytes: u64) -> Result<Self> {
        let path = path.as_ref();
        let bytes = read_file(path, max_bytes)?;
        let file = TensorFile::parse(&bytes, path)?;
        refuse_standardized(&file)?;
        read_network(&file, &TRAINING_PREFIXES)
    }
}

/// The metadata key holding a [`Model`]'s class names, a JSON list of strings.
pub const CLASSES_KEY: &str = "lernmi.classes";

/// A network together with what it needs to predict on raw features: the [`Standardizer`]
/// fitted on its training features, and the names of its classes.
///
/// Its `predict`, `classify` and `evaluate` take features as the data holds them and
/// standardise them first, and [`Model::save`] stores the standardizer in the file's metadata
/// (key [`crate::data::standardize::METADATA_KEY`]), so a loaded model predicts exactly as the
/// trained one did. [`Network::load`] refuses a file that holds a standardizer: a bare network
/// fed raw features would predict nonsense without a word.
///
/// ```
/// use lernmi::data::standardize::Standardizer;
/// use lernmi::{Model, Network};
/// use ndarray::array;
///
/// let raw = array![[1000.0f32, 0.1], [3000.0, 0.3], [2000.0, 0.2]];
/// let standardizer = Standardizer::fit(raw.view())?;
/// let net = Network::<f32>::builder(&[2, 4, 2]).seed(1).build()?;
/// let model = Model::new(net, Some(standardizer))?;
/// let loaded = Model::<f32>::from_safetensors(&model.to_safetensors()?)?;
/// assert_eq!(loaded.predict(raw.view())?, model.predict(raw.view())?);
/// # Ok::<(), lernmi::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Model<F: Float = f32> {
    network: Network<F>,
    standardizer: Option<Standardizer>,
    class_names: Option<Vec<String>>,
}

impl<F: Float> Model<F> {
    /// A model of `network` that standardises its inputs with `standardizer` (none: inputs go
    /// to the network as they are).
    ///
    /// # Errors
    /// [`Error::NetworkMismatch`] if the standardizer is not for the network's input width;
    /// as [`Standardizer::from_metadata`] if its fields are unusable.
    pub fn new(network: Network<F>, standardizer: Option<Standardizer>) -> Result<Self> {
        if let Some(s) = &standardizer {
            s.check()?;
            if s.features() != network.n_inputs() {
                return Err(Error::NetworkMismatch {
                    what: "standardizer",
                    expected: format!("{} inputs", network.n_inputs()),
                    got: format!("{} features", s.features()),
                });
            }
        }
        Ok(Model {
            network,
            standardizer,
            class_names: None,
        })
    }

    /// The model with a name for each class (output), such as the text labels of a CSV file
    /// ([`crate::data::csv::CsvClasses::class_names`]).
    ///
    /// # Errors
    /// [`Error::NetworkMismatch`] unless there is one name per output.
    pub fn with_class_names(mut self, names: Vec<String>) -> Result<Self> {
        if names.len() != self.network.n_outputs() {
            return Err(Error::NetworkMismatch {
                what: "class names",
                expected: format!("{} outputs", self.network.n_outputs()),
                got: format!("{} names", names.len()),
            });
        }
        self.class_names = Some(names);
        Ok(self)
    }

    /// The network, which takes standardised inputs.
    pub fn network(&self) -> &Network<F> {
        &self.network
    }

    /// The standardizer applied to raw features, if any.
    pub fn standardizer(&self) -> Option<&Standardizer> {
        self.standardizer.as_ref()
    }

    /// The name of each class, if the model has them.
    pub fn class_names(&self) -> Option<&[String]> {
        self.class_names.as_deref()
    }

    /// The network and the standardizer, taken apart.
    pub fn into_parts(self) -> (Network<F>, Option<Standardizer>) {
        (self.network, self.standardizer)
    }

    /// Raw features as the network takes them: a standardised copy (or a plain copy without a
    /// standardizer).
    ///
    /// # Errors
    /// [`Error::InputWidth`] if `raw` does not have the network's input width.
    pub fn standardize(&self, raw: ArrayView2<'_, F>) -> Result<ndarray::Array2<F>> {
        self.network.check_inputs(raw)?;
        let mut inputs = raw.to_owned();
        if let Some(s) = &self.standardizer {
            s.transform(inputs.view_mut())?;
        }
        Ok(inputs)
    }

    /// [`Network::predict`] on raw features.
    ///
    /// # Errors
    /// As [`Network::predict`].
    pub fn predict(&self, raw: ArrayView2<'_, F>) -> Result<ndarray::Array2<F>> {
        self.network.predict(self.standardize(raw)?.view())
    }

    /// [`Network::classify`] on raw features.
    ///
    /// # Errors
    /// As [`Network::classify`].
    pub fn classify(&self, raw: ArrayView2<'_, F>) -> Result<Vec<usize>> {
        self.network.classify(self.standardize(raw)?.view())
    }

    /// [`Network::evaluate`] on raw features.
    ///
    /// # Errors
    /// As [`Network::evaluate`].
    pub fn evaluate<'t>(
        &self,
        raw: ArrayView2<'_, F>,
        targets: impl Into<Targets<'t, F>>,
    ) -> Result<Evaluation> {
        self.network
            .evaluate(self.standardize(raw)?.view(), targets)
    }

    /// The tensors and metadata of the file: the network's, plus the standardizer and the
    /// class names when present.
    fn tensors(&self) -> (Vec<(String, OwnedTensor)>, HashMap<String, String>) {
        let (tensors, mut metadata) = network_tensors(&self.network);
        if let Some(s) = &self.standardizer {
            metadata.insert(STANDARDIZE_KEY.to_string(), s.to_metadata());
        }
        if let Some(names) = &self.class_names {
            let json = serde_json::to_string(names).expect("strings serialise to JSON");
            metadata.insert(CLASSES_KEY.to_string(), json);
        }
        (tensors, metadata)
    }

    /// The model as the bytes of a safetensors file: [`Network::to_safetensors`]'s layout with
    /// the standardizer and class names in the metadata.
    ///
    /// # Errors
    /// As [`Network::to_safetensors`].
    pub fn to_safetensors(&self) -> Result<Vec<u8>> {
        let (tensors, metadata) = self.tensors();
        serialize(&tensors, metadata, Path::new(IN_MEMORY))
    }

    /// A model from the bytes of [`Model::to_safetensors`]; bytes without a standardizer or
    /// class names (such as [`Network::to_safetensors`]'s) give a model without them.
    ///
    /// # Errors
    /// As [`Model::load`].
    pub fn from_safetensors(bytes: &[u8]) -> Result<Self> {
        read_model(&TensorFile::parse(bytes, Path::new(IN_MEMORY))?)
    }

    /// Saves the model to `path`, atomically (see [`write_atomically`]).
    ///
    /// # Errors
    /// As [`Network::save`].
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let (tensors, metadata) = self.tensors();
        let bytes = serialize(&tensors, metadata, path)?;
        write_atomically(path, |w| w.write_all(&bytes))
    }

    /// Loads a model saved by [`Model::save`], or a network saved by [`Network::save`] (a
    /// model without standardizer or class names).
    ///
    /// # Errors
    /// As [`Network::load`]; [`Error::BadFile`] naming the file (or the metadata key) for a
    /// malformed standardizer or class list, or one that does not fit the network.
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        Self::load_with_limit(path, DEFAULT_MAX_FILE_BYTES)
    }

    /// [`Model::load`] for a file of at most `max_bytes` bytes.
    ///
    /// # Errors
    /// As [`Model::load`]; [`Error::BadFile`] if the file is larger than `max_bytes`.
    pub fn load_with_limit(path: impl AsRef<Path>, max_bytes: u64) -> Result<Self> {
        let path = path.as_ref();
        let bytes = read_file(path, max_bytes)?;
        read_model(&TensorFile::parse(&bytes, path)?)
    }
}

/// The model a parsed file describes; its problems name the file.
fn read_model<F: Float>(file: &TensorFile<'_>) -> Result<Model<F>> {
    let network = read_network::<F>(file, &TRAINING_PREFIXES)?;
    let in_file = |e: Error| bad_file(file.path, e.to_string());
    let standardizer = file
        .metadata(STANDARDIZE_KEY)
        .map(Standardizer::from_metadata)
        .transpose()
        .map_err(in_file)?;
    let mut model = Model::new(network, standardizer).map_err(in_file)?;
    if file.metadata(CLASSES_KEY).is_some() {
        model = model
            .with_class_names(file.json(CLASSES_KEY)?)
            .map_err(in_file)?;
    }
    Ok(model)
}

/// Refuses a file that holds a standardizer, for [`Network::load`]: see [`Model`].
fn refuse_standardized(file: &TensorFile<'_>) -> Result<()> {
    if file.metadata(STANDARDIZE_KEY).is_some() {
        return Err(bad_file(
            file.path,
            format!(
                "the model standardises its inputs ({STANDARDIZE_KEY:?} in its metadata): \
                 load it with lernmi::Model::load, which applies the standardizer"
            ),
        ));
    }
    Ok(())
}
