//! Prediction for applications: [`Network::predict_into`] writes into the caller's buffers and,
//! once its [`PredictScratch`] has the room, allocates nothing.
//!
//! A [`Network`] is `Send + Sync`: one trained network can be shared by reference (or in an
//! `Arc`) by any number of threads that predict at once, each with its own `PredictScratch`.
//! Prediction reads the network and writes only the scratch and the outputs.
//!
//! ```
//! use lernmi::Network;
//! use ndarray::Array2;
//!
//! let net: Network = Network::<f32>::builder(&[4, 8, 3]).seed(7).build()?;
//! let mut scratch = net.predict_scratch(32); // room for batches of up to 32 rows
//! let inputs = Array2::from_elem((32, 4), 0.5f32);
//! let mut outputs = Array2::zeros((32, 3));
//! std::thread::scope(|s| {
//!     s.spawn(|| {
//!         // Another thread predicts with the same network at the same time.
//!         let mut scratch = net.predict_scratch(1);
//!         let mut one = Array2::zeros((1, 3));
//!         net.predict_into(inputs.slice(ndarray::s![..1, ..]), one.view_mut(), &mut scratch)
//!     });
//!     net.predict_into(inputs.view(), outputs.view_mut(), &mut scratch)
//! })?;
//! assert_eq!(outputs, net.predict(inputs.view())?);
//! # Ok::<(), lernmi::Error>(())
//! ```

use ndarray::{s, Array2, ArrayView2, ArrayViewMut2, Axis};

use crate::fast::gemm::Packing;
use crate::{Error, Float, Network, Result};

/// Rows per forward pass: the chunk [`Network::predict`] uses, so that both compute every
/// output by the same operations and give the same bits.
const CHUNK: usize = 256;

/// Buffers for [`Network::predict_into`]: the weighted inputs and activations of every layer
/// for up to 256 rows at a time, and the matrix products' packing buffers.
///
/// Made empty by `PredictScratch::default()` (the first prediction sizes it) or ready by
/// [`Network::predict_scratch`]. A scratch made for one network can be used with another: it
/// resizes itself, allocating once.
#[derive(Clone, Debug, Default)]
pub struct PredictScratch<F: Float = f32> {
    /// Rows the buffers hold.
    rows: usize,
    /// The layer sizes the buffers are shaped for, input first.
    sizes: Vec<usize>,
    /// Inputs after the input activation, (rows, n_in); empty without one.
    inputs: Array2<F>,
    /// Z_l per layer, (rows, n_l).
    weighted_inputs: Vec<Array2<F>>,
    /// A_l per layer, (rows, n_l).
    activations: Vec<Array2<F>>,
    packing: Packing<F>,
}

impl<F: Float> PredictScratch<F> {
    /// Whether the buffers are shaped for `network` and hold at least `rows` rows; allocates
    /// nothing.
    fn fits(&self, network: &Network<F>, rows: usize) -> bool {
        let layers = network.layers();
        rows <= self.rows
            && self.sizes.len() == layers.len() + 1
            && self.sizes[0] == network.n_inputs()
            && self.sizes[1..]
                .iter()
                .zip(layers)
                .all(|(&n, l)| n == l.n_out())
            && (network.input_activation().is_none() || self.inputs.nrows() >= rows)
    }

    /// Reshapes the buffers for `network` and `rows` rows unless they fit already.
    fn prepare(&mut self, network: &Network<F>, rows: usize) {
        let rows = rows.min(CHUNK);
        if self.fits(network, rows) {
            return;
        }
        let rows = rows.max(self.rows).min(CHUNK);
        let buffers = |n: usize| Array2::zeros((rows, n));
        self.rows = rows;
        self.sizes = network.sizes();
        self.inputs = match network.input_activation() {
            Some(_) => buffers(network.n_inputs()),
            None => Array2::zeros((0, 0)),
        };
        self.weighted_inputs = network
            .layers()
            .iter()
            .map(|l| buffers(l.n_out()))
            .collect();
        self.activations = network
            .layers()
            .iter()
            .map(|l| buffers(l.n_out()))
            .collect();
    }
}

impl<F: Float> Network<F> {
    /// A [`PredictScratch`] ready for batches of up to `max_rows` rows: after it, no call of
    /// [`Network::predict_into`] with this network allocates. (Batches larger than 256 rows
    /// run 256 rows at a time, so `max_rows` beyond 256 needs no more room.)
    pub fn predict_scratch(&self, max_rows: usize) -> PredictScratch<F> {
        let rows = max_rows.clamp(1, CHUNK);
        let mut scratch = PredictScratch::default();
        scratch.prepare(self, rows);
        // One pass over zeros grows the packing buffers to their final size.
        let zeros = Array2::zeros((rows, self.n_inputs()));
        self.forward_chunk(zeros.view(), &mut scratch);
        scratch
    }

    /// The network's outputs for a batch of inputs, written into `outputs`: the same values,
    /// bit for bit, as [`Network::predict`], computed on the calling thread.
    ///
    /// Allocates nothing when `scratch` already has room for the batch (it gets it in its first
    /// call, or from [`Network::predict_scratch`]): an application can predict in a loop, or
    /// from many threads with one scratch each, without touching the allocator.
    ///
    /// # Shapes
    /// `inputs`: (batch, n_in); `outputs`: (batch, n_out).
    ///
    /// # Errors
    /// As [`Network::check_inputs`] ([`Error::Empty`], [`Error::InputWidth`],
    /// [`Error::NonFinite`]); [`Error::Shape`] if `outputs` is not (batch, n_out). `outputs`
    /// is untouched on error.
    pub fn predict_into(
        &self,
        inputs: ArrayView2<'_, F>,
        mut outputs: ArrayViewMut2<'_, F>,
        scratch: &mut PredictScratch<F>,
    ) -> Result<()> {
        self.check_inputs(inputs)?;
        if outputs.dim() != (inputs.nrows(), self.n_outputs()) {
            return Err(Error::Shape {
                what: "outputs".into(),
                expected: vec![inputs.nrows(), self.n_outputs()],
                got: outputs.shape().to_vec(),
            });
        }
        scratch.prepare(self, inputs.nrows());
        let last = self.layers().len() - 1;
        let chunks = inputs.axis_chunks_iter(Axis(0), CHUNK);
        for (x, mut out) in chunks.zip(outputs.axis_chunks_iter_mut(Axis(0), CHUNK)) {
            let rows = self.forward_chunk(x, scratch);
            out.assign(&scratch.activations[last].slice(s![..rows, ..]));
        }
        Ok(())
    }

    /// (F) for every layer on at most `scratch.rows` checked rows; returns the row count.
    fn forward_chunk(&self, inputs: ArrayView2<'_, F>, scratch: &mut PredictScratch<F>) -> usize {
        // The shapes were checked by `predict_into` and the scratch is sized for this network.
        self.forward_layers(
            inputs,
            &mut scratch.inputs,
            &mut scratch.weighted_inputs,
            &mut scratch.activations,
            &mut scratch.packing,
        )
    }
}

/// Networks are shared across threads for prediction: keep them `Send + Sync`.
const _: () = {
    const fn shareable<T: Send + Sync>() {}
    shareable::<Network<f32>>();
    shareable::<Network<f64>>();
    shareable::<PredictScratch<f32>>();
};
