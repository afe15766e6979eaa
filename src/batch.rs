//! Batches: what the worker tells `on_batch_end`, and when callers hear their command is done.

/// What the worker tells [`StateMachine::on_batch_end`](crate::StateMachine::on_batch_end)
/// about the batch it just applied.
///
/// The worker takes every command already waiting, up to
/// [`Builder::max_batch`](crate::Builder::max_batch), applies them one by one in order, and
/// then calls `on_batch_end` once: the natural place to flush or `fsync` once for many
/// commands (group commit).
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchInfo {
    /// How many commands of the batch `apply` ran on (at least 1; a command whose `apply`
    /// panicked under [`OnPanic::Continue`](crate::OnPanic::Continue) counts).
    pub size: usize,
    /// How many commands were waiting in the queue when the batch closed: 0 when the worker
    /// closed it because it found the queue empty, the queue's length when the batch reached
    /// [`max_batch`](crate::Builder::max_batch). (During a shutdown this may count the
    /// shutdown's own stop message.) Commands may arrive while `on_batch_end` runs.
    pub remaining: usize,
}

/// When a caller learns that its command is done, set with
/// [`Builder::reply_mode`](crate::Builder::reply_mode).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum ReplyMode {
    /// As soon as its `apply` returns (the default, lowest latency).
    #[default]
    AfterApply,
    /// Only once the batch's commit ([`on_batch_end`](crate::StateMachine::on_batch_end), or
    /// [`try_on_batch_end`](crate::StateMachine::try_on_batch_end)) has succeeded: group
    /// commit. A caller is told its command is done only once the batch is committed (for
    /// example, fsynced). If the commit returns an error or panics (or a command of the batch
    /// panics and poisons the state first), every other reply of the batch is
    /// [`WaitError::NotCommitted`](crate::WaitError::NotCommitted): applied, not committed;
    /// none is reported done, and none is blamed for the panic.
    AfterBatch,
}
