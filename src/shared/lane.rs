//! A lane: one way into the queue, with its own channel, bound, policy, waiters for room and
//! counters. Every queue has its normal lane. A queue built with
//! [`Builder::priority_lane`](crate::Builder::priority_lane) has a second one, which the
//! worker drains first, up to its burst ([`crate::worker`]'s lane choice).

use crate::backpressure::Policy;
use crate::message::Message;
use crate::room::Room;
use crate::stats::{LaneStats, Padded, SubmitCounters};
use crate::sync::atomic::AtomicUsize;
use crate::sync::channel::{self, Receiver, Sender};
use crate::vacancies::Vacancies;
use crate::{StateMachine, SubmitError};

/// Which lane a handle submits to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LaneId {
    Normal,
    Priority,
}

/// How a lane is bounded, as the builder set it.
pub(crate) struct LaneConfig<C> {
    pub(crate) capacity: usize,
    pub(crate) policy: Policy<C>,
}

pub(crate) struct Lane<S: StateMachine> {
    pub(crate) id: LaneId,
    pub(super) tx: Sender<Message<S>>,
    /// A receiver for the submit side, used only to evict the oldest command; the worker
    /// has a clone.
    pub(super) rx: Receiver<Message<S>>,
    /// Taken by submitters, given back by the worker: on a cache line of its own.
    pub(super) vacancies: Padded<Vacancies>,
    /// How many permits hold a vacancy: room that eviction cannot free.
    pub(super) reserved: AtomicUsize,
    pub(super) room: Room,
    pub(super) capacity: usize,
    pub(super) policy: Policy<S::Command>,
    /// Every submitter writes them: on a cache line of their own.
    pub(super) counters: Padded<SubmitCounters>,
}

impl<S: StateMachine> Lane<S> {
    pub(crate) fn new(id: LaneId, config: LaneConfig<S::Command>) -> Self {
        let (tx, rx) = channel::unbounded();
        Self {
            id,
            tx,
            rx,
            vacancies: Padded::new(Vacancies::new(config.capacity)),
            reserved: AtomicUsize::new(0),
            room: Room::new(),
            capacity: config.capacity,
            policy: config.policy,
            counters: Padded::default(),
        }
    }

    /// How many accepted commands wait in this lane now, from its counters alone: a submit
    /// under way may count for a moment, hence the clamp.
    pub(super) fn len(&self) -> usize {
        let waiting = usize::try_from(self.counters.waiting()).unwrap_or(usize::MAX);
        waiting.min(self.capacity)
    }

    /// Gives back the places of `count` commands taken out, and wakes submitters waiting for
    /// room.
    pub(super) fn slots_freed(&self, count: usize) {
        if count > 0 && self.vacancies.give_back(count) {
            self.vacancies.take_flag();
            self.room.wake_all();
        }
    }

    /// Counts a refusal of one command by its reason.
    pub(super) fn refused<T>(&self, refusal: SubmitError<T>) -> SubmitError<T> {
        self.count_refused(&refusal, 1);
        refusal
    }

    /// Counts a refusal of `count` commands by its reason.
    pub(super) fn count_refused<T>(&self, refusal: &SubmitError<T>, count: usize) {
        let counters = &self.counters;
        let counter = match refusal {
            SubmitError::Closed(_) => &counters.refused_closed,
            SubmitError::Full(_) | SubmitError::Deadlock(_) | SubmitError::CrossShard(_) => {
                &counters.rejected
            }
            SubmitError::Timeout(_) => &counters.timed_out,
        };
        counter.add(count as u64);
    }

    pub(super) fn stats(&self) -> LaneStats {
        self.counters.snapshot(self.len(), self.capacity)
    }
}
