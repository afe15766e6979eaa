use crate::{BatchInfo, Commit, CommitError};

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

    /// Starts the commit of the commands applied since the last one: pipelined group commit.
    /// Do the quick part here (write the group's records to the file) and return
    /// [`Commit::later`] with the slow part (the `fsync`): the queue runs it on a commit thread
    /// of its own while the worker applies the next commands, and releases the outputs held
    /// under [`ReplyMode::AfterBatch`](crate::ReplyMode::AfterBatch) only once it returns
    /// `Ok`. The disk is kept busy, and the next group grows while it works.
    ///
    /// One commit runs at a time, in order. Batches that end while one runs join the next
    /// group, so `info.size` counts every command applied since the last commit started, and
    /// the [`Observer`](crate::Observer) sees one report per group. Whatever the job does must
    /// not depend on the state (the worker is changing it): give it what it needs, such as a
    /// [`File::try_clone`](std::fs::File::try_clone) of the log. A failed or panicking job is
    /// a failed or panicking commit ([`Builder::on_commit_error`](crate::Builder::on_commit_error));
    /// the job must not wait for this queue (a call from it is refused). On a hand-stepped
    /// queue the job runs at once, within the step. Before the worker finishes (shutdown,
    /// close) it waits for the running job and commits what is left.
    ///
    /// By default this is [`try_on_batch_end`](StateMachine::try_on_batch_end), done at once
    /// (`Commit::done`), once per batch.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// use singular_queue::{BatchInfo, Commit, ReplyMode, SingularQueue, StateMachine};
    ///
    /// /// Keeps a log; a "sync" makes everything written so far durable.
    /// struct Log {
    ///     written: usize,
    ///     durable: Arc<AtomicUsize>,
    /// }
    ///
    /// impl StateMachine for Log {
    ///     type Command = u64;
    ///     type Output = usize;
    ///     fn apply(&mut self, _: u64) -> usize {
    ///         self.written += 1; // the record goes to the file here
    ///         self.written
    ///     }
    ///     fn start_commit(&mut self, _: BatchInfo) -> Commit {
    ///         let (upto, durable) = (self.written, Arc::clone(&self.durable));
    ///         // The "fsync", off the worker: it covers every record written so far.
    ///         Commit::later(move || {
    ///             durable.fetch_max(upto, Ordering::SeqCst);
    ///             Ok(())
    ///         })
    ///     }
    /// }
    ///
    /// let durable = Arc::new(AtomicUsize::new(0));
    /// let log = Log { written: 0, durable: Arc::clone(&durable) };
    /// let queue = SingularQueue::builder(log)
    ///     .reply_mode(ReplyMode::AfterBatch)
    ///     .spawn()
    ///     .unwrap();
    /// let written = queue.call(7).unwrap();
    /// // The output came back only once its record was durable.
    /// assert!(durable.load(Ordering::SeqCst) >= written);
    /// queue.shutdown().unwrap();
    /// ```
    fn start_commit(&mut self, info: BatchInfo) -> Commit {
        Commit::done(self.try_on_batch_end(info))
    }

    /// Runs on the worker thread after the last command, during a shutdown. Does nothing by
    /// default. It is not called on a state that is [`Poisoned`](crate::Poisoned).
    fn on_stop(&mut self) {}
}
