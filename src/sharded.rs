//! `Sharded<S>`: one singular queue per shard, each command routed to the shard that owns its
//! key. Routing is in `router`, the handle in `handle`, a snapshot's markers in `snapshot`
//! and their barrier in `cut`.

mod builder;
mod cut;
mod handle;
mod router;
mod snapshot;
mod stats;

pub use builder::ShardedBuilder;
pub use handle::ShardedHandle;
pub use router::{ByKey, ByKeys, Route, Router, by_key, by_keys, shard_of};
pub use snapshot::SnapshotError;
pub use stats::ShardedStats;

use std::fmt;
use std::mem;
use std::ops::Deref;

use crate::waits;
use crate::{Poisoned, SingularQueue, StateMachine};

/// Several singular queues, one per shard, each owning part of the state: every command goes
/// to the shard that owns its key, so one key's commands keep one order while the shards
/// work in parallel, one core each (as Seastar's shards, Redis Cluster's slots and Kafka's
/// partitions do).
///
/// Built from a [`Router`] (usually [`by_key`]) and a function that makes each shard's state.
/// It dereferences to its [`ShardedHandle`], which submits, snapshots and reports figures;
/// the owner alone shuts the shards down and gets the states back.
///
/// # Shutting down
///
/// [`shutdown`](Sharded::shutdown) (and `shutdown_now`, and dropping) closes **every** shard
/// before it drains any: from that moment every submit to any shard is refused with its
/// command handed back, so a shard whose `apply` forwards to another meets a closed shard
/// rather than one that is half-way through its shutdown. Then each shard is shut down in
/// turn, exactly as [`SingularQueue::shutdown`] does it.
///
/// # Examples
///
/// ```
/// use std::collections::HashMap;
/// use singular_queue::{Sharded, StateMachine, by_key};
///
/// #[derive(Default)]
/// struct Balances(HashMap<String, i64>);
///
/// struct Deposit { account: String, amount: i64 }
///
/// impl StateMachine for Balances {
///     type Command = Deposit;
///     type Output = i64;
///     fn apply(&mut self, deposit: Deposit) -> i64 {
///         let balance = self.0.entry(deposit.account).or_default();
///         *balance += deposit.amount;
///         *balance
///     }
/// }
///
/// let sharded = Sharded::new(2, by_key(|d: &Deposit| d.account.clone()), |_| Balances::default());
/// let deposit = |account: &str, amount| Deposit { account: account.into(), amount };
/// sharded.tell(deposit("ada", 5)).unwrap();
/// assert_eq!(sharded.call(deposit("ada", 3)).unwrap(), 8);
/// sharded.call(deposit("bob", 1)).unwrap();
/// let states = sharded.shutdown();
/// let accounts: usize = states.into_iter().map(|state| state.unwrap().0.len()).sum();
/// assert_eq!(accounts, 2);
/// ```
pub struct Sharded<S: StateMachine> {
    handle: ShardedHandle<S>,
    /// Emptied by the shutdown.
    queues: Vec<SingularQueue<S>>,
}

impl<S: StateMachine> Sharded<S> {
    /// Spawns `shards` queues with the default settings; shard `i`'s state is `state(i)`.
    ///
    /// # Panics
    ///
    /// If `shards` is 0, or the operating system cannot create a worker thread (use
    /// [`builder`](Sharded::builder) to handle that error).
    pub fn new(
        shards: usize,
        router: impl Router<S::Command>,
        state: impl FnMut(usize) -> S + 'static,
    ) -> Self {
        Self::builder(shards, router, state)
            .spawn()
            .expect("failed to spawn a singular-queue shard's worker thread")
    }

    /// Starts configuring `shards` queues routed by `router`; shard `i`'s state is
    /// `state(i)`.
    ///
    /// # Panics
    ///
    /// If `shards` is 0.
    pub fn builder(
        shards: usize,
        router: impl Router<S::Command>,
        state: impl FnMut(usize) -> S + 'static,
    ) -> ShardedBuilder<S> {
        ShardedBuilder::new(shards, router, state)
    }

    pub(crate) fn new_running(handle: ShardedHandle<S>, queues: Vec<SingularQueue<S>>) -> Self {
        Self { handle, queues }
    }

    /// A new handle to submit from other threads.
    pub fn handle(&self) -> ShardedHandle<S> {
        self.handle.clone()
    }

    /// Closes every shard, then shuts each down as [`SingularQueue::shutdown`] does: every
    /// accepted command is applied. Returns each shard's state, in shard order, or, for a
    /// shard that a panic poisoned, the [`Poisoned`] that holds what it kept.
    ///
    /// # Panics
    ///
    /// Where [`SingularQueue::shutdown`] panics: on a shard's own worker, or on a worker that
    /// a shard waits for. Checked for every shard before any is closed; the shards are then
    /// dropped as the panic unwinds, and stop without waiting.
    pub fn shutdown(mut self) -> Vec<Result<S, Poisoned<S>>> {
        let queues = self.close_all(false);
        queues.into_iter().map(SingularQueue::shutdown).collect()
    }

    /// Closes every shard, then shuts each down as [`SingularQueue::shutdown_now`] does: each
    /// stops after the command it is applying. Returns each shard's state and the commands it
    /// accepted but did not apply, or its [`Poisoned`].
    ///
    /// # Panics
    ///
    /// As [`shutdown`](Sharded::shutdown).
    #[allow(clippy::type_complexity)]
    pub fn shutdown_now(mut self) -> Vec<Result<(S, Vec<S::Command>), Poisoned<S>>> {
        let queues = self.close_all(true);
        queues
            .into_iter()
            .map(SingularQueue::shutdown_now)
            .collect()
    }

    /// Checks that this thread can wait for every shard, then closes them all (if `now`,
    /// each worker sets aside what it takes from then on) and hands them over.
    fn close_all(&mut self, now: bool) -> Vec<SingularQueue<S>> {
        for queue in &self.queues {
            assert!(
                waits::wait_for(queue.shared().id()).is_ok(),
                "Sharded::shutdown called on a shard's worker thread, or on a worker a shard \
                 waits for: it could never return; the shards are dropped instead"
            );
        }
        for queue in &self.queues {
            queue.shared().close_for_owner(now);
        }
        mem::take(&mut self.queues)
    }
}

impl<S: StateMachine> Drop for Sharded<S> {
    /// Closes every shard, then drops each as [`SingularQueue`]'s drop does.
    fn drop(&mut self) {
        for queue in &self.queues {
            queue.shared().close_for_owner(false);
        }
    }
}

/// The owner submits like any handle.
impl<S: StateMachine> Deref for Sharded<S> {
    type Target = ShardedHandle<S>;

    fn deref(&self) -> &ShardedHandle<S> {
        &self.handle
    }
}

impl<S: StateMachine> fmt::Debug for Sharded<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sharded")
            .field("shards", &self.handle.shard_count())
            .finish_non_exhaustive()
    }
}
