//! The sync facade: the only module that names std, parking_lot, flume or loom primitives.
//!
//! Every other module imports `crate::sync::…`. Normal builds get parking_lot locks, std
//! atomics and threads, and a flume channel as the queue's transport. Under
//! `--cfg singular_queue_loom` the same names map to loom's types, and the transport is a small
//! channel on loom's `Mutex` and `Condvar` with the semantics of the flume calls the crate uses,
//! so that the model checker sees every synchronisation the crate performs.
//!
//! The API exposed is parking_lot's: locks without poisoning, `Condvar::wait(&mut guard)`, and
//! `Condvar::wait_until(&mut guard, deadline)`. loom has no clock: under loom a timed wait
//! yields to the other threads once and then reports a timeout, so a model explores both "the
//! event came in time" and "the deadline passed first".

#[cfg(not(singular_queue_loom))]
mod imp {
    pub(crate) use parking_lot::{Condvar, Mutex};
    pub(crate) use std::sync::Arc;
    pub(crate) use std::time::Instant;

    pub(crate) mod atomic {
        pub(crate) use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering, fence};
    }

    pub(crate) mod thread {
        pub(crate) use std::thread::{Builder, JoinHandle};
        pub(crate) use std::thread_local;
    }

    /// The queue's transport: an unbounded multi-producer, multi-consumer channel (the
    /// queue's own `Vacancies` bound it).
    pub(crate) mod channel {
        pub(crate) use flume::{Receiver, Sender, TryRecvError, unbounded};
    }

    /// Called on each lap of a retry loop: a hint to the CPU.
    pub(crate) fn spin_hint() {
        std::hint::spin_loop();
    }

    pub(crate) use std::thread::yield_now;

    /// The `Arc` that `std::task::Wake` takes: std's, under loom too.
    pub(crate) use std::sync::Arc as WakerArc;

    /// Whether a value being dropped now would be dropped outside the loom model it was
    /// made in: never, without loom.
    pub(crate) fn unwinding_out_of_a_model() -> bool {
        false
    }

    /// What `singular_queue::model` hands to users' code: std's primitives.
    pub(crate) mod public {
        pub(crate) mod sync {
            pub use std::sync::{Arc, Condvar, Mutex, MutexGuard, atomic};
        }
        pub(crate) mod thread {
            pub use std::thread::{JoinHandle, spawn, yield_now};
        }
    }

    /// Without loom, a model runs once, on real threads: one interleaving, the one the
    /// machine happens to choose.
    pub(crate) fn run_model(_bound: usize, model: impl Fn() + Sync + Send + 'static) -> usize {
        model();
        1
    }
}

#[cfg(singular_queue_loom)]
mod imp {
    pub(crate) use super::loom_lock::{Condvar, Mutex};
    pub(crate) use loom::sync::Arc;
    pub(crate) use std::time::Instant;

    pub(crate) mod atomic {
        pub(crate) use loom::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering, fence};
    }

    pub(crate) mod thread {
        pub(crate) use loom::thread::{Builder, JoinHandle};
        pub(crate) use loom::thread_local;
    }

    /// The queue's transport, rebuilt on loom's primitives.
    pub(crate) mod channel {
        pub(crate) use super::super::loom_channel::{Receiver, Sender, TryRecvError, unbounded};
    }

    /// Called on each lap of a retry loop: lets loom run the other threads.
    pub(crate) fn spin_hint() {
        loom::thread::yield_now();
    }

    pub(crate) use loom::thread::yield_now;

    /// The `Arc` that `std::task::Wake` takes: std's, under loom too.
    pub(crate) use std::sync::Arc as WakerArc;

    /// Whether a value being dropped now would be dropped outside the loom model it was made
    /// in: a thread-local of a model's thread that unwinds from a failed model.
    pub(crate) fn unwinding_out_of_a_model() -> bool {
        std::thread::panicking()
    }

    /// What `singular_queue::model` hands to users' code: loom's primitives.
    pub(crate) mod public {
        pub(crate) mod sync {
            pub use loom::sync::{Arc, Condvar, Mutex, MutexGuard, atomic};
        }
        pub(crate) mod thread {
            pub use loom::thread::{JoinHandle, spawn, yield_now};
        }
    }

    /// Explores every interleaving of `model` with at most `bound` preemptions (or
    /// `LOOM_MAX_PREEMPTIONS`, if set); returns how many it ran.
    pub(crate) fn run_model(bound: usize, model: impl Fn() + Sync + Send + 'static) -> usize {
        // Counted with std's atomics: not part of what loom explores.
        let runs = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = std::sync::Arc::clone(&runs);
        let mut builder = loom::model::Builder::new();
        builder.preemption_bound = builder.preemption_bound.or(Some(bound));
        builder.check(move || {
            counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            model();
        });
        runs.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// A process-wide value, made on first use: a `LazyLock` normally, and under loom a
/// `lazy_static` that loom makes afresh for each explored execution.
macro_rules! global {
    ($(#[$attr:meta])* static $name:ident: $ty:ty = $init:expr;) => {
        #[cfg(not(singular_queue_loom))]
        $(#[$attr])*
        static $name: std::sync::LazyLock<$ty> = std::sync::LazyLock::new(|| $init);
        #[cfg(singular_queue_loom)]
        loom::lazy_static! {
            $(#[$attr])*
            static ref $name: $ty = $init;
        }
    };
}
pub(crate) use global;

#[cfg(singular_queue_loom)]
mod loom_channel;
#[cfg(singular_queue_loom)]
mod loom_lock;

pub(crate) use imp::*;
