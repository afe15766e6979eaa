//! Each calling thread's spare reply slot: a blocking call reuses it instead of allocating.
//!
//! A blocking `call` waits for its own output, so when it returns its slot is free for the
//! thread's next call. Reusing a slot that a reply can still reach would let an old command's
//! output land in a new call (hazard 3). Two rules keep that from happening:
//!
//! - A call that gave up waiting (`ReplyTimeout`) does not give its slot back: the worker
//!   still holds the reply, and drops the late output itself, under `catch`.
//! - A spare is reused only when [`Arc::get_mut`] proves this thread holds the only reference:
//!   no reply can reach it, and the worker's last touch (dropping its end, a moment after the
//!   caller wakes) happened before the reuse. Otherwise the call allocates a fresh slot.
//!
//! So a spare holds no output: its result was taken, or it records a refusal.

use std::any::Any;
use std::cell::RefCell;

use crate::reply::{self, Reply, Slot};
use crate::sync::Arc;
use crate::sync::thread::thread_local;
use crate::sync::unwinding_out_of_a_model;

thread_local! {
    /// An `Option<Arc<Slot<T>>>` for the output type `T` of this thread's last call.
    // loom's `thread_local!` does not accept a `const { }` initialiser.
    #[allow(clippy::missing_const_for_thread_local)]
    static SPARE: Spare = Spare(RefCell::new(None));
}

/// The thread-local's value: dropped with the thread, or leaked when that would be outside a
/// loom model.
struct Spare(RefCell<Option<Box<dyn Any>>>);

impl Drop for Spare {
    /// Under loom, a model that fails unwinds its main thread after the model is over: a slot
    /// built of loom's primitives cannot be dropped then (loom would abort the whole test
    /// binary), so it is leaked, and the failed model fails its test as any other would.
    fn drop(&mut self) {
        if unwinding_out_of_a_model() {
            std::mem::forget(self.0.get_mut().take());
        }
    }
}

/// A connected reply and slot for a blocking call: the thread's spare slot if nobody else can
/// reach it, otherwise a new one.
pub(crate) fn pair<T: Send + 'static>() -> (Reply<T>, Arc<Slot<T>>) {
    match take::<T>().and_then(unshared) {
        Some(slot) => {
            slot.reset();
            (Reply::new(Arc::clone(&slot)), slot)
        }
        None => reply::pair(),
    }
}

/// `slot`, if this is the only reference to it: then no reply can reach it, and the worker's
/// last touch (the release when it dropped its reply) happened before this acquire.
fn unshared<T>(mut slot: Arc<Slot<T>>) -> Option<Arc<Slot<T>>> {
    Arc::get_mut(&mut slot)?;
    Some(slot)
}

/// Keeps `slot` as the thread's spare, once its call has returned.
pub(crate) fn give_back<T: Send + 'static>(slot: Arc<Slot<T>>) {
    // What this replaces (a spare of another output type) is dropped after the borrow ends,
    // so no drop ever runs while the thread-local is borrowed.
    let _replaced = with_spare(|spare| {
        if let Some(kept @ None) = spare.as_mut().and_then(|any| any.downcast_mut()) {
            *kept = Some(slot);
            return None;
        }
        spare.replace(Box::new(Some(slot)))
    });
}

/// Takes the thread's spare slot for output type `T`, if it has one.
fn take<T: Send + 'static>() -> Option<Arc<Slot<T>>> {
    with_spare(|spare| {
        spare
            .as_mut()?
            .downcast_mut::<Option<Arc<Slot<T>>>>()?
            .take()
    })
}

/// Runs `f` on the thread's spare; `None` once the thread-local is gone (at thread exit).
fn with_spare<R>(f: impl FnOnce(&mut Option<Box<dyn Any>>) -> Option<R>) -> Option<R> {
    SPARE
        .try_with(|spare| f(&mut spare.0.borrow_mut()))
        .ok()
        .flatten()
}
