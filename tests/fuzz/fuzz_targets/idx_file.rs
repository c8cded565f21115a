//! Any bytes given to the IDX reader, raw or behind gzip, give an array or a `BadFile` error.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use lernmi::data::idx::parse_idx;
use lernmi::Error;

fuzz_target!(|bytes: &[u8]| {
    match parse_idx(bytes, Path::new("fuzz.idx")) {
        Ok(array) => {
            assert_eq!(array.data.len(), array.dims.iter().product::<usize>());
        }
        Err(e) => assert!(matches!(e, Error::BadFile { .. }), "{e}"),
    }
    let gz = flate2::read::MultiGzDecoder::new(bytes);
    if let Err(e) = parse_idx(gz, Path::new("fuzz.idx.gz")) {
        assert!(matches!(e, Error::BadFile { .. }), "{e}");
    }
});
