//! Any bytes given to the model reader give a network or a `BadFile` error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lernmi::{Error, Network};

fuzz_target!(|bytes: &[u8]| {
    match Network::<f32>::from_safetensors(bytes) {
        Ok(net) => {
            for layer in net.layers() {
                assert!(layer.weights().iter().all(|w| w.is_finite()));
            }
            // What loads saves, and loads again to the same network.
            let again = Network::<f32>::from_safetensors(&net.to_safetensors().unwrap()).unwrap();
            assert_eq!(again, net);
        }
        Err(e) => assert!(matches!(e, Error::BadFile { .. }), "{e}"),
    }
    if let Err(e) = Network::<f64>::from_safetensors(bytes) {
        assert!(matches!(e, Error::BadFile { .. }), "{e}");
    }
});
