//! Places held for permits: taken like a submitter's, counted as reserved (room that eviction
//! cannot free), and used by the permit's command or given back.

use std::time::Duration;

use super::Shared;
use crate::backpressure::Limit;
use crate::reply::Reply;
use crate::sync::atomic::Ordering;
use crate::{StateMachine, SubmitError};

impl<S: StateMachine> Shared<S> {
    /// Takes a vacancy for a permit, waiting for one on this thread as `limit` allows (a
    /// reservation has no command for the policy to judge: `Policy` waits as long as it takes).
    pub(crate) fn reserve(&self, limit: Limit) -> Result<(), SubmitError<()>> {
        let timeout = match limit {
            Limit::NoWait => {
                return self
                    .attempt_reserve(())
                    .unwrap_or(Err(SubmitError::Full(())));
            }
            Limit::Policy => None,
            Limit::Within(timeout) => Some(timeout),
        };
        match self.attempt_reserve(()) {
            Ok(done) => done,
            Err(()) => self.wait_for_room((), timeout, |()| self.attempt_reserve(())),
        }
    }

    /// Like [`reserve`](Shared::reserve), waiting as a task.
    pub(crate) async fn reserve_async(
        &self,
        timeout: Option<Duration>,
    ) -> Result<(), SubmitError<()>> {
        match self.attempt_reserve(()) {
            Ok(done) => done,
            Err(()) => {
                let attempt = |()| self.attempt_reserve(());
                self.wait_for_room_async((), timeout, attempt).await
            }
        }
    }

    /// One try at a vacancy for a permit: `Ok` with the outcome (refused if the queue has
    /// closed), or `Err` if the queue is full. Only a vacancy taken counts as reserved: an
    /// evicting submitter that finds a place taken and not yet counted retries a moment later.
    fn attempt_reserve(&self, (): ()) -> Result<Result<(), SubmitError<()>>, ()> {
        if self.is_closed() {
            return Ok(Err(SubmitError::Closed(())));
        }
        if !self.vacancies.try_take() {
            return Err(());
        }
        self.reserved.fetch_add(1, Ordering::SeqCst);
        Ok(Ok(()))
    }

    /// Sends a command through a permit, whose vacancy it uses: never waits, never refused
    /// for room. Refused only if the queue has closed since; the vacancy is given back then.
    pub(crate) fn send_reserved(
        &self,
        command: S::Command,
        reply: Option<Reply<S::Output>>,
    ) -> Result<(), SubmitError<S::Command>> {
        self.reserved.fetch_sub(1, Ordering::SeqCst);
        let Some(_pass) = self.gate.enter() else {
            self.slots_freed(1);
            return Err(self.refused(SubmitError::Closed(command)));
        };
        self.settle(self.send_held(self.message(command, reply)))?;
        // A `DropOldest` submitter may be waiting for a command to evict. It flagged its wait
        // before it looked in the channel, and this send and its look take the channel's lock:
        // either its look finds this command, or this read finds its flag.
        if self.vacancies.is_flagged() {
            self.vacancies.take_flag();
            self.room.wake_all();
        }
        Ok(())
    }

    /// Gives back an unused permit's vacancy.
    pub(crate) fn release_reserved(&self) {
        self.reserved.fetch_sub(1, Ordering::SeqCst);
        self.slots_freed(1);
    }
}
