use std::fmt;
use std::io;

use crate::shared::Shared;
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
}

impl<S: StateMachine> Builder<S> {
    pub(crate) fn new(state: S) -> Self {
        Self {
            state,
            capacity: DEFAULT_CAPACITY,
            thread_name: "singular-queue".to_owned(),
            on_panic: OnPanic::default(),
        }
    }

    /// How many accepted commands may wait for the worker at once (default
    /// [`DEFAULT_CAPACITY`]). A submitter that finds the queue full blocks until there is room.
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

    /// Spawns the worker thread, moves the state onto it, and returns the running queue.
    ///
    /// # Errors
    ///
    /// The operating system's error if it cannot create the thread; the state is dropped.
    pub fn spawn(self) -> io::Result<SingularQueue<S>> {
        let (tx, rx) = channel::bounded(self.capacity);
        let shared = Arc::new(Shared::new(tx, self.capacity));
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
            .finish_non_exhaustive()
    }
}
