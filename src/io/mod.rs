//! Files: safetensors reading and atomic writing ([`safetensors`]), model files ([`model`], safetensors laid out like a PyTorch `nn.Sequential`),
//! checkpoints ([`checkpoint`]: model, optimiser moments, epoch and config, for a bit-exact
//! resume) and ONNX export ([`onnx`]). Every write is atomic; every read is bounded.

pub mod checkpoint;
pub mod model;
pub mod onnx;
pub mod safetensors;
