//! The *Singular Update Queue* pattern: many threads submit commands, **one dedicated thread**
//! applies them, one at a time, in the order they were accepted, to a state machine you write.
//!
//! etcd, ZooKeeper, Kafka and the LMAX Disruptor are built around it. Your state needs no lock,
//! every update is totally ordered, and a bounded queue pushes back on submitters that outrun
//! the worker.
//!
//! # Hello, queue
//!
//! Implement [`StateMachine`] for your state, spawn it with [`SingularQueue::new`], and submit
//! commands:
//!
//! ```
//! use singular_queue::{SingularQueue, StateMachine};
//!
//! struct Counter(u64);
//!
//! impl StateMachine for Counter {
//!     type Command = u64;
//!     type Output = u64;
//!
//!     fn apply(&mut self, add: u64) -> u64 {
//!         self.0 += add;
//!         self.0
//!     }
//! }
//!
//! let queue = SingularQueue::new(Counter(0));
//! assert_eq!(queue.call(5).unwrap(), 5);
//! let final_state = queue.shutdown().unwrap();
//! assert_eq!(final_state.0, 5);
//! ```
//!
//! # Commands and outputs
//!
//! A command is usually an enum with one variant per operation, and the output an enum (or a
//! `Result`) that answers each one:
//!
//! ```
//! use std::collections::HashMap;
//! use singular_queue::{SingularQueue, StateMachine};
//!
//! #[derive(Default)]
//! struct Kv(HashMap<String, String>);
//!
//! enum Command {
//!     Set(String, String),
//!     Get(String),
//! }
//!
//! impl StateMachine for Kv {
//!     type Command = Command;
//!     type Output = Option<String>;
//!
//!     fn apply(&mut self, command: Command) -> Option<String> {
//!         match command {
//!             Command::Set(key, value) => self.0.insert(key, value),
//!             Command::Get(key) => self.0.get(&key).cloned(),
//!         }
//!     }
//! }
//!
//! let kv = SingularQueue::new(Kv::default());
//! kv.call(Command::Set("a".into(), "1".into())).unwrap();
//! assert_eq!(kv.call(Command::Get("a".into())).unwrap().as_deref(), Some("1"));
//! ```
//!
//! # Sharing between threads
//!
//! [`SingularQueue::handle`] gives a [`Handle`]: `Clone + Send + Sync`, one per thread.
//! [`Handle::call`] waits for the output, [`Handle::submit`] returns a [`Ticket`] at once, and
//! [`Handle::tell`] forgets the output:
//!
//! ```
//! use std::thread;
//! use singular_queue::{SingularQueue, StateMachine};
//! # struct Counter(u64);
//! # impl StateMachine for Counter {
//! #     type Command = u64;
//! #     type Output = u64;
//! #     fn apply(&mut self, add: u64) -> u64 { self.0 += add; self.0 }
//! # }
//!
//! let queue = SingularQueue::new(Counter(0));
//! thread::scope(|scope| {
//!     for _ in 0..4 {
//!         let handle = queue.handle();
//!         scope.spawn(move || {
//!             let ticket = handle.submit(10).unwrap();
//!             handle.tell(1).unwrap();
//!             ticket.wait().unwrap();
//!         });
//!     }
//! });
//! assert_eq!(queue.shutdown().unwrap().0, 44);
//! ```
//!
//! # Backpressure
//!
//! The queue is bounded ([`Builder::capacity`]). When it is full, its [`Backpressure`] policy
//! decides what a submitter does:
//!
//! | policy | what the submitter sees when the queue is full | what [`Stats`] counts | when to use it |
//! |---|---|---|---|
//! | [`Block`] (default) | waits until there is room | nothing extra | every command matters and submitters may slow down |
//! | [`BlockFor`]`(d)` | waits up to `d`, then [`SubmitError::Timeout`] with the command | `timed_out` | callers have a latency budget |
//! | [`Reject`] | [`SubmitError::Full`] with the command, at once | `rejected` | callers can retry, degrade or report "busy" |
//! | [`DropOldest`] | accepted at once; the oldest *waiting* command is evicted, its submitter gets [`WaitError::Dropped`] and the command goes to [`Builder::on_evict`] | `dropped` | only the latest commands matter (telemetry, UI state) |
//! | your own | whatever its [`Decision`] says, from the command and the [`Load`] | by outcome | priorities, load shedding |
//!
//! Per call, [`Handle::try_submit`] (and `try_call`, `try_tell`) never waits, and
//! [`Handle::submit_timeout`] (and `call_timeout`, `tell_timeout`) waits at most a given time,
//! whatever the policy.
//!
//! ```
//! use singular_queue::{Reject, SingularQueue, StateMachine};
//! # struct Counter(u64);
//! # impl StateMachine for Counter {
//! #     type Command = u64;
//! #     type Output = u64;
//! #     fn apply(&mut self, add: u64) -> u64 { self.0 += add; self.0 }
//! # }
//!
//! let queue = SingularQueue::builder(Counter(0))
//!     .capacity(1)
//!     .backpressure(Reject)
//!     .spawn()
//!     .unwrap();
//! for n in 0..100 {
//!     if let Err(refused) = queue.tell(n) {
//!         assert!(refused.is_full());
//!         assert_eq!(refused.into_inner(), n); // handed back
//!     }
//! }
//! let stats = queue.stats();
//! assert_eq!(stats.submitted + stats.rejected, 100);
//! ```
//!
//! # Async callers
//!
//! The crate needs no runtime. [`Handle::call_async`], [`Handle::submit_async`] and
//! [`Handle::tell_async`] wait for room as tasks rather than blocking a thread, and a
//! [`Ticket`] is a `Future` of its output, on any executor:
//!
//! ```
//! use singular_queue::{SingularQueue, StateMachine};
//! # struct Counter(u64);
//! # impl StateMachine for Counter {
//! #     type Command = u64;
//! #     type Output = u64;
//! #     fn apply(&mut self, add: u64) -> u64 { self.0 += add; self.0 }
//! # }
//!
//! let queue = SingularQueue::new(Counter(0));
//! let total = futures::executor::block_on(async {
//!     queue.tell_async(2).await.unwrap();
//!     queue.call_async(3).await.unwrap()
//! });
//! assert_eq!(total, 5);
//! ```
//!
//! Dropping one of these futures while it waits for room drops its command with it,
//! unaccepted; dropping it while it waits for the output leaves the command accepted, and
//! applied exactly once.
//!
//! Async callers have per-call limits too: [`Handle::try_call_async`] never waits for room,
//! and [`Handle::call_timeout_async`] (with `submit_timeout_async`, `tell_timeout_async`) waits
//! at most a given time, its error saying whether the command got in. [`Handle::reserve_async`]
//! holds a place before there is a command: its [`Permit`] is never refused for room.
//!
//! # Running it in a service
//!
//! Any handle can [`close`](Handle::close) the queue (a signal handler's task, say), tasks
//! can await [`Handle::closed`], and the owner drains it with
//! [`SingularQueue::shutdown_async`]. [`Handle::len`] is a lock-free health figure; an
//! [`Observer`] receives each command's queue and apply times and each batch's commit time,
//! for any metrics system. A commit that can fail ([`StateMachine::try_on_batch_end`]) fails
//! its batch's callers with [`WaitError::NotCommitted`] and, as [`OnCommitError`] says, stops
//! the queue or goes on. The guide's "Recipe: an HTTP service" puts it together on axum.
//!
//! # Reads, urgent commands and restarts
//!
//! [`Handle::read`] runs a closure on the state in order with the commands, with no `Get`
//! variant in your command type. [`Builder::publish`] has the worker publish a [`View`] of
//! the state after each batch, which any thread reads without queuing at all.
//! [`Builder::priority_lane`] gives urgent commands a lane of their own, drained first up to a
//! burst ([`Handle::priority`]). [`Builder::restart_on_panic`] replaces a state that a panic
//! may have torn with a fresh one, and goes on with the commands behind it.
//!
//! ```
//! use singular_queue::{SingularQueue, StateMachine};
//! # #[derive(Default)]
//! # struct Counter(u64);
//! # impl StateMachine for Counter {
//! #     type Command = u64;
//! #     type Output = u64;
//! #     fn apply(&mut self, add: u64) -> u64 { self.0 += add; self.0 }
//! # }
//!
//! let (builder, total) = SingularQueue::builder(Counter::default())
//!     .priority_lane(8)
//!     .restart_on_panic(|old: &mut Counter| Counter(old.0))
//!     .publish(|counter: &Counter| counter.0);
//! let queue = builder.spawn().unwrap();
//! queue.tell(2).unwrap();
//! queue.priority().unwrap().tell(3).unwrap();
//! assert_eq!(queue.read(|counter: &Counter| counter.0).unwrap(), 5);
//! queue.wait_until_quiet().unwrap();
//! assert_eq!(*total.latest(), 5);
//! ```
//!
//! # Throughput
//!
//! [`Handle::tell_many`] hands over many commands with one atomic operation and one message
//! for as many as fit, each still holding its own place and applied in order.
//! [`StateMachine::start_commit`] pipelines group commit: the slow part of a commit (the
//! `fsync`, as a [`Commit::later`] job) runs on a commit thread while the worker applies the
//! next commands, and outputs held under [`ReplyMode::AfterBatch`] go out once it succeeds.
//!
//! # One queue per core
//!
//! When the state splits by key, [`Sharded`] runs one queue per shard and sends each command
//! to the shard that owns its key ([`by_key`], or your own [`Router`]): one key's commands
//! keep one order, different keys run in parallel, each shard with its own bounded queue.
//! [`ShardedHandle::snapshot`] reads every shard at one consistent cut.
//!
//! ```
//! use singular_queue::{Sharded, StateMachine, by_key};
//! # #[derive(Default)]
//! # struct Counter(u64);
//! # impl StateMachine for Counter {
//! #     type Command = (u64, u64);
//! #     type Output = u64;
//! #     fn apply(&mut self, (_, add): (u64, u64)) -> u64 { self.0 += add; self.0 }
//! # }
//!
//! // Commands are (key, amount), routed by key over two shards.
//! let sharded = Sharded::new(2, by_key(|c: &(u64, u64)| c.0), |_| Counter::default());
//! for key in 0..10 {
//!     sharded.tell((key, 1)).unwrap();
//! }
//! let per_shard = sharded.snapshot(|counter: &Counter| counter.0).unwrap();
//! assert_eq!(per_shard.iter().sum::<u64>(), 10);
//! ```
//!
//! # Nothing is lost
//!
//! Every command you hand over is applied exactly once, or handed back to you
//! ([`SubmitError::into_inner`]), or its submitter is told why not ([`WaitError`]):
//!
//! - the queue is closed, full, or stayed full too long: the submit fails and returns the
//!   command;
//! - the submitter is a worker that the queue waits for (its own, or through a cycle of
//!   queues), so waiting would never end: [`SubmitError::Deadlock`] or
//!   [`CallError::Deadlock`], with the command;
//! - `apply` panicked on it: [`WaitError::Panicked`] with the panic's message;
//! - it was applied, but its batch's group commit failed: [`WaitError::NotCommitted`] (do not
//!   apply it again);
//! - a newer command evicted it under [`DropOldest`]: [`WaitError::Dropped`], and the command
//!   goes to [`Builder::on_evict`];
//! - the queue stopped first ([`SingularQueue::shutdown_now`], or a panic under
//!   [`OnPanic::Stop`]): [`WaitError::NotApplied`], and the command goes back to the owner.
//!
//! [`Stats`] counts each of these, so `submitted == applied + panicked + dropped +
//! not_applied` once the queue is quiet.
//!
//! # Shutdown
//!
//! [`SingularQueue::shutdown`] applies everything already accepted and returns the state;
//! [`SingularQueue::shutdown_now`] stops after the current command and returns the rest.
//! Dropping the queue shuts it down gracefully (a poisoned state, and the commands it never
//! applied, are dropped with it; their waiters were already told); dropped on its own worker
//! (a state that holds its queue), it stops without waiting for itself. Handles that outlive
//! the queue are refused with their command handed back.
//!
//! # Never hangs
//!
//! No call waits for something that cannot come. A worker that would wait for itself — a
//! `call` to its own queue, a submit waiting for room only it can make, a wait on one of its
//! own tickets, or any of these closing a cycle of queues that wait for each other — is
//! refused with an error instead (see [`Handle`]). User code never takes the worker down, and
//! every protocol of the crate is model-checked with loom (the guide's verification chapter).
//!
//! # Testing your code
//!
//! - [`Builder::manual`] builds a [`ManualQueue`]: no worker thread; your test runs the worker
//!   code with [`ManualQueue::step`] and asserts on [`ManualQueue::state`] between steps.
//! - [`Handle::wait_until_quiet`] waits until everything accepted is done with: join your
//!   submitting threads, wait until quiet, assert. No sleeps.
//! - [`model`] model-checks your own code around the queue with loom.
//!
//! ```
//! use singular_queue::{SingularQueue, StateMachine};
//! # struct Counter(u64);
//! # impl StateMachine for Counter {
//! #     type Command = u64;
//! #     type Output = u64;
//! #     fn apply(&mut self, add: u64) -> u64 { self.0 += add; self.0 }
//! # }
//!
//! let mut queue = SingularQueue::builder(Counter(0)).manual();
//! let ticket = queue.submit(5).unwrap();
//! assert_eq!(queue.state().0, 0); // nothing runs until the test steps
//! assert_eq!(queue.step(), 1);
//! assert_eq!((queue.state().0, ticket.wait()), (5, Ok(5)));
//! ```

#![forbid(unsafe_code)]
#![doc(test(attr(deny(warnings))))]

mod backpressure;
mod batch;
mod builder;
mod commit;
mod committer;
mod error;
mod gate;
mod handle;
mod manual;
mod message;
pub mod model;
mod observer;
mod on_panic;
mod permit;
mod poisoned;
mod queue;
mod read;
mod reply;
mod room;
mod sharded;
mod shared;
mod spare;
mod state_machine;
mod stats;
mod sync;
mod ticket;
mod timer;
mod vacancies;
mod view;
mod wait;
mod waits;
mod worker;

pub use backpressure::{Backpressure, Block, BlockFor, Decision, DropOldest, Load, Reject};
pub use batch::{BatchInfo, ReplyMode};
pub use builder::{
    Builder, DEFAULT_CAPACITY, DEFAULT_MAX_BATCH, DEFAULT_PRIORITY_BURST, MAX_CAPACITY,
    MAX_COMMIT_THREADS,
};
pub use commit::{Commit, CommitError, OnCommitError};
pub use error::{CallError, SubmitError, WaitError, WouldDeadlock};
pub use handle::Handle;
pub use manual::ManualQueue;
pub use observer::{BatchTimes, CommandTimes, Observer};
pub use on_panic::OnPanic;
pub use permit::Permit;
pub use poisoned::Poisoned;
pub use queue::SingularQueue;
pub use sharded::{
    ByKey, ByKeys, Route, Router, Sharded, ShardedBuilder, ShardedHandle, ShardedStats,
    SnapshotError, by_key, by_keys, shard_of,
};
pub use state_machine::StateMachine;
pub use stats::{LaneStats, Stats};
pub use ticket::Ticket;
pub use view::View;
pub use wait::WaitStrategy;

mod assertions;

/// The README's and the guide's samples, compiled and run as doctests.
#[cfg(doctest)]
mod samples {
    #[doc = include_str!("../README.md")]
    struct Readme;
    #[doc = include_str!("../book/src/quick-start.md")]
    struct QuickStart;
    #[doc = include_str!("../book/src/state-machine.md")]
    struct StateMachineChapter;
    #[doc = include_str!("../book/src/submitting.md")]
    struct Submitting;
    #[doc = include_str!("../book/src/backpressure.md")]
    struct BackpressureChapter;
    #[doc = include_str!("../book/src/batching.md")]
    struct Batching;
    #[doc = include_str!("../book/src/nothing-lost.md")]
    struct NothingLost;
    #[doc = include_str!("../book/src/async.md")]
    struct Async;
    #[doc = include_str!("../book/src/calling-out.md")]
    struct CallingOut;
    #[doc = include_str!("../book/src/testing.md")]
    struct Testing;
    #[doc = include_str!("../book/src/service.md")]
    struct Service;
    #[doc = include_str!("../book/src/sharded.md")]
    struct ShardedChapter;
}
