//! A Link: one weight between two neurons, which pushes forward and sends sensitivity back.

use super::neuron::{Neuron, NeuronId};

/// One weighted connection from a neuron of one layer to a learning neuron of the next.
#[derive(Clone, Debug, PartialEq)]
pub struct Link {
    /// The input neuron i.
    pub from: NeuronId,
    /// The output neuron j.
    pub to: NeuronId,
    /// w_ij.
    pub weight: f64,
    /// ∂L/∂w_ij accumulated since the last update (a_i·δ_j summed over samples).
    pub gradient: f64,
}

impl Link {
    /// Forward: pushes `a_i · w_ij` into the output neuron's input sum.
    pub fn propagate(&self, neurons: &mut [Neuron]) {
        let pushed = neurons[self.from.0].output() * self.weight;
        neurons[self.to.0].input(pushed);
    }

    /// Lernmi's output sensitivity δ_j = S_j · σ′(a_j) = ∂L/∂z_j, with σ′ = a_j(1 − a_j).
    pub fn output_sensitivity(&self, neurons: &mut [Neuron]) -> f64 {
        let to = &mut neurons[self.to.0];
        let a = to.output();
        to.sensitivity_sum() * (a * (1.0 - a))
    }

    /// Backward: submits `w_ij · δ_j` (with the weight before any update) to the input neuron
    /// and adds `a_i · δ_j` to the gradient.
    pub fn backpropagate(&mut self, neurons: &mut [Neuron]) {
        let delta = self.output_sensitivity(neurons);
        let from = &mut neurons[self.from.0];
        from.submit_sensitivity(self.weight * delta);
        self.gradient += from.output() * delta;
    }

    /// `w ← w − rate · gradient / samples`, then clears the gradient. For one sample this is
    /// the seed's `weight − (input · output sensitivity) · rate`, bit for bit.
    pub fn update(&mut self, rate: f64, samples: usize) {
        let gradient = if samples == 1 {
            self.gradient
        } else {
            self.gradient * (1.0 / samples as f64)
        };
        self.weight -= rate * gradient;
        self.gradient = 0.0;
    }
}

/// The Links between two neuron layers, in construction order: for each input neuron (bias
/// first), its Links to every learning neuron of the next layer.
#[derive(Clone, Debug, PartialEq)]
pub struct LinkLayer {
    /// The links.
    pub links: Vec<Link>,
}
