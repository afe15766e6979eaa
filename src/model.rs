//! Model-check your own code with the queue, under [loom](https://docs.rs/loom).
//!
//! loom runs a small concurrent program once for every way its threads can interleave (up to
//! a bound on preemptions) and fails if any run panics, deadlocks or leaks. This crate is
//! built for it: compiled with `--cfg singular_queue_loom`, every lock, atomic, thread and
//! channel inside the queue is loom's, so loom sees the whole handoff between your threads,
//! the queue, and your state machine.
//!
//! This module is the switch for *your* side of the model:
//!
//! - [`check`] runs a model. Under the cfg it explores the interleavings (preemption bound
//!   [`DEFAULT_PREEMPTION_BOUND`], or `LOOM_MAX_PREEMPTIONS`); without it, it runs the model
//!   once on real threads, so the same test file is an ordinary test in `cargo test`.
//! - [`sync`] and [`thread`] are loom's `Arc`, `Mutex`, `Condvar`, atomics and `spawn` under
//!   the cfg and std's without it. Anything your state machine or your model shares between
//!   threads must come from here, or loom cannot see it.
//! - [`block_on`] polls a future (a `call_async`, a ticket) to completion on this thread, under
//!   loom as well.
//!
//! No `#[cfg]` is needed in your code, and no loom dependency.
//!
//! # Running the models
//!
//! Put the models in their own test file, say `tests/model.rs`. `cargo test` runs each once.
//! The exhaustive run builds the crate under the cfg, in its own target directory so that it
//! does not throw away your normal build, and runs **only that file**, since every other test
//! that uses the queue outside [`check`] would panic under loom:
//!
//! ```sh
//! RUSTFLAGS="--cfg singular_queue_loom" CARGO_TARGET_DIR=target/loom \
//!     cargo test --release --test model
//! ```
//!
//! The guide's chapter *Model-checking your own code* walks through a complete example crate,
//! says what loom cannot see (the insides of flume and parking_lot, replaced under the cfg;
//! the real clock, which loom does not have) and how long a model may take.
//!
//! # Examples
//!
//! Two clients and a shutdown around a state machine, every interleaving checked:
//!
//! ```
//! use singular_queue::model::{self, sync::Arc, sync::atomic::{AtomicU64, Ordering}, thread};
//! use singular_queue::{SingularQueue, StateMachine};
//!
//! /// Counts, and publishes the count for a metrics reader on another thread.
//! struct Counter {
//!     count: u64,
//!     published: Arc<AtomicU64>,
//! }
//!
//! impl StateMachine for Counter {
//!     type Command = u64;
//!     type Output = u64;
//!     fn apply(&mut self, add: u64) -> u64 {
//!         self.count += add;
//!         self.published.store(self.count, Ordering::Release);
//!         self.count
//!     }
//! }
//!
//! model::check(|| {
//!     let published = Arc::new(AtomicU64::new(0));
//!     let queue = SingularQueue::builder(Counter { count: 0, published: Arc::clone(&published) })
//!         .capacity(1)
//!         .spawn()
//!         .unwrap();
//!     let clients: Vec<_> = [1, 2]
//!         .map(|add| {
//!             let handle = queue.handle();
//!             thread::spawn(move || handle.call(add).unwrap())
//!         })
//!         .into_iter()
//!         .collect();
//!     let outputs: Vec<u64> = clients.into_iter().map(|c| c.join().unwrap()).collect();
//!     assert!(outputs == [1, 3] || outputs == [3, 2], "{outputs:?}");
//!     assert_eq!(queue.shutdown().unwrap().count, 3);
//!     assert_eq!(published.load(Ordering::Acquire), 3);
//! });
//! ```

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use crate::room::Signal;
use crate::sync::{self as facade, WakerArc};
use crate::{WouldDeadlock, waits};

/// The preemption bound [`check`] uses unless `LOOM_MAX_PREEMPTIONS` is set: loom explores
/// every interleaving in which threads are preempted at most this many times. 3 finds the
/// bugs of small protocols and keeps a model of two clients and a shutdown to seconds or
/// minutes; each step up multiplies the run time.
pub const DEFAULT_PREEMPTION_BOUND: usize = 3;

/// Whether [`check`] explores interleavings (the crate was built with
/// `--cfg singular_queue_loom`) or runs each model once. A model may use it to stay small
/// under loom and do more work in the plain run.
pub const EXHAUSTIVE: bool = cfg!(singular_queue_loom);

/// Runs `model` under loom with [`DEFAULT_PREEMPTION_BOUND`] (see [`check_bounded`]).
///
/// # Panics
///
/// As [`check_bounded`].
pub fn check(model: impl Fn() + Sync + Send + 'static) -> usize {
    check_bounded(DEFAULT_PREEMPTION_BOUND, model)
}

/// Runs `model` once for every interleaving of its threads with at most `bound` preemptions
/// (`LOOM_MAX_PREEMPTIONS`, if set, takes precedence), when the crate is built with
/// `--cfg singular_queue_loom`; otherwise runs it once, on real threads. Returns how many runs
/// it made.
///
/// Build everything the model shares inside it, from [`sync`] and [`thread`]: each run starts
/// afresh.
///
/// # Panics
///
/// If any explored run of `model` panics, deadlocks, or leaves a thread running: the test
/// fails with loom's report. loom 0.7 cannot unwind model threads that are still blocked or
/// running when the model fails, so a model that deadlocks, or panics while another of its
/// threads is blocked, prints the report and then **aborts the test binary** (a model of
/// loom's own primitives does the same). Run a failing model alone to read its report.
pub fn check_bounded(bound: usize, model: impl Fn() + Sync + Send + 'static) -> usize {
    facade::run_model(bound, model)
}

/// Polls `future` to completion on this thread, sleeping between polls until it is woken.
/// Under loom a lost wake-up leaves it asleep, which loom reports as a deadlock.
///
/// # Panics
///
/// Instead of sleeping forever: when the future is pending on a queue (a ticket, a wait for
/// room) that only this thread could serve — a ticket of the [`ManualQueue`] this thread
/// steps, or of a queue whose worker waits for this thread — and nothing else holds its waker
/// (a `select` with a channel that another thread may fill is left to sleep). The check looks
/// at the last future of this crate's that the poll left pending.
///
/// # Examples
///
/// ```
/// use singular_queue::{model, SingularQueue, StateMachine};
/// # struct Counter(u64);
/// # impl StateMachine for Counter {
/// #     type Command = u64;
/// #     type Output = u64;
/// #     fn apply(&mut self, add: u64) -> u64 { self.0 += add; self.0 }
/// # }
///
/// let queue = SingularQueue::new(Counter(0));
/// assert_eq!(model::block_on(queue.call_async(2)).unwrap(), 2);
/// ```
///
/// [`ManualQueue`]: crate::ManualQueue
pub fn block_on<F: Future>(future: F) -> F::Output {
    let signal = Signal::new();
    let waker = Waker::from(WakerArc::clone(&signal));
    // The references to the signal held here: any more are clones of the waker kept by the
    // futures being polled, the only parties that can wake this thread.
    let ours = WakerArc::strong_count(&signal);
    let mut context = Context::from_waker(&waker);
    let mut future = pin!(future);
    loop {
        drop(waits::take_pending());
        if let Poll::Ready(output) = future.as_mut().poll(&mut context) {
            return output;
        }
        let kept = WakerArc::strong_count(&signal) - ours;
        // Recorded while asleep, as a blocking wait's is (on the ticket's reply slot, which
        // settles it when the reply comes): a worker closing a cycle through this thread is
        // refused.
        let _waiting = match waits::take_pending().map(|watch| watch()) {
            Some(Ok(waiting)) => Some(waiting),
            // The crate's wait can never end, and nothing else kept the waker.
            Some(Err(WouldDeadlock)) if kept <= 1 => panic!(
                "model::block_on would sleep forever: the future waits for a queue that only \
                 this thread could serve (step the manual queue first)"
            ),
            Some(Err(WouldDeadlock)) | None => None,
        };
        signal.wait(None);
    }
}

/// loom's `Arc`, `Mutex`, `Condvar` and atomics under `--cfg singular_queue_loom`; std's
/// otherwise. Their API is std's in both cases.
pub mod sync {
    pub use crate::sync::public::sync::*;
}

/// loom's `spawn`, `JoinHandle` and `yield_now` under `--cfg singular_queue_loom`; std's
/// otherwise.
pub mod thread {
    pub use crate::sync::public::thread::*;
}
