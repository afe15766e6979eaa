//! How many more commands the queue may hold: the bound its backpressure enforces.
//!
//! The channel beneath is unbounded; this count is the queue's capacity. A submitter takes a
//! vacancy before it sends, the worker gives one back for each command it takes out, and a
//! [`Permit`](crate::Permit) holds one until its command is sent or it is dropped. So a permit
//! holder can always send: nobody else can fill the place it holds. An evicting submitter takes
//! over the vacancy of the command it evicted.
//!
//! The same word carries a flag that says "a submitter waits for room" (hazard 4). A waiter
//! registers its waker, sets the flag, then tries to take a vacancy; a giver adds its vacancy
//! and learns from the same read-modify-write whether to wake the room. Both act on one
//! location, so one of them sees the other: either the waiter's try finds the vacancy, or the
//! giver finds the flag. The worker's hot path pays no fence for it.

use crate::sync::atomic::{AtomicUsize, Ordering};

/// Set while a submitter may be waiting for room.
const WAITING: usize = 1;
/// One vacancy, above the flag bit.
const ONE: usize = 2;

pub(crate) struct Vacancies {
    /// `ONE` per free place, plus `WAITING`.
    state: AtomicUsize,
}

impl Vacancies {
    /// `capacity` free places; at most [`MAX_CAPACITY`](crate::MAX_CAPACITY), so they fit
    /// above the flag bit.
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            state: AtomicUsize::new(capacity * ONE),
        }
    }

    /// Takes one vacancy, or returns `false` if there is none. Never takes one that is not
    /// there, not even for a moment: a submitter that loses the race is told "full" only when
    /// the queue was full.
    pub(crate) fn try_take(&self) -> bool {
        let mut state = self.state.load(Ordering::Relaxed);
        loop {
            if state < ONE {
                return false;
            }
            match self.state.compare_exchange_weak(
                state,
                state - ONE,
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(now) => state = now,
            }
        }
    }

    /// Takes as many vacancies as there are, up to `wanted`, and returns how many it took.
    pub(crate) fn take_up_to(&self, wanted: usize) -> usize {
        let mut state = self.state.load(Ordering::Relaxed);
        loop {
            let taken = (state / ONE).min(wanted);
            if taken == 0 {
                return 0;
            }
            match self.state.compare_exchange_weak(
                state,
                state - taken * ONE,
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => return taken,
                Err(now) => state = now,
            }
        }
    }

    /// Gives `count` vacancies back; returns whether a submitter may be waiting for them, in
    /// which case the caller takes the flag and wakes the room.
    pub(crate) fn give_back(&self, count: usize) -> bool {
        self.state.fetch_add(count * ONE, Ordering::Release) & WAITING != 0
    }

    /// Says that a submitter waits for room: called after it registered its waker and before
    /// it tries again.
    pub(crate) fn flag_waiting(&self) {
        self.state.fetch_or(WAITING, Ordering::AcqRel);
    }

    /// Whether a submitter may be waiting for room (or for a command to evict).
    pub(crate) fn is_flagged(&self) -> bool {
        self.state.load(Ordering::Acquire) & WAITING != 0
    }

    /// Clears the flag, before the room's every waiter is woken: a waiter that registers after
    /// the wake-up sets it again.
    pub(crate) fn take_flag(&self) {
        self.state.fetch_and(!WAITING, Ordering::AcqRel);
    }
}
