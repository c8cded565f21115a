//! `LERNMI_KERNEL` naming no kernel family is an error from the first public call that computes,
//! never a panic and never ignored. (Its own test binary: the choice is read once per process.)

use lernmi::{Error, Network};
use ndarray::Array2;

#[test]
fn an_unknown_kernel_family_is_an_error_naming_the_options() {
    // Set before anything in this process reads it (this binary's only test).
    std::env::set_var("LERNMI_KERNEL", "sse9");
    let err = lernmi::fast::kernel_choice().unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, Error::KernelUnavailable { .. }), "{message}");
    assert!(
        message.contains("sse9") && message.contains("portable"),
        "{message}"
    );
    let net = Network::<f32>::builder(&[3, 2]).seed(1).build().unwrap();
    let err = net.predict(Array2::zeros((4, 3)).view()).unwrap_err();
    assert!(matches!(err, Error::KernelUnavailable { .. }), "{err}");
}
