//! Generated MNIST-style digits (to be written).
