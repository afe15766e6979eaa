//! A batch's commit that may fail, and what the queue does when it does.

use std::error::Error;

/// The error of a failed [`StateMachine::try_on_batch_end`](crate::StateMachine::try_on_batch_end):
/// any error, so that `?` works on an `io::Error` from a `write` or an `fsync`.
pub type CommitError = Box<dyn Error + Send + Sync + 'static>;

/// What the queue does after a batch's commit fails, set with
/// [`Builder::on_commit_error`](crate::Builder::on_commit_error).
///
/// Either way, under [`ReplyMode::AfterBatch`](crate::ReplyMode::AfterBatch) every caller of
/// that batch receives [`WaitError::NotCommitted`](crate::WaitError::NotCommitted) with the
/// error's message ("applied, not committed": each command was applied, so a retry would
/// apply it twice), and [`Stats::failed_commits`](crate::Stats::failed_commits) counts it.
/// Under [`ReplyMode::AfterApply`](crate::ReplyMode::AfterApply) the callers were answered
/// before the commit, so only the count and this choice remain: pair a fallible commit with
/// `AfterBatch`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum OnCommitError {
    /// Treat the state as poisoned (the default), as after a panic under
    /// [`OnPanic::Stop`](crate::OnPanic::Stop): the queue closes, commands already accepted
    /// resolve to [`NotApplied`](crate::WaitError::NotApplied), and `shutdown` returns the state
    /// inside [`Poisoned`](crate::Poisoned). Safe when the state may now hold what the log
    /// does not.
    #[default]
    Stop,
    /// Fail that batch's replies and go on with the next batch. Choose this when a failed
    /// commit leaves nothing to repair (the next commit writes the batch again, or the error
    /// is reported and the data was never promised durable).
    Continue,
}
