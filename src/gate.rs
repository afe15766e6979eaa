//! The gate every submitter passes through: it makes "closed" the queue's own state.
//!
//! A flume channel disconnects only when every sender is gone, and live handles keep theirs,
//! so the queue cannot learn from the channel that it is shut down. The gate counts the
//! submitters that are between "the queue is open" and "my send has finished". Closing the
//! gate refuses newcomers; [`Gate::wait_quiet`] then returns only once every submitter that got
//! through has finished sending. After that nobody can add to the channel, so the worker can
//! drain it and be sure nothing lands behind its back (hazard 1).

use crate::sync::atomic::{AtomicUsize, Ordering};
use crate::sync::{Condvar, Mutex};

/// Set in `state` once the gate is closed.
const CLOSED: usize = 1;
/// What one submitter inside the gate adds to `state`.
const ONE: usize = 2;

pub(crate) struct Gate {
    /// `CLOSED` bit plus `ONE` per submitter inside.
    state: AtomicUsize,
    /// Lock and condition variable for `wait_quiet`; touched only once the gate is closed.
    quiet: Mutex<()>,
    left: Condvar,
}

/// Proof that a submitter is inside the open gate; leaving happens on drop.
pub(crate) struct Pass<'a> {
    gate: &'a Gate,
}

impl Gate {
    pub(crate) fn new() -> Self {
        Self {
            state: AtomicUsize::new(0),
            quiet: Mutex::new(()),
            left: Condvar::new(),
        }
    }

    /// Lets a submitter in, or returns `None` if the gate is closed.
    pub(crate) fn enter(&self) -> Option<Pass<'_>> {
        // Once closed, stay off the count: a stream of refused submitters must not keep
        // `wait_quiet` from ever seeing it at zero.
        if self.is_closed() {
            return None;
        }
        // One read-modify-write on `state` both registers us and reads CLOSED, so `close`
        // either sees us inside or we see it closed: there is no moment in between.
        let before = self.state.fetch_add(ONE, Ordering::AcqRel);
        // Refused or not, we registered: the pass un-registers when it is dropped.
        let pass = Pass { gate: self };
        (before & CLOSED == 0).then_some(pass)
    }

    /// Refuses every later `enter`. Idempotent.
    pub(crate) fn close(&self) {
        self.state.fetch_or(CLOSED, Ordering::AcqRel);
    }

    /// Whether the gate has been closed.
    pub(crate) fn is_closed(&self) -> bool {
        self.state.load(Ordering::Acquire) & CLOSED != 0
    }

    /// After `close`: blocks until every submitter that entered has left.
    pub(crate) fn wait_quiet(&self) {
        let mut guard = self.quiet.lock();
        while self.state.load(Ordering::Acquire) != CLOSED {
            self.left.wait(&mut guard);
        }
    }

    fn leave(&self) {
        let before = self.state.fetch_sub(ONE, Ordering::AcqRel);
        if before == CLOSED | ONE {
            // The last one out of a closed gate. Taking the lock orders this notify after
            // `wait_quiet`'s check, so the wake-up cannot be lost (hazard 4).
            let _guard = self.quiet.lock();
            self.left.notify_all();
        }
    }
}

impl Drop for Pass<'_> {
    fn drop(&mut self) {
        self.gate.leave();
    }
}
