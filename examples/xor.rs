//! XOR, Lernmi's first demo, learnt by a [2, 3, 1] sigmoid network both ways: by the object
//! graph (one object per Neuron and Link) and by the dense engine, from the same weights.
//! It should print two truth tables whose outputs round to 0 1 1 0.
use lernmi::graph::{GraphInit, GraphOptions, Network as Graph};
use lernmi::{Network, TrainConfig, Trainer};
use ndarray::array;

fn main() -> Result<(), lernmi::Error> {
    let inputs = array![[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]];
    let targets = array![[0.0], [1.0], [1.0], [0.0]];
    // Plain 0/1 inputs and a seeded start; rate 0.5 learns in a few thousand sweeps.
    let options = GraphOptions {
        input_sigmoid: false,
        init: GraphInit::Seeded(4),
        learning_rate: 0.5,
    };
    let mut graph = Graph::with_options(&[2, 3, 1], options)?;
    let dense: Network<f64> = graph.to_dense()?;

    // The graph: forward, backward, update, one sample at a time, as the seed did.
    for _ in 0..5000 {
        for (x, t) in inputs.rows().into_iter().zip(targets.rows()) {
            graph.learn(&x.to_vec(), &t.to_vec())?;
        }
    }
    // The engine: the same per-sample SGD, as matrix products.
    let config = TrainConfig {
        epochs: 5000,
        optimizer: lernmi::Optimizer::sgd(0.5),
        ..TrainConfig::lernmi()
    };
    let mut trainer = Trainer::new(dense, config)?;
    trainer.fit(inputs.view(), targets.view(), &mut ())?;
    let dense = trainer.into_network();

    let from_engine = dense.predict(inputs.view())?;
    println!(" a  b | graph   engine  | a XOR b");
    for (i, x) in inputs.rows().into_iter().enumerate() {
        let g = graph.run(&x.to_vec())?[0];
        println!(
            " {}  {} | {g:.4}  {:.4}  | {}",
            x[0],
            x[1],
            from_engine[[i, 0]],
            targets[[i, 0]]
        );
    }
    Ok(())
}
