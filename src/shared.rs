//! The part of a queue that its handles, its owner and its worker share.

use crate::backpressure::{Backpressure, Decision, Limit, Load};
use std::future::poll_fn;
use std::task::Poll;
use std::time::Duration;

use crate::gate::Gate;
use crate::message::Message;
use crate::reentrancy;
use crate::reply::Reply;
use crate::room::Room;
use crate::stats::{Counters, Padded};
use crate::sync::atomic::{AtomicBool, Ordering};
use crate::sync::channel::{Receiver, SendTimeoutError, Sender, TrySendError};
use crate::sync::{Instant, spin_hint};
use crate::timer::Alarm;
use crate::wait::Backoff;
use crate::{CallError, StateMachine, Stats, SubmitError, WaitError, WaitStrategy};

/// Receives each command that [`DropOldest`](crate::DropOldest) evicts.
pub(crate) type OnEvict<C> = Box<dyn Fn(C) + Send + Sync>;

/// How submitters behave, as the builder set it.
pub(crate) struct SubmitConfig<C> {
    pub(crate) capacity: usize,
    pub(crate) policy: Box<dyn Backpressure<C>>,
    pub(crate) on_evict: Option<OnEvict<C>>,
    /// Whether to stamp each command with the time it was accepted.
    pub(crate) track_queue_time: bool,
    /// How callers wait for their tickets, and the worker for commands.
    pub(crate) wait: WaitStrategy,
}

pub(crate) struct Shared<S: StateMachine> {
    tx: Sender<Message<S>>,
    /// A receiver for the submit side, used only to evict the oldest command.
    rx: Receiver<Message<S>>,
    /// Every submitter writes the gate: on a cache line of its own.
    gate: Padded<Gate>,
    room: Room,
    config: SubmitConfig<S::Command>,
    pub(crate) counters: Counters,
    /// Set by `shutdown_now`: the worker sets aside every command it receives from then on.
    stop_now: AtomicBool,
}

type Refusal<S> = SubmitError<Message<S>>;

impl<S: StateMachine> Shared<S> {
    pub(crate) fn new(
        (tx, rx): (Sender<Message<S>>, Receiver<Message<S>>),
        config: SubmitConfig<S::Command>,
    ) -> Self {
        Self {
            tx,
            rx,
            gate: Padded::new(Gate::new()),
            room: Room::new(),
            config,
            counters: Counters::default(),
            stop_now: AtomicBool::new(false),
        }
    }

    /// Hands a command to the worker, or back to the caller with the reason it was refused.
    pub(crate) fn send(
        &self,
        command: S::Command,
        reply: Option<Reply<S::Output>>,
        limit: Limit,
    ) -> Result<(), SubmitError<S::Command>> {
        let Some(_pass) = self.gate.enter() else {
            return Err(self.refused(SubmitError::Closed(command)));
        };
        let (message, decision) = self.prepare(command, reply, limit);
        self.settle(self.offer(message, decision))
    }

    /// Like [`send`](Shared::send), but a submitter that must wait for room waits as a task,
    /// without blocking its thread. Dropping the future while it waits drops the command with
    /// it, unaccepted.
    pub(crate) async fn send_async(
        &self,
        command: S::Command,
        reply: Option<Reply<S::Output>>,
    ) -> Result<(), SubmitError<S::Command>> {
        let (message, timeout) = {
            let Some(_pass) = self.gate.enter() else {
                return Err(self.refused(SubmitError::Closed(command)));
            };
            let (message, decision) = self.prepare(command, reply, Limit::Policy);
            match decision {
                Decision::Wait => (message, None),
                Decision::WaitFor(timeout) => (message, Some(timeout)),
                other => return self.settle(self.offer(message, other)),
            }
        };
        // No pass is held while the task waits: a task that is never polled again must not
        // hold up a shutdown. Each attempt enters the gate afresh.
        self.settle(self.offer_async(message, timeout).await)
    }

    /// Asks the policy what to do if the queue is full, and wraps the command for the channel.
    fn prepare(
        &self,
        command: S::Command,
        reply: Option<Reply<S::Output>>,
        limit: Limit,
    ) -> (Message<S>, Decision) {
        // The worker must never wait for room in its own queue: it is the one who makes room.
        let limit = if self.is_worker() {
            Limit::NoWait
        } else {
            limit
        };
        let depth = || self.tx.len();
        let load = Load::new(self.config.capacity, &depth);
        let decision = limit.cap(self.config.policy.decide(&command, &load));
        let enqueued = self.config.track_queue_time.then(Instant::now);
        let message = Message::Apply {
            command,
            reply,
            enqueued,
        };
        (message, decision)
    }

    /// Counts an offer's outcome, and hands a refused command back.
    fn settle(&self, offered: Result<(), Refusal<S>>) -> Result<(), SubmitError<S::Command>> {
        match offered {
            Ok(()) => {
                self.counters.submit.submitted.add(1);
                Ok(())
            }
            Err(refusal) => Err(self.refused(refusal.map(Message::into_command))),
        }
    }

    /// Offers a message, waiting as a task for room until it fits or `timeout` passes, or the
    /// queue closes.
    async fn offer_async(
        &self,
        message: Message<S>,
        timeout: Option<Duration>,
    ) -> Result<(), Refusal<S>> {
        let deadline = timeout.and_then(|timeout| Instant::now().checked_add(timeout));
        let mut message = Some(message);
        // Cancelled when the future completes or is dropped.
        let mut alarm: Option<Alarm> = None;
        poll_fn(|cx| {
            let pending = message.take().expect("polled after completion");
            let Some(_pass) = self.gate.enter() else {
                return Poll::Ready(Err(SubmitError::Closed(pending)));
            };
            let pending = match self.try_offer(pending) {
                Ok(result) => return Poll::Ready(result),
                Err(full) => full,
            };
            // Register, then try once more: a slot freed in between would wake nobody.
            self.room.register(cx.waker());
            let pending = match self.try_offer(pending) {
                Ok(result) => return Poll::Ready(result),
                Err(full) => full,
            };
            if let Some(deadline) = deadline {
                if Instant::now() >= deadline {
                    return Poll::Ready(Err(SubmitError::Timeout(pending)));
                }
                // Armed for the waker of this poll: a task that moved must be the one woken.
                if !alarm.as_ref().is_some_and(|alarm| alarm.wakes(cx.waker())) {
                    alarm = Some(Alarm::set(deadline, cx.waker()));
                }
            }
            message = Some(pending);
            Poll::Pending
        })
        .await
    }

    /// One non-blocking offer: `Ok` with the outcome, or `Err` with the message if full.
    fn try_offer(&self, message: Message<S>) -> Result<Result<(), Refusal<S>>, Message<S>> {
        match self.tx.try_send(message) {
            Ok(()) => Ok(Ok(())),
            Err(TrySendError::Full(message)) => Err(message),
            Err(TrySendError::Disconnected(message)) => Ok(Err(SubmitError::Closed(message))),
        }
    }

    /// Called by the worker each time it takes a message: wakes async submitters waiting for room.
    pub(crate) fn slot_freed(&self) {
        self.room.wake_all();
    }

    /// Offers a message to the channel and carries out `decision` if it is full.
    fn offer(&self, message: Message<S>, decision: Decision) -> Result<(), Refusal<S>> {
        if decision == Decision::Reject {
            return Err(SubmitError::Full(message));
        }
        let message = match self.try_offer(message) {
            Ok(offered) => return offered,
            Err(full) => full,
        };
        match decision {
            Decision::Wait => self.send_waiting(message),
            Decision::WaitFor(timeout) => {
                self.tx
                    .send_timeout(message, timeout)
                    .map_err(|error| match error {
                        SendTimeoutError::Timeout(message) => SubmitError::Timeout(message),
                        SendTimeoutError::Disconnected(message) => SubmitError::Closed(message),
                    })
            }
            Decision::EvictOldest => self.send_evicting(message),
            Decision::RejectIfFull | Decision::Reject => Err(SubmitError::Full(message)),
        }
    }

    /// Waits for room: retrying first, then blocking in the channel. A sender blocked in the
    /// channel costs the worker a wake-up per command it frees room for; a retrying one costs
    /// it nothing. The retries are bounded even under `BusySpin`: room may take as long as the
    /// slowest `apply` or `on_batch_end`, and a producer must not burn a core for that long.
    fn send_waiting(&self, mut message: Message<S>) -> Result<(), Refusal<S>> {
        let strategy = match self.config.wait {
            WaitStrategy::BusySpin => WaitStrategy::SpinThenPark,
            other => other,
        };
        let mut backoff = Backoff::new(strategy);
        while !backoff.is_completed() {
            backoff.snooze();
            message = match self.try_offer(message) {
                Ok(offered) => return offered,
                Err(full) => full,
            };
        }
        self.tx
            .send(message)
            .map_err(|error| SubmitError::Closed(error.into_inner()))
    }

    /// Evicts the oldest waiting command until `message` fits (hazard 2).
    ///
    /// Other submitters may take the slot we freed, and the worker may empty the queue under
    /// us; either way we just try again. The worker removes a command from the channel before
    /// applying it, so the command in progress can never be evicted.
    fn send_evicting(&self, mut message: Message<S>) -> Result<(), Refusal<S>> {
        loop {
            message = match self.try_offer(message) {
                Ok(offered) => return offered,
                Err(full) => full,
            };
            match self.rx.try_recv() {
                Ok(oldest) => self.evict(oldest),
                // The worker emptied the queue under us: the next try will fit, or race again.
                Err(_) => spin_hint(),
            }
        }
    }

    /// Tells an evicted command's submitter, then hands the command to `on_evict`.
    fn evict(&self, message: Message<S>) {
        let Message::Apply { command, reply, .. } = message else {
            unreachable!("Stop is sent only once no submitter is inside the gate");
        };
        self.counters.submit.dropped.add(1);
        if let Some(reply) = reply {
            reply.send(Err(WaitError::Dropped));
        }
        if let Some(on_evict) = &self.config.on_evict {
            on_evict(command);
        }
    }

    /// Counts a refusal by its reason.
    fn refused<T>(&self, refusal: SubmitError<T>) -> SubmitError<T> {
        let counter = match refusal {
            SubmitError::Closed(_) => &self.counters.submit.refused_closed,
            SubmitError::Full(_) => &self.counters.submit.rejected,
            SubmitError::Timeout(_) => &self.counters.submit.timed_out,
        };
        counter.add(1);
        refusal
    }

    /// Closes the gate, waits until no submitter is mid-send, then sends the worker its last
    /// message. Every command accepted before this returns is ahead of `Stop` in the channel.
    pub(crate) fn close_and_stop(&self, now: bool) {
        if now {
            self.stop_now.store(true, Ordering::Release);
        }
        self.close();
        self.gate.wait_quiet();
        // The worker catches every panic of user code, so it is alive to receive this.
        let _ = self.tx.send(Message::Stop);
    }

    /// Refuses every later submit; used by the worker when the state is poisoned.
    pub(crate) fn close(&self) {
        self.gate.close();
        // Tasks waiting for room find the gate closed when they look again.
        self.room.wake_all();
    }

    pub(crate) fn wait_strategy(&self) -> WaitStrategy {
        self.config.wait
    }

    /// Whether the current thread is this queue's worker.
    pub(crate) fn is_worker(&self) -> bool {
        reentrancy::is_worker(self)
    }

    /// Counts a command refused because the worker called its own queue.
    pub(crate) fn refuse_reentrant(&self, command: S::Command) -> CallError<S::Command> {
        self.counters.submit.rejected.add(1);
        CallError::Reentrant(command)
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.gate.is_closed()
    }

    /// Whether `shutdown_now` asked the worker to stop applying.
    pub(crate) fn stopping_now(&self) -> bool {
        self.stop_now.load(Ordering::Acquire)
    }

    pub(crate) fn stats(&self) -> Stats {
        self.counters.snapshot(self.tx.len(), self.config.capacity)
    }
}
