//! The graph Network: neuron layers, link layers, and Lernmi's `learn`.

use ndarray::{Array1, Array2};

use super::link::{Link, LinkLayer};
use super::neuron::{Neuron, NeuronId, NeuronKind, NeuronLayer};
use crate::nn::init::Mt19937;
use crate::{Activation, Dense, Error, Init, Loss, Result};

/// Where the graph's initial weights come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum GraphInit {
    /// The seed's: each link layer draws from its own MT19937 seeded with 1, w = r − 0.5.
    #[default]
    Lernmi,
    /// Uniform in [−0.5, 0.5) from the crate's seeded generator, as [`Init::Uniform`] draws for
    /// the dense engine (so both start from the same weights for the same seed).
    Seeded(u64),
}

/// The seed's behaviour, quirks included, with switches to turn them off.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GraphOptions {
    /// Input neurons apply the sigmoid to their input (the seed does; default true).
    pub input_sigmoid: bool,
    /// Initial weights (default the seed's).
    pub init: GraphInit,
    /// Lernmi's `training_rate` η (default 0.1).
    pub learning_rate: f64,
}

impl Default for GraphOptions {
    fn default() -> Self {
        GraphOptions {
            input_sigmoid: true,
            init: GraphInit::Lernmi,
            learning_rate: 0.1,
        }
    }
}

/// Lernmi's network: every neuron and every link an object, trained one sample at a time.
#[derive(Clone, Debug, PartialEq)]
pub struct Network {
    neurons: Vec<Neuron>,
    neuron_layers: Vec<NeuronLayer>,
    link_layers: Vec<LinkLayer>,
    options: GraphOptions,
}

impl Network {
    /// The seed's network with the given layer sizes, input first (e.g. `[784, 15, 10]`).
    ///
    /// # Errors
    /// [`Error::TooFewLayers`], [`Error::ZeroWidthLayer`].
    pub fn new(sizes: &[usize]) -> Result<Self> {
        Self::with_options(sizes, GraphOptions::default())
    }

    /// A network with the given sizes and options.
    ///
    /// # Errors
    /// [`Error::TooFewLayers`], [`Error::ZeroWidthLayer`], and
    /// [`Error::InvalidHyperparameter`] for a learning rate that is not finite and positive.
    pub fn with_options(sizes: &[usize], options: GraphOptions) -> Result<Self> {
        if sizes.len() < 2 {
            return Err(Error::TooFewLayers { got: sizes.len() });
        }
        if let Some(layer) = sizes.iter().position(|&n| n == 0) {
            return Err(Error::ZeroWidthLayer {
                layer,
                sizes: sizes.to_vec(),
            });
        }
        check_rate(options.learning_rate)?;
        let mut neurons = Vec::new();
        let neuron_layers: Vec<NeuronLayer> = sizes
            .iter()
            .enumerate()
            .map(|(l, &n)| {
                let kind = if l == 0 {
                    NeuronKind::Input
                } else {
                    NeuronKind::Learning
                };
                let first = neurons.len();
                neurons.push(Neuron::new(NeuronKind::Bias, options.input_sigmoid));
                neurons.extend((0..n).map(|_| Neuron::new(kind, options.input_sigmoid)));
                NeuronLayer {
                    neurons: (first..neurons.len()).map(NeuronId).collect(),
                }
            })
            .collect();
        let link_layers = neuron_layers
            .windows(2)
            .enumerate()
            .map(|(l, pair)| {
                let mut weights = initial_weights(options.init, pair, l);
                let links = pair[0]
                    .neurons
                    .iter()
                    .flat_map(|&from| pair[1].learning().iter().map(move |&to| (from, to)))
                    .map(|(from, to)| Link {
                        from,
                        to,
                        weight: weights(),
                        gradient: 0.0,
                    })
                    .collect();
                LinkLayer { links }
            })
            .collect();
        Ok(Network {
            neurons,
            neuron_layers,
            link_layers,
            options,
        })
    }

    /// The options the network was built with.
    pub fn options(&self) -> GraphOptions {
        self.options
    }

    /// Layer sizes, input first (bias neurons not counted).
    pub fn sizes(&self) -> Vec<usize> {
        self.neuron_layers
            .iter()
            .map(|l| l.neurons.len() - 1)
            .collect()
    }

    /// Every neuron, indexed by [`NeuronId`].
    pub fn neurons(&self) -> &[Neuron] {
        &self.neurons
    }

    /// The neuron layers, input first.
    pub fn neuron_layers(&self) -> &[NeuronLayer] {
        &self.neuron_layers
    }

    /// The link layers, input side first.
    pub fn link_layers(&self) -> &[LinkLayer] {
        &self.link_layers
    }

    /// Mutable link layers (to set weights by hand).
    pub fn link_layers_mut(&mut self) -> &mut [LinkLayer] {
        &mut self.link_layers
    }

    /// Runs one sample forward and returns the output neurons' outputs.
    ///
    /// # Errors
    /// [`Error::InputWidth`], [`Error::NonFinite`].
    pub fn run(&mut self, inputs: &[f64]) -> Result<Vec<f64>> {
        self.check_inputs(inputs)?;
        self.forward(inputs);
        Ok(self.outputs())
    }

    /// Lernmi's `learn`: forward, output sensitivities `a − t`, backward through the link
    /// layers in reverse, and the update of every weight. Returns the sample's loss
    /// ½Σ(a − t)² before the update.
    ///
    /// # Errors
    /// [`Error::InputWidth`], [`Error::TargetWidth`], [`Error::NonFinite`].
    pub fn learn(&mut self, inputs: &[f64], expected: &[f64]) -> Result<f64> {
        let loss = self.accumulate(inputs, expected)?;
        self.apply_gradients(1);
        Ok(loss)
    }

    /// Forward and backward for one sample, adding to every link's gradient without updating
    /// any weight; call [`Network::apply_gradients`] after a batch. Returns the sample's loss.
    ///
    /// # Errors
    /// As [`Network::learn`].
    pub fn accumulate(&mut self, inputs: &[f64], expected: &[f64]) -> Result<f64> {
        self.check_inputs(inputs)?;
        let outputs = self.neuron_layers.last().map_or(0, |l| l.neurons.len() - 1);
        if expected.len() != outputs {
            return Err(Error::TargetWidth {
                expected: outputs,
                got: expected.len(),
            });
        }
        if let Some(index) = expected.iter().position(|v| !v.is_finite()) {
            return Err(Error::NonFinite {
                what: "expected outputs",
                index,
                value: expected[index],
            });
        }
        self.forward(inputs);
        // Lernmi's expected_output: each output neuron's sensitivity is a − t.
        let mut loss = 0.0;
        let output_layer = self.neuron_layers.len() - 1;
        for (k, &t) in expected.iter().enumerate() {
            let id = self.neuron_layers[output_layer].neurons[k + 1];
            let a = self.neurons[id.0].output();
            self.neurons[id.0].submit_sensitivity(a - t);
            loss += 0.5 * (a - t) * (a - t);
        }
        for layer in self.link_layers.iter_mut().rev() {
            for link in &mut layer.links {
                link.backpropagate(&mut self.neurons);
            }
        }
        Ok(loss)
    }

    /// Updates every weight by its gradient averaged over `samples`, and clears the gradients.
    pub fn apply_gradients(&mut self, samples: usize) {
        let rate = self.options.learning_rate;
        for layer in &mut self.link_layers {
            for link in &mut layer.links {
                link.update(rate, samples.max(1));
            }
        }
    }

    fn check_inputs(&self, inputs: &[f64]) -> Result<()> {
        let expected = self.neuron_layers[0].neurons.len() - 1;
        if inputs.len() != expected {
            return Err(Error::InputWidth {
                expected,
                got: inputs.len(),
            });
        }
        match inputs.iter().position(|v| !v.is_finite()) {
            Some(index) => Err(Error::NonFinite {
                what: "inputs",
                index,
                value: inputs[index],
            }),
            None => Ok(()),
        }
    }

    fn forward(&mut self, inputs: &[f64]) {
        for n in &mut self.neurons {
            n.reset();
        }
        for (&id, &x) in self.neuron_layers[0].learning().iter().zip(inputs) {
            self.neurons[id.0].input(x);
        }
        for layer in &self.link_layers {
            for link in &layer.links {
                link.propagate(&mut self.neurons);
            }
        }
    }

    fn outputs(&mut self) -> Vec<f64> {
        let last = self.neuron_layers.len() - 1;
        let ids = self.neuron_layers[last].learning().to_vec();
        ids.iter().map(|id| self.neurons[id.0].output()).collect()
    }

    /// The same network in the dense engine: sigmoid layers, squared error, the input sigmoid
    /// if this graph has it, and the same weights (bias links become the bias vector).
    ///
    /// # Errors
    /// None in practice (the graph's weights are finite); the signature matches
    /// [`Network::from_dense`].
    pub fn to_dense(&self) -> Result<crate::Network<f64>> {
        let layers = self
            .link_layers
            .iter()
            .zip(self.neuron_layers.windows(2))
            .map(|(links, pair)| {
                let n_in = pair[0].neurons.len() - 1;
                let n_out = pair[1].neurons.len() - 1;
                let mut weights = Array2::zeros((n_out, n_in));
                let mut biases = Array1::zeros(n_out);
                // Construction order: input neuron i (bias = 0) outer, output neuron j inner.
                for (index, link) in links.links.iter().enumerate() {
                    let (i, j) = (index / n_out, index % n_out);
                    if i == 0 {
                        biases[j] = link.weight;
                    } else {
                        weights[[j, i - 1]] = link.weight;
                    }
                }
                Dense::new(weights, biases, Activation::Sigmoid)
            })
            .collect::<Result<Vec<_>>>()?;
        let input = self.options.input_sigmoid.then_some(Activation::Sigmoid);
        crate::Network::from_layers(layers, Loss::SquaredError, input)
    }

    /// The graph holding a dense network's weights. The dense network must be one the graph can
    /// express: sigmoid in every layer, squared error, and no input activation or a sigmoid one.
    ///
    /// # Errors
    /// [`Error::InvalidActivation`] or [`Error::LossActivationMismatch`] for networks the graph
    /// cannot express; [`Error::InvalidHyperparameter`] for a bad learning rate.
    pub fn from_dense(network: &crate::Network<f64>, learning_rate: f64) -> Result<Self> {
        if network.loss() != Loss::SquaredError {
            return Err(Error::LossActivationMismatch {
                loss: network.loss().name(),
                activation: "sigmoid",
                reason: "the object graph trains with squared error only",
            });
        }
        let input_sigmoid = match network.input_activation() {
            None => false,
            Some(Activation::Sigmoid) => true,
            Some(other) => {
                return Err(Error::InvalidActivation {
                    activation: other.name(),
                    place: "as the object graph's input activation (sigmoid or none)",
                })
            }
        };
        if let Some(layer) = network
            .layers()
            .iter()
            .find(|l| l.activation() != Activation::Sigmoid)
        {
            return Err(Error::InvalidActivation {
                activation: layer.activation().name(),
                place: "in the object graph (sigmoid only)",
            });
        }
        let options = GraphOptions {
            input_sigmoid,
            init: GraphInit::Lernmi,
            learning_rate,
        };
        let mut graph = Network::with_options(&network.sizes(), options)?;
        for (links, layer) in graph.link_layers.iter_mut().zip(network.layers()) {
            let n_out = layer.n_out();
            for (index, link) in links.links.iter_mut().enumerate() {
                let (i, j) = (index / n_out, index % n_out);
                link.weight = if i == 0 {
                    layer.biases()[j]
                } else {
                    layer.weights()[[j, i - 1]]
                };
            }
        }
        Ok(graph)
    }
}

fn check_rate(rate: f64) -> Result<()> {
    if rate.is_finite() && rate > 0.0 && rate <= 1e4 {
        Ok(())
    } else {
        Err(Error::InvalidHyperparameter {
            name: "learning_rate",
            value: rate,
            reason: "must be finite, positive and at most 1e4",
        })
    }
}

/// A generator of the initial weights of link layer `l`, in Link order.
fn initial_weights(init: GraphInit, pair: &[NeuronLayer], l: usize) -> impl FnMut() -> f64 {
    let n_in = pair[0].neurons.len() - 1;
    let n_out = pair[1].neurons.len() - 1;
    // Draw the whole layer up front, in Link order.
    let values: Vec<f64> = match init {
        GraphInit::Lernmi => {
            let mut mt = Mt19937::new(1);
            (0..(n_in + 1) * n_out)
                .map(|_| mt.next_f64() - 0.5)
                .collect()
        }
        GraphInit::Seeded(seed) => {
            let (weights, biases) = Init::Uniform.draw::<f64>(n_in, n_out, seed, l);
            let mut v = Vec::with_capacity((n_in + 1) * n_out);
            v.extend(biases.iter().copied());
            for i in 0..n_in {
                v.extend((0..n_out).map(|j| weights[[j, i]]));
            }
            v
        }
    };
    let mut next = values.into_iter();
    move || next.next().unwrap_or(0.0)
}
