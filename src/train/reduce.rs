//! Data parallelism that keeps the bits: a minibatch's fixed shards spread over processes, and
//! their gradients added in shard order, the same fold as one process.
//!
//! One process adds its shards' gradients `g₀ + g₁ + … + g_{S−1}` from left to right. Spread
//! over R processes ("ranks"), rank r computes the contiguous block of shards
//! [⌊rS/R⌋, ⌊(r+1)S/R⌋) ([`shard_range`]) and the sum travels along a chain: the first rank
//! folds its shards, sends the partial sum (and the summed loss) to the next rank that has
//! shards, which adds its own shards to it in order and passes it on; the last rank then holds
//! exactly the one-process sum and broadcasts it. Every addition is the one a single process
//! makes, in the same order, so the trained weights are bit-identical for any number of
//! processes (and threads). Each rank ships the whole gradient once per step, one hop after the
//! other, and the broadcast copies it to everyone: see PERFORMANCE.md for what that costs.
//!
//! The processes talk through a [`Transport`]; with the `mpi` feature, `train::MpiTransport` is
//! one over MPI.

use std::ops::Range;

use sha2::{Digest, Sha256};

use crate::{Error, Float, Gradients, Result, Trainer};

/// The element types a [`Transport`] moves: `f32` and `f64`.
#[cfg(not(feature = "mpi"))]
pub trait Value: crate::float::sealed::Sealed + Copy + Send + 'static {}

/// The element types a [`Transport`] moves: `f32` and `f64`.
#[cfg(feature = "mpi")]
pub trait Value:
    crate::float::sealed::Sealed + Copy + Send + 'static + mpi::traits::Equivalence
{
}

impl Value for f32 {}
impl Value for f64 {}

/// Moves numbers between the processes ("ranks") of a data-parallel run.
///
/// Messages from one rank to another arrive in the order they were sent. Every rank calls the
/// methods in the same order (the trainer sees to that), so a receive always meets its send,
/// and a broadcast is entered by every rank. A transport that loses a peer returns an error
/// rather than waiting for ever.
pub trait Transport {
    /// This process's rank, `0..size()`.
    fn rank(&self) -> usize;
    /// The number of ranks.
    fn size(&self) -> usize;
    /// Sends `values` to rank `to`.
    ///
    /// # Errors
    /// [`Error::Distributed`] when the message cannot be sent.
    fn send<T: Value>(&mut self, to: usize, values: &[T]) -> Result<()>;
    /// Receives into `values` the next message from rank `from`.
    ///
    /// # Errors
    /// [`Error::Distributed`] when the peer is gone or its message has another length.
    fn receive<T: Value>(&mut self, from: usize, values: &mut [T]) -> Result<()>;
    /// Copies rank `root`'s `values` into every other rank's `values`.
    ///
    /// # Errors
    /// [`Error::Distributed`] when a peer is gone.
    fn broadcast<T: Value>(&mut self, root: usize, values: &mut [T]) -> Result<()>;
}

/// The shards of a minibatch of `n_shards` that rank `rank` of `ranks` computes: a contiguous
/// block, the blocks in rank order, their sizes differing by at most one. Ranks beyond the
/// number of shards get none.
pub fn shard_range(rank: usize, ranks: usize, n_shards: usize) -> Range<usize> {
    let bound = |r: usize| (r as u128 * n_shards as u128 / ranks.max(1) as u128) as usize;
    bound(rank)..bound(rank + 1)
}

/// How a trainer computes and sums a step's shards when they are spread over processes.
pub(crate) trait Reducer<F: Float> {
    /// The shards of a step with `n_shards` shards that this process computes.
    fn shards(&self, n_shards: usize) -> Range<usize>;

    /// Adds all `n_shards` shards' gradients and losses, in shard order, given `local`, this
    /// process's shards (in order), and returns the sum (written into `total`) and the loss.
    fn reduce<'t>(
        &mut self,
        local: &mut dyn Iterator<Item = (&Gradients<F>, f64)>,
        n_shards: usize,
        total: &'t mut Gradients<F>,
    ) -> Result<(&'t Gradients<F>, f64)>;
}

/// The chain of ranks described in the module documentation.
struct Chain<T> {
    transport: T,
}

impl<T: Transport> Chain<T> {
    /// The rank that computes shard `shard` of `n_shards`.
    fn owner(&self, shard: usize, n_shards: usize) -> usize {
        let size = self.transport.size();
        (0..size)
            .find(|&r| shard_range(r, size, n_shards).contains(&shard))
            .unwrap_or(size - 1)
    }

    /// Sends `total` and `loss` to rank `to`.
    fn send<F: Float + Value>(&mut self, to: usize, total: &Gradients<F>, loss: f64) -> Result<()> {
        for layer in &total.layers {
            let weights = layer.weights.as_slice_memory_order();
            let (Some(weights), Some(biases)) = (weights, layer.biases.as_slice()) else {
                return Err(self.error("gradients not contiguous in memory".into()));
            };
            self.transport.send(to, weights)?;
            self.transport.send(to, biases)?;
        }
        self.transport.send(to, &[loss])
    }

    /// Receives `total` and `loss` from rank `from` (`broadcast`: the broadcast from `from`).
    fn receive<F: Float + Value>(
        &mut self,
        from: usize,
        total: &mut Gradients<F>,
        loss: &mut f64,
        broadcast: bool,
    ) -> Result<()> {
        let move_values = |t: &mut T, values: &mut [_]| match broadcast {
            true => t.broadcast(from, values),
            false => t.receive(from, values),
        };
        for layer in &mut total.layers {
            let weights = layer.weights.as_slice_memory_order_mut();
            let (Some(weights), Some(biases)) = (weights, layer.biases.as_slice_mut()) else {
                return Err(self.error("gradients not contiguous in memory".into()));
            };
            move_values(&mut self.transport, weights)?;
            move_values(&mut self.transport, biases)?;
        }
        let mut value = [*loss];
        match broadcast {
            true => self.transport.broadcast(from, &mut value)?,
            false => self.transport.receive(from, &mut value)?,
        }
        *loss = value[0];
        Ok(())
    }

    fn error(&self, problem: String) -> Error {
        Error::Distributed {
            rank: self.transport.rank(),
            problem,
        }
    }
}

impl<F: Float + Value, T: Transport> Reducer<F> for Chain<T> {
    fn shards(&self, n_shards: usize) -> Range<usize> {
        shard_range(self.transport.rank(), self.transport.size(), n_shards)
    }

    fn reduce<'t>(
        &mut self,
        local: &mut dyn Iterator<Item = (&Gradients<F>, f64)>,
        n_shards: usize,
        total: &'t mut Gradients<F>,
    ) -> Result<(&'t Gradients<F>, f64)> {
        let mine = Reducer::<F>::shards(self, n_shards);
        let mut loss = 0.0;
        if !mine.is_empty() {
            if mine.start == 0 {
                // The fold starts from shard 0 itself (a copy, then additions: the same bits
                // as one process's fused first addition).
                let Some((first, first_loss)) = local.next() else {
                    return Err(self.error("no gradients for shard 0".into()));
                };
                total.combine(Some(first), None, None);
                loss = first_loss;
            } else {
                let previous = self.owner(mine.start - 1, n_shards);
                self.receive(previous, total, &mut loss, false)?;
            }
            for (gradients, shard_loss) in local {
                total.combine(None, Some(gradients), None);
                loss += shard_loss;
            }
            if mine.end < n_shards {
                let next = self.owner(mine.end, n_shards);
                self.send(next, total, loss)?;
            }
        }
        let last = self.owner(n_shards - 1, n_shards);
        self.receive(last, total, &mut loss, true)?;
        Ok((total, loss))
    }
}

impl<F: Float + Value> Trainer<F> {
    /// Trains data-parallel from now on: every step's shards are spread over the ranks of
    /// `transport` ([`shard_range`]) and their gradients added in shard order along a chain of
    /// ranks, so the weights stay bit-identical to a one-process run, whatever the number of
    /// ranks and threads.
    ///
    /// Every rank must make the same calls with the same data, network, configuration and
    /// optimiser state: each builds its trainer from the same seed (or the same file), trains
    /// on the same samples, and computes only its own shards. This call checks, with a
    /// fingerprint of the network, the optimiser's step count and the configuration, that
    /// every rank agrees with rank 0, and on every rank fails alike if one does not. All ranks
    /// also need the same kernel family (`LERNMI_KERNEL`), as their shards must compute the
    /// same bits.
    ///
    /// # Errors
    /// [`Error::Distributed`] when the transport's rank is not below its size, a rank differs
    /// from rank 0, or the transport fails.
    pub fn distribute<T: Transport + Send + 'static>(&mut self, mut transport: T) -> Result<()> {
        let (rank, size) = (transport.rank(), transport.size());
        if rank >= size {
            return Err(Error::Distributed {
                rank,
                problem: format!("the rank must be below the number of ranks, {size}"),
            });
        }
        check_agreement(&mut transport, self.fingerprint())?;
        self.set_reducer(Box::new(Chain { transport }));
        Ok(())
    }

    /// 64 bits of SHA-256 over what every rank must share, as two exact `f64`s.
    fn fingerprint(&self) -> [f64; 2] {
        let mut hash = Sha256::new();
        for layer in self.network().layers() {
            hash.update(format!(
                "{}x{} {:?};",
                layer.n_out(),
                layer.n_in(),
                layer.activation()
            ));
            for &w in layer.weights().iter().chain(layer.biases().iter()) {
                hash.update(w.to_f64().unwrap_or(f64::NAN).to_bits().to_le_bytes());
            }
        }
        hash.update(format!(
            "{:?} {:?} {} {}",
            self.network().loss(),
            self.config(),
            self.optimizer_state().steps(),
            self.epoch()
        ));
        let digest = hash.finalize();
        let half = |i: usize| {
            let bytes = [digest[i], digest[i + 1], digest[i + 2], digest[i + 3]];
            f64::from(u32::from_le_bytes(bytes))
        };
        [half(0), half(4)]
    }
}

/// Checks that every rank's `fingerprint` equals rank 0's; fails on every rank alike if not.
fn check_agreement<T: Transport>(transport: &mut T, fingerprint: [f64; 2]) -> Result<()> {
    let (rank, size) = (transport.rank(), transport.size());
    let mut reference = fingerprint;
    transport.broadcast(0, &mut reference)?;
    let agrees = f64::from(u8::from(reference == fingerprint));
    // Rank 0 hears every rank's verdict and tells everyone the first that differs.
    let mut first_differing = [-1.0];
    if rank == 0 {
        for other in 1..size {
            let mut verdict = [0.0];
            transport.receive(other, &mut verdict)?;
            if verdict[0] != 1.0 && first_differing[0] < 0.0 {
                first_differing[0] = other as f64;
            }
        }
    } else {
        transport.send(0, &[agrees])?;
    }
    transport.broadcast(0, &mut first_differing)?;
    if first_differing[0] >= 0.0 {
        return Err(Error::Distributed {
            rank,
            problem: format!(
                "rank {} has another network, optimiser state or configuration than rank 0: \
                 start every rank with the same arguments and files",
                first_differing[0]
            ),
        });
    }
    Ok(())
}
