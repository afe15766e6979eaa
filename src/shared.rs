//! The part of a queue that its handles, its owner and its worker share. Reserving places
//! for permits is in `reservation`, evicting under `DropOldest` in `eviction`, telling many
//! commands at once in `bulk`.

mod bulk;
mod eviction;
mod lane;
mod reservation;

pub(crate) use lane::{Lane, LaneConfig, LaneId};

use crate::backpressure::{Decision, Limit, Load};
use std::future::poll_fn;
use std::task::Poll;
use std::time::Duration;

use crate::commit::Outcome;
use crate::gate::Gate;
use crate::message::{Message, Visit};
use crate::reply::Reply;
use crate::room::Room;
use crate::stats::{Counters, Padded};
use crate::sync::Instant;
use crate::sync::atomic::{AtomicBool, Ordering, fence};
use crate::sync::channel::Receiver;
use crate::timer::Deadline;
use crate::wait::Backoff;
use crate::waits::{self, QueueId};
use crate::{CallError, StateMachine, Stats, SubmitError, WaitStrategy, WouldDeadlock};

/// Receives each command that [`DropOldest`](crate::DropOldest) evicts.
pub(crate) type OnEvict<C> = Box<dyn Fn(C) + Send + Sync>;

/// How submitters behave, as the builder set it.
pub(crate) struct SubmitConfig<C> {
    pub(crate) normal: LaneConfig<C>,
    pub(crate) priority: Option<LaneConfig<C>>,
    pub(crate) on_evict: Option<OnEvict<C>>,
    /// Whether to stamp each command with the time it was accepted.
    pub(crate) track_queue_time: bool,
    /// How callers wait for their tickets, and the worker for commands.
    pub(crate) wait: WaitStrategy,
}

pub(crate) struct Shared<S: StateMachine> {
    /// Every queue's lane; the worker's other messages (reads, markers, commit reports,
    /// stops, doorbells) go through its channel too.
    normal: Lane<S>,
    priority: Option<Lane<S>>,
    /// Set while the worker sleeps on the normal lane: a priority submit rings the doorbell.
    asleep: AtomicBool,
    /// Every submitter writes the gate: on a cache line of its own.
    gate: Padded<Gate>,
    /// Where threads wait until the queue is quiet.
    quiet: Room,
    /// Where tasks wait for the worker's end (`closed()`): woken once, not after every batch.
    ended: Room,
    /// Set when the worker has finished for good: nothing more will be served.
    worker_gone: AtomicBool,
    /// Set when a handle closed the queue: the worker finishes on its own, and keeps what it
    /// hands back for the owner's shutdown.
    closing: AtomicBool,
    on_evict: Option<OnEvict<S::Command>>,
    /// Whether to stamp each command with the time it was accepted.
    track_queue_time: bool,
    wait: WaitStrategy,
    pub(crate) counters: Counters,
    /// Set by `shutdown_now`: the worker sets aside every command it receives from then on.
    stop_now: AtomicBool,
    /// Set when the owner let go of the queue where it could not wait for the worker (on the
    /// worker itself): the worker finishes on its own and drops the state.
    orphaned: AtomicBool,
    name: String,
}

type Refusal<S> = SubmitError<Message<S>>;

/// A command and its reply, not yet sent.
type Unsent<S> = (
    <S as StateMachine>::Command,
    Option<Reply<<S as StateMachine>::Output>>,
);

/// What became of an offer that did not wait.
enum Offered<S: StateMachine> {
    /// Accepted, or refused for good.
    Done(Result<(), Refusal<S>>),
    /// Accepted (or refused as closed) after evicting this command, whose submitter is yet
    /// to be told.
    Evicted(Result<(), Refusal<S>>, Message<S>),
    /// The queue is full and the decision is to wait for room, at most this long if a time
    /// is given, evicting if a command comes to evict.
    Full(Waiting<S>),
}

/// A message waiting for room, as the policy decided.
struct Waiting<S: StateMachine> {
    message: Message<S>,
    timeout: Option<Duration>,
    /// `DropOldest` waiting while permits hold every place: each try evicts if it can.
    evicting: bool,
}

impl<S: StateMachine> Shared<S> {
    pub(crate) fn new(config: SubmitConfig<S::Command>, name: String) -> Self {
        Self {
            normal: Lane::new(LaneId::Normal, config.normal),
            priority: (config.priority).map(|lane| Lane::new(LaneId::Priority, lane)),
            asleep: AtomicBool::new(false),
            gate: Padded::new(Gate::new()),
            quiet: Room::new(),
            ended: Room::new(),
            worker_gone: AtomicBool::new(false),
            closing: AtomicBool::new(false),
            on_evict: config.on_evict,
            track_queue_time: config.track_queue_time,
            wait: config.wait,
            counters: Counters::default(),
            stop_now: AtomicBool::new(false),
            orphaned: AtomicBool::new(false),
            name,
        }
    }

    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// This queue's identity, for the wait-for checks.
    pub(crate) fn id(&self) -> QueueId {
        waits::id_of(self)
    }

    /// Hands a command to the worker, or back to the caller with the reason it was refused.
    pub(crate) fn send(
        &self,
        lane: LaneId,
        command: S::Command,
        reply: Option<Reply<S::Output>>,
        limit: Limit,
    ) -> Result<(), SubmitError<S::Command>> {
        let lane = self.lane(lane);
        let (command, reply) = match self.send_if_room(lane, command, reply) {
            Ok(sent) => return sent,
            Err(full) => full,
        };
        let waiting = match self.first_offer(lane, command, reply, limit)? {
            Offered::Full(waiting) => waiting,
            offered => return self.settled(lane, offered),
        };
        let mut evicted = Vec::new();
        let attempt = |message| self.attempt(lane, message, waiting.evicting, &mut evicted);
        let outcome = self.wait_for_room(lane, waiting.message, waiting.timeout, attempt);
        self.tell_evicted(lane, evicted);
        self.settle(lane, outcome)
    }

    /// Settles an offer that did not wait: tells an evicted command's submitter, and hands a
    /// refused command back.
    fn settled(&self, lane: &Lane<S>, offered: Offered<S>) -> Result<(), SubmitError<S::Command>> {
        match offered {
            Offered::Done(outcome) => self.settle(lane, outcome),
            Offered::Evicted(outcome, oldest) => {
                self.tell_evicted(lane, vec![oldest]);
                self.settle(lane, outcome)
            }
            Offered::Full(waiting) => self.settle(lane, Err(SubmitError::Full(waiting.message))),
        }
    }

    /// Like [`send`](Shared::send), but a submitter that must wait for room waits as a task,
    /// without blocking its thread. Dropping the future while it waits drops the command with
    /// it, unaccepted.
    pub(crate) async fn send_async(
        &self,
        lane: LaneId,
        command: S::Command,
        reply: Option<Reply<S::Output>>,
        limit: Limit,
    ) -> Result<(), SubmitError<S::Command>> {
        let lane = self.lane(lane);
        let (command, reply) = match self.send_if_room(lane, command, reply) {
            Ok(sent) => return sent,
            Err(full) => full,
        };
        let waiting = match self.first_offer(lane, command, reply, limit)? {
            Offered::Full(waiting) => waiting,
            offered => return self.settled(lane, offered),
        };
        let mut evicted = Vec::new();
        let attempt = |message| self.attempt(lane, message, waiting.evicting, &mut evicted);
        let outcome = self
            .wait_for_room_async(lane, waiting.message, waiting.timeout, attempt)
            .await;
        self.tell_evicted(lane, evicted);
        self.settle(lane, outcome)
    }

    /// The whole of a submit while the queue has room, under a built-in policy (which acts only
    /// when the queue is full, so there is nothing to ask it): through the gate, into a free
    /// place, into the channel. `Err` with the command if that was not the whole of it: the
    /// queue was full, or its policy is the user's own.
    #[inline]
    fn send_if_room(
        &self,
        lane: &Lane<S>,
        command: S::Command,
        reply: Option<Reply<S::Output>>,
    ) -> Result<Result<(), SubmitError<S::Command>>, Unsent<S>> {
        if lane.policy.fixed().is_none() {
            return Err((command, reply));
        }
        let Some(_pass) = self.gate.enter() else {
            return Ok(Err(lane.refused(SubmitError::Closed(command))));
        };
        if !lane.vacancies.try_take() {
            return Err((command, reply));
        }
        Ok(self.settle(lane, self.send_held(lane, self.message(command, reply))))
    }

    /// Asks the policy, enters the gate, and offers the command once: everything a submit does
    /// before it may have to wait. No pass is held while the policy decides, while waiting for
    /// room, nor while evicted commands' submitters are told and `on_evict` runs: a submitter
    /// must not hold up a shutdown, nor a worker finishing on its own, while it waits or runs
    /// foreign code (an `on_evict`, or a policy, that calls a queue whose worker waits for
    /// this one's, as a shard at a snapshot's cut does, would deadlock: found by review).
    fn first_offer(
        &self,
        lane: &Lane<S>,
        command: S::Command,
        reply: Option<Reply<S::Output>>,
        limit: Limit,
    ) -> Result<Offered<S>, SubmitError<S::Command>> {
        // A built-in policy acts only when the queue is full: nothing to ask before the offer.
        let decision = lane.policy.fixed().unwrap_or_else(|| {
            let depth = || lane.len();
            lane.policy
                .decide(&command, &Load::new(lane.capacity, &depth))
        });
        let Some(_pass) = self.gate.enter() else {
            return Err(lane.refused(SubmitError::Closed(command)));
        };
        Ok(self.offer(
            lane,
            self.message(command, reply),
            limit.cap(decision),
            limit,
        ))
    }

    /// Wraps a command for the channel.
    fn message(&self, command: S::Command, reply: Option<Reply<S::Output>>) -> Message<S> {
        let enqueued = self.track_queue_time.then(Instant::now);
        Message::Apply {
            command,
            reply,
            enqueued,
        }
    }

    /// Hands a refused command back, counted by its reason.
    fn settle(
        &self,
        lane: &Lane<S>,
        offered: Result<(), Refusal<S>>,
    ) -> Result<(), SubmitError<S::Command>> {
        offered.map_err(|refusal| lane.refused(refusal.map(Message::into_command)))
    }

    /// Offers a message to the channel and carries out `decision` if it is full, except
    /// waiting, which it leaves to the caller. `limit` caps any wait the offer falls back to.
    fn offer(
        &self,
        lane: &Lane<S>,
        message: Message<S>,
        decision: Decision,
        limit: Limit,
    ) -> Offered<S> {
        if decision == Decision::Reject {
            return Offered::Done(Err(SubmitError::Full(message)));
        }
        let message = match self.try_offer(lane, message) {
            Ok(offered) => return Offered::Done(offered),
            Err(full) => full,
        };
        match decision {
            Decision::EvictOldest => self.send_evicting(lane, message, limit),
            decision => Self::wait_or_refuse(message, decision, false),
        }
    }

    /// A full queue's answer for `message` under `decision`: wait (evicting while waiting, if
    /// `evicting`) or refuse.
    fn wait_or_refuse(message: Message<S>, decision: Decision, evicting: bool) -> Offered<S> {
        let timeout = match decision {
            Decision::Wait => None,
            Decision::WaitFor(timeout) => Some(timeout),
            _ => return Offered::Done(Err(SubmitError::Full(message))),
        };
        Offered::Full(Waiting {
            message,
            timeout,
            evicting,
        })
    }

    /// One non-blocking offer: `Ok` with the outcome, or `Err` with the message if full.
    fn try_offer(
        &self,
        lane: &Lane<S>,
        message: Message<S>,
    ) -> Result<Result<(), Refusal<S>>, Message<S>> {
        if !lane.vacancies.try_take() {
            return Err(message);
        }
        Ok(self.send_held(lane, message))
    }

    /// Sends a message whose vacancy this submitter holds. `submitted` is counted before the
    /// send, so that no snapshot shows a command applied before it was submitted, and taken
    /// back if the channel refuses (it cannot while `Shared` holds the receiver).
    #[inline(always)]
    fn send_held(&self, lane: &Lane<S>, message: Message<S>) -> Result<(), Refusal<S>> {
        let places = message.places();
        lane.counters.submitted.add(places as u64);
        lane.tx
            .try_send(message)
            .map_err(|refused| self.unsent(lane, refused.into_inner(), places))?;
        if lane.id == LaneId::Priority {
            self.ring_the_doorbell();
        }
        Ok(())
    }

    /// Takes back what `send_held` did for a message the channel refused.
    #[cold]
    fn unsent(&self, lane: &Lane<S>, message: Message<S>, places: usize) -> Refusal<S> {
        lane.counters.submitted.sub(places as u64);
        lane.slots_freed(places);
        // A thread waiting for quiet may have seen this submit as under way.
        self.quiet.wake_all_after_change();
        SubmitError::Closed(message)
    }

    /// A waiter's look for room, after it registered its waker: flags the wait on the
    /// vacancies' word, then tries. A vacancy given back before the flag is found by the try;
    /// one given back after it finds the flag and wakes the room.
    fn look_for_room<T, R>(lane: &Lane<S>, pending: T, attempt: &mut impl FnMut(T) -> R) -> R {
        lane.vacancies.flag_waiting();
        attempt(pending)
    }

    /// One try through the gate, for a submitter that waits for room: `Ok` with the outcome
    /// (refused if the queue has closed since), or `Err` with the message if still full.
    /// If `evicting`, a command evicted to make room is added to `evicted`, to be told once
    /// the pass is dropped.
    fn attempt(
        &self,
        lane: &Lane<S>,
        message: Message<S>,
        evicting: bool,
        evicted: &mut Vec<Message<S>>,
    ) -> Result<Result<(), Refusal<S>>, Message<S>> {
        let Some(_pass) = self.gate.enter() else {
            return Ok(Err(SubmitError::Closed(message)));
        };
        if !evicting {
            return self.try_offer(lane, message);
        }
        self.try_evicting(lane, message)
            .map(|offered| match offered {
                Offered::Evicted(outcome, oldest) => {
                    evicted.push(oldest);
                    outcome
                }
                Offered::Done(outcome) => outcome,
                Offered::Full(_) => unreachable!("one try never decides to wait"),
            })
    }

    /// Waits on this thread for room until `attempt` takes `pending` in (a message, or a
    /// reservation), `timeout` passes, or the queue closes. `attempt` hands `pending` back
    /// while the queue is full. Refused at once if this thread is a worker that this queue
    /// (through any chain of queues) waits for: the room would never come (hazards 5 and 11).
    ///
    /// A few retries come first (spin, then yield; never busy-spinning, since room may take as
    /// long as the slowest `apply`): a submitter that sleeps costs the worker a wake-up.
    fn wait_for_room<T>(
        &self,
        lane: &Lane<S>,
        mut pending: T,
        timeout: Option<Duration>,
        mut attempt: impl FnMut(T) -> Result<Result<(), SubmitError<T>>, T>,
    ) -> Result<(), SubmitError<T>> {
        let Ok(_waiting) = waits::wait_for_room(self.id()) else {
            return Err(SubmitError::Deadlock(pending));
        };
        let deadline = timeout.and_then(|timeout| Instant::now().checked_add(timeout));
        let mut backoff = Backoff::new(match self.wait {
            WaitStrategy::BusySpin => WaitStrategy::SpinThenPark,
            other => other,
        });
        while !backoff.is_completed() {
            backoff.snooze();
            pending = match attempt(pending) {
                Ok(outcome) => return outcome,
                Err(full) => full,
            };
        }
        // Register, then try once more: a slot freed in between would wake nobody.
        let mut pending = Some(pending);
        let outcome = lane.room.wait_until(deadline, || {
            match Self::look_for_room(lane, pending.take().expect("still pending"), &mut attempt) {
                Ok(outcome) => Some(outcome),
                Err(full) => {
                    pending = Some(full);
                    None
                }
            }
        });
        outcome.unwrap_or_else(|| {
            let pending = pending.expect("what timed out is still pending");
            Err(SubmitError::Timeout(pending))
        })
    }

    /// Like [`wait_for_room`](Shared::wait_for_room), waiting as a task. The task's waker is
    /// registered for room only while the future lives. A worker that polls this (an
    /// executor run inside `apply`) would wait for itself if the queue, through any chain of
    /// queues, waits for it: refused. The task's wait is not recorded: the executor, not this
    /// crate, decides whether the thread blocks.
    async fn wait_for_room_async<T>(
        &self,
        lane: &Lane<S>,
        pending: T,
        timeout: Option<Duration>,
        mut attempt: impl FnMut(T) -> Result<Result<(), SubmitError<T>>, T>,
    ) -> Result<(), SubmitError<T>> {
        if waits::wait_for_room(self.id()).is_err() {
            return Err(SubmitError::Deadlock(pending));
        }
        let mut deadline = timeout
            .and_then(|timeout| Instant::now().checked_add(timeout))
            .map(Deadline::new);
        let mut message = Some(pending);
        let mut registration = lane.room.registration();
        poll_fn(|cx| {
            let pending = message.take().expect("polled after completion");
            let pending = match attempt(pending) {
                Ok(result) => return Poll::Ready(result),
                Err(full) => full,
            };
            // Register, then try once more: a slot freed in between would wake nobody.
            registration.register_then_look(cx.waker());
            let pending = match Self::look_for_room(lane, pending, &mut attempt) {
                Ok(result) => return Poll::Ready(result),
                Err(full) => full,
            };
            if let Some(deadline) = &mut deadline {
                if deadline.passed_or_arm(cx.waker()) {
                    return Poll::Ready(Err(SubmitError::Timeout(pending)));
                }
            }
            message = Some(pending);
            let queue = self.id();
            waits::note_pending(move || waits::wait_for_room(queue));
            Poll::Pending
        })
        .await
    }

    /// Hands the worker code to run on the state after the commands accepted so far, through
    /// the gate but holding no place; or gives it back if the queue is closed.
    pub(crate) fn visit(&self, visit: Visit<S>) -> Result<(), Visit<S>> {
        let Some(_pass) = self.gate.enter() else {
            return Err(visit);
        };
        self.normal
            .tx
            .try_send(Message::Visit(visit))
            .map_err(|refused| {
                let Message::Visit(visit) = refused.into_inner() else {
                    unreachable!("the channel gives back what it was given")
                };
                visit
            })
    }

    /// Called by the worker for commands it has taken out of `lane`: counts them, gives
    /// their vacancies back and wakes submitters waiting for room.
    pub(crate) fn taken(&self, lane: LaneId, count: usize) {
        let lane = self.lane(lane);
        lane.counters.taken.bump(count as u64);
        lane.slots_freed(count);
    }

    /// Called by a commit thread when a commit's job has run: tells the worker, through the
    /// channel, outside the gate (the worker waits for every job it handed over before it
    /// finishes, so it receives this even after the owner's `Stop`).
    pub(crate) fn report_commit(&self, seq: u64, outcome: Outcome) {
        let _ = self.normal.tx.send(Message::Committed { seq, outcome });
    }

    /// Called by the worker when a batch of `taken` commands is done with: applied or set
    /// aside, `on_batch_end` run, replies delivered.
    pub(crate) fn batch_served(&self, taken: usize) {
        self.counters.worker.served.bump(taken as u64);
        self.quiet.wake_all_after_change();
    }

    /// Called by the worker when it has finished for good.
    pub(crate) fn worker_finished(&self) {
        self.worker_gone.store(true, Ordering::Release);
        self.quiet.wake_all_after_change();
        self.ended.wake_all_after_change();
    }

    /// Closes the queue from a handle, without waiting: later submits are refused, and the
    /// worker finishes on its own once it has served what was accepted. A closer that finds
    /// the gate open nudges a worker that may be asleep on an empty channel (a busy worker
    /// reads the flag after each batch); a worker finishing alone waits until the gate is
    /// quiet before its last look, so it finds the nudge. A gate already closed needs no
    /// nudge: the owner is stopping the worker, or the worker is finishing on its own
    /// (orphaned, poisoned, or closed by a closer that nudged first). Every closer closes the
    /// gate itself before it returns, so no submit after a `close` returns is accepted,
    /// however many handles close at once (two nudges are two nudges: harmless, as is a nudge
    /// left behind, since the channel has no bound to fill).
    pub(crate) fn close_from_handle(&self) {
        self.closing.store(true, Ordering::Release);
        if let Some(_pass) = self.gate.enter() {
            let _ = self.normal.tx.try_send(Message::Stop);
        }
        self.close();
    }

    /// Whether the worker must find its own end: the owner let go, or a handle closed the
    /// queue.
    pub(crate) fn finishing_alone(&self) -> bool {
        self.is_orphaned() || self.closing.load(Ordering::Acquire)
    }

    /// Waits as a task until the worker has finished for good.
    pub(crate) async fn closed(&self) {
        let gone = || self.worker_gone.load(Ordering::Acquire);
        let mut registration = self.ended.registration();
        poll_fn(|cx| {
            if gone() {
                return Poll::Ready(());
            }
            registration.register_then_look(cx.waker());
            if gone() {
                return Poll::Ready(());
            }
            let queue = self.id();
            waits::note_pending(move || waits::wait_for(queue));
            Poll::Pending
        })
        .await;
    }

    /// Whether every command accepted so far is done with, and no submit is under way; or
    /// the worker has finished, and nothing more will be.
    fn is_quiet(&self) -> bool {
        self.counters
            .is_quiet(self.lanes().map(|lane| &*lane.counters))
            || self.worker_gone.load(Ordering::Acquire)
    }

    /// Waits until the queue is quiet, or `deadline` passes (`Ok(false)`). Refused, unless
    /// the queue is quiet already, on a thread that what is left may need: one that serves
    /// the queue, is telling its evictions, or is a worker the queue waits for.
    pub(crate) fn wait_until_quiet(
        &self,
        deadline: Option<Instant>,
    ) -> Result<bool, WouldDeadlock> {
        if self.is_quiet() {
            return Ok(true);
        }
        if waits::is_telling_evictions(self.id()) {
            return Err(WouldDeadlock);
        }
        let _waiting = waits::wait_for(self.id())?;
        let quiet = self
            .quiet
            .wait_until(deadline, || self.is_quiet().then_some(()));
        Ok(quiet.is_some())
    }

    /// Closes the gate, waits until no submitter is mid-send, then sends the worker its last
    /// message. Every command accepted before this returns is ahead of `Stop` in the channel.
    /// Not on the worker itself, which would wait for room only it can make.
    pub(crate) fn close_and_stop(&self, now: bool) {
        self.close_for_owner(now);
        self.gate.wait_quiet();
        // The worker catches every panic of user code, so it is alive to receive this, or has
        // finished on its own and left the channel empty: only this `Stop` can come in after
        // its last look (a handle's nudge goes in through the gate, before that look).
        let _ = self.normal.tx.send(Message::Stop);
    }

    /// Closes the queue for an owner that cannot wait for the worker: the worker finishes on
    /// its own (applying, or setting aside if `now`, what was accepted) and drops the state.
    pub(crate) fn close_and_orphan(&self, now: bool) {
        self.orphaned.store(true, Ordering::Release);
        self.close_for_owner(now);
        // A nudge for a worker asleep on an empty channel; if the channel is full, the worker
        // is busy and checks the flag after its batch.
        let _ = self.normal.tx.try_send(Message::Stop);
    }

    /// Closes the queue for its owner; if `now`, the worker sets aside every command it takes
    /// from then on instead of applying it.
    pub(crate) fn close_for_owner(&self, now: bool) {
        if now {
            self.stop_now.store(true, Ordering::Release);
        }
        self.close();
    }

    /// Test-only: sends the worker a message that makes its loop panic.
    #[cfg(test)]
    pub(crate) fn plant_failure(&self) {
        assert!(
            self.normal.tx.try_send(Message::Fail).is_ok(),
            "room to plant"
        );
    }

    /// Refuses every later submit; used by the worker when the state is poisoned.
    pub(crate) fn close(&self) {
        self.gate.close();
        // Submitters waiting for room find the gate closed when they look again.
        for lane in self.lanes() {
            lane.room.wake_all_after_change();
        }
    }

    /// After `close`: waits until no submitter is mid-send. Never waits for the worker: no
    /// submitter waits for room while inside the gate.
    pub(crate) fn wait_quiet(&self) {
        self.gate.wait_quiet();
    }

    /// Whether the owner left the worker to finish on its own.
    pub(crate) fn is_orphaned(&self) -> bool {
        self.orphaned.load(Ordering::Acquire)
    }

    pub(crate) fn wait_strategy(&self) -> WaitStrategy {
        self.wait
    }

    /// Whether the current thread is this queue's worker.
    pub(crate) fn is_worker(&self) -> bool {
        waits::is_worker(self.id())
    }

    /// Counts a command refused because waiting for it would deadlock.
    pub(crate) fn refuse_call(
        &self,
        lane: LaneId,
        refusal: CallError<S::Command>,
    ) -> CallError<S::Command> {
        self.lane(lane).counters.rejected.add(1);
        refusal
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.gate.is_closed()
    }

    /// Whether `shutdown_now` asked the worker to stop applying.
    pub(crate) fn stopping_now(&self) -> bool {
        self.stop_now.load(Ordering::Acquire)
    }

    /// How many accepted commands wait in every lane now.
    pub(crate) fn depth(&self) -> usize {
        self.lanes().map(Lane::len).fold(0, usize::saturating_add)
    }

    /// How many commands the priority lane has accepted (0 without one).
    pub(crate) fn priority_accepted(&self) -> u64 {
        self.priority
            .as_ref()
            .map_or(0, |lane| lane.counters.submitted.get())
    }

    /// How many commands have left the priority lane, taken by the worker or evicted.
    pub(crate) fn priority_gone(&self) -> u64 {
        let gone = |lane: &Lane<S>| lane.counters.taken.get() + lane.counters.dropped.get();
        self.priority.as_ref().map_or(0, gone)
    }

    /// How many accepted commands wait in `lane` now, without the channel's lock.
    pub(crate) fn len(&self, lane: LaneId) -> usize {
        self.lane(lane).len()
    }

    pub(crate) fn capacity(&self, lane: LaneId) -> usize {
        self.lane(lane).capacity
    }

    pub(crate) fn stats(&self) -> Stats {
        let lanes = || (self.normal.stats(), self.priority.as_ref().map(Lane::stats));
        self.counters.snapshot(lanes)
    }

    /// The lane a handle submits to. A handle names the priority lane only if the queue has
    /// one.
    pub(crate) fn lane(&self, lane: LaneId) -> &Lane<S> {
        match lane {
            LaneId::Normal => &self.normal,
            LaneId::Priority => self
                .priority
                .as_ref()
                .expect("a priority handle has its lane"),
        }
    }

    /// Whether the queue has a priority lane.
    pub(crate) fn has_priority_lane(&self) -> bool {
        self.priority.is_some()
    }

    /// Every lane: the normal one, then the priority lane if there is one.
    fn lanes(&self) -> impl Iterator<Item = &Lane<S>> + Clone {
        std::iter::once(&self.normal).chain(&self.priority)
    }

    /// The worker's ends of the lanes: the normal lane's, then the priority lane's.
    pub(crate) fn receivers(&self) -> (Receiver<Message<S>>, Option<Receiver<Message<S>>>) {
        let priority = self.priority.as_ref().map(|lane| lane.rx.clone());
        (self.normal.rx.clone(), priority)
    }

    /// Called by the worker before it sleeps on the normal lane: a priority submit from now
    /// on rings the doorbell. Returns whether a priority command has come in already (the
    /// worker then does not sleep).
    pub(crate) fn going_to_sleep(&self) -> bool {
        let Some(priority) = &self.priority else {
            return false;
        };
        self.asleep.store(true, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        if priority.rx.is_empty() {
            return false;
        }
        self.asleep.store(false, Ordering::SeqCst);
        true
    }

    /// Called by the worker once it is awake.
    pub(crate) fn awake(&self) {
        if self.priority.is_some() {
            self.asleep.store(false, Ordering::SeqCst);
        }
    }

    /// After a priority command went in: wakes the worker if it sleeps on the normal lane,
    /// with a message that holds no place. The fences pair with `going_to_sleep`'s: either
    /// the worker sees the command before it sleeps, or this sees it asleep.
    fn ring_the_doorbell(&self) {
        fence(Ordering::SeqCst);
        if self.asleep.swap(false, Ordering::SeqCst) {
            let _ = self.normal.tx.try_send(Message::Doorbell);
        }
    }
}
