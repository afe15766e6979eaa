//! Configures and spawns a [`Sharded`] queue.

use std::fmt;
use std::io;

use super::Sharded;
use super::handle::ShardedHandle;
use super::router::Router;
use crate::{Builder, SingularQueue, StateMachine};

/// Each shard's builder, as [`ShardedBuilder::configure`] changes it.
type Configure<S> = Box<dyn FnMut(usize, Builder<S>) -> Builder<S>>;

/// Configures and spawns a [`Sharded`] queue; made by [`Sharded::builder`].
///
/// Every shard is a [`SingularQueue`] built by a [`Builder`] of its own, so every option of a
/// queue (capacity, backpressure, batching, reply mode, panic option, wait strategy, observer,
/// commit threads) is available per shard, through [`configure`](ShardedBuilder::configure).
///
/// # Examples
///
/// ```
/// use singular_queue::{Reject, ReplyMode, Sharded, StateMachine, by_key};
/// # #[derive(Default)]
/// # struct Counter(u64);
/// # impl StateMachine for Counter {
/// #     type Command = (u64, u64);
/// #     type Output = u64;
/// #     fn apply(&mut self, (_, add): (u64, u64)) -> u64 { self.0 += add; self.0 }
/// # }
///
/// let sharded = Sharded::builder(2, by_key(|c: &(u64, u64)| c.0), |_| Counter::default())
///     .name("accounts")
///     .configure(|_shard, builder| {
///         builder
///             .capacity(256)
///             .backpressure(Reject)
///             .max_batch(32)
///             .reply_mode(ReplyMode::AfterBatch)
///     })
///     .spawn()
///     .expect("spawn the shards");
/// assert_eq!(sharded.shards()[1].name(), "accounts-1");
/// assert_eq!(sharded.stats().total.capacity, 512);
/// ```
pub struct ShardedBuilder<S: StateMachine> {
    shards: usize,
    router: Box<dyn Router<S::Command>>,
    state: Box<dyn FnMut(usize) -> S>,
    name: String,
    configure: Vec<Configure<S>>,
}

impl<S: StateMachine> ShardedBuilder<S> {
    pub(super) fn new(
        shards: usize,
        router: impl Router<S::Command>,
        state: impl FnMut(usize) -> S + 'static,
    ) -> Self {
        assert!(shards > 0, "a sharded queue has at least one shard");
        Self {
            shards,
            router: Box::new(router),
            state: Box::new(state),
            name: "singular-queue-shard".to_owned(),
            configure: Vec::new(),
        }
    }

    /// The shards' name: shard `i` is named `{name}-{i}` (its worker thread's name, and
    /// [`Handle::name`](crate::Handle::name)); default `singular-queue-shard`. A name given
    /// in [`configure`](ShardedBuilder::configure) replaces it.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Changes each shard's [`Builder`]: called once per shard with its index, as the shard
    /// is built. Calls add up, in order.
    pub fn configure(
        mut self,
        configure: impl FnMut(usize, Builder<S>) -> Builder<S> + 'static,
    ) -> Self {
        self.configure.push(Box::new(configure));
        self
    }

    /// Builds the states (shard 0 first) and spawns a worker thread for each shard.
    ///
    /// # Errors
    ///
    /// The first shard's error, as [`Builder::spawn`] gives it; the shards already spawned
    /// are shut down and their states dropped.
    pub fn spawn(mut self) -> io::Result<Sharded<S>> {
        let mut queues = Vec::with_capacity(self.shards);
        for index in 0..self.shards {
            queues.push(self.shard(index).spawn()?);
        }
        let handles = queues.iter().map(SingularQueue::handle).collect();
        let handle = ShardedHandle::new(handles, self.router);
        Ok(Sharded::new_running(handle, queues))
    }

    /// Shard `index`'s builder, configured.
    fn shard(&mut self, index: usize) -> Builder<S> {
        let name = format!("{}-{index}", self.name);
        let builder = SingularQueue::builder((self.state)(index)).name(name);
        let configure = self.configure.iter_mut();
        configure.fold(builder, |builder, configure| configure(index, builder))
    }
}

impl<S: StateMachine> fmt::Debug for ShardedBuilder<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ShardedBuilder")
            .field("shards", &self.shards)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}
