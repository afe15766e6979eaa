//! A batch's commit: one that may fail, one whose slow part runs beside the next batch
//! (pipelined group commit), and what the queue does when one fails.

use std::error::Error;
use std::fmt;

use crate::on_panic;

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

/// What [`StateMachine::start_commit`](crate::StateMachine::start_commit) returns: a commit
/// already done, or the slow part of one (the `fsync`), for the queue to run on its commit
/// thread while the worker applies the next commands.
///
/// # Examples
///
/// ```
/// use singular_queue::{Commit, CommitError};
///
/// // Done here, as `try_on_batch_end` would:
/// let done = Commit::done(Ok(()));
/// // Left to the commit thread:
/// let later = Commit::later(|| -> Result<(), CommitError> { Ok(()) });
/// # let _ = (done, later);
/// ```
#[must_use = "the queue learns the commit's outcome from the `Commit` it gets back"]
pub struct Commit(Kind);

enum Kind {
    Done(Result<(), CommitError>),
    Later(Job),
}

/// The slow part of a commit, run on the commit thread.
pub(crate) type Job = Box<dyn FnOnce() -> Result<(), CommitError> + Send>;

impl Commit {
    /// A commit that has already run, successfully or not: its batch's replies are released
    /// (or failed) at once.
    pub fn done(result: Result<(), CommitError>) -> Self {
        Self(Kind::Done(result))
    }

    /// A commit whose rest is `job`, to run on the queue's commit thread while the worker goes
    /// on applying. The commands it covers are answered (under
    /// [`ReplyMode::AfterBatch`](crate::ReplyMode::AfterBatch)) only once it returns `Ok`.
    pub fn later(job: impl FnOnce() -> Result<(), CommitError> + Send + 'static) -> Self {
        Self(Kind::Later(Box::new(job)))
    }

    /// The outcome if the commit is done, or the job still to run.
    pub(crate) fn into_job(self) -> Result<Outcome, Job> {
        match self.0 {
            Kind::Done(result) => Ok(Outcome::of(result)),
            Kind::Later(job) => Err(job),
        }
    }
}

impl fmt::Debug for Commit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.0 {
            Kind::Done(Ok(())) => "done",
            Kind::Done(Err(_)) => "failed",
            Kind::Later(_) => "later",
        };
        f.debug_tuple("Commit").field(&kind).finish()
    }
}

/// How a commit ended, told as text: it crosses from the commit thread to the worker.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// No commit ran: the group applied nothing (so holds no output), or the state is
    /// poisoned.
    NotRun,
    Committed,
    /// The commit returned this error.
    Failed(String),
    /// The commit panicked with this message: a panic in a hook, which poisons the state.
    Panicked(String),
    /// No commit will run: the group was applied to a state that a restart replaced.
    Abandoned(String),
}

impl Outcome {
    fn of(result: Result<(), CommitError>) -> Self {
        match result {
            Ok(()) => Outcome::Committed,
            Err(error) => Outcome::Failed(failure(error)),
        }
    }

    /// Runs `job` (user code) and says how it ended.
    pub(crate) fn of_job(job: Job) -> Self {
        match on_panic::catch(job) {
            Ok(result) => Outcome::of(result),
            Err(panic) => Outcome::Panicked(panic),
        }
    }
}

/// A failed commit's message; the error's `Display` and `Drop` are user code, run under catch.
fn failure(error: CommitError) -> String {
    let message = on_panic::catch(|| format!("commit failed: {error}"))
        .unwrap_or_else(|panic| format!("commit failed, and its error panicked: {panic}"));
    let _ = on_panic::catch(move || drop(error));
    message
}
