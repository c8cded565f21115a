//! The object graph reproduces the numbers measured from the original Ruby program
//! (`shared/reference/lernmi-seed.md`), to 1e-12; the dense engine, started from the same
//! weights, reproduces the same accuracies.

#![allow(clippy::excessive_precision)] // reference values pasted as printed (%.17g)

mod common;

use common::{compensated_sum, mnist};
use lernmi::data::{Dataset, PixelScale};
use lernmi::graph::Network as Graph;

const TOL: f64 = 1e-12;

fn layer_sum(graph: &Graph, l: usize) -> f64 {
    compensated_sum(graph.link_layers()[l].links.iter().map(|k| k.weight))
}

fn first3(graph: &Graph, l: usize) -> Vec<f64> {
    graph.link_layers()[l].links[..3]
        .iter()
        .map(|k| k.weight)
        .collect()
}

fn sample(data: &Dataset, i: usize, scale: PixelScale) -> (Vec<f64>, Vec<f64>) {
    let factor = if scale == PixelScale::Raw {
        1.0
    } else {
        1.0 / 255.0
    };
    let x = data
        .image(i)
        .iter()
        .map(|&p| f64::from(p) * factor)
        .collect();
    let mut t = vec![0.0; 10];
    t[usize::from(data.labels()[i])] = 1.0;
    (x, t)
}

fn assert_close(got: &[f64], want: &[f64], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}");
    for (k, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= TOL,
            "{what}[{k}]: got {g:.17}, reference {w:.17}, diff {:e}",
            (g - w).abs()
        );
    }
}

struct Reference {
    samples: usize,
    sums: [f64; 2],
    first_l1: [f64; 3],
    first_l2: [f64; 3],
}

fn check_training(scale: PixelScale, refs: &[Reference], test0_after_100: &[f64]) {
    let mnist = mnist();
    let mut graph = Graph::new(&[784, 15, 10]).unwrap();
    let mut learned = 0;
    for r in refs {
        while learned < r.samples {
            let (x, t) = sample(&mnist.train, learned, scale);
            graph.learn(&x, &t).unwrap();
            learned += 1;
        }
        let what = format!("{scale:?} after {} samples", r.samples);
        assert_close(
            &[layer_sum(&graph, 0), layer_sum(&graph, 1)],
            &r.sums,
            &format!("{what}: weight sums"),
        );
        assert_close(&first3(&graph, 0), &r.first_l1, &format!("{what}: layer 1"));
        assert_close(&first3(&graph, 1), &r.first_l2, &format!("{what}: layer 2"));
    }
    let (x0, _) = sample(&mnist.test, 0, scale);
    assert_close(
        &graph.run(&x0).unwrap(),
        test0_after_100,
        "test0 outputs after 100",
    );
}

#[test]
fn initial_weights_and_untrained_outputs_match_the_seed() {
    let mut graph = Graph::new(&[784, 15, 10]).unwrap();
    assert_eq!(graph.link_layers()[0].links.len(), 785 * 15);
    assert_eq!(graph.link_layers()[1].links.len(), 16 * 10);
    assert_close(
        &[layer_sum(&graph, 0), layer_sum(&graph, 1)],
        &[-15.717920201589301, -2.4475159488521046],
        "initial weight sums",
    );
    let first = [
        -0.082977995297425999,
        0.2203244934421581,
        -0.49988562518265511,
    ];
    assert_close(&first3(&graph, 0), &first, "initial layer 1");
    assert_close(&first3(&graph, 1), &first, "initial layer 2");

    let mnist = mnist();
    let (x0, _) = sample(&mnist.test, 0, PixelScale::Raw);
    assert_close(
        &graph.run(&x0).unwrap(),
        &[
            0.18030297118890928,
            0.77540552131451734,
            0.31206179499994924,
            0.23769038395071407,
            0.57858892700167353,
            0.36236161687122642,
            0.39885243471754289,
            0.52977950522963102,
            0.53364923136409648,
            0.77899791070748736,
        ],
        "untrained test0 outputs",
    );
}

#[test]
fn raw_inputs_after_1_and_100_samples_match_the_seed() {
    check_training(
        PixelScale::Raw,
        &[
            Reference {
                samples: 1,
                sums: [-16.609399929664836, -3.0713204120008766],
                first_l1: [
                    -0.082962822726138266,
                    0.22050718757809629,
                    -0.49988785559950666,
                ],
                first_l2: [
                    -0.086641969090297685,
                    0.20603601807436703,
                    -0.50818964741490213,
                ],
            },
            Reference {
                samples: 100,
                sums: [22.811385674584514, -19.042716230204793],
                first_l1: [
                    -0.082851935704838384,
                    0.22571023665252787,
                    -0.49991195773250841,
                ],
                first_l2: [
                    -0.14070019467689857,
                    -0.075008766508707858,
                    -0.60731895543761127,
                ],
            },
        ],
        &[
            0.13932610201304049,
            0.16077433262873464,
            0.091124977472331864,
            0.14067804699954939,
            0.11789115986006513,
            0.089468644813528814,
            0.15690250396577279,
            0.14185170564036309,
            0.1233835859196836,
            0.14002500291178266,
        ],
    );
}

#[test]
fn unit_inputs_after_1_and_100_samples_match_the_seed() {
    check_training(
        PixelScale::Unit,
        &[
            Reference {
                samples: 1,
                sums: [-17.284145479271366, -3.0520620616003922],
                first_l1: [
                    -0.082904207894903659,
                    0.22107640445119736,
                    -0.49989395499331263,
                ],
                first_l2: [
                    -0.086138278052702119,
                    0.20571177489070222,
                    -0.50711980626427255,
                ],
            },
            Reference {
                samples: 100,
                sums: [7.4189103150552356, -18.348342131220576],
                first_l1: [
                    -0.082574891587359603,
                    0.2253397431755646,
                    -0.49993266078836396,
                ],
                first_l2: [
                    -0.15699780523825208,
                    -0.085741600895287429,
                    -0.58621453969726667,
                ],
            },
        ],
        &[
            0.15592674105374454,
            0.15586645880506053,
            0.09027974254199185,
            0.14434878283550354,
            0.11852185030452943,
            0.099433649130596324,
            0.1596692564631122,
            0.14547729892183339,
            0.12505089738712724,
            0.13063095808623423,
        ],
    );
}

/// Trained on train[0:2000], tested on test[0:1000]: 280/1000 raw, 147/1000 in [0, 1], both
/// by the graph and by the dense engine started from the seed's weights.
#[test]
fn accuracy_after_2000_samples_matches_the_seed_both_ways() {
    let mnist = mnist();
    for (scale, want) in [(PixelScale::Raw, 280), (PixelScale::Unit, 147)] {
        let mut graph = Graph::new(&[784, 15, 10]).unwrap();
        for i in 0..2000 {
            let (x, t) = sample(&mnist.train, i, scale);
            graph.learn(&x, &t).unwrap();
        }
        let correct = (0..1000)
            .filter(|&i| {
                let (x, _) = sample(&mnist.test, i, scale);
                let out = graph.run(&x).unwrap();
                first_argmax(&out) == usize::from(mnist.test.labels()[i])
            })
            .count();
        assert_eq!(correct, want, "graph, {scale:?}");

        let dense = lernmi::Network::<f64>::lernmi_builder(&[784, 15, 10])
            .build()
            .unwrap();
        let train = mnist.train.slice(0, 2000).unwrap();
        let test = mnist.test.slice(0, 1000).unwrap();
        let mut trainer = lernmi::Trainer::new(dense, lernmi::TrainConfig::lernmi()).unwrap();
        trainer
            .train_epoch(
                train.inputs::<f64>(scale).view(),
                train.targets::<f64>().view(),
                &mut (),
            )
            .unwrap();
        let eval = trainer
            .network()
            .evaluate(
                test.inputs::<f64>(scale).view(),
                test.targets::<f64>().view(),
            )
            .unwrap();
        assert_eq!(eval.correct, want, "dense engine, {scale:?}");
    }
}

fn first_argmax(v: &[f64]) -> usize {
    let mut best = 0;
    for (i, &x) in v.iter().enumerate() {
        if x > v[best] {
            best = i;
        }
    }
    best
}
