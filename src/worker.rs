//! The worker thread: the only code that ever touches the state machine.

mod commits;
mod lanes;
mod restart;

use crate::message::{Message, Visit};
use crate::on_panic::{self, OnPanic};
use crate::reply::Reply;
use crate::shared::Shared;
use crate::sync::channel::TryRecvError;
use crate::sync::{Arc, Instant};
use crate::view::Publish;
use crate::wait::Backoff;
use crate::waits;
use crate::{CommandTimes, Observer, OnCommitError, Poisoned, ReplyMode, StateMachine, WaitError};
use commits::{CommitThread, Committing, Group};
use lanes::{Lanes, Taken};
pub(crate) use restart::Restart;
use std::collections::VecDeque;
use std::mem;
use std::time::Duration;

/// How the worker runs, as the builder set it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct WorkerConfig {
    pub(crate) on_panic: OnPanic,
    pub(crate) on_commit_error: OnCommitError,
    pub(crate) reply_mode: ReplyMode,
    pub(crate) max_batch: usize,
    /// How many commits' jobs may run at once, each on a commit thread of its own.
    pub(crate) commit_threads: usize,
    /// How many priority commands the worker takes in a row while normal ones wait.
    pub(crate) max_priority_burst: usize,
}

pub(crate) struct Worker<S: StateMachine> {
    state: S,
    lanes: Lanes<S>,
    shared: Arc<Shared<S>>,
    config: WorkerConfig,
    /// The message of the panic that poisoned the state, once one has.
    poison: Option<String>,
    /// Accepted commands set aside without being applied, in order.
    unapplied: Vec<S::Command>,
    /// The commands applied since the last commit started, and the outputs they hold back
    /// under group commit: what the next commit covers.
    group: Group<S::Output>,
    /// Groups whose commit has started, oldest first: settled in this order, whichever
    /// commit ends first.
    committing: VecDeque<Committing<S::Output>>,
    /// The number of the next commit.
    next_commit: u64,
    commit_thread: CommitThread,
    /// Receives the measurements, if the builder was given an observer.
    observer: Option<Box<dyn Observer>>,
    /// Publish views of the state after each batch.
    publishers: Vec<Box<dyn Publish<S>>>,
    /// Makes a fresh state after a panic in `apply`, if the builder was given one.
    restart: Option<Restart<S>>,
}

/// How the worker's loop ended.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Ending {
    /// The owner's `Stop` arrived: everything accepted was served.
    Stop,
    /// Nobody will send `Stop`: the worker must find the end by itself.
    Alone,
}

/// What the worker thread returns to the shutdown that joins it.
pub(crate) struct Exit<S: StateMachine> {
    pub(crate) state: S,
    pub(crate) unapplied: Vec<S::Command>,
    pub(crate) poison: Option<String>,
}

impl<S: StateMachine> Exit<S> {
    /// The state, or the poison with everything the worker held.
    pub(crate) fn into_state(self) -> Result<S, Poisoned<S>> {
        self.into_parts().map(|(state, _)| state)
    }

    /// The state and the commands set aside, or the poison with the same.
    pub(crate) fn into_parts(self) -> Result<(S, Vec<S::Command>), Poisoned<S>> {
        match self.poison {
            None => Ok((self.state, self.unapplied)),
            Some(message) => Err(Poisoned::new(self.state, self.unapplied, message)),
        }
    }
}

impl<S: StateMachine> Worker<S> {
    pub(crate) fn new(
        state: S,
        shared: Arc<Shared<S>>,
        config: WorkerConfig,
        observer: Option<Box<dyn Observer>>,
        publishers: Vec<Box<dyn Publish<S>>>,
        restart: Option<Restart<S>>,
    ) -> Self {
        Self {
            state,
            lanes: Lanes::new(&shared, config.max_priority_burst),
            shared,
            config,
            poison: None,
            unapplied: Vec::new(),
            group: Group::default(),
            committing: VecDeque::new(),
            next_commit: 0,
            commit_thread: CommitThread::NotYet,
            observer,
            publishers,
            restart,
        }
    }

    /// Runs batch after batch until the shutdown's `Stop` message, then hands everything back;
    /// or, if the owner left the queue to finish on its own, drops it all here instead.
    pub(crate) fn run(mut self) -> Option<Exit<S>> {
        self.start();
        self.serve();
        let shared = Arc::clone(&self.shared);
        let exit = self.exit();
        // Read after `on_stop` ran: a queue closed from a handle runs it while the owner is
        // alive, and a state that held the owner may have let it go there.
        if shared.is_orphaned() {
            // Nobody will join this thread: the state's and the commands' `Drop` is user code.
            let _ = on_panic::catch(move || drop(exit));
            return None;
        }
        Some(exit)
    }

    /// Marks this thread as the queue's worker and runs `on_start`.
    pub(crate) fn start(&mut self) {
        waits::mark_worker(self.shared.id());
        self.run_hook(S::on_start);
        self.publish();
    }

    /// Waits for the commits under way, runs `on_stop` (unless the state is poisoned) and
    /// hands everything back.
    fn exit(mut self) -> Exit<S> {
        self.guarded(Self::settle_commits);
        if self.poison.is_none() {
            self.run_hook(S::on_stop);
        }
        // The observer's `Drop` is user code: a panic there must not take the state and the
        // set-aside commands down with the worker.
        let (observer, restart) = (self.observer.take(), self.restart.take());
        let _ = on_panic::catch(move || drop(observer));
        // The factory's captures too (found by review).
        let _ = on_panic::catch(move || drop(restart));
        // One at a time: a second panicking `Drop` while the first unwinds would abort.
        for publisher in mem::take(&mut self.publishers) {
            let _ = on_panic::catch(move || drop(publisher));
        }
        self.shared.worker_finished();
        Exit {
            state: self.state,
            unapplied: self.unapplied,
            poison: self.poison,
        }
    }

    /// Serves the channel until `Stop`. A panic here is the crate's own (user code is caught
    /// where it runs): the state is poisoned and the worker finishes on its own, so that no
    /// caller is left waiting on a dead worker.
    fn serve(&mut self) {
        let ending = self.guarded(Self::run_batches).unwrap_or(Ending::Alone);
        if ending == Ending::Alone && on_panic::catch(|| self.finish_alone()).is_err() {
            // A second internal failure: the gate is closed, so no new command comes in, but
            // what is left in the channel stays there until the queue is dropped.
            self.shared.close();
        }
    }

    /// Runs `f`, and if the crate's own code panics in it, tells the callers whose replies it
    /// held and poisons the state.
    fn guarded<R>(&mut self, f: impl FnOnce(&mut Self) -> R) -> Option<R> {
        match on_panic::catch(|| f(self)) {
            Ok(done) => Some(done),
            Err(message) => {
                self.fail_pending(&message);
                self.poison(format!("singular-queue internal error: {message}"));
                None
            }
        }
    }

    /// A hand-stepped queue's step: one batch of what is already waiting, if anything is.
    /// Returns how many commands it took.
    pub(crate) fn step(&mut self) -> usize {
        loop {
            match self.lanes.next_waiting(&self.shared) {
                None => return 0,
                // A handle's nudge: this worker is the owner's thread, which needs none.
                Some((_, Message::Stop)) => {}
                // A batch that took no command (a read or a snapshot's marker came first) is
                // not a step: the commands behind it are still waiting (found by review).
                Some(first) => match self.guarded(|worker| worker.run_batch(first).0) {
                    Some(0) => {}
                    taken => return taken.unwrap_or(1),
                },
            }
        }
    }

    /// A hand-stepped queue's shutdown: closes it, serves (or, if `now`, sets aside) every
    /// command accepted, runs `on_stop` and hands everything back. Nothing waits for another
    /// thread but a submitter mid-send, which never waits inside the gate.
    pub(crate) fn finish(mut self, now: bool) -> Exit<S> {
        self.shared.close_for_owner(now);
        if self.guarded(Self::finish_alone).is_none() {
            self.shared.close();
        }
        self.exit()
    }

    /// The state, between steps.
    pub(crate) fn state(&self) -> &S {
        &self.state
    }

    fn run_batches(&mut self) -> Ending {
        loop {
            // A poisoned state closed the queue: nothing more can come in, so the worker sets
            // aside what is left and finishes without waiting for the owner.
            if self.poison.is_some() || self.shared.finishing_alone() {
                return Ending::Alone;
            }
            // Only a `Stop` ends the worker; a disconnected channel (impossible while `Shared`
            // holds both ends) would end it too, rather than spin.
            let Some(first) = self.receive() else {
                return Ending::Stop;
            };
            if let (_, Some(ending)) = self.run_batch(first) {
                return ending;
            }
        }
    }

    /// Finishes without an owner to send `Stop`: once no submitter is mid-send (the gate is
    /// closed, and nobody inside it waits for this thread), the channel holds every command
    /// that will ever be accepted; serve them, and stop at the first empty look.
    fn finish_alone(&mut self) {
        self.shared.close();
        self.shared.wait_quiet();
        while let Some(first) = self.lanes.next_waiting(&self.shared) {
            self.run_batch(first);
        }
    }

    /// Takes `first` and every command already waiting, up to `max_batch`, and ends the
    /// batch. Returns how many commands it took, and how the worker should end if the batch
    /// met a `Stop`.
    fn run_batch(&mut self, first: Taken<S>) -> (usize, Option<Ending>) {
        let mut next = Some(first);
        let mut taken = 0;
        while let Some((lane, message)) = next.take() {
            #[cfg(test)]
            let message = message.or_fail();
            match message {
                Message::Apply {
                    command,
                    reply,
                    enqueued,
                } => {
                    self.shared.taken(lane, 1);
                    self.run_command(command, reply, enqueued);
                    taken += 1;
                }
                Message::Tells { commands, enqueued } => {
                    self.shared.taken(lane, commands.len());
                    taken += commands.len();
                    for command in commands {
                        self.run_command(command, None, enqueued);
                    }
                }
                Message::Committed { seq, outcome } => self.commit_ended(seq, outcome),
                Message::Doorbell => {}
                Message::Visit(visit) => {
                    self.end_batch(taken, 0);
                    self.visit(visit);
                    return (taken, None);
                }
                // `Stop` is the channel's last message when the owner sent it after the gate
                // went quiet; an orphaned or handle-closed queue's `Stop` is only a nudge to
                // look at the flags.
                _ => {
                    self.end_batch(taken, 0);
                    let ending = if self.shared.finishing_alone() {
                        Ending::Alone
                    } else {
                        Ending::Stop
                    };
                    return (taken, Some(ending));
                }
            }
            if taken < self.config.max_batch {
                next = self.lanes.try_next(&self.shared).ok();
            }
        }
        // A batch cut short by `max_batch` leaves commands behind (counted, not messages: a
        // bulk is many); otherwise the worker has just found the channel empty.
        let remaining = if taken >= self.config.max_batch {
            self.shared.depth()
        } else {
            0
        };
        self.end_batch(taken, remaining);
        (taken, None)
    }

    /// Runs one command taken out of the channel: applies it, or sets it aside if the queue is
    /// stopping or poisoned. It joins the group the next commit covers.
    fn run_command(
        &mut self,
        command: S::Command,
        reply: Option<Reply<S::Output>>,
        enqueued: Option<Instant>,
    ) {
        let queue_time = self.record_queue_time(enqueued);
        self.group.taken += 1;
        if self.poison.is_some() || self.shared.stopping_now() {
            self.set_aside(command, reply);
            return;
        }
        self.group.applied += 1;
        self.apply(command, reply, queue_time);
    }

    /// Runs the crate's own code on the state between two batches, unless the queue is
    /// stopping or poisoned: then it is dropped unrun, which tells its waiter. Either may run
    /// user code (a snapshot's function, its captures' `Drop`), so both are caught; the state
    /// is only read, so a panic poisons nothing.
    fn visit(&mut self, visit: Visit<S>) {
        let state = &self.state;
        let _ = if self.poison.is_some() || self.shared.stopping_now() {
            on_panic::catch(move || drop(visit))
        } else {
            on_panic::catch(move || visit(state))
        };
    }

    /// Waits for the next message: spinning first, as the wait strategy allows, because a
    /// command arriving within microseconds is picked up without the cost of a wake-up. It
    /// sleeps on the normal lane; a priority submit rings the doorbell there. A worker holding
    /// a message back behind priority commands that are landing does not sleep.
    fn receive(&mut self) -> Option<Taken<S>> {
        let mut backoff = Backoff::new(self.shared.wait_strategy());
        loop {
            match self.lanes.try_next(&self.shared) {
                Ok(taken) => return Some(taken),
                Err(TryRecvError::Disconnected) => return None,
                Err(TryRecvError::Empty) if backoff.is_completed() && !self.lanes.holding() => {
                    if let Some(taken) = self.sleep()? {
                        return Some(taken);
                    }
                }
                Err(TryRecvError::Empty) => backoff.snooze(),
            }
        }
    }

    /// Sleeps on the normal lane until a message comes: `Some(None)` if it was held back (or
    /// a priority command came in before the worker fell asleep), `None` if the lane
    /// disconnected.
    fn sleep(&mut self) -> Option<Option<Taken<S>>> {
        if self.shared.going_to_sleep() {
            return Some(None);
        }
        let message = self.lanes.recv_normal();
        self.shared.awake();
        Some(self.lanes.normal_message(message?, &self.shared).ok())
    }

    fn apply(
        &mut self,
        command: S::Command,
        reply: Option<Reply<S::Output>>,
        queue_time: Option<Duration>,
    ) {
        let started = self.observer.is_some().then(Instant::now);
        let state = &mut self.state;
        let outcome = on_panic::catch(|| state.apply(command));
        if let Some(started) = started {
            let times = CommandTimes {
                queue_time: queue_time.unwrap_or_default(),
                apply_time: started.elapsed(),
                panicked: outcome.is_err(),
            };
            self.observe(|observer| observer.command(&times));
        }
        let output = match outcome {
            Ok(output) => output,
            Err(message) => return self.panicked(reply, message),
        };
        self.shared.counters.worker.applied.bump(1);
        match reply {
            Some(reply) if self.config.reply_mode == ReplyMode::AfterBatch => {
                self.group.hold(reply, output);
            }
            reply => deliver(reply, Ok(output)),
        }
    }

    /// After `apply` panicked: restarts the state, poisons it, or goes on, as the builder
    /// said; then tells the command's caller.
    fn panicked(&mut self, reply: Option<Reply<S::Output>>, message: String) {
        self.shared.counters.worker.panicked.bump(1);
        if self.restart.is_some() {
            return self.restart(reply, message);
        }
        if self.config.on_panic == OnPanic::Stop {
            self.poison(message.clone());
        }
        deliver(reply, Err(WaitError::Panicked(message)));
    }

    /// Hands a measurement to the observer, if there is one. Its panic is caught and ignored:
    /// a lost sample must not stop the queue.
    fn observe(&mut self, report: impl FnOnce(&mut dyn Observer)) {
        if let Some(observer) = self.observer.as_deref_mut() {
            let _ = on_panic::catch(|| report(observer));
        }
    }

    /// Keeps an accepted command for the owner; dropping its reply tells the waiter.
    fn set_aside(&mut self, command: S::Command, reply: Option<Reply<S::Output>>) {
        self.shared.counters.worker.not_applied.bump(1);
        self.unapplied.push(command);
        drop(reply);
    }

    /// Counts how long a command waited, if it was stamped, and returns it.
    fn record_queue_time(&self, enqueued: Option<Instant>) -> Option<Duration> {
        // Not measured unless stamped: no clock read for a queue that does not track it.
        let enqueued = enqueued?;
        let waited = Instant::now().saturating_duration_since(enqueued);
        let nanos = u64::try_from(waited.as_nanos()).unwrap_or(u64::MAX);
        let counters = &self.shared.counters.worker;
        counters.queue_time_total.bump(nanos);
        counters.queue_time_max.raise(nanos);
        counters.queue_time_count.bump(1);
        Some(waited)
    }

    fn run_hook(&mut self, hook: impl FnOnce(&mut S)) {
        let state = &mut self.state;
        if let Err(message) = on_panic::catch(|| hook(state)) {
            self.poison(message);
        }
    }

    /// Publishes every view of the state, unless a panic poisoned it (it may be half
    /// updated). A panic in a view's function poisons the queue, as a hook's does.
    fn publish(&mut self) {
        if self.poison.is_some() {
            return;
        }
        let state = &self.state;
        let failed =
            (self.publishers.iter_mut()).find_map(|publisher| publisher.publish(state).err());
        if let Some(message) = failed {
            self.poison(message);
        }
    }

    fn poison(&mut self, message: String) {
        self.poison.get_or_insert(message);
        self.shared.close();
    }
}

/// Hands a result to its waiter, or drops it when nobody waits. Either runs user code (the
/// output's `Drop`); the command was applied either way, so a panic there is ignored.
fn deliver<T>(reply: Option<Reply<T>>, result: Result<T, WaitError>) {
    let _ = on_panic::catch(move || match reply {
        Some(reply) => reply.send(result),
        None => drop(result),
    });
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;

    use crate::{CallError, SingularQueue, StateMachine, WaitError};

    /// Holds the worker in `apply` until released; otherwise adds.
    #[derive(Debug)]
    struct Held(u64);

    impl StateMachine for Held {
        type Command = Option<(mpsc::Sender<()>, mpsc::Receiver<()>)>;
        type Output = u64;
        fn apply(&mut self, hold: Self::Command) -> u64 {
            if let Some((started, release)) = hold {
                started.send(()).unwrap();
                release.recv().unwrap();
            }
            self.0 += 1;
            self.0
        }
    }

    /// A panic of the worker's own, outside user code, tells every waiter, refuses later
    /// submits, and poisons the state: nobody is left waiting on a dead worker.
    #[test]
    fn a_panic_in_the_worker_loop_tells_every_waiter_and_refuses_later_submits() {
        let queue = SingularQueue::builder(Held(0)).capacity(8).spawn().unwrap();
        let (started_tx, started) = mpsc::channel();
        let (release, release_rx) = mpsc::channel();
        let held = queue.submit(Some((started_tx, release_rx))).unwrap();
        started.recv().unwrap();
        let before = queue.submit(None).unwrap();
        queue.handle().shared().plant_failure();
        let behind: Vec<_> = (0..3).map(|_| queue.submit(None).unwrap()).collect();
        release.send(()).unwrap();
        assert_eq!(held.wait(), Ok(1));
        assert_eq!(before.wait(), Ok(2));
        for ticket in behind {
            assert_eq!(ticket.wait(), Err(WaitError::NotApplied));
        }
        assert!(matches!(queue.call(None), Err(CallError::Closed(None))));
        let poisoned = queue.shutdown().unwrap_err();
        assert!(poisoned.message().contains("internal error"), "{poisoned}");
        assert_eq!(poisoned.unapplied().len(), 3);
        assert_eq!(poisoned.into_inner().0, 2);
    }
}
