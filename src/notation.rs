//! The maths of the crate, written down once. Code comments cite these equations.
//!
//! # Shapes and names
//!
//! Rows are samples. A batch of B samples enters as `X = A_0`, (B, n_0). Layer l has weights
//! `W_l`, (n_l × n_{l−1}), as PyTorch's `nn.Linear` stores them, so `W_l[j, k]` is the weight of
//! Lernmi's Link from neuron k of layer l−1 to neuron j of layer l; and biases `b_l`, (n_l),
//! which are the weights of the Links from Lernmi's bias neuron (whose output is always 1).
//!
//! | maths | name in the code | Lernmi | shape |
//! |---|---|---|---|
//! | Z_l = A_{l−1}·W_lᵀ + b_l | `weighted_inputs` | a Neuron's `input_sum` | (B, n_l) |
//! | A_l = σ_l(Z_l) | `activations` | a Neuron's `output` | (B, n_l) |
//! | Δ_l = ∂L/∂Z_l | `output_sensitivities` | a Link's output sensitivity | (B, n_l) |
//! | Δ_l·W_l = ∂L/∂A_{l−1} | `input_sensitivities` | a Neuron's summed sensitivity | (B, n_{l−1}) |
//! | ∂L/∂W_l, ∂L/∂b_l | [`crate::Gradients`] | `input.output · output_sensitivity` | like W_l, b_l |
//! | η | `learning_rate` | `training_rate` (0.1) | |
//!
//! "Sensitivity" always means ∂L/∂(the thing named); derivatives with respect to parameters
//! are "gradients", which the optimisers consume.
//!
//! # Forward
//!
//! ```text
//! (F)  Z_l = A_{l−1}·W_lᵀ + b_l,    A_l = σ_l(Z_l),    l = 1 … L
//! ```
//! An optional input activation replaces A_0 = X by σ_0(X) (the seed squashes its inputs).
//!
//! # Backward
//!
//! The loss of a batch is the mean of per-sample losses L = (1/B)·Σ_s L_s (see [`crate::nn::loss`]).
//! The backward pass computes the per-sample sensitivities and divides once, at the end:
//!
//! ```text
//! (B1) Δ_L = A_L − Y                        softmax + cross-entropy, sigmoid + binary cross-entropy
//!      Δ_L = (A_L − Y) ⊙ σ_L′(Z_L)          squared error ½Σ(a − y)² (Lernmi: S_k = a_k − t_k)
//! (B2) Δ_l = (Δ_{l+1}·W_{l+1}) ⊙ σ_l′(Z_l)
//! (B3) ∂L/∂W_l = (1/B)·Δ_lᵀ·A_{l−1}
//! (B4) ∂L/∂b_l = (1/B)·Σ_rows Δ_l
//! ```
//! For softmax in (B2)'s role (after squared error) σ′ is a Jacobian, applied row by row as
//! Δ_i = a_i·(g_i − Σ_j a_j·g_j), g = ∂L/∂A.
//!
//! The sensitivity of the input layer, Δ_1·W_1, is never needed and never computed.
//!
//! # Dropout
//!
//! Training may drop hidden units (inverted dropout, [`crate::nn::dropout`]): hidden layer l
//! with rate p_l has a mask M_l, (B, n_l), drawn afresh for every sample and epoch, and the
//! next layer reads the masked activations instead of A_l. The output layer never drops, and
//! prediction and evaluation never mask.
//!
//! ```text
//! (D)   M_l[s, j] = 1/(1 − p_l) with probability 1 − p_l, else 0;   Ã_l = A_l ⊙ M_l
//!       (F) of layer l+1 and (B3) of layer l+1 then read Ã_l in place of A_l
//! (B2ᴰ) Δ_l = ((Δ_{l+1}·W_{l+1}) ⊙ M_l) ⊙ σ_l′(Z_l)           σ_l′ at Z_l and A_l, before the mask
//! ```
//! Scaling the kept units by 1/(1 − p_l) keeps E\[Ã_l\] = A_l, so the network predicts with its
//! weights as trained. At p_l = 0 every factor is 1 and nothing changes.
//!
//! # Update
//!
//! ```text
//! (U)  W_l ← W_l − η·∂L/∂W_l,   b_l ← b_l − η·∂L/∂b_l        (SGD; see crate::train::optimizer for the others)
//! ```
//!
//! With B = 1, (B1)–(U) are exactly what Lernmi's Links do one weight at a time: a Link i → j
//! computes δ_j = S_j·a_j(1 − a_j) (one element of Δ), submits w_ij·δ_j to neuron i (one term of
//! Δ·W), and updates w_ij ← w_ij − η·a_i·δ_j (one element of η·Δᵀ·A), all with the weights from
//! before the update.
