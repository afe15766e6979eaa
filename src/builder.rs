use std::fmt;
use std::io;

use crate::backpressure::{Backpressure, Block, Policy};
use crate::shared::{LaneConfig, Shared, SubmitConfig};
use crate::sync::{Arc, thread};
use crate::view::{Publish, Publisher};
use crate::worker::{Restart, Worker, WorkerConfig};
use crate::{
    Handle, ManualQueue, Observer, OnCommitError, OnPanic, ReplyMode, SingularQueue, StateMachine,
    View, WaitStrategy,
};

/// The capacity a queue gets unless [`Builder::capacity`] says otherwise.
pub const DEFAULT_CAPACITY: usize = 1024;

/// The largest capacity a queue can have: [`Builder::capacity`] clamps larger values (such as
/// `usize::MAX`, a natural way to ask for "unbounded") to this. No collection can hold more.
pub const MAX_CAPACITY: usize = isize::MAX as usize;

/// The most commit threads a queue can have: [`Builder::commit_threads`] clamps larger values
/// to this. Concurrent `fsync`s of one file stop merging into fewer journal commits long
/// before this many; each thread is a real OS thread, created at the first job.
pub const MAX_COMMIT_THREADS: usize = 64;

/// The most commands in one batch unless [`Builder::max_batch`] says otherwise.
pub const DEFAULT_MAX_BATCH: usize = 128;

/// The most priority commands the worker takes in a row while normal commands wait, unless
/// [`Builder::max_priority_burst`] says otherwise.
pub const DEFAULT_PRIORITY_BURST: usize = 16;

/// Configures and spawns a [`SingularQueue`]; made by [`SingularQueue::builder`].
///
/// # Examples
///
/// ```
/// use singular_queue::{OnPanic, Reject, ReplyMode, SingularQueue, StateMachine};
/// # struct Counter(u64);
/// # impl StateMachine for Counter {
/// #     type Command = u64;
/// #     type Output = u64;
/// #     fn apply(&mut self, add: u64) -> u64 { self.0 += add; self.0 }
/// # }
///
/// let queue = SingularQueue::builder(Counter(0))
///     .capacity(64)
///     .backpressure(Reject)
///     .max_batch(16)
///     .reply_mode(ReplyMode::AfterBatch)
///     .on_panic(OnPanic::Continue)
///     .track_queue_time(true)
///     .name("counter")
///     .spawn()
///     .expect("spawn the worker thread");
/// assert_eq!(queue.call(1).unwrap(), 1);
/// ```
pub struct Builder<S: StateMachine> {
    state: S,
    name: String,
    submit: SubmitConfig<S::Command>,
    worker: WorkerConfig,
    /// The priority lane's policy, if one was given: applied when the lane is built.
    priority_policy: Option<Policy<S::Command>>,
    observer: Option<Box<dyn Observer>>,
    publishers: Vec<Box<dyn Publish<S>>>,
    restart: Option<Restart<S>>,
}

impl<S: StateMachine> Builder<S> {
    pub(crate) fn new(state: S) -> Self {
        Self {
            state,
            name: "singular-queue".to_owned(),
            submit: SubmitConfig {
                normal: LaneConfig {
                    capacity: DEFAULT_CAPACITY,
                    policy: Policy::new(Block),
                },
                priority: None,
                on_evict: None,
                track_queue_time: false,
                wait: WaitStrategy::default(),
            },
            worker: WorkerConfig {
                on_panic: OnPanic::default(),
                on_commit_error: OnCommitError::default(),
                reply_mode: ReplyMode::default(),
                max_batch: DEFAULT_MAX_BATCH,
                commit_threads: 1,
                max_priority_burst: DEFAULT_PRIORITY_BURST,
            },
            priority_policy: None,
            observer: None,
            publishers: Vec::new(),
            restart: None,
        }
    }

    /// How many accepted commands may wait for the worker at once (default
    /// [`DEFAULT_CAPACITY`]). What a submitter does when they are all taken is the
    /// [`backpressure`](Builder::backpressure) policy's call. Values above [`MAX_CAPACITY`]
    /// are clamped to it, so `capacity(usize::MAX)` gives a queue that is as good as
    /// unbounded ([`Stats::capacity`](crate::Stats::capacity) shows the clamped value).
    ///
    /// # Panics
    ///
    /// If `capacity` is 0.
    ///
    /// # Examples
    ///
    /// ```
    /// use singular_queue::{MAX_CAPACITY, SingularQueue, StateMachine};
    /// # struct Counter(u64);
    /// # impl StateMachine for Counter {
    /// #     type Command = u64;
    /// #     type Output = u64;
    /// #     fn apply(&mut self, add: u64) -> u64 { self.0 += add; self.0 }
    /// # }
    /// let queue = SingularQueue::builder(Counter(0))
    ///     .capacity(usize::MAX)
    ///     .spawn()
    ///     .unwrap();
    /// assert_eq!(queue.call(1).unwrap(), 1);
    /// assert_eq!(queue.stats().capacity, MAX_CAPACITY);
    /// ```
    pub fn capacity(mut self, capacity: usize) -> Self {
        assert!(capacity > 0, "a queue's capacity must be at least 1");
        self.submit.normal.capacity = capacity.min(MAX_CAPACITY);
        self
    }

    /// What a submitter does when the queue is full (default [`Block`]): one of
    /// [`Block`], [`BlockFor`](crate::BlockFor), [`Reject`](crate::Reject),
    /// [`DropOldest`](crate::DropOldest), or your own [`Backpressure`] policy.
    ///
    /// The queue keeps the policy for as long as any handle lives. A policy that holds a
    /// [`Handle`] to its own queue makes a reference cycle: the queue still stops when its
    /// owner shuts it down, but its shared part is never freed. The same goes for
    /// [`on_evict`](Builder::on_evict).
    pub fn backpressure(mut self, policy: impl Backpressure<S::Command>) -> Self {
        self.submit.normal.policy = Policy::new(policy);
        self
    }

    /// Gives the queue a **priority lane** of `capacity` places, with a bound of its own: for
    /// the few commands that must not wait behind the rest (a cancellation, a health check,
    /// a change of configuration). [`Handle::priority`] gives the handle that submits to
    /// it. The worker takes a waiting priority command before any normal one, up to
    /// [`max_priority_burst`](Builder::max_priority_burst) in a row. When the lane is full,
    /// its own [`priority_backpressure`](Builder::priority_backpressure) policy decides
    /// (default [`Block`]). Values above [`MAX_CAPACITY`] are clamped to it.
    ///
    /// A queue without a priority lane pays nothing for the feature; one with it, a look at
    /// the priority lane before each command the worker takes.
    ///
    /// # Panics
    ///
    /// If `capacity` is 0.
    ///
    /// # Examples
    ///
    /// ```
    /// use singular_queue::{Reject, SingularQueue, StateMachine, SubmitError};
    /// # struct Counter(u64);
    /// # impl StateMachine for Counter {
    /// #     type Command = u64;
    /// #     type Output = u64;
    /// #     fn apply(&mut self, add: u64) -> u64 { self.0 += add; self.0 }
    /// # }
    /// let mut queue = SingularQueue::builder(Counter(0))
    ///     .capacity(1)
    ///     .backpressure(Reject)
    ///     .priority_lane(1)
    ///     .priority_backpressure(Reject)
    ///     .manual();
    /// let urgent = queue.handle().priority().unwrap();
    /// queue.tell(1).unwrap();
    /// assert!(matches!(queue.tell(2), Err(SubmitError::Full(2)))); // the normal lane is full
    /// urgent.tell(10).unwrap(); // the priority lane has its own place
    /// assert!(matches!(urgent.tell(20), Err(SubmitError::Full(20))));
    /// queue.run_until_idle();
    /// assert_eq!(queue.state().0, 11);
    /// ```
    pub fn priority_lane(mut self, capacity: usize) -> Self {
        assert!(capacity > 0, "a lane's capacity must be at least 1");
        self.submit.priority = Some(LaneConfig {
            capacity: capacity.min(MAX_CAPACITY),
            policy: Policy::new(Block),
        });
        self
    }

    /// What a submitter to the [priority lane](Builder::priority_lane) does when that lane is
    /// full (default [`Block`]): any policy, as for [`backpressure`](Builder::backpressure).
    /// It has no effect on a queue without a priority lane.
    pub fn priority_backpressure(mut self, policy: impl Backpressure<S::Command>) -> Self {
        self.priority_policy = Some(Policy::new(policy));
        self
    }

    /// How many priority commands the worker takes in a row while normal commands wait
    /// (default [`DEFAULT_PRIORITY_BURST`]); then it takes one normal command before the
    /// next priority one, so a flood of priority commands cannot starve the normal lane.
    /// Values below 1 are raised to 1.
    pub fn max_priority_burst(mut self, burst: usize) -> Self {
        self.worker.max_priority_burst = burst.max(1);
        self
    }

    /// Receives every command that [`DropOldest`](crate::DropOldest) (or a policy deciding
    /// [`Decision::EvictOldest`](crate::Decision::EvictOldest)) evicts.
    ///
    /// It runs on the thread whose submit evicted the command, after that command's own
    /// submitter has been told; keep it quick, and do not submit to the same queue from it.
    /// A panic in it is caught and ignored: the evicting submit, whose own command was
    /// accepted, still returns `Ok`.
    /// Without it, an evicted command is dropped (its submitter is still told, and
    /// [`Stats::dropped`](crate::Stats::dropped) counts it).
    ///
    /// A callback that holds a [`Handle`] to its own queue makes a reference cycle: the queue
    /// still stops when its owner shuts it down, but its shared part is never freed.
    pub fn on_evict(mut self, on_evict: impl Fn(S::Command) + Send + Sync + 'static) -> Self {
        self.submit.on_evict = Some(Box::new(on_evict));
        self
    }

    /// The most commands the worker takes in one batch before it calls
    /// [`on_batch_end`](StateMachine::on_batch_end) (default [`DEFAULT_MAX_BATCH`]). A batch is
    /// whatever is waiting when the worker looks, up to this many; the worker never waits to
    /// fill one, but it looks again after each command, and commands that arrive meanwhile join
    /// the batch. So this, not [`capacity`](Builder::capacity), bounds a batch: with a capacity
    /// of 2 a batch can still reach `max_batch`. Under
    /// [`ReplyMode::AfterBatch`](crate::ReplyMode::AfterBatch) a batch's first caller waits for
    /// all of it: lower this to bound that wait.
    ///
    /// # Panics
    ///
    /// If `max_batch` is 0.
    pub fn max_batch(mut self, max_batch: usize) -> Self {
        assert!(max_batch > 0, "a batch holds at least one command");
        self.worker.max_batch = max_batch;
        self
    }

    /// How many commits' jobs ([`Commit::later`](crate::Commit::later)) may run at once, each on
    /// a commit thread of its own (default 1: one at a time, in order). Outputs are released in
    /// commit order whichever job ends first. More than one suits a job that is safe beside
    /// another, as an `fsync` of the same file is: file systems merge concurrent `fsync`s into
    /// one journal commit, so the disk does more of them per second. Threads are created at
    /// the first job; a state that never returns one has none. Values above
    /// [`MAX_COMMIT_THREADS`] are clamped to it.
    ///
    /// # Panics
    ///
    /// If `threads` is 0.
    pub fn commit_threads(mut self, threads: usize) -> Self {
        assert!(threads > 0, "commits need at least one thread");
        self.worker.commit_threads = threads.min(MAX_COMMIT_THREADS);
        self
    }

    /// When callers learn their command is done (default [`ReplyMode::AfterApply`]).
    pub fn reply_mode(mut self, reply_mode: ReplyMode) -> Self {
        self.worker.reply_mode = reply_mode;
        self
    }

    /// What the queue does after `apply` panics (default [`OnPanic::Stop`]). Replaces a
    /// [`restart_on_panic`](Builder::restart_on_panic) set before it.
    pub fn on_panic(mut self, on_panic: OnPanic) -> Self {
        self.worker.on_panic = on_panic;
        self.restart = None;
        self
    }

    /// After `apply` panics, replaces the state, which the panic may have left half updated,
    /// with `fresh(&mut old)`: a state loaded from a snapshot, a log replayed, or a default.
    /// The queue goes on; replaces [`on_panic`](Builder::on_panic).
    ///
    /// In this order, on the worker, before the next command:
    ///
    /// 1. The command that panicked is not applied again; its caller gets
    ///    [`WaitError::Panicked`](crate::WaitError::Panicked) once the new state is in place.
    /// 2. The commands applied to the old state since its last commit started will never be
    ///    committed: their outputs held under [`ReplyMode::AfterBatch`] fail as
    ///    [`WaitError::NotCommitted`](crate::WaitError::NotCommitted), after the commits
    ///    already under way end. (Under [`ReplyMode::AfterApply`] their callers had their
    ///    outputs already: only a state rebuilt from what was committed forgets them.)
    /// 3. The old state's [`on_stop`](StateMachine::on_stop) runs (a panic there is ignored).
    /// 4. `fresh` makes the new state; it may take what it needs out of the old one. A panic in
    ///    `fresh` poisons the queue as [`OnPanic::Stop`] would, with the old state.
    /// 5. The old state is dropped; the new one's [`on_start`](StateMachine::on_start) runs (a
    ///    panic there poisons the queue), and its [views](Builder::publish) are published.
    /// 6. The commands behind the panic, in the channel or later in the same
    ///    [`tell_many`](crate::Handle::tell_many), are applied to the new state in order:
    ///    none is skipped. [`Stats::restarts`](crate::Stats::restarts) counts the restarts.
    ///
    /// A command that panics every time restarts the state every time: count the restarts in
    /// `fresh` and panic there to give up (the queue is then poisoned). Under a pipelined
    /// commit ([`Commit::later`](crate::Commit::later)), jobs of the old state's earlier
    /// commits may still be running while its `on_stop` runs and the new state starts; one
    /// that then fails under [`OnCommitError::Stop`] poisons the queue, new state and all.
    ///
    /// # Examples
    ///
    /// ```
    /// use singular_queue::{CallError, SingularQueue, StateMachine};
    ///
    /// #[derive(Default)]
    /// struct Accounts {
    ///     balance: i64,
    ///     history: Vec<i64>,
    /// }
    ///
    /// impl StateMachine for Accounts {
    ///     type Command = i64;
    ///     type Output = i64;
    ///     fn apply(&mut self, amount: i64) -> i64 {
    ///         self.history.push(amount); // updated...
    ///         assert!(self.balance + amount >= 0, "overdrawn");
    ///         self.balance += amount; // ...and, after a panic, not this
    ///         self.balance
    ///     }
    /// }
    ///
    /// let accounts = SingularQueue::builder(Accounts::default())
    ///     // Rebuild a consistent state: here, from the old one's balance alone.
    ///     .restart_on_panic(|old: &mut Accounts| Accounts {
    ///         balance: old.balance,
    ///         history: Vec::new(),
    ///     })
    ///     .spawn()
    ///     .unwrap();
    /// accounts.call(10).unwrap();
    /// assert!(matches!(accounts.call(-50), Err(CallError::Panicked(m)) if m == "overdrawn"));
    /// assert_eq!(accounts.call(5).unwrap(), 15); // the queue went on, on the new state
    /// let accounts = accounts.shutdown().unwrap();
    /// assert_eq!(accounts.history, [5]);
    /// ```
    pub fn restart_on_panic(mut self, fresh: impl FnMut(&mut S) -> S + Send + 'static) -> Self {
        self.restart = Some(Box::new(fresh));
        self
    }

    /// What the queue does after a batch's commit
    /// ([`StateMachine::try_on_batch_end`]) returns an error (default [`OnCommitError::Stop`]).
    pub fn on_commit_error(mut self, on_commit_error: OnCommitError) -> Self {
        self.worker.on_commit_error = on_commit_error;
        self
    }

    /// Whether to measure how long each command waits, from its submit (including any wait
    /// for room) until the worker takes it, for
    /// [`Stats::max_queue_time`](crate::Stats::max_queue_time) and
    /// [`Stats::mean_queue_time`](crate::Stats::mean_queue_time) (default off: it reads the
    /// clock twice per command, once on each side).
    pub fn track_queue_time(mut self, track: bool) -> Self {
        self.submit.track_queue_time = track;
        self
    }

    /// How the worker waits for commands, callers wait for outputs, and submitters wait for
    /// room (default [`WaitStrategy::SpinThenPark`]). Read [`WaitStrategy`]'s caveat before
    /// choosing [`WaitStrategy::BusySpin`].
    pub fn wait_strategy(mut self, strategy: WaitStrategy) -> Self {
        self.submit.wait = strategy;
        self
    }

    /// The queue's name (default `singular-queue`): its worker thread's name, as panics and
    /// debuggers show it, and [`Handle::name`], a label to export its metrics under. A name
    /// with a NUL byte makes [`spawn`](Builder::spawn) fail.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Hands the worker's measurements to `observer` as it makes them: each command's queue
    /// time and apply time, each batch's size, commit time and the depth it left (see
    /// [`Observer`]). Turns on [`track_queue_time`](Builder::track_queue_time).
    pub fn observer(mut self, observer: impl Observer) -> Self {
        self.observer = Some(Box::new(observer));
        self.submit.track_queue_time = true;
        self
    }

    /// Publishes `make(&state)` after every batch, for any thread to read through the
    /// returned [`View`] without queuing behind the commands: a snapshot read. See [`View`]
    /// for the consistency a view has.
    ///
    /// The first view is computed here, on this thread, from the state as built (before
    /// `on_start`): a panic in `make` here comes out of `publish`, and the builder and its
    /// state are dropped, so make `make` handle the state as built. The worker publishes the
    /// next view after `on_start`, then after each batch in which it took a command.
    ///
    /// `make` runs on the worker, after the batch's commands and before its commit: its cost
    /// is added to every batch, so make it cheap (a counter, a summary, an `Arc` the state
    /// keeps up to date) rather than a copy of a large state. A panic in `make` on the worker
    /// poisons the queue, as a panic in `on_batch_end` does; a panic in a view's `Drop` is
    /// ignored. Call `publish` again for another view; each is computed in the order they were
    /// added.
    ///
    /// # Examples
    ///
    /// ```
    /// use singular_queue::{SingularQueue, StateMachine};
    /// # struct Counter(u64);
    /// # impl StateMachine for Counter {
    /// #     type Command = u64;
    /// #     type Output = u64;
    /// #     fn apply(&mut self, add: u64) -> u64 { self.0 += add; self.0 }
    /// # }
    ///
    /// let (builder, total) = SingularQueue::builder(Counter(0)).publish(|c: &Counter| c.0);
    /// let queue = builder.spawn().unwrap();
    /// queue.tell(5).unwrap();
    /// queue.wait_until_quiet().unwrap(); // the batch with the 5 has ended
    /// assert_eq!(*total.latest(), 5);
    /// ```
    pub fn publish<V, F>(mut self, mut make: F) -> (Self, View<V>)
    where
        V: Send + Sync + 'static,
        F: FnMut(&S) -> V + Send + 'static,
    {
        let first = make(&self.state);
        let (publisher, view) = Publisher::new(make, first);
        self.publishers.push(Box::new(publisher));
        (self, view)
    }

    /// Spawns the worker thread, moves the state onto it, and returns the running queue.
    ///
    /// # Errors
    ///
    /// The operating system's error if it cannot create the thread, or
    /// [`io::ErrorKind::InvalidInput`] if the thread's name holds a NUL byte; the state is
    /// dropped.
    pub fn spawn(self) -> io::Result<SingularQueue<S>> {
        if self.name.contains('\0') {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a thread name must not contain a NUL byte",
            ));
        }
        let name = self.name.clone();
        let (handle, worker) = self.build();
        let thread = thread::Builder::new()
            .name(name)
            .spawn(move || worker.run())?;
        Ok(SingularQueue::new_running(handle, thread))
    }

    /// Builds the queue without a worker thread, for deterministic tests: this thread runs the
    /// worker's code when it calls [`ManualQueue::step`]. `on_start` runs here, now. Every
    /// setting applies; the [`name`](Builder::name) names no thread.
    ///
    /// # Panics
    ///
    /// If this thread already serves 16 queues (hand-stepped ones, and its own if it is a
    /// worker): shut some down first.
    ///
    /// # Examples
    ///
    /// ```
    /// use singular_queue::{DropOldest, SingularQueue, StateMachine, WaitError};
    /// # struct Log(Vec<u32>);
    /// # impl StateMachine for Log {
    /// #     type Command = u32;
    /// #     type Output = usize;
    /// #     fn apply(&mut self, n: u32) -> usize { self.0.push(n); self.0.len() }
    /// # }
    ///
    /// let mut queue = SingularQueue::builder(Log(Vec::new()))
    ///     .capacity(2)
    ///     .backpressure(DropOldest)
    ///     .manual();
    /// let oldest = queue.submit(1).unwrap();
    /// queue.tell(2).unwrap();
    /// queue.tell(3).unwrap(); // full: evicts 1
    /// assert_eq!(oldest.wait(), Err(WaitError::Dropped));
    /// queue.run_until_idle();
    /// assert_eq!(queue.state().0, [2, 3]);
    /// ```
    pub fn manual(self) -> ManualQueue<S> {
        let (handle, mut worker) = self.build();
        worker.commit_inline();
        ManualQueue::new(handle, worker)
    }

    /// The queue's shared part and its worker, not yet running.
    fn build(mut self) -> (Handle<S>, Worker<S>) {
        if let (Some(lane), Some(policy)) = (&mut self.submit.priority, self.priority_policy) {
            lane.policy = policy;
        }
        let shared = Arc::new(Shared::new(self.submit, self.name));
        let worker = Worker::new(
            self.state,
            Arc::clone(&shared),
            self.worker,
            self.observer,
            self.publishers,
            self.restart,
        );
        (Handle::new(shared), worker)
    }
}

impl<S: StateMachine> fmt::Debug for Builder<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Builder")
            .field("capacity", &self.submit.normal.capacity)
            .field(
                "priority_lane",
                &self.submit.priority.as_ref().map(|lane| lane.capacity),
            )
            .field("on_evict", &self.submit.on_evict.is_some())
            .field("track_queue_time", &self.submit.track_queue_time)
            .field("worker", &self.worker)
            .field("name", &self.name)
            .field("observer", &self.observer.is_some())
            .field("views", &self.publishers.len())
            .field("restart_on_panic", &self.restart.is_some())
            .finish_non_exhaustive()
    }
}
