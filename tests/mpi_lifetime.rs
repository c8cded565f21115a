//! The MPI transport outside MPI's lifetime: an error, never a call into a finalised MPI.
//! (Built with `--features mpi` only; MPI starts as a singleton, no `mpirun` needed.)
#![cfg(feature = "mpi")]

use lernmi::train::reduce::Transport;
use lernmi::train::MpiTransport;
use lernmi::Error;

#[test]
fn a_transport_outlived_by_its_universe_errs() {
    let universe = mpi::initialize().expect("MPI initialises once per process");
    let mut transport = MpiTransport::world(&universe);
    assert_eq!((transport.rank(), transport.size()), (0, 1));
    let mut values = [1.0f32, 2.0];
    transport.broadcast(0, &mut values).unwrap();
    drop(universe); // finalises MPI
    for result in [
        transport.broadcast(0, &mut values),
        transport.send(0, &values),
        transport.receive(0, &mut values),
    ] {
        match result {
            Err(Error::Distributed { rank: 0, problem }) => {
                assert!(problem.contains("not running"), "{problem}")
            }
            other => panic!("expected Error::Distributed, got {other:?}"),
        }
    }
}
