//! Places held for permits: taken like a submitter's, counted as reserved (room that eviction
//! cannot free), and used by the permit's command or given back.

use std::time::Duration;

use super::{Lane, LaneId, Shared};
use crate::backpressure::Limit;
use crate::reply::Reply;
use crate::sync::atomic::Ordering;
use crate::{StateMachine, SubmitError};

impl<S: StateMachine> Shared<S> {
    /// Takes a vacancy for a permit, waiting for one on this thread as `limit` allows (a
    /// reservation has no command for the policy to judge: `Policy` waits as long as it takes).
    pub(crate) fn reserve(&self, lane: LaneId, limit: Limit) -> Result<(), SubmitError<()>> {
        let lane = self.lane(lane);
        let timeout = match limit {
            Limit::NoWait => {
                return self
                    .attempt_reserve(lane)
                    .unwrap_or(Err(SubmitError::Full(())));
            }
            Limit::Policy => None,
            Limit::Within(timeout) => Some(timeout),
        };
        match self.attempt_reserve(lane) {
            Ok(done) => done,
            Err(()) => self.wait_for_room(lane, (), timeout, |()| self.attempt_reserve(lane)),
        }
    }

    /// Like [`reserve`](Shared::reserve), waiting as a task.
    pub(crate) async fn reserve_async(
        &self,
        lane: LaneId,
        timeout: Option<Duration>,
    ) -> Result<(), SubmitError<()>> {
        let lane = self.lane(lane);
        match self.attempt_reserve(lane) {
            Ok(done) => done,
            Err(()) => {
                let attempt = |()| self.attempt_reserve(lane);
                self.wait_for_room_async(lane, (), timeout, attempt).await
            }
        }
    }

    /// One try at a vacancy for a permit: `Ok` with the outcome (refused if the queue has
    /// closed), or `Err` if the queue is full. Only a vacancy taken counts as reserved: an
    /// evicting submitter that finds a place taken and not yet counted retries a moment later.
    fn attempt_reserve(&self, lane: &Lane<S>) -> Result<Result<(), SubmitError<()>>, ()> {
        if self.is_closed() {
            return Ok(Err(SubmitError::Closed(())));
        }
        if !lane.vacancies.try_take() {
            return Err(());
        }
        lane.reserved.fetch_add(1, Ordering::SeqCst);
        Ok(Ok(()))
    }

    /// Sends a command through a permit, whose vacancy it uses: never waits, never refused
    /// for room. Refused only if the queue has closed since; the vacancy is given back then.
    pub(crate) fn send_reserved(
        &self,
        lane: LaneId,
        command: S::Command,
        reply: Option<Reply<S::Output>>,
    ) -> Result<(), SubmitError<S::Command>> {
        let lane = self.lane(lane);
        lane.reserved.fetch_sub(1, Ordering::SeqCst);
        let Some(_pass) = self.gate.enter() else {
            lane.slots_freed(1);
            return Err(lane.refused(SubmitError::Closed(command)));
        };
        self.settle(lane, self.send_held(lane, self.message(command, reply)))?;
        // A `DropOldest` submitter may be waiting for a command to evict. It flagged its wait
        // before it looked in the channel, and this send and its look take the channel's lock:
        // either its look finds this command, or this read finds its flag.
        if lane.vacancies.is_flagged() {
            lane.vacancies.take_flag();
            lane.room.wake_all();
        }
        Ok(())
    }

    /// Gives back an unused permit's vacancy.
    pub(crate) fn release_reserved(&self, lane: LaneId) {
        let lane = self.lane(lane);
        lane.reserved.fetch_sub(1, Ordering::SeqCst);
        lane.slots_freed(1);
    }
}
