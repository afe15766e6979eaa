use std::fmt;
use std::marker::PhantomData;

use crate::worker::{Exit, Worker};
use crate::{Handle, Poisoned, StateMachine, Stats, SubmitError, Ticket, waits};

/// A queue with no worker thread: the test that owns it runs the worker's code, one batch at a
/// time, on its own thread. Made by [`Builder::manual`](crate::Builder::manual).
///
/// Everything but the thread is the real queue: handles and tickets, the backpressure policy
/// and `on_evict`, batching and [`on_batch_end`](StateMachine::on_batch_end), reply modes,
/// panics caught and poisoning by [`OnPanic`](crate::OnPanic), [`Stats`], shutdown. So a test
/// can submit, look at the state, step, and assert exactly what the worker did, command by
/// command, with no timing in it.
///
/// # Steps
///
/// [`step`](ManualQueue::step) runs **one batch**, exactly as the spawned worker would: the
/// oldest waiting command and every command already waiting behind it, up to
/// [`max_batch`](crate::Builder::max_batch), then `on_batch_end`, then the replies held for
/// group commit. Build with `max_batch(1)` to step one command at a time.
/// [`run_until_idle`](ManualQueue::run_until_idle) steps until nothing is waiting.
///
/// # Whose thread it is
///
/// The thread that builds a manual queue is its worker, for as long as the queue lives: the
/// queue is not `Send`. Other threads may hold handles, submit and wait; their waits end when
/// this thread steps. On this thread, a wait that only a step could end would never end, so it
/// is refused at once, as on a spawned queue's own worker: a [`call`](Handle::call) returns
/// [`CallError::Reentrant`](crate::CallError::Reentrant), waiting on a ticket that is not
/// ready returns [`WaitError::Deadlock`](crate::WaitError::Deadlock), and a submit that would
/// wait for room returns [`SubmitError::Deadlock`]; each gives the command back or leaves it
/// accepted, as its documentation says. The same check covers chains: a spawned queue's
/// worker that calls this queue while this thread waits for that queue is refused too. Async
/// calls are refused the same way when they start, and [`model::block_on`] panics rather than
/// sleep on a ticket that only a step could complete.
///
/// [`model::block_on`]: crate::model::block_on
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use singular_queue::{SingularQueue, StateMachine, WaitError};
///
/// struct Counter(u64);
///
/// impl StateMachine for Counter {
///     type Command = u64;
///     type Output = u64;
///     fn apply(&mut self, add: u64) -> u64 {
///         self.0 += add;
///         self.0
///     }
/// }
///
/// let mut queue = SingularQueue::builder(Counter(0)).manual();
/// let mut first = queue.submit(1).unwrap();
/// let second = queue.submit(2).unwrap();
/// // Nothing runs until the test steps, so waiting here could never end: it is refused.
/// let forever = Duration::from_secs(3600);
/// assert_eq!(first.wait_timeout(forever), Some(Err(WaitError::Deadlock)));
/// assert_eq!(queue.state().0, 0);
///
/// assert_eq!(queue.step(), 2); // one batch: both commands were waiting
/// assert_eq!(queue.state().0, 3);
/// assert_eq!(first.wait(), Ok(1));
/// assert_eq!(second.wait(), Ok(3));
///
/// let third = queue.submit(4).unwrap();
/// let state = queue.shutdown().unwrap(); // serves what was accepted, runs `on_stop`
/// assert_eq!(state.0, 7);
/// assert_eq!(third.wait(), Ok(7));
/// ```
pub struct ManualQueue<S: StateMachine> {
    handle: Handle<S>,
    /// Taken by the shutdown; `None` only once that has happened.
    worker: Option<Worker<S>>,
    /// The building thread serves the queue: it must stay on that thread.
    _not_send: PhantomData<*const ()>,
}

impl<S: StateMachine> ManualQueue<S> {
    /// Marks this thread as the queue's worker and runs `on_start`.
    pub(crate) fn new(handle: Handle<S>, mut worker: Worker<S>) -> Self {
        worker.start();
        Self {
            handle,
            worker: Some(worker),
            _not_send: PhantomData,
        }
    }

    /// Runs one batch: the oldest waiting command and those already waiting behind it, up to
    /// [`max_batch`](crate::Builder::max_batch), then `on_batch_end` and the held replies.
    /// Returns how many commands it took from the queue: 0 if none was waiting. As on a worker
    /// thread, a command that `apply` submits to this queue joins the batch if it arrives
    /// before the batch is full; with `max_batch(1)` every step takes exactly one command.
    ///
    /// On a poisoned state, or after a panic that [`OnPanic::Stop`](crate::OnPanic::Stop)
    /// turned into poison, the commands it takes are set aside, as the spawned worker does:
    /// their tickets resolve to [`NotApplied`](crate::WaitError::NotApplied), and
    /// [`shutdown`](ManualQueue::shutdown) returns them in its [`Poisoned`].
    pub fn step(&mut self) -> usize {
        self.worker_mut().step()
    }

    /// Steps until nothing is waiting; returns how many commands it took in all. A state
    /// machine that submits to its own queue on every command keeps it busy forever, here as
    /// on a worker thread.
    pub fn run_until_idle(&mut self) -> usize {
        let mut taken = 0;
        loop {
            match self.step() {
                0 => return taken,
                batch => taken += batch,
            }
        }
    }

    /// The state machine, as the steps so far have left it.
    pub fn state(&self) -> &S {
        self.worker.as_ref().expect("live until shut down").state()
    }

    /// A new handle to submit from this or other threads.
    pub fn handle(&self) -> Handle<S> {
        self.handle.clone()
    }

    /// Same as [`Handle::submit`]; on this thread it cannot wait for room (see
    /// [Whose thread it is](ManualQueue#whose-thread-it-is)).
    pub fn submit(
        &self,
        command: S::Command,
    ) -> Result<Ticket<S::Output>, SubmitError<S::Command>> {
        self.handle.submit(command)
    }

    /// Same as [`Handle::tell`]; on this thread it cannot wait for room.
    pub fn tell(&self, command: S::Command) -> Result<(), SubmitError<S::Command>> {
        self.handle.tell(command)
    }

    /// Same as [`Handle::tell_many`]; on this thread it cannot wait for room.
    pub fn tell_many(&self, commands: Vec<S::Command>) -> Result<(), SubmitError<Vec<S::Command>>> {
        self.handle.tell_many(commands)
    }

    /// Same as [`Handle::stats`].
    pub fn stats(&self) -> Stats {
        self.handle.stats()
    }

    /// Stops accepting commands, serves every command already accepted, runs `on_stop` and
    /// returns the state: [`SingularQueue::shutdown`](crate::SingularQueue::shutdown), with
    /// the remaining steps run here.
    ///
    /// # Errors
    ///
    /// [`Poisoned`] if a panic poisoned the state.
    pub fn shutdown(mut self) -> Result<S, Poisoned<S>> {
        self.finish(false).into_state()
    }

    /// Stops accepting commands and returns the state and every command accepted but not yet
    /// applied, in order: [`SingularQueue::shutdown_now`](crate::SingularQueue::shutdown_now).
    ///
    /// # Errors
    ///
    /// [`Poisoned`] if a panic poisoned the state.
    pub fn shutdown_now(mut self) -> Result<(S, Vec<S::Command>), Poisoned<S>> {
        self.finish(true).into_parts()
    }

    fn finish(&mut self, now: bool) -> Exit<S> {
        let worker = self.worker.take().expect("shut down once");
        let exit = worker.finish(now);
        waits::unmark_worker(self.handle.shared().id());
        exit
    }

    fn worker_mut(&mut self) -> &mut Worker<S> {
        self.worker.as_mut().expect("live until shut down")
    }
}

impl<S: StateMachine> Drop for ManualQueue<S> {
    /// As [`shutdown`](ManualQueue::shutdown), on the dropping thread; the state is dropped.
    fn drop(&mut self) {
        if self.worker.is_some() {
            drop(self.finish(false));
        }
    }
}

impl<S: StateMachine> fmt::Debug for ManualQueue<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ManualQueue")
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}
