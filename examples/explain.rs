//! Backpropagation made visible: one training step of the seed's XOR network on one sample,
//! worked through both ways, side by side. Lernmi's object graph computes every number one
//! Neuron and one Link at a time; the dense engine computes the same numbers as elements of the
//! matrices Z, A, Δ, Δ·W and Δᵀ·A. Each graph number is printed beside its matrix element, with
//! ✓ where the two are exactly equal (`==` on f64, no tolerance: with one sample the engine sums
//! in the graph's order, so they agree to the bit). It should print four sections (forward pass,
//! output sensitivities, backward pass, weight update) and end with "all N pairs agree"; it exits
//! with status 1 if any pair differs.

use clap::Parser;
use lernmi::fast::gemm::Packing;
use lernmi::graph::{GraphInit, GraphOptions, Link, Network as Graph, Neuron};
use lernmi::{LayerGradients, Network, Optimizer, TrainConfig, Trainer};
use ndarray::{array, Array2, ArrayView2};

#[path = "support/mod.rs"]
mod support;

/// The four rows of XOR: inputs and target.
const XOR: [([f64; 2], f64); 4] = [
    ([0.0, 0.0], 0.0),
    ([0.0, 1.0], 1.0),
    ([1.0, 0.0], 1.0),
    ([1.0, 1.0], 0.0),
];

#[derive(Parser, Debug)]
#[command(
    about = "One backpropagation step of the XOR network, by the object graph and by the \
                   dense engine, side by side"
)]
struct Args {
    /// Hidden neurons (the seed's XOR network has 3).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u8).range(1..=9))]
    hidden: u8,
    /// The XOR row to learn from: 0 = (0, 0), 1 = (0, 1), 2 = (1, 0), 3 = (1, 1).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u8).range(0..=3))]
    sample: u8,
    /// Seed of the initial weights (uniform in [−0.5, 0.5), as examples/xor.rs draws them).
    #[arg(long, default_value_t = 4)]
    seed: u64,
    /// Learning rate η.
    #[arg(long, default_value_t = 0.5)]
    rate: f64,
    /// Squash the inputs through σ before the first layer, as the seed did.
    #[arg(long)]
    input_sigmoid: bool,
}

fn main() {
    support::quiet_broken_pipe();
    support::exit_on_error(run(&Args::parse()));
}

/// Counts the graph/engine pairs compared and remembers those that differ.
#[derive(Default)]
struct Checks {
    pairs: usize,
    differing: Vec<String>,
}

impl Checks {
    /// Compares every graph value with the engine's value; returns ✓ if all are equal.
    fn compare(&mut self, what: &str, graph: &[f64], dense: f64) -> &'static str {
        let mut mark = "✓";
        for &g in graph {
            self.pairs += 1;
            if g != dense {
                self.differing
                    .push(format!("{what}: graph {g:e}, dense {dense:e}"));
                mark = "✗";
            }
        }
        mark
    }

    /// Prints one comparison line: the graph's name and value, the engine's element and value,
    /// and the mark.
    fn line(&mut self, graph_name: &str, graph: f64, element: &str, dense: f64) {
        self.line_many(graph_name, &[graph], element, dense);
    }

    /// The worked line δ = S·a·(1 − a) for one neuron, then the check of every Link's output
    /// sensitivity against the matching element of Δ.
    fn delta(&mut self, s: f64, a: f64, deltas: &[f64], element: &str, dense: f64) {
        let delta = deltas.first().copied().unwrap_or(f64::NAN);
        println!(
            "       δ = S·a·(1 − a) = {}·{}·{} = {}",
            term(s),
            term(a),
            term(1.0 - a),
            num(delta)
        );
        self.line_many(
            &format!("δ (Link#output_sensitivity ×{})", deltas.len()),
            deltas,
            element,
            dense,
        );
    }

    /// As [`Checks::line`] for several graph values that must all equal one element (the
    /// output sensitivity each Link into a neuron computes for itself).
    fn line_many(&mut self, graph_name: &str, graph: &[f64], element: &str, dense: f64) {
        let mark = self.compare(&format!("{graph_name} / {element}"), graph, dense);
        let shown = graph.first().copied().unwrap_or(f64::NAN);
        println!(
            "       graph {graph_name:<30} {shown:+.10}   dense {element:<14} {dense:+.10}  {mark}"
        );
    }
}

/// Everything the dense engine computes for one sample, layer by layer, kept for printing.
/// Index l of each list is layer l + 1 in the notation (`layers()[0]` follows the input).
struct DenseStep {
    /// A₀: the inputs after the input activation, if any, (1, n_in).
    inputs: Array2<f64>,
    /// Z_l, (1, n_l).
    weighted_inputs: Vec<Array2<f64>>,
    /// A_l, (1, n_l).
    activations: Vec<Array2<f64>>,
    /// Δ_l = ∂E/∂Z_l, (1, n_l).
    output_sensitivities: Vec<Array2<f64>>,
    /// Δ_l·W_l = ∂E/∂A_{l−1}, (1, n_{l−1}); for l = 1 the engine never needs it and it is
    /// computed here only to compare with the input neurons' sums.
    input_sensitivities: Vec<Array2<f64>>,
    /// Δ_lᵀ·A_{l−1} and the column sums of Δ_l: ∂E/∂W_l, ∂E/∂b_l.
    gradients: Vec<LayerGradients<f64>>,
    /// E of the sample.
    loss: f64,
}

/// The engine's forward and backward pass on one sample, through the same public layer
/// functions, in the same order, as `Network::gradients` calls them: (F), (B1), (B3)–(B4), (B2).
///
/// # Shapes
/// `inputs`: (1, n_in); `targets`: (1, n_out).
fn dense_step(
    net: &Network<f64>,
    inputs: ArrayView2<'_, f64>,
    targets: ArrayView2<'_, f64>,
) -> DenseStep {
    let layers = net.layers();
    let mut packing = Packing::default();
    let mut a0 = inputs.to_owned();
    if let Some(activation) = net.input_activation() {
        activation.forward_in_place(a0.view_mut());
    }
    let row = |n: usize| Array2::<f64>::zeros((1, n));
    let mut weighted_inputs: Vec<_> = layers.iter().map(|l| row(l.n_out())).collect();
    let mut activations = weighted_inputs.clone();
    let mut output_sensitivities = weighted_inputs.clone();
    let mut input_sensitivities: Vec<_> = layers.iter().map(|l| row(l.n_in())).collect();
    let mut gradients: Vec<_> = layers.iter().map(|l| l.zero_gradients()).collect();
    // (F)
    for (l, layer) in layers.iter().enumerate() {
        let previous = if l == 0 {
            a0.view()
        } else {
            activations[l - 1].view()
        };
        let (mut z, mut a) = (row(layer.n_out()), row(layer.n_out()));
        layer
            .forward(previous, z.view_mut(), a.view_mut(), &mut packing)
            .expect("buffers shaped by the layers");
        weighted_inputs[l] = z;
        activations[l] = a;
    }
    let last = layers.len() - 1;
    let output = layers[last].activation();
    let (z, a) = (weighted_inputs[last].view(), activations[last].view());
    let loss = net.loss().sum(output, z, a, targets);
    // (B1)
    net.loss()
        .output_sensitivities(output, z, a, targets, output_sensitivities[last].view_mut());
    for (l, layer) in layers.iter().enumerate().rev() {
        let previous = if l == 0 {
            a0.view()
        } else {
            activations[l - 1].view()
        };
        // (B3), (B4)
        layer
            .parameter_gradients(
                previous,
                output_sensitivities[l].view(),
                &mut gradients[l],
                false,
                &mut packing,
            )
            .expect("buffers shaped by the layers");
        // (B2): pull the sensitivity back through W_l, then through σ_{l−1}.
        layer
            .input_sensitivities(
                output_sensitivities[l].view(),
                input_sensitivities[l].view_mut(),
                &mut packing,
            )
            .expect("buffers shaped by the layers");
        if l > 0 {
            let mut pulled = input_sensitivities[l].clone();
            layers[l - 1].activation().backward_in_place(
                weighted_inputs[l - 1].view(),
                activations[l - 1].view(),
                pulled.view_mut(),
            );
            output_sensitivities[l - 1] = pulled;
        }
    }
    DenseStep {
        inputs: a0,
        weighted_inputs,
        activations,
        output_sensitivities,
        input_sensitivities,
        gradients,
        loss,
    }
}

/// A subscript for a layer number in the matrix names (A₀, Z₁, Δ₂, ...).
fn subscript(l: usize) -> String {
    l.to_string()
        .chars()
        .map(|c| char::from_u32(0x2080 + c.to_digit(10).unwrap_or(0)).unwrap_or(c))
        .collect()
}

/// A result as a worked example writes it: four decimals.
fn num(v: f64) -> String {
    format!("{v:.4}")
}

/// A factor as a worked example writes it: four decimals, in brackets when negative.
fn term(v: f64) -> String {
    if v < 0.0 {
        format!("({v:.4})")
    } else {
        format!("{v:.4}")
    }
}

fn run(args: &Args) -> Result<(), Box<dyn std::error::Error>> {
    let (x, t) = XOR[usize::from(args.sample)];
    let sizes = [2, usize::from(args.hidden), 1];
    let options = GraphOptions {
        input_sigmoid: args.input_sigmoid,
        init: GraphInit::Seeded(args.seed),
        learning_rate: args.rate,
    };
    let mut graph = Graph::with_options(&sizes, options)?;
    let dense: Network<f64> = graph.to_dense()?;
    let last = sizes.len() - 1;

    // Each neuron's name and position in its layer's list (0 = the bias neuron, k ≥ 1 = the
    // k-th ordinary neuron, which is column k − 1 of the matrices).
    let mut positions = vec![0; graph.neurons().len()];
    let mut names = vec![String::new(); graph.neurons().len()];
    for (l, layer) in graph.neuron_layers().iter().enumerate() {
        for (position, id) in layer.neurons.iter().enumerate() {
            positions[id.0] = position;
            let letter = match l {
                0 => "x",
                _ if l == last => "o",
                _ => "h",
            };
            names[id.0] = if position == 0 {
                "bias".to_string()
            } else {
                format!("{letter}{position}")
            };
        }
    }
    let link_name = |link: &Link| format!("{} → {}", names[link.from.0], names[link.to.0]);

    // The graph: Lernmi's learn() is accumulate (forward, sensitivities, backward: every Link
    // adds a_i·δ_j to its gradient) and then apply_gradients (every Link updates its weight).
    let graph_loss = graph.accumulate(&x, &[t])?;
    let mut neurons: Vec<Neuron> = graph.neurons().to_vec();
    let links_before: Vec<Vec<Link>> = graph
        .link_layers()
        .iter()
        .map(|layer| layer.links.clone())
        .collect();
    graph.apply_gradients(1);
    let weights_after: Vec<Vec<f64>> = graph
        .link_layers()
        .iter()
        .map(|layer| layer.links.iter().map(|link| link.weight).collect())
        .collect();

    // The engine: one sample, layer by layer; then its own backward pass and its own SGD step.
    let inputs = array![[x[0], x[1]]];
    let targets = array![[t]];
    let step = dense_step(&dense, inputs.view(), targets.view());
    let (engine_loss, engine_gradients) = dense.gradients(inputs.view(), targets.view())?;
    let config = TrainConfig {
        batch_size: 1,
        shard_size: 1,
        optimizer: Optimizer::sgd(args.rate),
        ..TrainConfig::lernmi()
    };
    let mut trainer = Trainer::new(dense, config)?;
    trainer.step(inputs.view(), targets.view())?;
    let dense = trainer.into_network();

    let mut checks = Checks::default();
    let eta = args.rate;
    let output_name = names[graph.neuron_layers()[last].neurons[1].0].clone();
    let hidden_names: Vec<&str> = graph.neuron_layers()[1]
        .learning()
        .iter()
        .map(|id| names[id.0].as_str())
        .collect();

    println!("Backpropagation, one step, worked both ways");
    println!("===========================================");
    println!();
    println!(
        "The network {sizes:?}: inputs x1 x2, hidden neurons {}, output neuron \
         {output_name}; every",
        hidden_names.join(" ")
    );
    println!("layer also has a bias neuron whose output is always 1. Every neuron is a sigmoid,");
    println!(
        "σ(z) = 1 / (1 + e^−z), the loss is the squared error E = ½·(a − t)², and the step is"
    );
    println!(
        "plain gradient descent at η = {eta}. The same starting weights (seed {}) are held two \
         ways:",
        args.seed
    );
    println!(
        "  graph   Lernmi's object graph, one object per Neuron and per Link (lernmi::graph);"
    );
    println!(
        "  dense   the engine, a weight matrix W_l (n_l × n_l−1) and a bias vector b_l per layer,"
    );
    println!("          one row per sample (lernmi::Network); W_l[j, i] is the Link i → j.");
    println!(
        "The sample: x = ({}, {}), target t = {t} ({} XOR {} = {t}).",
        x[0], x[1], x[0], x[1]
    );
    println!(
        "✓ marks a graph number exactly equal (==, so 0 and −0 count as equal) to the engine's;"
    );
    println!("✗ one that is not. The worked lines round to four decimals; the checks print ten.");

    // 1. Forward pass.
    println!();
    println!("1. Forward pass");
    println!("   Every Link i → j pushes a_i·w_ij into neuron j, which sums and squashes once:");
    println!("       z_j = Σ_i a_i·w_ij (the bias neuron's a is 1),   a_j = σ(z_j)");
    println!("   dense, (F):   Z_l = A_l−1·W_lᵀ + b_l,   A_l = σ(Z_l)");
    println!();
    for (k, id) in graph.neuron_layers()[0].learning().iter().enumerate() {
        let a = neurons[id.0].output();
        let worked = if args.input_sigmoid {
            format!(
                "a = σ({}) = {}   (the seed squashes its inputs)",
                x[k],
                num(a)
            )
        } else {
            format!("a = {} (the input itself)", x[k])
        };
        println!("   {}: {worked}", names[id.0]);
        checks.line(
            "a (Neuron#output)",
            a,
            &format!("A₀[0,{k}]"),
            step.inputs[[0, k]],
        );
    }
    for l in 1..=last {
        for (k, id) in graph.neuron_layers()[l].learning().iter().enumerate() {
            let incoming: Vec<&Link> = links_before[l - 1]
                .iter()
                .filter(|link| link.to == *id)
                .collect();
            let terms: Vec<String> = incoming
                .iter()
                .map(|link| {
                    format!(
                        "{}·{}",
                        term(neurons[link.from.0].output()),
                        term(link.weight)
                    )
                })
                .collect();
            let z = neurons[id.0].input_sum();
            let a = neurons[id.0].output();
            println!("   {}: z = {} = {}", names[id.0], terms.join(" + "), num(z));
            checks.line(
                "z (Neuron#input_sum)",
                z,
                &format!("Z{}[0,{k}]", subscript(l)),
                step.weighted_inputs[l - 1][[0, k]],
            );
            println!("       a = σ({}) = {}", num(z), num(a));
            checks.line(
                "a (Neuron#output)",
                a,
                &format!("A{}[0,{k}]", subscript(l)),
                step.activations[l - 1][[0, k]],
            );
        }
    }

    // 2. Output sensitivities.
    println!();
    println!("2. Output sensitivities");
    println!(
        "   Lernmi's expected_output gives each output neuron the sensitivity S = ∂E/∂a = a − t."
    );
    println!("   Each Link into it turns S into its output sensitivity δ = ∂E/∂z = S·a·(1 − a).");
    println!(
        "   dense, (B1):   Δ{L} = (A{L} − Y) ⊙ σ′(Z{L}),   σ′ = A{L} ⊙ (1 − A{L}); the engine \
         forms A{L} − Y",
        L = subscript(last)
    );
    println!(
        "   inside Δ{L}'s buffer, so the column for S below is A{L}[0,k] − Y[0,k].",
        L = subscript(last)
    );
    println!();
    let delta_of = |neurons: &mut Vec<Neuron>, id| -> Vec<f64> {
        let into: Vec<&Link> = links_before
            .iter()
            .flatten()
            .filter(|link| link.to == id)
            .collect();
        into.iter()
            .map(|link| link.output_sensitivity(neurons))
            .collect()
    };
    for (k, id) in graph.neuron_layers()[last].learning().iter().enumerate() {
        let a = neurons[id.0].output();
        let s = neurons[id.0].sensitivity_sum();
        println!(
            "   {}: S = a − t = {} − {t} = {}",
            names[id.0],
            term(a),
            num(s)
        );
        let dense_s = step.activations[last - 1][[0, k]] - targets[[0, k]];
        checks.line(
            "S (Neuron#sensitivity_sum)",
            s,
            &format!("(A{}−Y)[0,{k}]", subscript(last)),
            dense_s,
        );
        let deltas = delta_of(&mut neurons, *id);
        checks.delta(
            s,
            a,
            &deltas,
            &format!("Δ{}[0,{k}]", subscript(last)),
            step.output_sensitivities[last - 1][[0, k]],
        );
    }
    println!("   The loss: E = ½·(a − t)² = {}", num(graph_loss));
    checks.line("E (Network#learn)", graph_loss, "E (Loss::sum)", step.loss);

    // 3. Backward pass.
    println!();
    println!("3. Backward pass");
    println!(
        "   Each Link i → j, taking the link layers from the output back, submits w_ij·δ_j to"
    );
    println!(
        "   neuron i (with its weight from before the update); neuron i sums what it receives,"
    );
    println!(
        "   S_i = Σ_j w_ij·δ_j = ∂E/∂a_i, and its own Links then use δ_i = S_i·a_i·(1 − a_i)."
    );
    println!("   dense, (B2):   Δ_l−1 = (Δ_l·W_l) ⊙ σ′(Z_l−1);  S_i is an element of Δ_l·W_l.");
    for l in (1..=last).rev() {
        println!();
        println!(
            "   Links of W{L} and b{L}, in the seed's order (bias first):",
            L = subscript(l)
        );
        for link in &links_before[l - 1] {
            let delta = link.output_sensitivity(&mut neurons);
            println!(
                "   {:<10} submits w·δ = {}·{} = {} to {}",
                link_name(link),
                term(link.weight),
                term(delta),
                num(link.weight * delta),
                names[link.from.0]
            );
        }
        for (k, id) in graph.neuron_layers()[l - 1].neurons.iter().enumerate() {
            let received: Vec<String> = links_before[l - 1]
                .iter()
                .filter(|link| link.from == *id)
                .map(|link| term(link.weight * link.output_sensitivity(&mut neurons)))
                .collect();
            let s = neurons[id.0].sensitivity_sum();
            let sum = if received.len() > 1 {
                format!("{} = {}", received.join(" + "), num(s))
            } else {
                num(s)
            };
            println!("   {}: S = {sum}", names[id.0]);
            if k == 0 {
                println!("       (a bias neuron's output is fixed at 1: nothing reads its S)");
                continue;
            }
            let element = format!("(Δ{L}·W{L})[0,{}]", k - 1, L = subscript(l));
            checks.line(
                "S (Neuron#sensitivity_sum)",
                s,
                &element,
                step.input_sensitivities[l - 1][[0, k - 1]],
            );
            if l == 1 {
                println!(
                    "       (inputs learn nothing: the engine skips Δ₁·W₁, computed here to \
                     compare)"
                );
                continue;
            }
            let a = neurons[id.0].output();
            let deltas = delta_of(&mut neurons, *id);
            checks.delta(
                s,
                a,
                &deltas,
                &format!("Δ{}[0,{}]", subscript(l - 1), k - 1),
                step.output_sensitivities[l - 2][[0, k - 1]],
            );
        }
    }

    // 4. Weight update.
    println!();
    println!("4. Weight update");
    println!("   Each Link's gradient is ∂E/∂w_ij = a_i·δ_j, and its weight moves against it:");
    println!("       Δw_ij = −η·a_i·δ_j,   w_ij ← w_ij + Δw_ij");
    println!("   dense, (B3), (B4), (U):   ∂E/∂W_l = Δ_lᵀ·A_l−1,  ∂E/∂b_l = Σ_rows Δ_l,");
    println!("                             W_l ← W_l − η·∂E/∂W_l,  b_l ← b_l − η·∂E/∂b_l");
    for l in 1..=last {
        println!();
        let layer = &dense.layers()[l - 1];
        for (link, &after) in links_before[l - 1].iter().zip(&weights_after[l - 1]) {
            let (i, j) = (
                positions[link.from.0],
                positions[link.to.0].saturating_sub(1),
            );
            let a = neurons[link.from.0].output();
            let delta = link.output_sensitivity(&mut neurons);
            println!(
                "   {:<10} Δw = −η·a·δ = −{}·{}·{} = {:+.4},  w: {} → {}",
                link_name(link),
                eta,
                term(a),
                term(delta),
                after - link.weight,
                num(link.weight),
                num(after)
            );
            let (gradient_element, gradient, weight_element, weight) = if i == 0 {
                (
                    format!("ΣΔ{}[·,{j}]", subscript(l)),
                    step.gradients[l - 1].biases[j],
                    format!("b{}[{j}]", subscript(l)),
                    layer.biases()[j],
                )
            } else {
                (
                    format!("(Δ{}ᵀ·A{})[{j},{}]", subscript(l), subscript(l - 1), i - 1),
                    step.gradients[l - 1].weights[[j, i - 1]],
                    format!("W{}[{j},{}]", subscript(l), i - 1),
                    layer.weights()[[j, i - 1]],
                )
            };
            checks.line(
                "a·δ (Link#gradient)",
                link.gradient,
                &gradient_element,
                gradient,
            );
            checks.line("new w (Link#weight)", after, &weight_element, weight);
        }
    }

    // The layer-by-layer numbers above are the engine's own: its backward pass agrees.
    let mut own = Checks::default();
    own.compare("loss", &[step.loss], engine_loss);
    for (mine, engine) in step.gradients.iter().zip(&engine_gradients.layers) {
        for (m, e) in mine.weights.iter().zip(&engine.weights) {
            own.compare("∂E/∂W", &[*m], *e);
        }
        for (m, e) in mine.biases.iter().zip(&engine.biases) {
            own.compare("∂E/∂b", &[*m], *e);
        }
    }
    println!();
    println!(
        "The dense columns come from the engine's layer functions called one by one; its own \
         backward pass,"
    );
    println!(
        "Network::gradients, gives the same loss and gradients: {} of {} equal, and the new \
         weights above",
        own.pairs - own.differing.len(),
        own.pairs
    );
    println!("are those of its own SGD step (Trainer::step, batch 1).");
    checks.pairs += own.pairs;
    checks.differing.extend(own.differing);

    println!();
    if checks.differing.is_empty() {
        println!(
            "Summary: all {} pairs agree exactly (==, no tolerance).",
            checks.pairs
        );
        println!("With one sample the engine does the graph's arithmetic in the graph's order.");
        Ok(())
    } else {
        for d in &checks.differing {
            println!("differs: {d}");
        }
        Err(format!(
            "{} of {} pairs differ",
            checks.differing.len(),
            checks.pairs
        )
        .into())
    }
}
