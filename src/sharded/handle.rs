//! The handle of a sharded queue: routes each command to the shard that owns it.

use std::fmt;
use std::time::Duration;

use super::router::{Route, Router};
use super::snapshot::{self, SnapshotError};
use super::stats::ShardedStats;
use crate::sync::atomic::{AtomicU64, Ordering};
use crate::sync::{Arc, Mutex};
use crate::waits::{self, Waiting};
use crate::{CallError, Handle, StateMachine, Stats, SubmitError, Ticket, WouldDeadlock};

/// A cheap, cloneable way to submit commands to a [`Sharded`](crate::Sharded) queue from
/// any thread: each command goes to the shard its [`Router`] names, with the same calls,
/// errors and accounting as a [`Handle`].
///
/// # Ordering
///
/// - All commands for one key (one shard, under a pure router) are applied in one total
///   order, the order that shard accepted them.
/// - One thread's commands for one shard are applied in the order it sent them.
/// - Nothing is promised across shards: two commands for different shards are applied by
///   different threads, in either order, even from one thread. Wait for the first's output
///   before sending the second when the order matters.
///
/// # Refused
///
/// A command whose keys span shards ([`Route::CrossShard`]) is refused with
/// [`SubmitError::CrossShard`] (or [`CallError::CrossShard`]) and handed back;
/// [`ShardedStats::cross_shard`](crate::ShardedStats::cross_shard) counts it. Every other
/// refusal and failure is the shard's, exactly as its [`Handle`] reports it.
///
/// # Examples
///
/// ```
/// use singular_queue::{Sharded, StateMachine, by_key};
/// # #[derive(Default)]
/// # struct Counter(u64);
/// # impl StateMachine for Counter {
/// #     type Command = (u64, u64);
/// #     type Output = u64;
/// #     fn apply(&mut self, (_, add): (u64, u64)) -> u64 { self.0 += add; self.0 }
/// # }
///
/// // Commands are (account, amount); each account lives on one of 2 shards.
/// let sharded = Sharded::new(2, by_key(|&(account, _): &(u64, u64)| account), |_| {
///     Counter::default()
/// });
/// let handle = sharded.handle();
/// std::thread::spawn(move || handle.tell((7, 5)).unwrap()).join().unwrap();
/// let ticket = sharded.submit((7, 1)).unwrap();
/// assert_eq!(ticket.wait(), Ok(6)); // the shard that owns account 7 applied both
/// ```
pub struct ShardedHandle<S: StateMachine> {
    inner: Arc<Inner<S>>,
    /// Whether this handle submits to every shard's priority lane.
    priority: bool,
}

struct Inner<S: StateMachine> {
    shards: Vec<Handle<S>>,
    /// Every shard's priority handle, if every shard has a priority lane.
    priority: Option<Vec<Handle<S>>>,
    router: Box<dyn Router<S::Command>>,
    /// Commands refused because their keys span shards.
    cross_shard: AtomicU64,
    /// Held while a snapshot puts its markers in, so that two snapshots' markers are in the
    /// same order in every shard.
    marking: Mutex<()>,
}

impl<S: StateMachine> ShardedHandle<S> {
    pub(crate) fn new(shards: Vec<Handle<S>>, router: Box<dyn Router<S::Command>>) -> Self {
        let priority = shards.iter().map(Handle::priority).collect();
        let inner = Inner {
            shards,
            priority,
            router,
            cross_shard: AtomicU64::new(0),
            marking: Mutex::new(()),
        };
        Self {
            inner: Arc::new(inner),
            priority: false,
        }
    }

    /// A handle of the same shards whose every submit goes to the owning shard's priority
    /// lane; `None` unless every shard was built with one (see
    /// [`Builder::priority_lane`](crate::Builder::priority_lane), set per shard through
    /// [`configure`](crate::ShardedBuilder::configure)).
    ///
    /// It routes as this handle does and counts its cross-shard refusals in the same
    /// figure. As on [`Handle::priority`], what it submits, [`broadcast`], [`shards`],
    /// [`len`] and `is_empty` are the lanes'; the rest ([`snapshot`], [`stats`], [`close`],
    /// [`wait_until_quiet`]) is the whole queue's. A snapshot's cut comes after every
    /// priority command its shard accepted before the marker.
    ///
    /// [`broadcast`]: ShardedHandle::broadcast
    /// [`shards`]: ShardedHandle::shards
    /// [`len`]: ShardedHandle::len
    /// [`snapshot`]: ShardedHandle::snapshot
    /// [`stats`]: ShardedHandle::stats
    /// [`close`]: ShardedHandle::close
    /// [`wait_until_quiet`]: ShardedHandle::wait_until_quiet
    ///
    /// # Examples
    ///
    /// ```
    /// use singular_queue::{Sharded, StateMachine, by_key};
    /// # #[derive(Default)]
    /// # struct Counter(u64);
    /// # impl StateMachine for Counter {
    /// #     type Command = (u64, u64);
    /// #     type Output = u64;
    /// #     fn apply(&mut self, (_, add): (u64, u64)) -> u64 { self.0 += add; self.0 }
    /// # }
    /// let sharded = Sharded::builder(2, by_key(|c: &(u64, u64)| c.0), |_| Counter::default())
    ///     .configure(|_shard, builder| builder.priority_lane(16))
    ///     .spawn()
    ///     .unwrap();
    /// let urgent = sharded.priority().expect("every shard has a priority lane");
    /// assert_eq!(urgent.call((7, 1)), Ok(1)); // account 7's shard, ahead of its queue
    /// assert_eq!(urgent.shards()[0].capacity(), 16); // the lanes' handles
    ///
    /// let plain = Sharded::new(2, by_key(|c: &(u64, u64)| c.0), |_| Counter::default());
    /// assert!(plain.priority().is_none());
    /// ```
    pub fn priority(&self) -> Option<ShardedHandle<S>> {
        self.inner.priority.as_ref()?;
        Some(Self {
            inner: Arc::clone(&self.inner),
            priority: true,
        })
    }

    /// Like [`Handle::call`], on the shard that owns `command`.
    ///
    /// # Errors
    ///
    /// [`CallError::CrossShard`] with the command if its keys span shards; otherwise as
    /// [`Handle::call`].
    pub fn call(&self, command: S::Command) -> Result<S::Output, CallError<S::Command>> {
        let (shard, command) = self.owner(command).map_err(CallError::CrossShard)?;
        shard.call(command)
    }

    /// Like [`Handle::try_call`], on the shard that owns `command`.
    ///
    /// # Errors
    ///
    /// As [`call`](ShardedHandle::call).
    pub fn try_call(&self, command: S::Command) -> Result<S::Output, CallError<S::Command>> {
        let (shard, command) = self.owner(command).map_err(CallError::CrossShard)?;
        shard.try_call(command)
    }

    /// Like [`Handle::call_timeout`], on the shard that owns `command`.
    ///
    /// # Errors
    ///
    /// As [`call`](ShardedHandle::call), and [`CallError::Timeout`] or
    /// [`CallError::ReplyTimeout`].
    pub fn call_timeout(
        &self,
        command: S::Command,
        timeout: Duration,
    ) -> Result<S::Output, CallError<S::Command>> {
        let (shard, command) = self.owner(command).map_err(CallError::CrossShard)?;
        shard.call_timeout(command, timeout)
    }

    /// Like [`Handle::submit`], on the shard that owns `command`.
    ///
    /// # Errors
    ///
    /// [`SubmitError::CrossShard`] with the command if its keys span shards; otherwise as
    /// [`Handle::submit`].
    pub fn submit(
        &self,
        command: S::Command,
    ) -> Result<Ticket<S::Output>, SubmitError<S::Command>> {
        let (shard, command) = self.owner(command).map_err(SubmitError::CrossShard)?;
        shard.submit(command)
    }

    /// Like [`Handle::try_submit`], on the shard that owns `command`.
    ///
    /// # Errors
    ///
    /// As [`submit`](ShardedHandle::submit).
    pub fn try_submit(
        &self,
        command: S::Command,
    ) -> Result<Ticket<S::Output>, SubmitError<S::Command>> {
        let (shard, command) = self.owner(command).map_err(SubmitError::CrossShard)?;
        shard.try_submit(command)
    }

    /// Like [`Handle::submit_timeout`], on the shard that owns `command`.
    ///
    /// # Errors
    ///
    /// As [`submit`](ShardedHandle::submit).
    pub fn submit_timeout(
        &self,
        command: S::Command,
        timeout: Duration,
    ) -> Result<Ticket<S::Output>, SubmitError<S::Command>> {
        let (shard, command) = self.owner(command).map_err(SubmitError::CrossShard)?;
        shard.submit_timeout(command, timeout)
    }

    /// Like [`Handle::tell`], on the shard that owns `command`.
    ///
    /// # Errors
    ///
    /// As [`submit`](ShardedHandle::submit).
    pub fn tell(&self, command: S::Command) -> Result<(), SubmitError<S::Command>> {
        let (shard, command) = self.owner(command).map_err(SubmitError::CrossShard)?;
        shard.tell(command)
    }

    /// Like [`Handle::try_tell`], on the shard that owns `command`.
    ///
    /// # Errors
    ///
    /// As [`submit`](ShardedHandle::submit).
    pub fn try_tell(&self, command: S::Command) -> Result<(), SubmitError<S::Command>> {
        let (shard, command) = self.owner(command).map_err(SubmitError::CrossShard)?;
        shard.try_tell(command)
    }

    /// Like [`Handle::tell_timeout`], on the shard that owns `command`.
    ///
    /// # Errors
    ///
    /// As [`submit`](ShardedHandle::submit).
    pub fn tell_timeout(
        &self,
        command: S::Command,
        timeout: Duration,
    ) -> Result<(), SubmitError<S::Command>> {
        let (shard, command) = self.owner(command).map_err(SubmitError::CrossShard)?;
        shard.tell_timeout(command, timeout)
    }

    /// Like [`Handle::call_async`], on the shard that owns `command`.
    ///
    /// # Cancel safety
    ///
    /// As [`Handle::call_async`].
    ///
    /// # Errors
    ///
    /// As [`call`](ShardedHandle::call).
    pub async fn call_async(
        &self,
        command: S::Command,
    ) -> Result<S::Output, CallError<S::Command>> {
        let (shard, command) = self.owner(command).map_err(CallError::CrossShard)?;
        shard.call_async(command).await
    }

    /// Like [`Handle::try_call_async`], on the shard that owns `command`.
    ///
    /// # Errors
    ///
    /// As [`call`](ShardedHandle::call).
    pub async fn try_call_async(
        &self,
        command: S::Command,
    ) -> Result<S::Output, CallError<S::Command>> {
        let (shard, command) = self.owner(command).map_err(CallError::CrossShard)?;
        shard.try_call_async(command).await
    }

    /// Like [`Handle::call_timeout_async`], on the shard that owns `command`.
    ///
    /// # Errors
    ///
    /// As [`call_timeout`](ShardedHandle::call_timeout).
    pub async fn call_timeout_async(
        &self,
        command: S::Command,
        timeout: Duration,
    ) -> Result<S::Output, CallError<S::Command>> {
        let (shard, command) = self.owner(command).map_err(CallError::CrossShard)?;
        shard.call_timeout_async(command, timeout).await
    }

    /// Like [`Handle::submit_async`], on the shard that owns `command`.
    ///
    /// # Errors
    ///
    /// As [`submit`](ShardedHandle::submit).
    pub async fn submit_async(
        &self,
        command: S::Command,
    ) -> Result<Ticket<S::Output>, SubmitError<S::Command>> {
        let (shard, command) = self.owner(command).map_err(SubmitError::CrossShard)?;
        shard.submit_async(command).await
    }

    /// Like [`Handle::submit_timeout_async`], on the shard that owns `command`.
    ///
    /// # Errors
    ///
    /// As [`submit`](ShardedHandle::submit).
    pub async fn submit_timeout_async(
        &self,
        command: S::Command,
        timeout: Duration,
    ) -> Result<Ticket<S::Output>, SubmitError<S::Command>> {
        let (shard, command) = self.owner(command).map_err(SubmitError::CrossShard)?;
        shard.submit_timeout_async(command, timeout).await
    }

    /// Like [`Handle::tell_async`], on the shard that owns `command`.
    ///
    /// # Errors
    ///
    /// As [`submit`](ShardedHandle::submit).
    pub async fn tell_async(&self, command: S::Command) -> Result<(), SubmitError<S::Command>> {
        let (shard, command) = self.owner(command).map_err(SubmitError::CrossShard)?;
        shard.tell_async(command).await
    }

    /// Like [`Handle::tell_timeout_async`], on the shard that owns `command`.
    ///
    /// # Errors
    ///
    /// As [`submit`](ShardedHandle::submit).
    pub async fn tell_timeout_async(
        &self,
        command: S::Command,
        timeout: Duration,
    ) -> Result<(), SubmitError<S::Command>> {
        let (shard, command) = self.owner(command).map_err(SubmitError::CrossShard)?;
        shard.tell_timeout_async(command, timeout).await
    }

    /// Submits one command to every shard, made by `command(shard)`, in shard order, and
    /// returns each shard's ticket or refusal, in the same order.
    ///
    /// **Not atomic**: each shard applies its command whenever it reaches it, so other
    /// commands may be applied on one shard before it and on another after it, and one shard
    /// may refuse while the others accept. Use [`snapshot`](ShardedHandle::snapshot) for a
    /// consistent read across shards.
    ///
    /// # Examples
    ///
    /// ```
    /// use singular_queue::{Sharded, StateMachine, by_key};
    /// # #[derive(Default)]
    /// # struct Counter(u64);
    /// # impl StateMachine for Counter {
    /// #     type Command = (u64, u64);
    /// #     type Output = u64;
    /// #     fn apply(&mut self, (_, add): (u64, u64)) -> u64 { self.0 += add; self.0 }
    /// # }
    /// let sharded = Sharded::new(3, by_key(|c: &(u64, u64)| c.0), |_| Counter::default());
    /// let tickets = sharded.broadcast(|shard| (shard as u64, 10));
    /// let totals: Vec<u64> = tickets.into_iter().map(|t| t.unwrap().wait().unwrap()).collect();
    /// assert_eq!(totals, [10, 10, 10]);
    /// ```
    #[allow(clippy::type_complexity)]
    pub fn broadcast(
        &self,
        mut command: impl FnMut(usize) -> S::Command,
    ) -> Vec<Result<Ticket<S::Output>, SubmitError<S::Command>>> {
        let shards = self.lane().iter().enumerate();
        shards
            .map(|(index, shard)| shard.submit(command(index)))
            .collect()
    }

    /// Computes `f` on every shard's state at one consistent cut, and returns the results in
    /// shard order.
    ///
    /// A marker goes into every shard's queue (under one lock, so that two snapshots' markers
    /// are in the same order everywhere). Each worker that reaches its marker ends its batch
    /// and waits until every shard has reached its own; then each computes `f(&state)` and
    /// goes on. So the cut is **consistent**: if a command applied on one shard was submitted
    /// after its caller saw the output of another command (on any shard), and the later one
    /// is in the snapshot, so is the earlier one. No causal chain crosses the cut backwards.
    ///
    /// The price: every shard pauses at its marker until the slowest shard has worked through
    /// what was queued ahead of its own, and `f` runs on every worker. Keep `f` quick (clone
    /// what you need, and do the rest after it returns).
    ///
    /// # Errors
    ///
    /// [`SnapshotError`]: a shard closed or stopped first, `f` panicked, or waiting would
    /// deadlock (the caller is a worker that a shard waits for, or one shard's worker was
    /// blocked on another while that one waited at the cut). No state changes either way.
    ///
    /// # Examples
    ///
    /// ```
    /// use singular_queue::{Sharded, StateMachine, by_key};
    /// # #[derive(Default)]
    /// # struct Counter(u64);
    /// # impl StateMachine for Counter {
    /// #     type Command = (u64, u64);
    /// #     type Output = u64;
    /// #     fn apply(&mut self, (_, add): (u64, u64)) -> u64 { self.0 += add; self.0 }
    /// # }
    /// let sharded = Sharded::new(2, by_key(|c: &(u64, u64)| c.0), |_| Counter::default());
    /// for account in 0..100 {
    ///     sharded.tell((account, 1)).unwrap();
    /// }
    /// let totals = sharded.snapshot(|counter: &Counter| counter.0).unwrap();
    /// assert_eq!(totals.iter().sum::<u64>(), 100);
    /// ```
    pub fn snapshot<R, F>(&self, f: F) -> Result<Vec<R>, SnapshotError>
    where
        F: Fn(&S) -> R + Send + Sync + 'static,
        R: Send + 'static,
    {
        // A check only: each wait on a shard's result records its own edge, settled as that
        // result comes, so a shard that has computed and gone on may call this thread's queue
        // (found by review).
        drop(self.wait_for_every_shard()?);
        self.mark(f).wait()
    }

    /// Like [`snapshot`](ShardedHandle::snapshot), waiting as a task, on any executor.
    ///
    /// # Cancel safety
    ///
    /// The markers go in before the first await; dropping the future then only stops
    /// waiting: the cut is still taken (and its results dropped).
    ///
    /// # Errors
    ///
    /// As [`snapshot`](ShardedHandle::snapshot).
    pub async fn snapshot_async<R, F>(&self, f: F) -> Result<Vec<R>, SnapshotError>
    where
        F: Fn(&S) -> R + Send + Sync + 'static,
        R: Send + 'static,
    {
        drop(self.wait_for_every_shard()?);
        self.mark(f).wait_async().await
    }

    /// Puts the markers in, under the lock that keeps snapshots in one order.
    fn mark<R, F>(&self, f: F) -> snapshot::Taking<R>
    where
        F: Fn(&S) -> R + Send + Sync + 'static,
        R: Send + 'static,
    {
        let _marking = self.inner.marking.lock();
        snapshot::mark(&self.inner.shards, Arc::new(f))
    }

    /// Checks that this thread may wait for every shard: refuses if it is a worker that one
    /// of them waits for.
    fn wait_for_every_shard(&self) -> Result<Vec<Waiting>, SnapshotError> {
        // The workers alone: reaching a marker and computing never wait for a commit.
        let shards = self.inner.shards.iter();
        let waits = shards.map(|shard| waits::wait_for_node(shard.shared().id()));
        waits
            .collect::<Result<_, _>>()
            .map_err(|_| SnapshotError::Deadlock)
    }

    /// The shard that would take `command`, without submitting it or counting anything.
    ///
    /// # Panics
    ///
    /// If the router names a shard that does not exist.
    pub fn route(&self, command: &S::Command) -> Route {
        let shards = self.inner.shards.len();
        let route = self.inner.router.route(command, shards);
        if let Route::Shard(index) = route {
            assert!(
                index < shards,
                "the router sent a command to shard {index} of {shards}"
            );
        }
        route
    }

    /// How many shards there are.
    pub fn shard_count(&self) -> usize {
        self.inner.shards.len()
    }

    /// Each shard's own [`Handle`], in shard order: everything a queue offers (permits,
    /// [`tell_many`](Handle::tell_many), its figures) for commands you have routed yourself
    /// (see [`route`](ShardedHandle::route)). On a [`priority`](ShardedHandle::priority)
    /// handle, each shard's priority handle.
    pub fn shards(&self) -> &[Handle<S>] {
        self.lane()
    }

    /// The handles this one submits through: each shard's, or each shard's priority lane's.
    fn lane(&self) -> &[Handle<S>] {
        match (self.priority, &self.inner.priority) {
            (true, Some(lanes)) => lanes,
            _ => &self.inner.shards,
        }
    }

    /// Every shard's figures, their total, and the cross-shard refusals.
    pub fn stats(&self) -> ShardedStats {
        let shards: Vec<Stats> = self.inner.shards.iter().map(Handle::stats).collect();
        ShardedStats {
            total: Stats::total(&shards),
            shards,
            cross_shard: self.inner.cross_shard.load(Ordering::Acquire),
        }
    }

    /// Closes every shard, as [`Handle::close`] does one.
    pub fn close(&self) {
        self.inner.shards.iter().for_each(Handle::close);
    }

    /// Whether every shard has stopped accepting commands (a shard stopped by a panic
    /// refuses on its own while the others go on).
    pub fn is_closed(&self) -> bool {
        self.inner.shards.iter().all(Handle::is_closed)
    }

    /// Completes once every shard's worker has finished for good, as [`Handle::closed`].
    pub async fn closed(&self) {
        for shard in &self.inner.shards {
            shard.closed().await;
        }
    }

    /// How many accepted commands wait in this handle's lanes, over all shards: the normal
    /// lanes, or on a [`priority`](ShardedHandle::priority) handle the priority lanes, as
    /// [`Handle::len`] counts them. Every lane's is
    /// [`stats().total.depth`](ShardedStats::total).
    pub fn len(&self) -> usize {
        let lens = self.lane().iter().map(Handle::len);
        lens.fold(0, usize::saturating_add)
    }

    /// Whether no accepted command waits in this handle's lanes, in any shard:
    /// [`len`](ShardedHandle::len) is 0.
    pub fn is_empty(&self) -> bool {
        self.lane().iter().all(Handle::is_empty)
    }

    /// Waits until every shard is quiet, one after another, as
    /// [`Handle::wait_until_quiet`]. For tests: join the submitting threads first. A shard
    /// whose `apply` submits to another shard may make that one busy again after its wait
    /// returned.
    ///
    /// # Errors
    ///
    /// As [`Handle::wait_until_quiet`].
    pub fn wait_until_quiet(&self) -> Result<(), WouldDeadlock> {
        self.inner
            .shards
            .iter()
            .try_for_each(Handle::wait_until_quiet)
    }

    /// `command` with the shard that owns it, or back if its keys span shards (counted). One
    /// shard owns every key: the router is not asked.
    fn owner(&self, command: S::Command) -> Result<(&Handle<S>, S::Command), S::Command> {
        let lane = self.lane();
        if let [only] = lane {
            return Ok((only, command));
        }
        match self.route(&command) {
            Route::Shard(index) => Ok((&lane[index], command)),
            Route::CrossShard => {
                self.inner.cross_shard.fetch_add(1, Ordering::AcqRel);
                Err(command)
            }
        }
    }
}

impl<S: StateMachine> Clone for ShardedHandle<S> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
            priority: self.priority,
        }
    }
}

impl<S: StateMachine> fmt::Debug for ShardedHandle<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ShardedHandle")
            .field("shards", &self.inner.shards.len())
            .field("priority", &self.priority)
            .field("closed", &self.is_closed())
            .finish_non_exhaustive()
    }
}
