use std::fmt;

use crate::shared::Shared;
use crate::sync::Arc;
use crate::{CallError, StateMachine, Stats, SubmitError, Ticket, reply};

/// A cheap, cloneable way to submit commands to a [`SingularQueue`](crate::SingularQueue)
/// from any thread.
///
/// Get one with [`SingularQueue::handle`](crate::SingularQueue::handle) and clone it for each
/// thread (a clone is one reference-count increment). Three ways to submit:
///
/// | call | returns | use it when |
/// |---|---|---|
/// | [`call`](Handle::call) | the output, once applied | you need the answer now |
/// | [`submit`](Handle::submit) | a [`Ticket`] at once | you want several commands in flight |
/// | [`tell`](Handle::tell) | nothing | fire and forget |
///
/// # Ordering
///
/// Commands are applied in the order the queue accepted them. Commands from one thread are
/// accepted in the order that thread submitted them, so they are applied in that order too.
///
/// # After shutdown
///
/// A handle may outlive its queue. Once the queue is shut down every submit is refused with
/// [`SubmitError::Closed`] (or [`CallError::Closed`]), and the command comes back.
///
/// # Examples
///
/// ```
/// use std::thread;
/// use singular_queue::{SingularQueue, StateMachine};
/// # struct Counter(u64);
/// # impl StateMachine for Counter {
/// #     type Command = u64;
/// #     type Output = u64;
/// #     fn apply(&mut self, add: u64) -> u64 { self.0 += add; self.0 }
/// # }
///
/// let queue = SingularQueue::new(Counter(0));
/// let workers: Vec<_> = (0..4)
///     .map(|_| {
///         let handle = queue.handle();
///         thread::spawn(move || {
///             for _ in 0..100 {
///                 handle.tell(1).unwrap();
///             }
///         })
///     })
///     .collect();
/// for worker in workers {
///     worker.join().unwrap();
/// }
/// assert_eq!(queue.shutdown().unwrap().0, 400);
/// ```
pub struct Handle<S: StateMachine> {
    shared: Arc<Shared<S>>,
}

impl<S: StateMachine> Handle<S> {
    pub(crate) fn new(shared: Arc<Shared<S>>) -> Self {
        Self { shared }
    }

    /// Submits `command` and blocks until the worker has applied it; returns its output.
    ///
    /// # Errors
    ///
    /// [`CallError::Closed`] with the command if the queue is closed;
    /// [`CallError::Panicked`] if `apply` panicked on it; [`CallError::NotApplied`] if the
    /// queue stopped before applying it.
    pub fn call(&self, command: S::Command) -> Result<S::Output, CallError<S::Command>> {
        let ticket = self.submit(command)?;
        Ok(ticket.wait()?)
    }

    /// Submits `command` and returns at once with a [`Ticket`] for its output.
    ///
    /// # Errors
    ///
    /// [`SubmitError::Closed`] with the command if the queue is closed.
    pub fn submit(
        &self,
        command: S::Command,
    ) -> Result<Ticket<S::Output>, SubmitError<S::Command>> {
        let (reply, slot) = reply::pair();
        self.shared.send(command, Some(reply))?;
        Ok(Ticket::new(slot))
    }

    /// Submits `command` without waiting for, or receiving, its output.
    ///
    /// Once accepted the command is applied exactly once; if `apply` panics on it, or the
    /// queue stops before applying it, [`Stats`] counts it.
    ///
    /// # Errors
    ///
    /// [`SubmitError::Closed`] with the command if the queue is closed.
    pub fn tell(&self, command: S::Command) -> Result<(), SubmitError<S::Command>> {
        self.shared.send(command, None)
    }

    /// A snapshot of the queue's counters.
    pub fn stats(&self) -> Stats {
        self.shared.stats()
    }

    /// Whether the queue has stopped accepting commands.
    pub fn is_closed(&self) -> bool {
        self.shared.is_closed()
    }

    pub(crate) fn shared(&self) -> &Shared<S> {
        &self.shared
    }
}

impl<S: StateMachine> Clone for Handle<S> {
    fn clone(&self) -> Self {
        Self::new(Arc::clone(&self.shared))
    }
}

impl<S: StateMachine> fmt::Debug for Handle<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handle")
            .field("closed", &self.is_closed())
            .finish_non_exhaustive()
    }
}
