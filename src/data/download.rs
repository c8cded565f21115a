//! Finding and downloading MNIST (to be written).
