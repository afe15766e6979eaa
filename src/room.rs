//! Where async submitters wait for room in a full queue.
//!
//! A task that finds the queue full registers its waker here, tries once more, and only then
//! sleeps. The worker, each time it takes a command from the channel (and so frees a slot),
//! wakes every registered task; each tries again. The second try after registering closes the
//! race in which the slot is freed between the first try and the registration (hazard 4).

use std::task::Waker;

use crate::on_panic;
use crate::sync::Mutex;
use crate::sync::atomic::{AtomicUsize, Ordering};

pub(crate) struct Room {
    wakers: Mutex<Vec<Waker>>,
    /// `wakers.len()`, readable without the lock: the worker's check costs one load.
    waiting: AtomicUsize,
}

impl Room {
    pub(crate) fn new() -> Self {
        Self {
            wakers: Mutex::new(Vec::new()),
            waiting: AtomicUsize::new(0),
        }
    }

    /// Registers a task to be woken when a slot is freed.
    pub(crate) fn register(&self, waker: &Waker) {
        let mut wakers = self.wakers.lock();
        if !wakers.iter().any(|known| known.will_wake(waker)) {
            wakers.push(waker.clone());
        }
        self.waiting.store(wakers.len(), Ordering::Release);
    }

    /// Wakes every registered task: a slot has just been freed.
    pub(crate) fn wake_all(&self) {
        if self.waiting.load(Ordering::Acquire) == 0 {
            return;
        }
        let wakers = {
            let mut wakers = self.wakers.lock();
            self.waiting.store(0, Ordering::Release);
            std::mem::take(&mut *wakers)
        };
        // A waker is user code (the executor's): its panic must not take the worker down.
        for waker in wakers {
            let _ = on_panic::catch(|| waker.wake());
        }
    }
}
