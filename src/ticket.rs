use std::fmt;
use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use crate::WouldDeadlock;
use crate::reply::Slot;
use crate::sync::{Arc, Instant};
use crate::timer::Deadline;
use crate::waits::{self, Awaited, QueueId, Waiting};
use crate::{WaitError, WaitStrategy};

/// A claim on the output of a command that the queue has accepted.
///
/// [`Handle::submit`](crate::Handle::submit) returns at once with a ticket; the worker fills it
/// when it applies the command. Wait for it with [`wait`](Ticket::wait) or
/// [`wait_timeout`](Ticket::wait_timeout), or check without blocking with
/// [`is_ready`](Ticket::is_ready) and [`try_wait`](Ticket::try_wait).
///
/// # Dropping a ticket
///
/// The command belongs to the queue once it is accepted. Dropping the ticket, or giving up
/// after a timeout, does not cancel it: it is still applied exactly once and its output is
/// discarded.
///
/// # From a worker
///
/// A worker that waits on a ticket of its own queue would wait for itself: the blocking waits
/// return [`WaitError::Deadlock`] instead of hanging, unless the result is already there. The
/// same goes for a worker waiting on a ticket of a queue whose worker waits for it through a
/// chain of queues (see [`Handle`](crate::Handle#from-a-worker-no-waiting-for-yourself)). The
/// command stays accepted either way.
///
/// # Panics
///
/// A ticket yields its result once. After `try_wait`, `wait_timeout` or `wait_deadline` has
/// returned it, every method that returns the result panics.
///
/// # Examples
///
/// ```
/// use singular_queue::{SingularQueue, StateMachine};
/// # struct Counter(u64);
/// # impl StateMachine for Counter {
/// #     type Command = u64;
/// #     type Output = u64;
/// #     fn apply(&mut self, add: u64) -> u64 { self.0 += add; self.0 }
/// # }
///
/// let queue = SingularQueue::new(Counter(0));
/// // Keep several commands in flight, then collect their outputs.
/// let tickets: Vec<_> = (1..=3).map(|n| queue.submit(n).unwrap()).collect();
/// let totals: Vec<u64> = tickets.into_iter().map(|t| t.wait().unwrap()).collect();
/// assert_eq!(totals, [1, 3, 6]);
/// ```
pub struct Ticket<T> {
    slot: Arc<Slot<T>>,
    strategy: WaitStrategy,
    /// The queue whose worker completes the ticket.
    queue: QueueId,
    /// What of that queue a wait on the ticket waits for.
    awaited: Awaited,
}

impl<T> Ticket<T> {
    pub(crate) fn new(slot: Arc<Slot<T>>, strategy: WaitStrategy, queue: QueueId) -> Self {
        Self::awaiting(slot, strategy, queue, Awaited::Output)
    }

    /// A ticket whose wait waits for `awaited` of `queue`.
    pub(crate) fn awaiting(
        slot: Arc<Slot<T>>,
        strategy: WaitStrategy,
        queue: QueueId,
        awaited: Awaited,
    ) -> Self {
        Self {
            slot,
            strategy,
            queue,
            awaited,
        }
    }

    /// Blocks until the command has been applied and returns its output (spinning briefly
    /// first, as the queue's [`WaitStrategy`] says).
    ///
    /// # Errors
    ///
    /// The [`WaitError`] that says what became of the command, or [`WaitError::Deadlock`]
    /// if this thread is the worker that would have to complete the ticket (the ticket is
    /// consumed; the command is still applied).
    pub fn wait(self) -> Result<T, WaitError> {
        let _waiting = self.may_block()?;
        self.slot.wait(self.strategy)
    }

    /// Blocks for at most `timeout`. Returns `None` if the result has not arrived by then; the
    /// ticket stays valid and the command will still be applied.
    ///
    /// Returns `Some(Err(WaitError::Deadlock))` at once, and leaves the ticket valid, where
    /// [`wait`](Ticket::wait) would refuse to wait.
    pub fn wait_timeout(&mut self, timeout: Duration) -> Option<Result<T, WaitError>> {
        match Instant::now().checked_add(timeout) {
            Some(deadline) => self.wait_deadline(deadline),
            None => {
                let _waiting = match self.may_block() {
                    Ok(waiting) => waiting,
                    Err(deadlock) => return Some(Err(deadlock)),
                };
                Some(self.slot.wait(self.strategy))
            }
        }
    }

    /// Blocks until `deadline` at the latest. Returns `None` if the result has not arrived by
    /// then; the ticket stays valid and the command will still be applied.
    ///
    /// Returns `Some(Err(WaitError::Deadlock))` at once, and leaves the ticket valid, where
    /// [`wait`](Ticket::wait) would refuse to wait.
    pub fn wait_deadline(&mut self, deadline: Instant) -> Option<Result<T, WaitError>> {
        let _waiting = match self.may_block() {
            Ok(waiting) => waiting,
            Err(deadlock) => return Some(Err(deadlock)),
        };
        self.slot.wait_until(deadline)
    }

    /// Records that this thread is about to wait for the ticket's worker, or refuses if the
    /// result is not there and that worker waits for this thread.
    fn may_block(&self) -> Result<Waiting, WaitError> {
        self.slot
            .wait_for(self.queue, self.awaited)
            .map_err(|WouldDeadlock| WaitError::Deadlock)
    }

    /// Takes the result if it has arrived, without blocking.
    pub fn try_wait(&mut self) -> Option<Result<T, WaitError>> {
        self.slot.try_take()
    }

    /// Whether the result has arrived (and has not been taken yet).
    pub fn is_ready(&self) -> bool {
        self.slot.is_ready()
    }
}

impl<T: 'static> Ticket<T> {
    /// Waits as a task for the output until `deadline`, for a caller that then gives up for
    /// good: `None` if it has not arrived by then, and the slot is abandoned, so the worker
    /// drops the late output itself.
    pub(crate) async fn until(self, deadline: Instant) -> Option<Result<T, WaitError>> {
        let mut deadline = Deadline::new(deadline);
        let mut ticket = self;
        poll_fn(|cx| {
            if let Poll::Ready(result) = Pin::new(&mut ticket).poll(cx) {
                return Poll::Ready(Some(result));
            }
            if deadline.passed_or_arm(cx.waker()) {
                return Poll::Ready(ticket.slot.take_or_abandon());
            }
            Poll::Pending
        })
        .await
    }
}

/// A ticket is also a future of its command's output, on any executor: the worker wakes the
/// task that polled it last. Dropping the future drops the ticket; the command is still applied.
impl<T: 'static> Future for Ticket<T> {
    type Output = Result<T, WaitError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let polled = self.slot.poll_take(cx);
        if polled.is_pending() {
            let (slot, queue, awaited) = (Arc::clone(&self.slot), self.queue, self.awaited);
            waits::note_pending(move || slot.wait_for(queue, awaited));
        }
        polled
    }
}

impl<T> fmt::Debug for Ticket<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ticket")
            .field("ready", &self.is_ready())
            .finish()
    }
}
