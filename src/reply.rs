//! The one-shot slot through which the worker hands a command's output to its ticket.

use std::task::{Context, Poll, Waker};

use crate::WouldDeadlock;
use crate::on_panic;
use crate::sync::atomic::{AtomicBool, Ordering};
use crate::sync::{Arc, Condvar, Instant, Mutex};
use crate::wait::Backoff;
use crate::waits::{self, Awaited, QueueId, Waiting};
use crate::{WaitError, WaitStrategy};

/// The worker's end of a reply: completes the slot once. Dropping it unused tells the waiter
/// the command was not applied, so no path that loses a command can leave a waiter hanging.
pub(crate) struct Reply<T> {
    slot: Option<Arc<Slot<T>>>,
}

/// The waiting end's view of a reply, held by a [`Ticket`](crate::Ticket).
pub(crate) struct Slot<T> {
    state: Mutex<State<T>>,
    ready: Condvar,
    /// Set once the result is stored: a waiter can spin on it without the lock.
    done: AtomicBool,
}

enum State<T> {
    /// Not completed yet: the waker of the task that last polled, if a task is waiting, and
    /// the wait-for edge of a worker blocked on it (0 for none), which the completion settles.
    Pending {
        waker: Option<Waker>,
        edge: u64,
    },
    Ready(Result<T, WaitError>),
    Taken,
    /// The waiter gave up (a `call_timeout` that ran out): the worker drops the late result
    /// itself, under `catch`, so an output's `Drop` never runs on the caller's thread.
    Abandoned,
}

/// A slot's state before completion, with no waiter recorded.
const fn pending<T>() -> State<T> {
    State::Pending {
        waker: None,
        edge: 0,
    }
}

/// Makes a connected reply and slot.
pub(crate) fn pair<T>() -> (Reply<T>, Arc<Slot<T>>) {
    let slot = Arc::new(Slot::new());
    (Reply::new(Arc::clone(&slot)), slot)
}

// === impl Reply ===

impl<T> Reply<T> {
    /// The worker's end of `slot`, which must be pending.
    pub(crate) fn new(slot: Arc<Slot<T>>) -> Self {
        Self { slot: Some(slot) }
    }

    /// Completes the slot and wakes its waiter, if any.
    pub(crate) fn send(mut self, result: Result<T, WaitError>) {
        self.complete(result);
    }

    fn complete(&mut self, result: Result<T, WaitError>) {
        if let Some(slot) = self.slot.take() {
            let before = {
                let mut state = slot.state.lock();
                // A worker waiting here is no longer blocked, from this moment on, even
                // before it runs again (the graph's lock is taken after the slot's, never
                // before).
                if let State::Pending { edge, .. } = &*state {
                    if *edge != 0 {
                        waits::settle(*edge);
                    }
                }
                if matches!(*state, State::Abandoned) {
                    None
                } else {
                    slot.done.store(true, Ordering::Release);
                    Some(std::mem::replace(&mut *state, State::Ready(result)))
                }
            };
            let Some(before) = before else {
                // Nobody waits: the result is dropped here, outside the lock (the worker
                // delivers under `catch`).
                return;
            };
            slot.ready.notify_one();
            // Woken after the state is stored and the lock released: the task's next poll
            // finds the result (hazard 4).
            if let State::Pending {
                waker: Some(waker), ..
            } = before
            {
                // The executor's code: its panic must not unwind into the worker.
                let _ = on_panic::catch(|| waker.wake());
            }
        }
    }
}

impl<T> Drop for Reply<T> {
    fn drop(&mut self) {
        self.complete(Err(WaitError::NotApplied));
    }
}

// === impl Slot ===

impl<T> Slot<T> {
    /// A slot waiting for its result.
    pub(crate) fn new() -> Self {
        Self {
            state: Mutex::new(pending()),
            ready: Condvar::new(),
            done: AtomicBool::new(false),
        }
    }

    /// Makes the slot pending again, for its next command. Only for a slot that no reply can
    /// reach any more, whose result was taken or was a refusal (see `spare`): no output of a
    /// user's is dropped here.
    pub(crate) fn reset(&self) {
        let before = std::mem::replace(&mut *self.state.lock(), pending());
        self.done.store(false, Ordering::Relaxed);
        drop(before);
    }

    /// Before this thread waits on the slot for `queue`'s worker: records the wait-for edge
    /// (if this thread is a worker and the result is not here yet), or refuses if the wait
    /// would close a cycle. Done under the slot's lock, so that a completion either comes
    /// first (no edge is recorded) or finds the edge and settles it.
    pub(crate) fn wait_for(
        &self,
        queue: QueueId,
        awaited: Awaited,
    ) -> Result<Waiting, WouldDeadlock> {
        if !waits::on_a_worker() {
            return Ok(Waiting::none());
        }
        let mut state = self.state.lock();
        let State::Pending { edge, .. } = &mut *state else {
            return Ok(Waiting::none());
        };
        let waiting = waits::wait_for_reply(queue, awaited)?;
        *edge = waiting.id();
        Ok(waiting)
    }

    /// Whether the result has arrived and not been taken yet.
    pub(crate) fn is_ready(&self) -> bool {
        matches!(*self.state.lock(), State::Ready(_))
    }

    /// Takes the result if it has arrived.
    pub(crate) fn try_take(&self) -> Option<Result<T, WaitError>> {
        take(&mut self.state.lock())
    }

    /// Takes the result if it has arrived; otherwise keeps `cx`'s waker, replacing the one a
    /// previous poll left, so the latest poller is the one woken.
    ///
    /// The waker is cloned before the lock is taken, and the one it replaces dropped after
    /// the lock is released: both are the executor's code (hazard 9).
    pub(crate) fn poll_take(&self, cx: &mut Context<'_>) -> Poll<Result<T, WaitError>> {
        {
            let mut state = self.state.lock();
            if let Some(result) = take(&mut state) {
                return Poll::Ready(result);
            }
            if matches!(&*state, State::Pending { waker: Some(known), .. } if known.will_wake(cx.waker()))
            {
                return Poll::Pending;
            }
        }
        let waker = cx.waker().clone();
        let replaced = {
            let mut state = self.state.lock();
            if let Some(result) = take(&mut state) {
                drop(state);
                drop(waker);
                return Poll::Ready(result);
            }
            match &mut *state {
                State::Pending { waker: known, .. } => known.replace(waker),
                _ => unreachable!("no result was taken, so the slot is pending"),
            }
        };
        drop(replaced);
        Poll::Pending
    }

    /// Blocks until the result arrives, then takes it: spinning first, as `strategy` allows.
    pub(crate) fn wait(&self, strategy: WaitStrategy) -> Result<T, WaitError> {
        let mut backoff = Backoff::new(strategy);
        while !self.done.load(Ordering::Acquire) && !backoff.is_completed() {
            backoff.snooze();
        }
        let mut state = self.state.lock();
        loop {
            if let Some(result) = take(&mut state) {
                return result;
            }
            self.ready.wait(&mut state);
        }
    }

    /// Blocks until the result arrives or the deadline passes.
    pub(crate) fn wait_until(&self, deadline: Instant) -> Option<Result<T, WaitError>> {
        let mut state = self.state.lock();
        loop {
            if let Some(result) = take(&mut state) {
                return Some(result);
            }
            if self.ready.wait_until(&mut state, deadline).timed_out() {
                return take(&mut state);
            }
        }
    }

    /// Like [`wait_until`](Slot::wait_until), for a waiter that gives up for good at the
    /// deadline: the slot is then abandoned, and a late result is dropped by the worker.
    pub(crate) fn wait_until_or_abandon(&self, deadline: Instant) -> Option<Result<T, WaitError>> {
        self.wait_until(deadline).or_else(|| self.take_or_abandon())
    }

    /// Takes the result if it has arrived; otherwise abandons the slot for good, and a late
    /// result is dropped by the worker. A waker left by a poll is dropped outside the lock.
    pub(crate) fn take_or_abandon(&self) -> Option<Result<T, WaitError>> {
        let before = {
            let mut state = self.state.lock();
            if let Some(result) = take(&mut state) {
                return Some(result);
            }
            std::mem::replace(&mut *state, State::Abandoned)
        };
        drop(before);
        None
    }
}

fn take<T>(state: &mut State<T>) -> Option<Result<T, WaitError>> {
    match std::mem::replace(state, State::Taken) {
        State::Ready(result) => Some(result),
        pending @ State::Pending { .. } => {
            *state = pending;
            None
        }
        State::Taken => panic!("the ticket's result was already taken"),
        State::Abandoned => unreachable!("an abandoned slot is never waited on again"),
    }
}
