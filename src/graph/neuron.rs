//! A Neuron: sums what its incoming Links push, squashes it once, collects sensitivities.

use crate::Activation;

/// Index of a neuron in its network's neuron list.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NeuronId(pub usize);

/// What a neuron is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NeuronKind {
    /// A layer's bias neuron: its output is always 1.0 and it is never reset.
    Bias,
    /// A neuron of the input layer: its input sum is the sample's value.
    Input,
    /// A neuron of a hidden or output layer.
    Learning,
}

/// One neuron and its state for the current sample.
#[derive(Clone, Debug, PartialEq)]
pub struct Neuron {
    kind: NeuronKind,
    /// Lernmi's `input_sum`: z, the sum of what the incoming Links pushed.
    input_sum: f64,
    /// Lernmi's memoised `output`: a = σ(z), computed on first read.
    output: Option<f64>,
    /// Lernmi's `sensitivity_sum`: ∂L/∂a, the sum of what the outgoing Links submitted.
    sensitivity_sum: f64,
    /// Whether an input neuron squashes its input (the seed's quirk).
    squash_input: bool,
}

impl Neuron {
    pub(crate) fn new(kind: NeuronKind, squash_input: bool) -> Self {
        Neuron {
            kind,
            input_sum: 0.0,
            output: (kind == NeuronKind::Bias).then_some(1.0),
            sensitivity_sum: 0.0,
            squash_input,
        }
    }

    /// The neuron's kind.
    pub fn kind(&self) -> NeuronKind {
        self.kind
    }

    /// z, the sum of the inputs pushed to this neuron so far.
    pub fn input_sum(&self) -> f64 {
        self.input_sum
    }

    /// ∂L/∂a, the sensitivity collected so far.
    pub fn sensitivity_sum(&self) -> f64 {
        self.sensitivity_sum
    }

    /// The output if it has been computed for this sample.
    pub fn cached_output(&self) -> Option<f64> {
        self.output
    }

    /// a = σ(z), computed on the first read after a reset and remembered (as in the seed);
    /// the bias neuron always gives 1.0, an input neuron without the quirk gives z itself.
    pub fn output(&mut self) -> f64 {
        if let Some(a) = self.output {
            return a;
        }
        let a = match self.kind {
            NeuronKind::Bias => 1.0,
            NeuronKind::Input if !self.squash_input => self.input_sum,
            _ => Activation::sigmoid(self.input_sum),
        };
        self.output = Some(a);
        a
    }

    /// Adds to the input sum (Lernmi's `input`).
    pub fn input(&mut self, value: f64) {
        self.input_sum += value;
    }

    /// Adds to the sensitivity sum (Lernmi's `submit_sensitivity`).
    pub fn submit_sensitivity(&mut self, value: f64) {
        self.sensitivity_sum += value;
    }

    /// Clears the per-sample state; bias neurons keep theirs (as in the seed).
    pub fn reset(&mut self) {
        if self.kind != NeuronKind::Bias {
            self.input_sum = 0.0;
            self.output = None;
            self.sensitivity_sum = 0.0;
        }
    }
}

/// The neurons of one layer, bias first.
#[derive(Clone, Debug, PartialEq)]
pub struct NeuronLayer {
    /// The bias neuron's id followed by the layer's other neurons.
    pub neurons: Vec<NeuronId>,
}

impl NeuronLayer {
    /// The bias neuron.
    pub fn bias(&self) -> NeuronId {
        self.neurons[0]
    }

    /// The neurons other than the bias, in order.
    pub fn learning(&self) -> &[NeuronId] {
        &self.neurons[1..]
    }
}
