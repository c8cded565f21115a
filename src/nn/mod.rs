//! The network and its maths, written plainly: activation functions σ, losses L, seeded
//! initialisation, the [`Dense`] layer (forward beside backward, equations (F) and (B1)–(B4)
//! of [`notation`](crate::notation)) and the [`Network`] that chains them. The fast paths these
//! call live in [`fast`](crate::fast); each mirrors an equation stated here.

pub mod activation;
pub mod dense;
pub mod dropout;
pub mod inference;
pub mod init;
pub mod loss;
pub mod network;
pub mod targets;

pub use activation::Activation;
pub use dense::{Dense, LayerGradients};
pub use inference::PredictScratch;
pub use init::Init;
pub use loss::Loss;
pub use network::{one_hot, Evaluation, Gradients, Network, NetworkBuilder};
pub use targets::Targets;
