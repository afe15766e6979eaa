//! The sync facade: the only module that names std, parking_lot, flume or loom primitives.
//!
//! Every other module imports `crate::sync::…`. Normal builds get parking_lot locks, std
//! atomics and threads, and a flume channel as the queue's transport. Under
//! `--cfg singular_queue_loom` the same names map to loom's types so that the model checker
//! sees every synchronisation the crate performs. The API exposed here is parking_lot's
//! (locks without poisoning, `Condvar::wait(&mut guard)`).

#[cfg(not(singular_queue_loom))]
mod imp {
    pub(crate) use parking_lot::{Condvar, Mutex};
    pub(crate) use std::sync::Arc;
    pub(crate) use std::time::Instant;

    pub(crate) mod atomic {
        pub(crate) use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
    }

    pub(crate) mod thread {
        pub(crate) use std::thread::{Builder, JoinHandle};
    }

    /// The queue's transport: a bounded multi-producer channel.
    pub(crate) mod channel {
        pub(crate) use flume::{Receiver, SendTimeoutError, Sender, TrySendError, bounded};
    }
}

pub(crate) use imp::*;
