//! How many more commands the queue may hold: the bound its backpressure enforces.
//!
//! The channel beneath is unbounded; this count is the queue's capacity. A submitter takes a
//! vacancy before it sends, the worker gives one back for each command it takes out, and a
//! [`Permit`](crate::Permit) holds one until its command is sent or it is dropped. So a permit
//! holder can always send: nobody else can fill the place it holds. An evicting submitter takes
//! over the vacancy of the command it evicted.
//!
//! A vacancy is given back without a lock that a waiter takes, so the giver wakes the room
//! with [`Room::wake_all_after_change`](crate::room::Room::wake_all_after_change), whose fence
//! pairs with the waiter's register-then-look (hazard 4).

use crate::sync::atomic::{AtomicUsize, Ordering};

pub(crate) struct Vacancies {
    free: AtomicUsize,
}

impl Vacancies {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            free: AtomicUsize::new(capacity),
        }
    }

    /// Takes one vacancy, or returns `false` if there is none. Never takes one that is not
    /// there, not even for a moment: a submitter that loses the race is told "full" only when
    /// the queue was full.
    pub(crate) fn try_take(&self) -> bool {
        let mut free = self.free.load(Ordering::Relaxed);
        loop {
            if free == 0 {
                return false;
            }
            match self.free.compare_exchange_weak(
                free,
                free - 1,
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(now) => free = now,
            }
        }
    }

    /// Gives one vacancy back; the caller then wakes the room.
    pub(crate) fn give_back(&self) {
        self.free.fetch_add(1, Ordering::Release);
    }
}
