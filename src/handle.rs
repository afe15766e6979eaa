use std::fmt;
use std::time::Duration;

use crate::backpressure::Limit;
use crate::reply::Slot;
use crate::shared::{LaneId, Shared};
use crate::sync::{Arc, Instant};
use crate::waits::Awaited;
use crate::{
    CallError, Permit, StateMachine, Stats, SubmitError, Ticket, WouldDeadlock, reply, spare, waits,
};

/// A cheap, cloneable way to submit commands to a [`SingularQueue`](crate::SingularQueue)
/// from any thread.
///
/// Get one with [`SingularQueue::handle`](crate::SingularQueue::handle) and clone it for each
/// thread (a clone is one reference-count increment). Three ways to submit:
///
/// | call | returns | use it when |
/// |---|---|---|
/// | [`call`](Handle::call) | the output, once applied | you need the answer now |
/// | [`submit`](Handle::submit) | a [`Ticket`] at once | you want several commands in flight |
/// | [`tell`](Handle::tell) | nothing | fire and forget |
///
/// # Ordering
///
/// Commands are applied in the order the queue accepted them. Commands from one thread are
/// accepted in the order that thread submitted them, so they are applied in that order too.
///
/// # From a worker: no waiting for yourself
///
/// Inside its own `apply` or hooks, the worker would wait for itself, so the queue refuses
/// instead of deadlocking: every `call` returns [`CallError::Reentrant`] with the command, a
/// submit or tell that would wait for room returns [`SubmitError::Deadlock`] with the command,
/// and [`Ticket::wait`] on one of its own queue's tickets returns
/// [`WaitError::Deadlock`](crate::WaitError::Deadlock).
///
/// The same holds across queues. When queue A's worker calls queue B, waits for room in B, or
/// waits on one of B's tickets, and B's worker is (directly, or through a chain of other
/// queues) blocked the same way on A, the second of the two waits is refused with
/// [`CallError::Deadlock`], [`SubmitError::Deadlock`] or `WaitError::Deadlock`: a cycle of
/// queues fails loudly instead of hanging. Covered are the blocking waits of a worker thread:
/// `call`, `call_timeout`, waiting for room under `Block`, `BlockFor` or a `*_timeout`, and
/// ticket waits, and dropping or shutting down another queue (see
/// [`SingularQueue`](crate::SingularQueue#dropping-the-queue)); a `call_async` started on such
/// a thread, and an async submit polled there that would wait for room, are refused too. Not
/// covered: waits inside your own code (a channel, a lock, a thread you join), and a task's
/// wait for a ticket (an executor, not this crate, decides whether to block there; the crate's
/// own [`model::block_on`](crate::model::block_on) panics instead of sleeping forever).
///
/// A call or ticket wait ends the moment its reply is completed, so a worker that was answered
/// but has not run again yet never counts as waiting. A worker waiting for room still counts
/// as waiting after a slot was freed for it, until it runs again: it may lose that slot to
/// another submitter, so a call to it then is refused as the deadlock it could become.
///
/// # After shutdown
///
/// A handle may outlive its queue. Once the queue is shut down every submit is refused with
/// [`SubmitError::Closed`] (or [`CallError::Closed`]), and the command comes back.
///
/// # Examples
///
/// ```
/// use std::thread;
/// use singular_queue::{SingularQueue, StateMachine};
/// # struct Counter(u64);
/// # impl StateMachine for Counter {
/// #     type Command = u64;
/// #     type Output = u64;
/// #     fn apply(&mut self, add: u64) -> u64 { self.0 += add; self.0 }
/// # }
///
/// let queue = SingularQueue::new(Counter(0));
/// let workers: Vec<_> = (0..4)
///     .map(|_| {
///         let handle = queue.handle();
///         thread::spawn(move || {
///             for _ in 0..100 {
///                 handle.tell(1).unwrap();
///             }
///         })
///     })
///     .collect();
/// for worker in workers {
///     worker.join().unwrap();
/// }
/// assert_eq!(queue.shutdown().unwrap().0, 400);
/// ```
pub struct Handle<S: StateMachine> {
    shared: Arc<Shared<S>>,
    /// The lane this handle's commands go to.
    lane: LaneId,
}

impl<S: StateMachine> Handle<S> {
    pub(crate) fn new(shared: Arc<Shared<S>>) -> Self {
        Self {
            shared,
            lane: LaneId::Normal,
        }
    }

    /// A handle to the same queue whose commands go to its **priority lane**, or `None` if
    /// the queue was built without one ([`Builder::priority_lane`](crate::Builder::priority_lane)).
    ///
    /// Every way of submitting works on it as on this handle, with the priority lane's own
    /// bound and [policy](crate::Builder::priority_backpressure), errors and counters
    /// ([`Stats::priority_lane`](crate::Stats::priority_lane)): `call`, `submit`, `tell`,
    /// their `try_`, `_timeout` and `_async` forms, `tell_many` and permits. Its
    /// [`len`](Handle::len) and [`capacity`](Handle::capacity) are the lane's. The rest
    /// (`read`, `stats`, `close`, `wait_until_quiet`) is the whole queue's, as on any
    /// handle.
    ///
    /// The worker takes a waiting priority command before any normal one, but after
    /// [`max_priority_burst`](crate::Builder::max_priority_burst) of them in a row it takes
    /// one normal command, if one waits, so the normal lane cannot starve. Each lane is FIFO;
    /// across lanes, a priority command may overtake normal ones accepted before it.
    ///
    /// # Examples
    ///
    /// ```
    /// use singular_queue::{SingularQueue, StateMachine};
    /// # struct Log(Vec<&'static str>);
    /// # impl StateMachine for Log {
    /// #     type Command = &'static str;
    /// #     type Output = ();
    /// #     fn apply(&mut self, entry: &'static str) { self.0.push(entry) }
    /// # }
    ///
    /// let mut queue = SingularQueue::builder(Log(Vec::new()))
    ///     .priority_lane(8)
    ///     .manual();
    /// let urgent = queue.handle().priority().expect("built with a priority lane");
    /// queue.tell("write 1").unwrap();
    /// queue.tell("write 2").unwrap();
    /// urgent.tell("cancel").unwrap(); // jumps the queue
    /// queue.run_until_idle();
    /// assert_eq!(queue.state().0, ["cancel", "write 1", "write 2"]);
    /// ```
    pub fn priority(&self) -> Option<Handle<S>> {
        self.shared.has_priority_lane().then(|| Handle {
            shared: Arc::clone(&self.shared),
            lane: LaneId::Priority,
        })
    }

    /// Submits `command` and blocks until the worker has applied it; returns its output.
    ///
    /// If the queue is full, the queue's [`Backpressure`](crate::Backpressure) policy decides
    /// whether to wait, refuse or evict.
    ///
    /// # Errors
    ///
    /// The command comes back inside [`CallError::Closed`], [`CallError::Full`] or
    /// [`CallError::Timeout`] if the queue refused it, and inside [`CallError::Reentrant`] or
    /// [`CallError::Deadlock`] if this thread is a worker the queue waits for. Once accepted
    /// it may still fail: [`CallError::Panicked`], [`CallError::NotCommitted`],
    /// [`CallError::NotApplied`], [`CallError::Dropped`].
    pub fn call(&self, command: S::Command) -> Result<S::Output, CallError<S::Command>> {
        self.round_trip(command, Limit::Policy, None)
    }

    /// Like [`call`](Handle::call), but never waits for room: where the policy would wait,
    /// a full queue refuses with [`CallError::Full`]. It still waits for the output.
    pub fn try_call(&self, command: S::Command) -> Result<S::Output, CallError<S::Command>> {
        self.round_trip(command, Limit::NoWait, None)
    }

    /// Like [`call`](Handle::call), bounded by `timeout` from start to finish.
    ///
    /// If the time runs out while waiting for room, the command comes back in
    /// [`CallError::Timeout`]. If it runs out after the command was accepted, the call returns
    /// [`CallError::ReplyTimeout`]: the command stays accepted (applied exactly once unless
    /// evicted or set aside by a shutdown, as any accepted command), and its output is
    /// discarded.
    pub fn call_timeout(
        &self,
        command: S::Command,
        timeout: Duration,
    ) -> Result<S::Output, CallError<S::Command>> {
        let deadline = Instant::now().checked_add(timeout);
        self.round_trip(command, Limit::Within(timeout), deadline)
    }

    /// Submits `command` and returns at once with a [`Ticket`] for its output.
    ///
    /// If the queue is full, the queue's [`Backpressure`](crate::Backpressure) policy decides
    /// whether to wait, refuse or evict.
    ///
    /// # Errors
    ///
    /// [`SubmitError::Closed`], [`SubmitError::Full`], [`SubmitError::Timeout`] or
    /// [`SubmitError::Deadlock`], each with the command.
    pub fn submit(
        &self,
        command: S::Command,
    ) -> Result<Ticket<S::Output>, SubmitError<S::Command>> {
        self.submit_with(command, Limit::Policy)
    }

    /// Like [`submit`](Handle::submit), but never waits for room: where the policy would
    /// wait, a full queue refuses with [`SubmitError::Full`].
    pub fn try_submit(
        &self,
        command: S::Command,
    ) -> Result<Ticket<S::Output>, SubmitError<S::Command>> {
        self.submit_with(command, Limit::NoWait)
    }

    /// Like [`submit`](Handle::submit), but waits for room at most `timeout` (less if the
    /// policy says so), then refuses with [`SubmitError::Timeout`].
    pub fn submit_timeout(
        &self,
        command: S::Command,
        timeout: Duration,
    ) -> Result<Ticket<S::Output>, SubmitError<S::Command>> {
        self.submit_with(command, Limit::Within(timeout))
    }

    /// Submits `command` without waiting for, or receiving, its output.
    ///
    /// Once accepted the command is applied exactly once, unless it panics, is evicted, or
    /// the queue stops first: [`Stats`] counts each of those.
    ///
    /// # Errors
    ///
    /// [`SubmitError::Closed`], [`SubmitError::Full`], [`SubmitError::Timeout`] or
    /// [`SubmitError::Deadlock`], each with the command.
    pub fn tell(&self, command: S::Command) -> Result<(), SubmitError<S::Command>> {
        self.shared.send(self.lane, command, None, Limit::Policy)
    }

    /// Like [`tell`](Handle::tell), but never waits for room: where the policy would wait, a
    /// full queue refuses with [`SubmitError::Full`].
    pub fn try_tell(&self, command: S::Command) -> Result<(), SubmitError<S::Command>> {
        self.shared.send(self.lane, command, None, Limit::NoWait)
    }

    /// Like [`tell`](Handle::tell), but waits for room at most `timeout` (less if the policy
    /// says so), then refuses with [`SubmitError::Timeout`].
    pub fn tell_timeout(
        &self,
        command: S::Command,
        timeout: Duration,
    ) -> Result<(), SubmitError<S::Command>> {
        self.shared
            .send(self.lane, command, None, Limit::Within(timeout))
    }

    /// Tells every command in `commands`, in order, at a fraction of the cost of telling them
    /// one by one: one pass through the shutdown gate, one read-modify-write for as many
    /// places as are free, and one message to the worker, for as many commands as fit.
    ///
    /// Each command holds one place, as if told alone, and is applied exactly once once
    /// accepted, in order. When fewer places are free than commands are left, those that fit
    /// go first and the rest do what the policy says: [`Block`](crate::Block) waits for room
    /// for them, [`BlockFor`](crate::BlockFor) waits at most its time in all, and
    /// [`Reject`](crate::Reject) hands them back. Commands of other submitters may fall
    /// between those parts. Under [`DropOldest`](crate::DropOldest) or a policy of your own,
    /// each command is told on its own, as [`tell`](Handle::tell) would (eviction takes out
    /// one command, never part of a message): the same outcome, without the saving.
    ///
    /// The commands that arrived together are applied together, in one batch, even if that
    /// batch then exceeds [`max_batch`](crate::Builder::max_batch).
    ///
    /// # Errors
    ///
    /// [`SubmitError::Closed`], [`SubmitError::Full`], [`SubmitError::Timeout`] or
    /// [`SubmitError::Deadlock`], with the commands that were not accepted: the first of them
    /// is the one refused, and every command before it was accepted. [`Stats`] counts each
    /// command handed back.
    ///
    /// # Examples
    ///
    /// ```
    /// use singular_queue::{Reject, SingularQueue, StateMachine, SubmitError};
    /// # #[derive(Default)]
    /// # struct Counter(u64);
    /// # impl StateMachine for Counter {
    /// #     type Command = u64;
    /// #     type Output = u64;
    /// #     fn apply(&mut self, add: u64) -> u64 { self.0 += add; self.0 }
    /// # }
    /// let queue = SingularQueue::builder(Counter::default())
    ///     .capacity(3)
    ///     .backpressure(Reject)
    ///     .manual(); // nothing is applied until the queue is stepped
    /// match queue.tell_many(vec![1, 2, 3, 4, 5]) {
    ///     Err(SubmitError::Full(rest)) => assert_eq!(rest, [4, 5]),
    ///     other => panic!("{other:?}"),
    /// }
    /// assert_eq!(queue.shutdown().unwrap().0, 1 + 2 + 3);
    /// ```
    pub fn tell_many(&self, commands: Vec<S::Command>) -> Result<(), SubmitError<Vec<S::Command>>> {
        self.shared.send_many(self.lane, commands)
    }

    /// Like [`call`](Handle::call), from async code, on any executor: waiting for room and
    /// waiting for the output suspend the task instead of blocking its thread.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future while it waits **for room** drops the command with it: it was never
    /// accepted, and nothing counts it. Dropping it while it waits **for the output** leaves
    /// the command accepted: it is applied exactly once and its output is discarded.
    ///
    /// # Errors
    ///
    /// As [`call`](Handle::call).
    pub async fn call_async(
        &self,
        command: S::Command,
    ) -> Result<S::Output, CallError<S::Command>> {
        let command = self.refuse_if_it_would_wait_for_itself(command)?;
        Ok(self.submit_async(command).await?.await?)
    }

    /// Like [`call_async`](Handle::call_async), but never waits for room: where the policy
    /// would wait, a full queue refuses with [`CallError::Full`] and hands the command back.
    /// It still waits, as a task, for the output.
    ///
    /// # Cancel safety
    ///
    /// The only await point is the wait for the output: the command is accepted (or handed
    /// back) before the first await. Dropping the future then leaves it accepted: it is applied
    /// exactly once and its output is discarded.
    ///
    /// # Errors
    ///
    /// As [`try_call`](Handle::try_call).
    pub async fn try_call_async(
        &self,
        command: S::Command,
    ) -> Result<S::Output, CallError<S::Command>> {
        let command = self.refuse_if_it_would_wait_for_itself(command)?;
        Ok(self.submit_with(command, Limit::NoWait)?.await?)
    }

    /// Like [`call_async`](Handle::call_async), bounded by `timeout` from start to finish,
    /// on any executor (the crate wakes the task at the deadline from a small timer thread of
    /// its own; no timer runtime is needed).
    ///
    /// If the time runs out while waiting for room, the command comes back in
    /// [`CallError::Timeout`]: it was never accepted. If it runs out after the command was
    /// accepted, the call returns [`CallError::ReplyTimeout`]: the command stays accepted
    /// (applied exactly once unless evicted or set aside by a shutdown, as any accepted
    /// command), and its output is discarded (dropped by the worker). So the error always says
    /// whether the command got in, which wrapping `call_async` in an executor's timeout cannot.
    ///
    /// # Cancel safety
    ///
    /// As [`call_async`](Handle::call_async): dropped while waiting for room, the command is
    /// dropped with the future, unaccepted; dropped while waiting for the output, the command
    /// stays accepted and is applied exactly once.
    ///
    /// # Errors
    ///
    /// As [`call_timeout`](Handle::call_timeout).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use singular_queue::{model, CallError, SingularQueue, StateMachine};
    /// # struct Counter(u64);
    /// # impl StateMachine for Counter {
    /// #     type Command = u64;
    /// #     type Output = u64;
    /// #     fn apply(&mut self, add: u64) -> u64 { self.0 += add; self.0 }
    /// # }
    ///
    /// let queue = SingularQueue::new(Counter(0));
    /// let handle = queue.handle();
    /// let answer = model::block_on(handle.call_timeout_async(2, Duration::from_secs(5)));
    /// match answer {
    ///     Ok(total) => assert_eq!(total, 2),
    ///     Err(CallError::Timeout(command)) => println!("never accepted: {command}"),
    ///     Err(CallError::ReplyTimeout) => println!("accepted; do not send it again"),
    ///     Err(other) => println!("{other}"),
    /// }
    /// ```
    pub async fn call_timeout_async(
        &self,
        command: S::Command,
        timeout: Duration,
    ) -> Result<S::Output, CallError<S::Command>> {
        let deadline = Instant::now().checked_add(timeout);
        let command = self.refuse_if_it_would_wait_for_itself(command)?;
        let ticket = self
            .submit_async_with(command, Limit::Within(timeout))
            .await?;
        match deadline {
            None => Ok(ticket.await?),
            Some(deadline) => match ticket.until(deadline).await {
                Some(result) => Ok(result?),
                None => Err(CallError::ReplyTimeout),
            },
        }
    }

    /// Like [`submit`](Handle::submit), from async code: if the policy waits for room
    /// ([`Block`](crate::Block), [`BlockFor`](crate::BlockFor)), the task waits, not the thread.
    /// A [`BlockFor`](crate::BlockFor) deadline needs no timer runtime: the crate wakes the task
    /// from a small timer thread of its own. `Reject` and `DropOldest` behave exactly as
    /// `submit` does.
    ///
    /// # Cancel safety
    ///
    /// The only await point is the wait for room. Dropping the future there drops the command
    /// with it, unaccepted. Once the future returns a ticket the command is accepted.
    ///
    /// # Errors
    ///
    /// As [`submit`](Handle::submit).
    pub async fn submit_async(
        &self,
        command: S::Command,
    ) -> Result<Ticket<S::Output>, SubmitError<S::Command>> {
        self.submit_async_with(command, Limit::Policy).await
    }

    /// Like [`submit_async`](Handle::submit_async), but waits for room at most `timeout` (less
    /// if the policy says so), then refuses with [`SubmitError::Timeout`] and hands the command
    /// back. Any executor; no timer runtime needed.
    ///
    /// # Cancel safety
    ///
    /// As [`submit_async`](Handle::submit_async).
    ///
    /// # Errors
    ///
    /// As [`submit_timeout`](Handle::submit_timeout).
    pub async fn submit_timeout_async(
        &self,
        command: S::Command,
        timeout: Duration,
    ) -> Result<Ticket<S::Output>, SubmitError<S::Command>> {
        self.submit_async_with(command, Limit::Within(timeout))
            .await
    }

    /// Like [`tell`](Handle::tell), from async code: waiting for room suspends the task.
    ///
    /// # Cancel safety
    ///
    /// As [`submit_async`](Handle::submit_async): dropped while waiting for room, the command
    /// is dropped with the future, unaccepted; once the future completes, it is accepted.
    ///
    /// # Errors
    ///
    /// As [`tell`](Handle::tell).
    pub async fn tell_async(&self, command: S::Command) -> Result<(), SubmitError<S::Command>> {
        self.shared
            .send_async(self.lane, command, None, Limit::Policy)
            .await
    }

    /// Like [`tell_async`](Handle::tell_async), but waits for room at most `timeout` (less if
    /// the policy says so), then refuses with [`SubmitError::Timeout`] and hands the command
    /// back.
    ///
    /// # Cancel safety
    ///
    /// As [`tell_async`](Handle::tell_async).
    ///
    /// # Errors
    ///
    /// As [`tell_timeout`](Handle::tell_timeout).
    pub async fn tell_timeout_async(
        &self,
        command: S::Command,
        timeout: Duration,
    ) -> Result<(), SubmitError<S::Command>> {
        self.shared
            .send_async(self.lane, command, None, Limit::Within(timeout))
            .await
    }

    /// Holds a place in the queue for one command, without waiting: a [`Permit`] whose
    /// command is then accepted without waiting and is never refused for room. For a service
    /// that should not read a request, or build a command, the queue has no room for.
    ///
    /// A reservation waits for room whatever the queue's policy (the policy judges commands,
    /// and a reservation has none yet); permits hold room that `DropOldest` cannot evict.
    /// Refused reservations are not counted in [`Stats`]: no command was handed over.
    ///
    /// # Errors
    ///
    /// [`SubmitError::Full`] if the queue has no room, [`SubmitError::Closed`] if it is closed
    /// (each with `()`: no command was handed over).
    ///
    /// # Examples
    ///
    /// ```
    /// use singular_queue::{SingularQueue, StateMachine, SubmitError};
    /// # struct Counter(u64);
    /// # impl StateMachine for Counter {
    /// #     type Command = u64;
    /// #     type Output = u64;
    /// #     fn apply(&mut self, add: u64) -> u64 { self.0 += add; self.0 }
    /// # }
    ///
    /// let mut queue = SingularQueue::builder(Counter(0)).capacity(1).manual();
    /// let handle = queue.handle();
    /// let permit = handle.try_reserve().unwrap();
    /// // The one place is held: nobody else gets in, whatever the policy.
    /// assert!(matches!(handle.try_tell(1), Err(SubmitError::Full(1))));
    /// permit.tell(2).unwrap(); // and the permit's command always does
    /// queue.run_until_idle();
    /// assert_eq!(queue.state().0, 2);
    /// ```
    pub fn try_reserve(&self) -> Result<Permit<'_, S>, SubmitError<()>> {
        self.shared.reserve(self.lane, Limit::NoWait)?;
        Ok(Permit::new(self))
    }

    /// Like [`try_reserve`](Handle::try_reserve), but blocks until there is room.
    ///
    /// # Errors
    ///
    /// [`SubmitError::Closed`] if the queue closes first, and [`SubmitError::Deadlock`] on a
    /// worker that the queue waits for, as for a blocking submit.
    pub fn reserve(&self) -> Result<Permit<'_, S>, SubmitError<()>> {
        self.shared.reserve(self.lane, Limit::Policy)?;
        Ok(Permit::new(self))
    }

    /// Like [`reserve`](Handle::reserve), for at most `timeout`, then refuses with
    /// [`SubmitError::Timeout`].
    ///
    /// # Errors
    ///
    /// As [`reserve`](Handle::reserve), and [`SubmitError::Timeout`].
    pub fn reserve_timeout(&self, timeout: Duration) -> Result<Permit<'_, S>, SubmitError<()>> {
        self.shared.reserve(self.lane, Limit::Within(timeout))?;
        Ok(Permit::new(self))
    }

    /// Like [`reserve`](Handle::reserve), waiting as a task, on any executor.
    ///
    /// # Cancel safety
    ///
    /// Cancel-safe: dropping the future while it waits holds nothing and loses nothing (no
    /// command was handed over), and a place taken is never lost: it is either in the permit
    /// returned or given back.
    ///
    /// # Errors
    ///
    /// As [`reserve`](Handle::reserve).
    ///
    /// # Examples
    ///
    /// ```
    /// use singular_queue::{model, SingularQueue, StateMachine};
    /// # struct Counter(u64);
    /// # impl StateMachine for Counter {
    /// #     type Command = u64;
    /// #     type Output = u64;
    /// #     fn apply(&mut self, add: u64) -> u64 { self.0 += add; self.0 }
    /// # }
    ///
    /// let queue = SingularQueue::new(Counter(0));
    /// let handle = queue.handle();
    /// let total = model::block_on(async {
    ///     let permit = handle.reserve_async().await.unwrap();
    ///     let command = 7; // built only once there is room for it
    ///     permit.submit(command).unwrap().await
    /// });
    /// assert_eq!(total.unwrap(), 7);
    /// ```
    pub async fn reserve_async(&self) -> Result<Permit<'_, S>, SubmitError<()>> {
        self.shared.reserve_async(self.lane, None).await?;
        Ok(Permit::new(self))
    }

    /// Like [`reserve_async`](Handle::reserve_async), for at most `timeout`, then refuses
    /// with [`SubmitError::Timeout`].
    ///
    /// # Cancel safety
    ///
    /// As [`reserve_async`](Handle::reserve_async).
    ///
    /// # Errors
    ///
    /// As [`reserve_timeout`](Handle::reserve_timeout).
    pub async fn reserve_timeout_async(
        &self,
        timeout: Duration,
    ) -> Result<Permit<'_, S>, SubmitError<()>> {
        self.shared.reserve_async(self.lane, Some(timeout)).await?;
        Ok(Permit::new(self))
    }

    /// A snapshot of the queue's counters.
    pub fn stats(&self) -> Stats {
        self.shared.stats()
    }

    /// The queue's name, from [`Builder::name`](crate::Builder::name): a label for its
    /// metrics.
    pub fn name(&self) -> &str {
        self.shared.name()
    }

    /// Whether the queue has stopped accepting commands.
    pub fn is_closed(&self) -> bool {
        self.shared.is_closed()
    }

    /// Closes the queue from any thread, without waiting: later submits, through any handle,
    /// are refused with [`SubmitError::Closed`] (the command handed back); every command
    /// already accepted is still applied; then `on_stop` runs and the worker finishes. The
    /// owner's [`shutdown`](crate::SingularQueue::shutdown) (or drop) still returns (or drops)
    /// the state. Await [`closed`](Handle::closed) for the end. Closing twice is closing once.
    ///
    /// For a service whose queue sits in shared state: a signal handler's task closes it,
    /// tasks await `closed()`, and the owner shuts down to get the state. On a
    /// [`ManualQueue`](crate::ManualQueue) it only closes: the owner's steps still serve what
    /// was accepted.
    ///
    /// # Examples
    ///
    /// ```
    /// use singular_queue::{model, SingularQueue, StateMachine, SubmitError};
    /// # struct Counter(u64);
    /// # impl StateMachine for Counter {
    /// #     type Command = u64;
    /// #     type Output = u64;
    /// #     fn apply(&mut self, add: u64) -> u64 { self.0 += add; self.0 }
    /// # }
    ///
    /// let queue = SingularQueue::new(Counter(0));
    /// let handle = queue.handle();
    /// handle.tell(5).unwrap();
    /// std::thread::spawn(move || handle.close()); // from anywhere
    /// model::block_on(queue.handle().closed()); // every accepted command applied
    /// assert!(matches!(queue.tell(1), Err(SubmitError::Closed(1))));
    /// assert_eq!(queue.shutdown().unwrap().0, 5);
    /// ```
    pub fn close(&self) {
        self.shared.close_from_handle();
    }

    /// Completes once the queue's worker has finished for good: closed (by
    /// [`close`](Handle::close), the owner's shutdown, a poisoning panic followed by shutdown,
    /// or the owner's drop), every accepted command served, `on_stop` run. Any executor; the
    /// crate's own wake-up, no timer. On a [`ManualQueue`](crate::ManualQueue), when its owner
    /// shuts it down.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future only stops waiting; it changes nothing in the queue.
    pub async fn closed(&self) {
        self.shared.closed().await;
    }

    /// How many accepted commands wait for the worker now (not counting the one it may be
    /// applying). Read from a few atomic counters, without the channel's lock, so it is cheap
    /// enough for a health check on every request; like any figure of a running queue it is a
    /// moment's, and a submit under way may count in it for that moment. At most
    /// [`capacity`](Handle::capacity).
    ///
    /// It counts this handle's lane: on a queue with a priority lane, a plain handle's `len`
    /// leaves out the commands waiting in the priority lane, and a
    /// [`priority`](Handle::priority) handle's counts only those. The whole queue's is
    /// [`Stats::depth`](crate::Stats::depth).
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
    /// let mut queue = SingularQueue::builder(Counter(0)).capacity(8).manual();
    /// let handle = queue.handle();
    /// assert!(handle.is_empty());
    /// handle.tell(1).unwrap();
    /// handle.tell(2).unwrap();
    /// assert_eq!((handle.len(), handle.capacity()), (2, 8));
    /// queue.run_until_idle();
    /// assert_eq!(handle.len(), 0);
    /// ```
    pub fn len(&self) -> usize {
        self.shared.len(self.lane)
    }

    /// Whether no accepted command waits for the worker now in this handle's lane:
    /// [`len`](Handle::len) is 0.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many accepted commands this handle's lane holds at most (see
    /// [`Builder::capacity`](crate::Builder::capacity) and
    /// [`Builder::priority_lane`](crate::Builder::priority_lane)); the whole queue's is
    /// [`Stats::capacity`](crate::Stats::capacity).
    pub fn capacity(&self) -> usize {
        self.shared.capacity(self.lane)
    }

    /// Blocks until the queue is quiet: every command it accepted has been served (applied
    /// or set aside, its batch's `on_batch_end` run and its reply delivered) or evicted (its
    /// submitter told and `on_evict` run), and no submit is under way. For tests: submit from
    /// many threads, join them, wait until quiet, then assert, with no sleep in between.
    ///
    /// The queue is quiet once nothing is in flight; under steady load that may not happen
    /// until the load stops. A queue whose worker has finished (shut down) is quiet.
    ///
    /// # Errors
    ///
    /// [`WouldDeadlock`] at once, if the queue is not quiet and this thread is one that what
    /// is left may need: the queue's worker (inside `apply` or a hook), the owner of a
    /// [`ManualQueue`](crate::ManualQueue) (step it instead; it is refused even with nothing
    /// waiting, since a command may land at any time), a thread running the queue's
    /// `on_evict`, or a worker that the queue waits for through a chain of queues.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::atomic::{AtomicU64, Ordering};
    /// use std::sync::Arc;
    /// use std::thread;
    /// use singular_queue::{SingularQueue, StateMachine};
    ///
    /// /// Publishes its total for readers on other threads.
    /// struct Published(Arc<AtomicU64>);
    ///
    /// impl StateMachine for Published {
    ///     type Command = u64;
    ///     type Output = ();
    ///     fn apply(&mut self, add: u64) {
    ///         self.0.fetch_add(add, Ordering::Release);
    ///     }
    /// }
    ///
    /// let total = Arc::new(AtomicU64::new(0));
    /// let queue = SingularQueue::new(Published(Arc::clone(&total)));
    /// thread::scope(|scope| {
    ///     for _ in 0..4 {
    ///         let handle = queue.handle();
    ///         scope.spawn(move || (0..100).for_each(|_| handle.tell(1).unwrap()));
    ///     }
    /// });
    /// queue.wait_until_quiet().unwrap();
    /// assert_eq!(total.load(Ordering::Acquire), 400);
    /// ```
    pub fn wait_until_quiet(&self) -> Result<(), WouldDeadlock> {
        self.shared.wait_until_quiet(None).map(|_| ())
    }

    /// Like [`wait_until_quiet`](Handle::wait_until_quiet), for at most `timeout`: `Ok(true)`
    /// if the queue became quiet, `Ok(false)` if the time ran out first.
    ///
    /// # Errors
    ///
    /// As [`wait_until_quiet`](Handle::wait_until_quiet).
    pub fn wait_until_quiet_timeout(&self, timeout: Duration) -> Result<bool, WouldDeadlock> {
        let deadline = Instant::now().checked_add(timeout);
        self.shared.wait_until_quiet(deadline)
    }

    fn submit_with(
        &self,
        command: S::Command,
        limit: Limit,
    ) -> Result<Ticket<S::Output>, SubmitError<S::Command>> {
        let (reply, slot) = reply::pair();
        self.shared.send(self.lane, command, Some(reply), limit)?;
        Ok(self.ticket(slot))
    }

    async fn submit_async_with(
        &self,
        command: S::Command,
        limit: Limit,
    ) -> Result<Ticket<S::Output>, SubmitError<S::Command>> {
        let (reply, slot) = reply::pair();
        self.shared
            .send_async(self.lane, command, Some(reply), limit)
            .await?;
        Ok(self.ticket(slot))
    }

    pub(crate) fn ticket(&self, slot: Arc<Slot<S::Output>>) -> Ticket<S::Output> {
        Ticket::new(slot, self.shared.wait_strategy(), self.shared.id())
    }

    /// Submits for a call and waits for the output until `deadline`, if there is one. The reply
    /// travels through the thread's spare slot, so a steady stream of calls allocates nothing.
    /// Refused on a worker that this queue waits for, which would wait for itself.
    fn round_trip(
        &self,
        command: S::Command,
        limit: Limit,
        deadline: Option<Instant>,
    ) -> Result<S::Output, CallError<S::Command>> {
        let (reply, slot) = spare::pair();
        // Recorded on the slot before the command is sent, so the reply settles it.
        let _waiting = match slot.wait_for(self.shared.id(), Awaited::Output) {
            Ok(waiting) => waiting,
            Err(WouldDeadlock) => {
                drop(reply);
                spare::give_back(slot);
                return Err(self.refuse_waiting(command));
            }
        };
        let outcome = match self.shared.send(self.lane, command, Some(reply), limit) {
            Err(refused) => Err(refused.into()),
            Ok(()) => match deadline {
                None => Ok(slot.wait(self.shared.wait_strategy())?),
                Some(deadline) => match slot.wait_until_or_abandon(deadline) {
                    Some(result) => Ok(result?),
                    None => Err(CallError::ReplyTimeout),
                },
            },
        };
        // A call that gave up waiting abandoned its slot: the worker drops the late output
        // itself, under `catch`, and the slot is not kept for the thread's next call.
        if !matches!(outcome, Err(CallError::ReplyTimeout)) {
            spare::give_back(slot);
        }
        outcome
    }

    /// For an async call: the command back, unless an executor that blocks this thread
    /// (inside `apply`, or on the thread that steps a manual queue) would wait for itself
    /// because the queue, through any chain of queues, waits for this thread. Then it is
    /// refused, as a blocking call is.
    fn refuse_if_it_would_wait_for_itself(
        &self,
        command: S::Command,
    ) -> Result<S::Command, CallError<S::Command>> {
        match waits::wait_for(self.shared.id()) {
            Ok(_) => Ok(command),
            Err(WouldDeadlock) => Err(self.refuse_waiting(command)),
        }
    }

    /// The refusal of a call that would never return: this thread is the queue's worker, or
    /// a worker that the queue waits for. Told apart only on refusal, so that a call's hot
    /// path reads the worker mark once.
    fn refuse_waiting(&self, command: S::Command) -> CallError<S::Command> {
        let refusal = if self.shared.is_worker() {
            CallError::Reentrant(command)
        } else {
            CallError::Deadlock(command)
        };
        self.shared.refuse_call(self.lane, refusal)
    }

    pub(crate) fn shared(&self) -> &Shared<S> {
        &self.shared
    }

    /// The lane this handle's commands go to.
    pub(crate) fn lane(&self) -> LaneId {
        self.lane
    }
}

impl<S: StateMachine> Clone for Handle<S> {
    fn clone(&self) -> Self {
        Self {
            shared: Arc::clone(&self.shared),
            lane: self.lane,
        }
    }
}

impl<S: StateMachine> fmt::Debug for Handle<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handle")
            .field("priority", &(self.lane == LaneId::Priority))
            .field("closed", &self.is_closed())
            .finish_non_exhaustive()
    }
}
