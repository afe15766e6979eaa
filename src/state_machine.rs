use crate::{BatchInfo, CommitError};

/// The state a [`SingularQueue`](crate::SingularQueue) owns and the commands it applies.
///
/// This trait is the whole contract between your code and the queue. The queue moves the
/// value onto its worker thread and from then on only that thread touches it: `apply` takes
/// `&mut self` with no lock, and commands arrive one at a time in the order the queue accepted
/// them.
///
/// # Keep `apply` deterministic
///
/// The same state and the same command should always give the same output and the same next
/// state. Then a recorded command log replays to the same state, and `apply` can be unit-tested
/// without threads. Slow or blocking work (network calls, sleeping) holds up every submitter:
/// do it elsewhere and feed the result back as a new command.
///
/// # Panics
///
/// A panic in `apply` is caught: the submitter of that command receives
/// [`WaitError::Panicked`](crate::WaitError::Panicked), and the queue then stops or carries on
/// as the builder's [`OnPanic`](crate::OnPanic) says. A panic in a hook always stops the queue
/// and marks the state as [`Poisoned`](crate::Poisoned).
///
/// # Examples
///
/// ```
/// use singular_queue::{SingularQueue, StateMachine};
///
/// struct Counter(u64);
///
/// impl StateMachine for Counter {
///     type Command = u64;
///     type Output = u64;
///
///     fn apply(&mut self, add: u64) -> u64 {
///         self.0 += add;
///         self.0
///     }
/// }
///
/// // `apply` is a plain method: test it without any thread.
/// let mut counter = Counter(0);
/// assert_eq!(counter.apply(2), 2);
///
/// // Or run it on its own thread and share it.
/// let queue = SingularQueue::new(counter);
/// assert_eq!(queue.call(3).unwrap(), 5);
/// assert_eq!(queue.shutdown().unwrap().0, 5);
/// ```
pub trait StateMachine: Send + 'static {
    /// What submitters send: usually an enum with one variant per operation.
    type Command: Send + 'static;
    /// What `apply` returns to the submitter. Use a `Result` for errors of your domain.
    type Output: Send + 'static;

    /// Applies one command to the state and returns its output.
    fn apply(&mut self, command: Self::Command) -> Self::Output;

    /// Runs on the worker thread before the first command. Does nothing by default.
    fn on_start(&mut self) {}

    /// Runs on the worker thread after each batch of commands (see [`BatchInfo`]). Does nothing
    /// by default. Flush or `fsync` here once for the whole batch (or in
    /// [`try_on_batch_end`](StateMachine::try_on_batch_end), if that can fail); with
    /// [`ReplyMode::AfterBatch`](crate::ReplyMode::AfterBatch) callers hear their command is
    /// done only after this returns. It is not called on a state that is
    /// [`Poisoned`](crate::Poisoned).
    fn on_batch_end(&mut self, info: BatchInfo) {
        let _ = info;
    }

    /// The fallible form of [`on_batch_end`](StateMachine::on_batch_end), which the worker
    /// calls after each batch; by default it runs `on_batch_end` and succeeds. Override it
    /// instead of `on_batch_end` when the commit can fail (a `write` or an `fsync` that
    /// returns an error): an `Err` fails the batch's replies held under
    /// [`ReplyMode::AfterBatch`](crate::ReplyMode::AfterBatch) with
    /// [`WaitError::NotCommitted`](crate::WaitError::NotCommitted), and
    /// [`Builder::on_commit_error`](crate::Builder::on_commit_error) decides whether the queue
    /// stops or goes on. A panic here is a panic in a hook: it poisons the state.
    ///
    /// # Examples
    ///
    /// ```
    /// use singular_queue::{BatchInfo, CommitError, OnCommitError, ReplyMode};
    /// use singular_queue::{SingularQueue, StateMachine, WaitError};
    ///
    /// /// Keeps a log that the disk may refuse.
    /// struct Log {
    ///     entries: Vec<String>,
    ///     disk_full: bool,
    /// }
    ///
    /// impl StateMachine for Log {
    ///     type Command = String;
    ///     type Output = usize;
    ///     fn apply(&mut self, entry: String) -> usize {
    ///         self.entries.push(entry);
    ///         self.entries.len()
    ///     }
    ///     fn try_on_batch_end(&mut self, _: BatchInfo) -> Result<(), CommitError> {
    ///         if self.disk_full {
    ///             return Err("no space left on device".into());
    ///         }
    ///         Ok(()) // write and fsync here
    ///     }
    /// }
    ///
    /// let mut queue = SingularQueue::builder(Log { entries: Vec::new(), disk_full: true })
    ///     .reply_mode(ReplyMode::AfterBatch)
    ///     .on_commit_error(OnCommitError::Continue)
    ///     .manual();
    /// let lost = queue.submit("a".to_owned()).unwrap();
    /// queue.step();
    /// assert!(matches!(lost.wait(), Err(WaitError::NotCommitted(m)) if m.contains("no space")));
    /// assert!(!queue.handle().is_closed(), "the queue goes on");
    /// ```
    fn try_on_batch_end(&mut self, info: BatchInfo) -> Result<(), CommitError> {
        self.on_batch_end(info);
        Ok(())
    }

    /// Runs on the worker thread after the last command, during a shutdown. Does nothing by
    /// default. It is not called on a state that is [`Poisoned`](crate::Poisoned).
    fn on_stop(&mut self) {}
}
