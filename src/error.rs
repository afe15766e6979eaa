//! The errors of the public API. Every error that refuses a command hands it back.

use std::error::Error;
use std::fmt;

// The sentences that `SubmitError`, `WaitError` and `CallError` share.
const NOT_APPLIED: &str = "the queue stopped before applying the command";
const DROPPED: &str = "the command was evicted by a newer one";
const NO_ROOM_IN_TIME: &str = "timed out waiting for room in the queue";
const PANICKED: &str = "the command panicked";
const NOT_COMMITTED: &str = "the command was applied, but its batch was not committed";
const WOULD_DEADLOCK: &str = "waiting would deadlock: the queue waits for this thread";
const CROSS_SHARD: &str = "the command's keys belong to more than one shard";
const NOT_WAITED: &str = "not waited for: waiting would deadlock, and the command stays accepted";

/// A command the queue refused: it was not accepted, and here it is back.
///
/// Returned by [`Handle::submit`](crate::Handle::submit) and
/// [`Handle::tell`](crate::Handle::tell). Get the command back with
/// [`into_inner`](SubmitError::into_inner).
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
/// let handle = queue.handle();
/// queue.shutdown().unwrap();
///
/// let error = handle.tell(7).unwrap_err();
/// assert!(error.is_closed());
/// assert_eq!(error.into_inner(), 7);
/// ```
#[non_exhaustive]
#[derive(Clone, PartialEq, Eq)]
pub enum SubmitError<T> {
    /// The queue has been shut down (or stopped after a panic) and accepts nothing more.
    Closed(T),
    /// The queue was full and its policy (or a `try_*` call) would not wait, or the policy
    /// shed the command.
    Full(T),
    /// The queue stayed full for as long as the policy (or a `*_timeout` call) would wait.
    Timeout(T),
    /// The queue was full, and this thread is a worker that the queue waits for: the queue's
    /// own worker, or the worker of a queue that this one waits for through a chain of queues
    /// (each worker blocked calling, or waiting for room in, the next). Waiting for room here
    /// would never end, so the submit is refused instead.
    Deadlock(T),
    /// Submitted to a [`Sharded`](crate::Sharded) queue, the command's keys belong to more
    /// than one shard (see [`Route::CrossShard`](crate::Route::CrossShard)): no shard can
    /// apply it alone, so none was given it.
    CrossShard(T),
}

/// Why a ticket will never hold its command's output.
///
/// The command was accepted, so it is no longer the caller's. Each variant says exactly what
/// became of it, so that a caller retries only what was not done:
///
/// | variant | `apply` ran on the command? | its effects are in the state? | retry? |
/// |---|---|---|---|
/// | [`Panicked`](WaitError::Panicked) | yes, and panicked | partly, perhaps | only if `apply` is idempotent |
/// | [`NotCommitted`](WaitError::NotCommitted) | yes, and returned | yes, but not committed | no: the command was applied |
/// | [`NotApplied`](WaitError::NotApplied) | no | no | yes |
/// | [`Dropped`](WaitError::Dropped) | no | no | if it still matters |
/// | [`Deadlock`](WaitError::Deadlock) | not yet: it is still queued | later | no |
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WaitError {
    /// `apply` panicked on this very command; the panic's message is kept.
    Panicked(String),
    /// `apply` ran on this command and returned, but its batch was not committed under
    /// [`ReplyMode::AfterBatch`](crate::ReplyMode::AfterBatch): the commit
    /// ([`try_on_batch_end`](crate::StateMachine::try_on_batch_end)) returned an error (the
    /// message is "commit failed: " and the error's), or it panicked, or another command of
    /// the same batch panicked and poisoned the state first, so the commit never ran (the
    /// message is that panic's). The command's effects are in the state — poisoned, unless
    /// [`OnCommitError::Continue`](crate::OnCommitError::Continue) went on after a failed
    /// commit; do not apply it again.
    NotCommitted(String),
    /// The queue stopped before applying this command: a
    /// [`shutdown_now`](crate::SingularQueue::shutdown_now), or a state poisoned by an earlier
    /// command. The command went back to the queue's owner.
    NotApplied,
    /// A newer command evicted this one from a full [`DropOldest`](crate::DropOldest) queue,
    /// before it was applied.
    Dropped,
    /// Nobody waited: this thread is the worker that would have to apply the command (the
    /// ticket's own queue's worker, or a worker that the ticket's queue waits for through a
    /// chain of queues), so waiting would never end. The command stays accepted and is
    /// applied later as usual (its output is discarded if the ticket was consumed).
    Deadlock,
}

/// Why [`Handle::call`](crate::Handle::call) returned no output.
///
/// Either the command was refused and comes back ([`into_inner`](CallError::into_inner)
/// returns it), or it was accepted and then failed as a [`WaitError`] says.
#[non_exhaustive]
#[derive(Clone, PartialEq, Eq)]
pub enum CallError<T> {
    /// The queue is closed; the command was not accepted.
    Closed(T),
    /// The queue was full and would not wait; the command was not accepted.
    Full(T),
    /// The queue stayed full too long; the command was not accepted.
    Timeout(T),
    /// Called from the queue's own worker thread (inside `apply` or a hook), which would wait
    /// for itself; the command was not accepted.
    Reentrant(T),
    /// Called from the worker of another queue that this queue waits for, through a chain of
    /// queues (each worker blocked calling, or waiting for room in, the next): the call would
    /// never return, so the command was not accepted.
    Deadlock(T),
    /// Called on a [`Sharded`](crate::Sharded) queue with a command whose keys belong to more
    /// than one shard; the command was not accepted.
    CrossShard(T),
    /// `apply` panicked on this very command; the panic's message is kept.
    Panicked(String),
    /// `apply` ran on this command and returned, but its batch was not committed (see
    /// [`WaitError::NotCommitted`]); do not apply it again.
    NotCommitted(String),
    /// The queue stopped before applying this command.
    NotApplied,
    /// A newer command evicted this one from a full [`DropOldest`](crate::DropOldest) queue.
    Dropped,
    /// [`call_timeout`](crate::Handle::call_timeout) ran out after the command was accepted.
    /// The command stays accepted and goes the way of any accepted command: applied exactly
    /// once, unless a newer one evicts it ([`DropOldest`](crate::DropOldest)) or the queue
    /// stops first (`shutdown_now`, a poisoned state); [`Stats`](crate::Stats) counts which.
    /// Only the news is lost: do not submit it again blindly.
    ReplyTimeout,
    /// Converted from [`WaitError::Deadlock`]: a ticket was not waited for because waiting
    /// would never end. The command stays accepted and is applied later; its output is lost.
    /// [`call`](crate::Handle::call) itself never returns this: it refuses with
    /// [`Deadlock`](CallError::Deadlock) before submitting.
    NotWaited,
}

// === impl SubmitError ===

impl<T> SubmitError<T> {
    /// Returns the refused command.
    pub fn into_inner(self) -> T {
        match self {
            Self::Closed(command)
            | Self::Full(command)
            | Self::Timeout(command)
            | Self::Deadlock(command)
            | Self::CrossShard(command) => command,
        }
    }

    /// Whether the queue refused the command because it is closed.
    pub fn is_closed(&self) -> bool {
        matches!(self, Self::Closed(_))
    }

    /// Whether the queue refused the command because it was full.
    pub fn is_full(&self) -> bool {
        matches!(self, Self::Full(_))
    }

    /// Whether the queue refused the command after waiting for room in vain.
    pub fn is_timeout(&self) -> bool {
        matches!(self, Self::Timeout(_))
    }

    /// Whether the queue refused to let this worker wait for room it could never get.
    pub fn is_deadlock(&self) -> bool {
        matches!(self, Self::Deadlock(_))
    }

    /// Whether a sharded queue refused the command because its keys span shards.
    pub fn is_cross_shard(&self) -> bool {
        matches!(self, Self::CrossShard(_))
    }

    /// The same refusal, carrying `f(command)`.
    pub(crate) fn map<U>(self, f: impl FnOnce(T) -> U) -> SubmitError<U> {
        match self {
            Self::Closed(command) => SubmitError::Closed(f(command)),
            Self::Full(command) => SubmitError::Full(f(command)),
            Self::Timeout(command) => SubmitError::Timeout(f(command)),
            Self::Deadlock(command) => SubmitError::Deadlock(f(command)),
            Self::CrossShard(command) => SubmitError::CrossShard(f(command)),
        }
    }
}

impl<T> fmt::Debug for SubmitError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Closed(_) => f.write_str("Closed(..)"),
            Self::Full(_) => f.write_str("Full(..)"),
            Self::Timeout(_) => f.write_str("Timeout(..)"),
            Self::Deadlock(_) => f.write_str("Deadlock(..)"),
            Self::CrossShard(_) => f.write_str("CrossShard(..)"),
        }
    }
}

impl<T> fmt::Display for SubmitError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Closed(_) => f.write_str("submitting to a closed queue"),
            Self::Full(_) => f.write_str("submitting to a full queue"),
            Self::Timeout(_) => f.write_str(NO_ROOM_IN_TIME),
            Self::Deadlock(_) => f.write_str(WOULD_DEADLOCK),
            Self::CrossShard(_) => f.write_str(CROSS_SHARD),
        }
    }
}

impl<T> Error for SubmitError<T> {}

// === impl WaitError ===

impl WaitError {
    /// Whether `apply` panicked on the command.
    pub fn is_panicked(&self) -> bool {
        matches!(self, Self::Panicked(_))
    }

    /// Whether the command was applied but its batch was not committed.
    pub fn is_not_committed(&self) -> bool {
        matches!(self, Self::NotCommitted(_))
    }

    /// Whether the queue stopped before applying the command.
    pub fn is_not_applied(&self) -> bool {
        matches!(self, Self::NotApplied)
    }

    /// Whether a newer command evicted this one.
    pub fn is_dropped(&self) -> bool {
        matches!(self, Self::Dropped)
    }

    /// Whether waiting was refused because it would never end.
    pub fn is_deadlock(&self) -> bool {
        matches!(self, Self::Deadlock)
    }
}

impl fmt::Display for WaitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Panicked(message) => write!(f, "{PANICKED}: {message}"),
            Self::NotCommitted(message) => write!(f, "{NOT_COMMITTED}: {message}"),
            Self::NotApplied => f.write_str(NOT_APPLIED),
            Self::Dropped => f.write_str(DROPPED),
            Self::Deadlock => f.write_str(NOT_WAITED),
        }
    }
}

impl Error for WaitError {}

// === impl CallError ===

impl<T> CallError<T> {
    /// Returns the command if it was refused, or `None` if it had been accepted.
    pub fn into_inner(self) -> Option<T> {
        match self {
            Self::Closed(command)
            | Self::Full(command)
            | Self::Timeout(command)
            | Self::Reentrant(command)
            | Self::Deadlock(command)
            | Self::CrossShard(command) => Some(command),
            Self::Panicked(_)
            | Self::NotCommitted(_)
            | Self::NotApplied
            | Self::Dropped
            | Self::ReplyTimeout
            | Self::NotWaited => None,
        }
    }

    /// Whether the queue refused the command because it is closed.
    pub fn is_closed(&self) -> bool {
        matches!(self, Self::Closed(_))
    }

    /// Whether the queue refused the command because it was full.
    pub fn is_full(&self) -> bool {
        matches!(self, Self::Full(_))
    }

    /// Whether the queue refused the command after waiting for room in vain.
    pub fn is_timeout(&self) -> bool {
        matches!(self, Self::Timeout(_))
    }

    /// Whether the call was made from the queue's own worker thread.
    pub fn is_reentrant(&self) -> bool {
        matches!(self, Self::Reentrant(_))
    }

    /// Whether the call was refused, or not waited for, because waiting would never end
    /// ([`Deadlock`](CallError::Deadlock) or [`NotWaited`](CallError::NotWaited)).
    pub fn is_deadlock(&self) -> bool {
        matches!(self, Self::Deadlock(_) | Self::NotWaited)
    }

    /// Whether a sharded queue refused the command because its keys span shards.
    pub fn is_cross_shard(&self) -> bool {
        matches!(self, Self::CrossShard(_))
    }

    /// Whether `apply` panicked on the command.
    pub fn is_panicked(&self) -> bool {
        matches!(self, Self::Panicked(_))
    }

    /// Whether the command was applied but its batch was not committed.
    pub fn is_not_committed(&self) -> bool {
        matches!(self, Self::NotCommitted(_))
    }

    /// Whether the queue stopped before applying the command.
    pub fn is_not_applied(&self) -> bool {
        matches!(self, Self::NotApplied)
    }

    /// Whether a newer command evicted this one.
    pub fn is_dropped(&self) -> bool {
        matches!(self, Self::Dropped)
    }

    /// Whether the call gave up waiting for the output of an accepted command.
    pub fn is_reply_timeout(&self) -> bool {
        matches!(self, Self::ReplyTimeout)
    }
}

impl<T> From<SubmitError<T>> for CallError<T> {
    fn from(error: SubmitError<T>) -> Self {
        match error {
            SubmitError::Closed(command) => Self::Closed(command),
            SubmitError::Full(command) => Self::Full(command),
            SubmitError::Timeout(command) => Self::Timeout(command),
            SubmitError::Deadlock(command) => Self::Deadlock(command),
            SubmitError::CrossShard(command) => Self::CrossShard(command),
        }
    }
}

impl<T> From<WaitError> for CallError<T> {
    fn from(error: WaitError) -> Self {
        match error {
            WaitError::Panicked(message) => Self::Panicked(message),
            WaitError::NotCommitted(message) => Self::NotCommitted(message),
            WaitError::NotApplied => Self::NotApplied,
            WaitError::Dropped => Self::Dropped,
            WaitError::Deadlock => Self::NotWaited,
        }
    }
}

impl<T> fmt::Debug for CallError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Closed(_) => f.write_str("Closed(..)"),
            Self::Full(_) => f.write_str("Full(..)"),
            Self::Timeout(_) => f.write_str("Timeout(..)"),
            Self::Reentrant(_) => f.write_str("Reentrant(..)"),
            Self::Deadlock(_) => f.write_str("Deadlock(..)"),
            Self::CrossShard(_) => f.write_str("CrossShard(..)"),
            Self::Panicked(message) => f.debug_tuple("Panicked").field(message).finish(),
            Self::NotCommitted(message) => f.debug_tuple("NotCommitted").field(message).finish(),
            Self::NotApplied => f.write_str("NotApplied"),
            Self::Dropped => f.write_str("Dropped"),
            Self::ReplyTimeout => f.write_str("ReplyTimeout"),
            Self::NotWaited => f.write_str("NotWaited"),
        }
    }
}

impl<T> fmt::Display for CallError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Closed(_) => f.write_str("calling a closed queue"),
            Self::Full(_) => f.write_str("calling a full queue"),
            Self::Timeout(_) => f.write_str(NO_ROOM_IN_TIME),
            Self::Reentrant(_) => f.write_str("calling a queue from its own worker thread"),
            Self::Deadlock(_) => f.write_str(WOULD_DEADLOCK),
            Self::CrossShard(_) => f.write_str(CROSS_SHARD),
            Self::Panicked(message) => write!(f, "{PANICKED}: {message}"),
            Self::NotCommitted(message) => write!(f, "{NOT_COMMITTED}: {message}"),
            Self::NotApplied => f.write_str(NOT_APPLIED),
            Self::Dropped => f.write_str(DROPPED),
            Self::ReplyTimeout => f.write_str("timed out waiting for the command's output"),
            Self::NotWaited => f.write_str(NOT_WAITED),
        }
    }
}

impl<T> Error for CallError<T> {}

/// A wait that could never end was refused: the queue it waits for is this thread's own (a
/// worker, or the owner of a [`ManualQueue`](crate::ManualQueue)), or that queue's worker
/// waits, through a chain of queues, for this thread.
///
/// Returned by [`Handle::wait_until_quiet`](crate::Handle::wait_until_quiet). The command-
/// carrying errors say the same with their `Deadlock` variants.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WouldDeadlock;

impl fmt::Display for WouldDeadlock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(WOULD_DEADLOCK)
    }
}

impl Error for WouldDeadlock {}
