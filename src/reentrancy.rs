//! Which queue, if any, the current thread is the worker of (hazard 5).
//!
//! A worker that waits for its own queue waits for itself. The worker marks its thread when it
//! starts, and the submit paths that would wait check the mark.

use std::cell::Cell;

use crate::sync::thread::thread_local;

thread_local! {
    /// The address of the `Shared` whose worker runs on this thread, or 0.
    // loom's `thread_local!` does not accept a `const { }` initialiser.
    #[allow(clippy::missing_const_for_thread_local)]
    static WORKER_OF: Cell<usize> = Cell::new(0);
}

/// Marks the current thread as the worker of the queue at `queue`.
pub(crate) fn mark_worker<T>(queue: &T) {
    WORKER_OF.with(|worker_of| worker_of.set(address(queue)));
}

/// Whether the current thread is the worker of the queue at `queue`.
pub(crate) fn is_worker<T>(queue: &T) -> bool {
    WORKER_OF.with(|worker_of| worker_of.get() == address(queue))
}

fn address<T>(queue: &T) -> usize {
    std::ptr::from_ref(queue).addr()
}
