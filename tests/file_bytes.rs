//! Saving the same network (or trainer) twice writes the same bytes, so that model files of
//! runs that should agree can be compared with `cmp`.

use lernmi::{Network, TrainConfig, Trainer};

#[test]
fn a_network_serialises_to_the_same_bytes_every_time() {
    let net = Network::<f32>::builder(&[5, 4, 3]).seed(2).build().unwrap();
    let first = net.to_safetensors().unwrap();
    // Each serialisation builds its metadata map afresh: 32 tries make a lucky pass of a
    // key order left to chance all but impossible.
    for _ in 0..32 {
        assert!(net.to_safetensors().unwrap() == first, "the bytes differ");
    }
}

#[test]
fn a_checkpoint_serialises_to_the_same_bytes_every_time() {
    let net = Network::<f32>::builder(&[5, 4, 3]).seed(2).build().unwrap();
    let trainer = Trainer::new(net, TrainConfig::default()).unwrap();
    let first = trainer.checkpoint_bytes().unwrap();
    for _ in 0..32 {
        assert!(
            trainer.checkpoint_bytes().unwrap() == first,
            "the bytes differ"
        );
    }
}
