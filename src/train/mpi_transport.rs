//! A [`Transport`] over MPI's world communicator (the `mpi` feature).

use mpi::environment::Universe;
use mpi::point_to_point::{Destination, Source};
use mpi::topology::{Communicator, SimpleCommunicator};
use mpi::traits::Root;

use crate::train::reduce::{Transport, Value};
use crate::{Error, Result};

/// The tag of the trainer's point-to-point messages, apart from any a program sends itself.
const TAG: i32 = 0x6c6d;

/// The processes of `MPI_COMM_WORLD` as a [`Transport`] for [`crate::Trainer::distribute`].
///
/// It holds no MPI handle, only the rank and size read when it was made, so a trainer that
/// uses it stays `Send`; MPI itself is called from whichever thread trains, which must be
/// the only thread calling MPI at that time (the `Single` or `Funneled` threading levels of
/// `mpi::initialize` suffice when the main thread trains). MPI's default error handler ends
/// the whole job when a peer dies, so a lost rank stops every rank rather than hanging them.
/// Once the [`Universe`] is dropped MPI is finalised, and every call is an
/// [`Error::Distributed`] instead of a call into a finalised MPI.
#[derive(Clone, Copy, Debug)]
pub struct MpiTransport {
    rank: usize,
    size: usize,
}

impl MpiTransport {
    /// The world communicator of the MPI that `universe` initialised.
    pub fn world(universe: &Universe) -> Self {
        let world = universe.world();
        MpiTransport {
            rank: usize::try_from(world.rank()).unwrap_or(0),
            size: usize::try_from(world.size()).unwrap_or(1),
        }
    }

    /// The rank `rank` as MPI counts, or an error for one outside the world or when MPI is
    /// not running (never initialised, or finalised with its [`Universe`]): MPI forbids calls
    /// outside its lifetime.
    fn peer(&self, rank: usize) -> Result<i32> {
        if !mpi::environment::is_initialized() || mpi::environment::is_finalized() {
            return Err(self.error("MPI is not running (is its Universe dropped?)".into()));
        }
        match i32::try_from(rank) {
            Ok(r) if rank < self.size => Ok(r),
            _ => Err(self.error(format!("no rank {rank} among {}", self.size))),
        }
    }

    /// Checks that a message of `len` elements fits MPI's `int` count.
    fn count(&self, len: usize) -> Result<i32> {
        i32::try_from(len)
            .map_err(|_| self.error(format!("a message of {len} values is too long for MPI")))
    }

    fn error(&self, problem: String) -> Error {
        Error::Distributed {
            rank: self.rank,
            problem,
        }
    }
}

impl Transport for MpiTransport {
    fn rank(&self) -> usize {
        self.rank
    }

    fn size(&self) -> usize {
        self.size
    }

    fn send<T: Value>(&mut self, to: usize, values: &[T]) -> Result<()> {
        let (to, _) = (self.peer(to)?, self.count(values.len())?);
        let world = SimpleCommunicator::world();
        world.process_at_rank(to).send_with_tag(values, TAG);
        Ok(())
    }

    fn receive<T: Value>(&mut self, from: usize, values: &mut [T]) -> Result<()> {
        let (from_rank, expected) = (self.peer(from)?, self.count(values.len())?);
        let world = SimpleCommunicator::world();
        // A longer message than `values` is MPI_ERR_TRUNCATE, which ends the job; a shorter
        // one is caught here.
        let status = world
            .process_at_rank(from_rank)
            .receive_into_with_tag(values, TAG);
        let got = status.count(T::equivalent_datatype());
        if got != expected {
            return Err(self.error(format!(
                "rank {from} sent {got} values where {expected} were expected: were the ranks \
                 started with the same network and configuration?"
            )));
        }
        Ok(())
    }

    fn broadcast<T: Value>(&mut self, root: usize, values: &mut [T]) -> Result<()> {
        let (root, _) = (self.peer(root)?, self.count(values.len())?);
        SimpleCommunicator::world()
            .process_at_rank(root)
            .broadcast_into(values);
        Ok(())
    }
}
