//! Loom models of singular-queue's public API live in `tests/`; this crate holds what they
//! share: the model runner, a tiny state machine, the accounting checks and a waker-driven
//! `block_on`.
//!
//! The models run only under `RUSTFLAGS="--cfg singular_queue_loom"`: see the book's
//! verification chapter.
#![cfg(singular_queue_loom)]

use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::thread;
use singular_queue::{SingularQueue, StateMachine, Stats};
use std::future::Future;

/// The deadline every model's timed wait gets: never reached on the real clock during a run,
/// so only loom's "the deadline passed" (a timed wait that yields once, then times out)
/// decides, and every execution is deterministic.
pub const DEADLINE: std::time::Duration = std::time::Duration::from_secs(3600);

/// The preemption bound used unless `LOOM_MAX_PREEMPTIONS` says otherwise.
pub const PREEMPTION_BOUND: usize = singular_queue::model::DEFAULT_PREEMPTION_BOUND;

/// Runs `model` under loom and reports how many interleavings it explored.
pub fn check(name: &str, model: impl Fn() + Sync + Send + 'static) {
    check_bounded(name, PREEMPTION_BOUND, model);
}

/// As [`check`], with `bound` preemptions unless `LOOM_MAX_PREEMPTIONS` says otherwise: the
/// runner users get, [`singular_queue::model::check_bounded`].
pub fn check_bounded(name: &str, bound: usize, model: impl Fn() + Sync + Send + 'static) {
    let explored = singular_queue::model::check_bounded(bound, model);
    let bound = std::env::var("LOOM_MAX_PREEMPTIONS").unwrap_or_else(|_| bound.to_string());
    println!("loom model {name}: {explored} iterations, preemption bound {bound}");
}

/// Silences the report of the panics the models cause on purpose. Reports every other panic
/// with a message; loom's own unwinding of a finished model's threads (a panic with a typed
/// payload, which its runtime silences by swapping the hook while other tests set theirs) is
/// not reported. A test fails on a panic whether or not it is reported.
pub fn quiet_planted_panics() {
    std::panic::set_hook(Box::new(|info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<&str>()
            .copied()
            .or_else(|| payload.downcast_ref::<String>().map(String::as_str));
        if message.is_some_and(|message| !message.contains("asked to panic")) {
            eprintln!("{info}");
        }
    }));
}

/// Records each command; `u32::MAX` panics.
#[derive(Debug, Default)]
pub struct Log(pub Vec<u32>);

/// The command on which [`Log`] panics.
pub const PANIC: u32 = u32::MAX;

impl StateMachine for Log {
    type Command = u32;
    type Output = usize;
    fn apply(&mut self, n: u32) -> usize {
        assert!(n != PANIC, "asked to panic");
        self.0.push(n);
        self.0.len()
    }
}

/// A [`Log`] queue of `capacity` with the default policy.
pub fn queue(capacity: usize) -> SingularQueue<Log> {
    SingularQueue::builder(Log::default())
        .capacity(capacity)
        .spawn()
        .unwrap()
}

/// A [`Log`] queue of capacity 1 under `DropOldest`, and the list its `on_evict` fills.
pub fn drop_oldest_queue() -> (
    SingularQueue<Log>,
    loom::sync::Arc<loom::sync::Mutex<Vec<u32>>>,
) {
    let evicted = loom::sync::Arc::new(loom::sync::Mutex::new(Vec::new()));
    let sink = loom::sync::Arc::clone(&evicted);
    let queue = SingularQueue::builder(Log::default())
        .capacity(1)
        .backpressure(singular_queue::DropOldest)
        .on_evict(move |n| sink.lock().unwrap().push(n))
        .spawn()
        .unwrap();
    (queue, evicted)
}

/// A [`Log`] queue of capacity 1 under `BlockFor(DEADLINE)`, already holding command 1
/// (unless the worker took it at once): a submit waits for room, with a deadline.
pub fn full_block_for_queue() -> SingularQueue<Log> {
    let queue = SingularQueue::builder(Log::default())
        .capacity(1)
        .backpressure(singular_queue::BlockFor(DEADLINE))
        .spawn()
        .unwrap();
    queue.tell(1).unwrap();
    queue
}

/// How many places are free: reserves until refused, then gives them all back.
pub fn free_places(handle: &singular_queue::Handle<Log>) -> usize {
    let mut permits = Vec::new();
    while let Ok(permit) = handle.try_reserve() {
        permits.push(permit);
    }
    permits.len()
}

/// Shuts the queue down and returns its log and final stats, checked (property 9).
pub fn shut_down(queue: SingularQueue<Log>) -> (Vec<u32>, Stats) {
    let handle = queue.handle();
    let log = queue.shutdown().unwrap().0;
    let stats = handle.stats();
    assert_accounted(&stats, log.len());
    (log, stats)
}

/// Property 9: at quiescence every accepted command is accounted for exactly once.
pub fn assert_accounted(stats: &Stats, applied: usize) {
    assert_eq!(stats.applied, applied as u64);
    assert_eq!(
        stats.submitted,
        stats.applied + stats.panicked + stats.dropped + stats.not_applied
    );
}

/// Counts how often it is woken.
#[derive(Debug)]
pub struct CountingWaker(pub AtomicUsize);

impl std::task::Wake for CountingWaker {
    fn wake(self: std::sync::Arc<Self>) {
        self.0.fetch_add(1, Ordering::Release);
    }
}

/// Polls `future` to completion on this thread, polling again only after a wake-up: a lost
/// wake-up leaves it yielding forever, which loom reports. (Stale wake-ups, which the futures
/// contract allows, just cost a poll.)
pub fn block_on<F: Future>(future: F) -> F::Output {
    let woken = std::sync::Arc::new(CountingWaker(AtomicUsize::new(0)));
    let waker = std::task::Waker::from(std::sync::Arc::clone(&woken));
    let mut context = std::task::Context::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    let mut seen = 0;
    loop {
        if let std::task::Poll::Ready(output) = future.as_mut().poll(&mut context) {
            return output;
        }
        while woken.0.load(Ordering::Acquire) == seen {
            thread::yield_now();
        }
        seen = woken.0.load(Ordering::Acquire);
    }
}

/// Lets a [`Holding`] worker go on.
#[derive(Debug, Clone)]
pub struct Release(loom::sync::Arc<(loom::sync::Mutex<bool>, loom::sync::Condvar)>);

impl Release {
    /// Not released yet.
    pub fn new() -> Self {
        Self(loom::sync::Arc::new((
            loom::sync::Mutex::new(false),
            loom::sync::Condvar::new(),
        )))
    }

    /// Releases the worker held in command 1.
    pub fn release(&self) {
        *self.0.0.lock().unwrap() = true;
        self.0.1.notify_one();
    }

    fn wait(&self) {
        let mut released = self.0.0.lock().unwrap();
        while !*released {
            released = self.0.1.wait(released).unwrap();
        }
    }
}

impl Default for Release {
    fn default() -> Self {
        Self::new()
    }
}

/// Records each command; holds the worker inside `apply` of command 1 until released, so a
/// model can keep the queue full for as long as it needs.
#[derive(Debug)]
pub struct Holding {
    /// The commands applied, in order.
    pub log: Vec<u32>,
    release: Release,
}

impl Holding {
    /// A state held on command 1 until `release` is released.
    pub fn new(release: &Release) -> Self {
        Self {
            log: Vec::new(),
            release: release.clone(),
        }
    }
}

/// A [`Holding`] queue of capacity 1 under `policy`, kept full: its worker is held inside
/// command 1 and command 2 waits in the channel, until `release` is released.
pub fn held_full_queue(
    policy: impl singular_queue::Backpressure<u32>,
) -> (SingularQueue<Holding>, Release) {
    let release = Release::new();
    let queue = SingularQueue::builder(Holding::new(&release))
        .capacity(1)
        .backpressure(policy)
        .spawn()
        .unwrap();
    queue.tell(1).unwrap(); // held inside `apply`
    queue.tell(2).unwrap(); // returns once the worker holds 1: the queue is full
    (queue, release)
}

impl StateMachine for Holding {
    type Command = u32;
    type Output = ();
    fn apply(&mut self, n: u32) {
        if n == 1 {
            self.release.wait();
        }
        self.log.push(n);
    }
}
