use std::fmt;
use std::io;

use crate::backpressure::{Backpressure, Block};
use crate::shared::{OnEvict, Shared};
use crate::sync::channel;
use crate::sync::{Arc, thread};
use crate::worker::Worker;
use crate::{Handle, OnPanic, SingularQueue, StateMachine};

/// The capacity a queue gets unless [`Builder::capacity`] says otherwise.
pub const DEFAULT_CAPACITY: usize = 1024;

/// Configures and spawns a [`SingularQueue`]; made by [`SingularQueue::builder`].
///
/// # Examples
///
/// ```
/// use singular_queue::{OnPanic, SingularQueue, StateMachine};
/// # struct Counter(u64);
/// # impl StateMachine for Counter {
/// #     type Command = u64;
/// #     type Output = u64;
/// #     fn apply(&mut self, add: u64) -> u64 { self.0 += add; self.0 }
/// # }
///
/// let queue = SingularQueue::builder(Counter(0))
///     .capacity(64)
///     .thread_name("counter")
///     .on_panic(OnPanic::Continue)
///     .spawn()
///     .expect("spawn the worker thread");
/// assert_eq!(queue.call(1).unwrap(), 1);
/// ```
pub struct Builder<S: StateMachine> {
    state: S,
    capacity: usize,
    thread_name: String,
    on_panic: OnPanic,
    backpressure: Box<dyn Backpressure<S::Command>>,
    on_evict: Option<OnEvict<S::Command>>,
}

impl<S: StateMachine> Builder<S> {
    pub(crate) fn new(state: S) -> Self {
        Self {
            state,
            capacity: DEFAULT_CAPACITY,
            thread_name: "singular-queue".to_owned(),
            on_panic: OnPanic::default(),
            backpressure: Box::new(Block),
            on_evict: None,
        }
    }

    /// How many accepted commands may wait for the worker at once (default
    /// [`DEFAULT_CAPACITY`]). What a submitter does when they are all taken is the
    /// [`backpressure`](Builder::backpressure) policy's call.
    ///
    /// # Panics
    ///
    /// If `capacity` is 0.
    pub fn capacity(mut self, capacity: usize) -> Self {
        assert!(capacity > 0, "a queue's capacity must be at least 1");
        self.capacity = capacity;
        self
    }

    /// The worker thread's name, as panics and debuggers show it (default `singular-queue`).
    pub fn thread_name(mut self, name: impl Into<String>) -> Self {
        self.thread_name = name.into();
        self
    }

    /// What the queue does after `apply` panics (default [`OnPanic::Stop`]).
    pub fn on_panic(mut self, on_panic: OnPanic) -> Self {
        self.on_panic = on_panic;
        self
    }

    /// What a submitter does when the queue is full (default [`Block`]): one of
    /// [`Block`], [`BlockFor`](crate::BlockFor), [`Reject`](crate::Reject),
    /// [`DropOldest`](crate::DropOldest), or your own [`Backpressure`] policy.
    pub fn backpressure(mut self, policy: impl Backpressure<S::Command>) -> Self {
        self.backpressure = Box::new(policy);
        self
    }

    /// Receives every command that [`DropOldest`](crate::DropOldest) (or a policy deciding
    /// [`Decision::EvictOldest`](crate::Decision::EvictOldest)) evicts.
    ///
    /// It runs on the thread whose submit evicted the command, after that command's own
    /// submitter has been told; keep it quick, and do not submit to the same queue from it.
    /// Without it, an evicted command is dropped (its submitter is still told, and
    /// [`Stats::dropped`](crate::Stats::dropped) counts it).
    pub fn on_evict(mut self, on_evict: impl Fn(S::Command) + Send + Sync + 'static) -> Self {
        self.on_evict = Some(Box::new(on_evict));
        self
    }

    /// Spawns the worker thread, moves the state onto it, and returns the running queue.
    ///
    /// # Errors
    ///
    /// The operating system's error if it cannot create the thread; the state is dropped.
    pub fn spawn(self) -> io::Result<SingularQueue<S>> {
        let (tx, rx) = channel::bounded(self.capacity);
        let shared = Arc::new(Shared::new(
            (tx, rx.clone()),
            self.capacity,
            self.backpressure,
            self.on_evict,
        ));
        let worker = Worker::new(self.state, rx, Arc::clone(&shared), self.on_panic);
        let thread = thread::Builder::new()
            .name(self.thread_name)
            .spawn(move || worker.run())?;
        Ok(SingularQueue::new_running(Handle::new(shared), thread))
    }
}

impl<S: StateMachine> fmt::Debug for Builder<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Builder")
            .field("capacity", &self.capacity)
            .field("thread_name", &self.thread_name)
            .field("on_panic", &self.on_panic)
            .field("on_evict", &self.on_evict.is_some())
            .finish_non_exhaustive()
    }
}
