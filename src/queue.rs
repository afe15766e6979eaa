use std::fmt;
use std::ops::Deref;
use std::panic::resume_unwind;

use crate::sync::thread::JoinHandle;
use crate::waits;
use crate::worker::Exit;
use crate::{Builder, Handle, Poisoned, StateMachine, WouldDeadlock};

/// A state machine running on its own thread, applying the commands submitted to it one at a
/// time, in the order it accepted them.
///
/// `SingularQueue` is the owner: it dereferences to its [`Handle`], so every way to submit,
/// wait and read figures works on it too (`queue.call(…)`, `queue.close()`), and it hands out
/// handles; it alone can shut the queue down and get the state back. It is `Send` but not
/// `Clone`.
///
/// # Shutting down
///
/// | | commands already accepted | returns |
/// |---|---|---|
/// | [`shutdown`](SingularQueue::shutdown) | applied, then `on_stop` runs | the state |
/// | [`shutdown_now`](SingularQueue::shutdown_now) | the one being applied finishes; the rest come back, their tickets resolve to [`NotApplied`](crate::WaitError::NotApplied) | the state and those commands |
/// | dropping the queue | as `shutdown`; the state is dropped | |
///
/// Either way later submits, through any handle, are refused with the command handed back,
/// and no command can slip in after the shutdown has taken its last look. The thread is
/// joined, except in the one case below.
///
/// # Dropping the queue
///
/// Dropping the queue on its own worker thread — a state machine that holds the last
/// `Arc<SingularQueue<_>>` and lets it go inside `apply` — or on the worker of another queue
/// that this queue's worker waits for, cannot wait for the worker: it would wait for itself.
/// There the drop closes the queue at once and returns; the worker finishes the command in
/// progress, applies every command already accepted, runs `on_stop`, drops the state on its
/// own thread and exits. Nothing is lost: every accepted command is applied (or, on a poisoned
/// state, its caller told [`NotApplied`](crate::WaitError::NotApplied)). `shutdown` and
/// `shutdown_now` panic there instead, since they could never return the state.
///
/// # Examples
///
/// ```
/// use singular_queue::{SingularQueue, StateMachine};
///
/// struct Log(Vec<String>);
///
/// impl StateMachine for Log {
///     type Command = String;
///     type Output = usize;
///     fn apply(&mut self, line: String) -> usize {
///         self.0.push(line);
///         self.0.len()
///     }
/// }
///
/// let queue = SingularQueue::new(Log(Vec::new()));
/// assert_eq!(queue.call("hello".to_owned()).unwrap(), 1);
/// queue.tell("world".to_owned()).unwrap();
/// let log = queue.shutdown().unwrap();
/// assert_eq!(log.0, ["hello", "world"]);
/// ```
pub struct SingularQueue<S: StateMachine> {
    handle: Handle<S>,
    /// Taken by the shutdown; `None` only once that has happened.
    worker: Option<JoinHandle<Option<Exit<S>>>>,
}

impl<S: StateMachine> SingularQueue<S> {
    /// Spawns a queue with the default settings.
    ///
    /// # Panics
    ///
    /// If the operating system cannot create the worker thread; use
    /// [`builder`](SingularQueue::builder) and [`Builder::spawn`] to handle that error.
    pub fn new(state: S) -> Self {
        Self::builder(state)
            .spawn()
            .expect("failed to spawn the singular-queue worker thread")
    }

    /// Starts configuring a queue around `state`.
    pub fn builder(state: S) -> Builder<S> {
        Builder::new(state)
    }

    pub(crate) fn new_running(handle: Handle<S>, worker: JoinHandle<Option<Exit<S>>>) -> Self {
        Self {
            handle,
            worker: Some(worker),
        }
    }

    /// A new handle to submit from other threads.
    pub fn handle(&self) -> Handle<S> {
        self.handle.clone()
    }

    /// Stops accepting commands, applies every command already accepted, runs `on_stop`,
    /// joins the worker thread and returns the state.
    ///
    /// # Errors
    ///
    /// [`Poisoned`] if a panic poisoned the state (see [`OnPanic`](crate::OnPanic)); it still
    /// holds the state, and the commands that were accepted but not applied.
    ///
    /// # Panics
    ///
    /// If called where it could never return: on the queue's own worker thread (inside
    /// `apply` or a hook, where the state is in use), or on the worker of another queue that
    /// this queue's worker waits for. The queue is then dropped as the panic unwinds, which
    /// stops it without waiting (see [Dropping the queue](SingularQueue#dropping-the-queue)).
    pub fn shutdown(mut self) -> Result<S, Poisoned<S>> {
        let exit = self.stop(false).unwrap_or_else(|| cannot_wait("shutdown"));
        exit.into_state()
    }

    /// Like [`shutdown`](SingularQueue::shutdown), for async code: the task waits for the
    /// worker to apply every accepted command and run `on_stop` without blocking its thread
    /// (only the join of the finished thread, a moment, blocks).
    ///
    /// # Cancel safety
    ///
    /// Dropping the future after it started closes the queue (as [`Handle::close`]) and drops
    /// the owner: the worker still applies every accepted command, and the drop joins it.
    ///
    /// # Errors
    ///
    /// As [`shutdown`](SingularQueue::shutdown).
    ///
    /// # Panics
    ///
    /// Where [`shutdown`](SingularQueue::shutdown) panics.
    pub async fn shutdown_async(self) -> Result<S, Poisoned<S>> {
        // On the worker (an executor run inside `apply`), or on a worker this queue waits for,
        // the end would never come: refused before anything is closed, as `shutdown` is.
        if waits::wait_for(self.handle.shared().id()).is_err() {
            cannot_wait("shutdown_async");
        }
        self.handle.close();
        self.handle.closed().await;
        self.shutdown()
    }

    /// Stops accepting commands and stops the worker after the command it is applying.
    /// Returns the state and the commands that were accepted but not applied, in the order
    /// they were accepted; their tickets resolve to
    /// [`WaitError::NotApplied`](crate::WaitError::NotApplied). `on_stop` runs as usual.
    ///
    /// # Errors
    ///
    /// [`Poisoned`] if a panic poisoned the state; it holds the same state and commands.
    ///
    /// # Panics
    ///
    /// Where [`shutdown`](SingularQueue::shutdown) panics, for the same reason; the queue is
    /// then dropped as the panic unwinds, and stops after the command in progress.
    pub fn shutdown_now(mut self) -> Result<(S, Vec<S::Command>), Poisoned<S>> {
        let exit = self
            .stop(true)
            .unwrap_or_else(|| cannot_wait("shutdown_now"));
        exit.into_parts()
    }

    /// Stops the worker and joins it, or, where waiting for the worker would never end (on the
    /// worker itself, or on a worker it waits for), leaves it to finish on its own: `None`.
    /// Either way the queue closes at once, and `now` sets aside what was not applied yet.
    fn stop(&mut self, now: bool) -> Option<Exit<S>> {
        let worker = self.worker.take()?;
        let shared = self.handle.shared();
        match waits::wait_for(shared.id()) {
            Ok(_waiting) => {
                shared.close_and_stop(now);
                let exit = worker.join().unwrap_or_else(|panic| resume_unwind(panic));
                Some(exit.expect("a joined worker was not orphaned"))
            }
            Err(WouldDeadlock) => {
                shared.close_and_orphan(now);
                None
            }
        }
    }
}

/// `shutdown`, `shutdown_now` or `shutdown_async` was called where it cannot wait for the
/// worker.
fn cannot_wait(what: &str) -> ! {
    panic!(
        "SingularQueue::{what} called on the queue's own worker thread, or on a worker it \
         waits for: it could never return; the queue is dropped instead"
    )
}

impl<S: StateMachine> Drop for SingularQueue<S> {
    /// Shuts down gracefully: every accepted command is applied, then the thread is joined.
    /// Where that wait would never end, the queue stops without it: see
    /// [Dropping the queue](SingularQueue#dropping-the-queue).
    fn drop(&mut self) {
        drop(self.stop(false));
    }
}

/// The owner submits like any handle: `queue.call(…)` is `queue.handle().call(…)` without the
/// clone.
impl<S: StateMachine> Deref for SingularQueue<S> {
    type Target = Handle<S>;

    fn deref(&self) -> &Handle<S> {
        &self.handle
    }
}

impl<S: StateMachine> fmt::Debug for SingularQueue<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SingularQueue")
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}
