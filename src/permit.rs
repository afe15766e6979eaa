use std::fmt;

use crate::{Handle, StateMachine, SubmitError, Ticket, reply};

/// A place in the queue, held for one command: from [`Handle::try_reserve`],
/// [`reserve`](Handle::reserve), [`reserve_async`](Handle::reserve_async) and their timed
/// variants.
///
/// The permit's command is accepted without waiting and is never refused for room: nobody
/// else can take the place it holds, and `DropOldest` cannot evict it. It takes its place in
/// the order when it is sent, not when the place was reserved. The only refusal left is
/// [`SubmitError::Closed`] (the command handed back), if the queue closed in between; a
/// permit holds nothing that keeps the queue from closing.
///
/// Dropping a permit unused gives its place back. A held place is room the queue does not
/// have: a permit kept while the same thread waits for room in that queue waits for itself
/// (as with tokio's `reserve`).
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
/// let queue = SingularQueue::builder(Counter(0)).capacity(1).spawn().unwrap();
/// let handle = queue.handle();
/// let total = model::block_on(async {
///     let permit = handle.reserve_async().await.unwrap();
///     permit.submit(5).unwrap().await
/// });
/// assert_eq!(total.unwrap(), 5);
/// ```
#[must_use = "a permit holds a place in the queue until it is used or dropped"]
pub struct Permit<'a, S: StateMachine> {
    handle: &'a Handle<S>,
}

impl<'a, S: StateMachine> Permit<'a, S> {
    /// A permit for the vacancy the caller took.
    pub(crate) fn new(handle: &'a Handle<S>) -> Self {
        Self { handle }
    }

    /// Submits `command` in the held place and returns a [`Ticket`] for its output.
    ///
    /// # Errors
    ///
    /// [`SubmitError::Closed`], with the command, if the queue closed since the reservation.
    pub fn submit(self, command: S::Command) -> Result<Ticket<S::Output>, SubmitError<S::Command>> {
        let handle = self.into_handle();
        let (reply, slot) = reply::pair();
        handle
            .shared()
            .send_reserved(handle.lane(), command, Some(reply))?;
        Ok(handle.ticket(slot))
    }

    /// Submits `command` in the held place, without a reply.
    ///
    /// # Errors
    ///
    /// [`SubmitError::Closed`], with the command, if the queue closed since the reservation.
    pub fn tell(self, command: S::Command) -> Result<(), SubmitError<S::Command>> {
        let handle = self.into_handle();
        handle.shared().send_reserved(handle.lane(), command, None)
    }

    /// The handle, once the place is handed on to a command: the permit no longer gives it
    /// back.
    fn into_handle(self) -> &'a Handle<S> {
        let handle = self.handle;
        std::mem::forget(self);
        handle
    }
}

impl<S: StateMachine> Drop for Permit<'_, S> {
    fn drop(&mut self) {
        self.handle.shared().release_reserved(self.handle.lane());
    }
}

impl<S: StateMachine> fmt::Debug for Permit<'_, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Permit").finish_non_exhaustive()
    }
}
