//! `Network::predict_into`: the same bits as `predict`, typed errors for wrong shapes, no
//! allocation once its scratch has room, and one network shared by threads that predict.
//!
//! This test binary installs a counting global allocator; counting is switched on per thread,
//! so tests running in parallel do not see each other's allocations.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};

use lernmi::{Activation, Error, Float, Loss, Network, PredictScratch};
use ndarray::{s, Array2};

struct Counting;

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
}
static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

impl Counting {
    fn record(&self) {
        if COUNTING.try_with(Cell::get).unwrap_or(false) {
            ALLOCATIONS.fetch_add(1, Ordering::SeqCst);
        }
    }
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        self.record();
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        self.record();
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        self.record();
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static A: Counting = Counting;

/// Allocations made by `f` on the calling thread. (Other threads count into the same total
/// only while they count too; the tests that count run one window at a time per thread and
/// read the difference.)
fn allocations<R>(f: impl FnOnce() -> R) -> (usize, R) {
    COUNTING.with(|c| c.set(true));
    let before = ALLOCATIONS.load(Ordering::SeqCst);
    let r = std::hint::black_box(f());
    let after = ALLOCATIONS.load(Ordering::SeqCst);
    COUNTING.with(|c| c.set(false));
    (after - before, r)
}

/// Deterministic inputs in [−2, 2).
fn inputs<F: Float>(rows: usize, width: usize, seed: u64) -> Array2<F> {
    let mut state = seed;
    Array2::from_shape_simple_fn((rows, width), || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        F::of(4.0 * ((state >> 11) as f64 / (1u64 << 53) as f64) - 2.0)
    })
}

fn mnist_net() -> Network {
    Network::<f32>::builder(&[784, 256, 128, 10])
        .seed(5)
        .build()
        .unwrap()
}

#[test]
fn predict_into_allocates_nothing_once_its_scratch_has_room() {
    let net = mnist_net();
    let x = inputs::<f32>(1000, 784, 1);
    let mut out = Array2::zeros((1000, 10));
    let mut scratch = net.predict_scratch(1000);
    for rows in [1, 1000, 37, 256, 257, 1, 999] {
        let (count, result) = allocations(|| {
            net.predict_into(
                x.slice(s![..rows, ..]),
                out.slice_mut(s![..rows, ..]),
                &mut scratch,
            )
        });
        result.unwrap();
        assert_eq!(count, 0, "{rows} rows allocated {count} times");
    }
    // An empty scratch sizes itself in its first call, then allocates no more.
    let mut fresh = PredictScratch::default();
    let (first, _) = allocations(|| net.predict_into(x.view(), out.view_mut(), &mut fresh));
    assert!(first > 0);
    for _ in 0..3 {
        let (count, result) =
            allocations(|| net.predict_into(x.view(), out.view_mut(), &mut fresh));
        result.unwrap();
        assert_eq!(count, 0);
    }
    // The seed's network, with its input activation, in f64.
    let seed: Network<f64> = Network::<f64>::lernmi_builder(&[20, 7, 3]).build().unwrap();
    let x = inputs::<f64>(300, 20, 2);
    let mut out = Array2::zeros((300, 3));
    let mut scratch = seed.predict_scratch(1);
    seed.predict_into(x.view(), out.view_mut(), &mut scratch)
        .unwrap();
    let (count, _) = allocations(|| seed.predict_into(x.view(), out.view_mut(), &mut scratch));
    assert_eq!(count, 0);
}

fn same_bits_as_predict<F: Float>(net: &Network<F>) {
    let mut scratch = PredictScratch::default();
    for rows in [1, 2, 255, 256, 257, 600] {
        let x = inputs::<F>(rows, net.n_inputs(), rows as u64);
        let mut out = Array2::from_elem((rows, net.n_outputs()), F::nan());
        net.predict_into(x.view(), out.view_mut(), &mut scratch)
            .unwrap();
        let expected = net.predict(x.view()).unwrap();
        let same = out
            .iter()
            .zip(&expected)
            .all(|(a, b)| a.to_f64_lossless().to_bits() == b.to_f64_lossless().to_bits());
        assert!(same, "{rows} rows: predict_into differs from predict");
    }
}

#[test]
fn predict_into_gives_the_bits_of_predict() {
    same_bits_as_predict(&mnist_net());
    let leaky: Network<f64> = Network::<f64>::builder(&[9, 33, 5])
        .hidden(Activation::LeakyRelu { slope: 0.1 })
        .output(Activation::Identity)
        .loss(Loss::SquaredError)
        .seed(4)
        .build()
        .unwrap();
    same_bits_as_predict(&leaky);
    let seed: Network<f32> = Network::<f32>::lernmi_builder(&[9, 4, 2]).build().unwrap();
    same_bits_as_predict(&seed);
}

#[test]
fn a_scratch_moves_between_networks() {
    let small: Network = Network::<f32>::builder(&[3, 2]).build().unwrap();
    let seed: Network = Network::<f32>::lernmi_builder(&[3, 5, 2]).build().unwrap();
    let mut scratch = small.predict_scratch(4);
    for net in [&small, &seed, &small, &mnist_net()] {
        let x = inputs::<f32>(4, net.n_inputs(), 9);
        let mut out = Array2::zeros((4, net.n_outputs()));
        net.predict_into(x.view(), out.view_mut(), &mut scratch)
            .unwrap();
        assert_eq!(out, net.predict(x.view()).unwrap());
    }
}

#[test]
fn wrong_shapes_are_typed_errors_and_leave_the_outputs_alone() {
    let net: Network = Network::<f32>::builder(&[4, 6, 3]).build().unwrap();
    let mut scratch = PredictScratch::default();
    let mut out = Array2::from_elem((5, 3), 7.0f32);
    let wide = inputs::<f32>(5, 5, 1);
    match net.predict_into(wide.view(), out.view_mut(), &mut scratch) {
        Err(Error::InputWidth {
            expected: 4,
            got: 5,
        }) => {}
        other => panic!("{other:?}"),
    }
    let x = inputs::<f32>(5, 4, 1);
    for shape in [(4, 3), (5, 2), (6, 3)] {
        let mut wrong = Array2::from_elem(shape, 7.0f32);
        match net.predict_into(x.view(), wrong.view_mut(), &mut scratch) {
            Err(Error::Shape { expected, got, .. }) => {
                assert_eq!(expected, [5, 3]);
                assert_eq!(got, [shape.0, shape.1]);
            }
            other => panic!("{shape:?}: {other:?}"),
        }
        assert!(wrong.iter().all(|&v| v == 7.0));
    }
    let empty = Array2::<f32>::zeros((0, 4));
    let mut none = Array2::<f32>::zeros((0, 3));
    assert!(matches!(
        net.predict_into(empty.view(), none.view_mut(), &mut scratch),
        Err(Error::Empty { .. })
    ));
    let mut nan = x.clone();
    nan[[2, 1]] = f32::NAN;
    assert!(matches!(
        net.predict_into(nan.view(), out.view_mut(), &mut scratch),
        Err(Error::NonFinite { index: 9, .. })
    ));
    assert!(out.iter().all(|&v| v == 7.0));
    // Column-major inputs and outputs (any layout works).
    let x_f = x.t().to_owned().reversed_axes();
    let mut out_f = Array2::zeros((3, 5)).reversed_axes();
    net.predict_into(x_f.view(), out_f.view_mut(), &mut scratch)
        .unwrap();
    assert_eq!(out_f, net.predict(x.view()).unwrap());
}

/// Compile-time: a network can be shared by threads (`Sync`) and moved to one (`Send`).
#[test]
fn networks_are_send_and_sync() {
    fn shareable<T: Send + Sync>() {}
    shareable::<Network<f32>>();
    shareable::<Network<f64>>();
    shareable::<PredictScratch<f32>>();
    shareable::<PredictScratch<f64>>();
}

#[test]
fn threads_share_one_network_for_prediction() {
    let net = mnist_net();
    let x = inputs::<f32>(300, 784, 3);
    let expected = net.predict(x.view()).unwrap();
    let one_row = net.predict(x.slice(s![7..8, ..])).unwrap();
    let net = std::sync::Arc::new(net);
    let handles: Vec<_> = (0..4)
        .map(|t| {
            let (net, x) = (std::sync::Arc::clone(&net), x.clone());
            std::thread::spawn(move || {
                let mut scratch = net.predict_scratch(if t % 2 == 0 { 300 } else { 1 });
                let mut out = Array2::zeros((300, 10));
                let mut row = Array2::zeros((1, 10));
                for _ in 0..3 {
                    net.predict_into(x.view(), out.view_mut(), &mut scratch)
                        .unwrap();
                    net.predict_into(x.slice(s![7..8, ..]), row.view_mut(), &mut scratch)
                        .unwrap();
                }
                (out, row)
            })
        })
        .collect();
    for handle in handles {
        let (out, row) = handle.join().unwrap();
        assert_eq!(out, expected);
        assert_eq!(row, one_row);
    }
}
