//! Any bytes given to the checkpoint reader give a checkpoint or a `BadFile` error.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lernmi::io::checkpoint::Checkpoint;
use lernmi::Error;

fuzz_target!(|bytes: &[u8]| {
    match Checkpoint::<f32>::from_safetensors(bytes) {
        // A checkpoint that loads can be resumed (on one thread: a file may ask for 1024).
        Ok(mut checkpoint) => {
            checkpoint.config.threads = Some(1);
            let trainer = checkpoint.resume().unwrap();
            assert_eq!(trainer.checkpoint_bytes().map(|_| ()).ok(), Some(()));
        }
        Err(e) => assert!(matches!(e, Error::BadFile { .. }), "{e}"),
    }
});
