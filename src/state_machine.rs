use crate::BatchInfo;

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
    /// by default. Flush or `fsync` here once for the whole batch; with
    /// [`ReplyMode::AfterBatch`](crate::ReplyMode::AfterBatch) callers hear their command is
    /// done only after this returns. It is not called on a state that is
    /// [`Poisoned`](crate::Poisoned).
    fn on_batch_end(&mut self, info: BatchInfo) {
        let _ = info;
    }

    /// Runs on the worker thread after the last command, during a shutdown. Does nothing by
    /// default. It is not called on a state that is [`Poisoned`](crate::Poisoned).
    fn on_stop(&mut self) {}
}
