//! Your own data, through the library: a CSV table with features of very different scales and
//! text labels → a standardizer fitted on the training rows → training on the labels → a
//! model that classifies raw test rows.

use std::fmt::Write as _;
use std::path::Path;

use lernmi::data::csv::{parse_classes, CsvOptions};
use lernmi::data::standardize::Standardizer;
use lernmi::{Model, Network, Optimizer, TrainConfig, Trainer};

/// A table of `rows` rows from a known rule: `income` in the thousands, `ratio` in the
/// thousandths, and the label `"high"` when income / 1000 + ratio · 1000 > 6, else `"low"`.
/// The points come from a fixed quasi-random sequence, so the table is the same everywhere.
fn table(rows: usize, offset: usize) -> String {
    let mut csv = String::from("income,label,ratio\n");
    for i in offset..offset + rows {
        let u = (i as f64 * 0.618_033_988_749_895).fract();
        let v = (i as f64 * 0.754_877_666_246_693).fract();
        let (income, ratio) = (1000.0 + 8000.0 * u, 0.004 * v);
        let label = if income / 1000.0 + ratio * 1000.0 > 6.0 {
            "high"
        } else {
            "low"
        };
        let _ = writeln!(csv, "{income:.2},{label},{ratio:.6}");
    }
    csv
}

#[test]
fn a_table_is_learned_from_standardised_features() {
    let options = CsvOptions::new("label");
    let read = |text: String| parse_classes::<f32>(text.as_bytes(), Path::new("t.csv"), &options);
    let train = read(table(1000, 0)).unwrap();
    let test = read(table(400, 1000)).unwrap();
    assert_eq!(train.feature_names, ["income", "ratio"]);
    assert_eq!(train.class_names.as_deref().unwrap(), ["high", "low"]);
    assert_eq!(test.class_names, train.class_names);

    let standardizer = Standardizer::fit(train.features.view()).unwrap();
    let mut x = train.features.clone();
    standardizer.transform(x.view_mut()).unwrap();
    let net = Network::<f32>::builder(&[2, 16, 2])
        .seed(4)
        .build()
        .unwrap();
    let config = TrainConfig {
        epochs: 30,
        batch_size: 32,
        optimizer: Optimizer::adam(0.01),
        ..TrainConfig::default()
    };
    let mut trainer = Trainer::new(net, config).unwrap();
    trainer.fit(x.view(), &train.labels, &mut ()).unwrap();

    let model = Model::new(trainer.into_network(), Some(standardizer)).unwrap();
    let eval = model.evaluate(test.features.view(), &test.labels).unwrap();
    assert!(eval.accuracy() >= 0.95, "test accuracy {}", eval.accuracy());
    // The bare network, given the raw features, is not the model.
    let raw = model
        .network()
        .evaluate(test.features.view(), &test.labels)
        .unwrap();
    assert!(
        raw.accuracy() < eval.accuracy(),
        "raw {} vs {}",
        raw.accuracy(),
        eval.accuracy()
    );
}
