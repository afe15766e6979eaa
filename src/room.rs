//! Where submitters wait for room in a full queue: threads and tasks alike.
//!
//! A submitter that finds the queue full registers a waker here, flags its wait on the
//! queue's vacancies, tries once more, and only then sleeps (a thread parks on its own
//! [`Signal`], a task returns `Pending`). Whoever gives a vacancy back (the worker, taking a
//! command out; a dropped permit) and finds the flag wakes every registered submitter; each
//! tries again. The second try after registering closes the race in which the place is freed
//! between the first try and the registration (hazard 4; see `vacancies`).
//!
//! A waiting submitter holds no pass through the shutdown gate: it enters the gate afresh for
//! each try. So a shutdown, or a worker finishing on its own, never waits for a submitter that
//! waits for room (hazard 10), and closing the queue wakes every waiter to find it closed.
//!
//! Each registration is a [`Registration`]: re-registering a moved task replaces its waker in
//! place, and dropping the registration (a cancelled task, a thread that got in) takes its
//! waker back at once (hazard 12). Both cost O(1). No waker is cloned, dropped or woken under
//! the lock (hazard 9).

use std::task::{Wake, Waker};

use crate::on_panic;
use crate::sync::atomic::{AtomicUsize, Ordering, fence};
use crate::sync::{Condvar, Instant, Mutex, WakerArc};

pub(crate) struct Room {
    waiters: Mutex<Waiters>,
    /// How many wakers are registered, readable without the lock: the worker's check costs
    /// one load.
    waiting: AtomicUsize,
}

/// The registered wakers: a slab whose free entries are reused.
struct Waiters {
    entries: Vec<Option<Waker>>,
    free: Vec<usize>,
    /// Bumped by each `wake_all`, which empties the slab: older keys refer to nothing.
    round: u64,
}

/// Where one waiter's waker sits, in which round.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Key {
    index: usize,
    round: u64,
}

/// One submitter's place in the room; its waker is taken back when it is dropped.
pub(crate) struct Registration<'a> {
    room: &'a Room,
    key: Option<Key>,
}

impl Room {
    pub(crate) fn new() -> Self {
        Self {
            waiters: Mutex::new(Waiters {
                entries: Vec::new(),
                free: Vec::new(),
                round: 0,
            }),
            waiting: AtomicUsize::new(0),
        }
    }

    /// A registration that holds no waker yet.
    pub(crate) fn registration(&self) -> Registration<'_> {
        Registration {
            room: self,
            key: None,
        }
    }

    /// Waits on this thread until `ready` yields a value, or `deadline` passes (`None`).
    /// `ready` is tried after each registration: whatever it waits for that happens in
    /// between finds the waker registered, and wakes this thread to try again.
    pub(crate) fn wait_until<R>(
        &self,
        deadline: Option<Instant>,
        mut ready: impl FnMut() -> Option<R>,
    ) -> Option<R> {
        let signal = Signal::new();
        let waker = Waker::from(WakerArc::clone(&signal));
        let mut registration = self.registration();
        // Whether a timed wait reported its deadline passed, by the clock it waited on.
        let mut expired = false;
        loop {
            registration.register_then_look(&waker);
            if let Some(done) = ready() {
                return Some(done);
            }
            if expired || deadline.is_some_and(|deadline| Instant::now() >= deadline) {
                return None;
            }
            expired = signal.wait(deadline);
        }
    }

    /// Wakes every registered waiter after a change that a waiter in [`wait_until`] looks at
    /// and that was published without a lock the waiter also takes (an atomic counter): the
    /// fence orders the change before the read of `waiting`, so a waiter that registered
    /// after that read sees the change.
    ///
    /// [`wait_until`]: Room::wait_until
    pub(crate) fn wake_all_after_change(&self) {
        fence(Ordering::SeqCst);
        self.wake_all();
    }

    /// Wakes every registered waiter: a place has just been freed by someone who found a
    /// waiter's flag on the vacancies (which orders the two), or the queue closed.
    pub(crate) fn wake_all(&self) {
        if self.waiting.load(Ordering::Acquire) == 0 {
            return;
        }
        let entries = {
            let mut waiters = self.waiters.lock();
            self.waiting.store(0, Ordering::Release);
            waiters.round = waiters.round.wrapping_add(1);
            waiters.free.clear();
            std::mem::take(&mut waiters.entries)
        };
        // A waker is the executor's code: woken outside the lock, and its panic must not take
        // the worker down.
        for waker in entries.into_iter().flatten() {
            let _ = on_panic::catch(|| waker.wake());
        }
    }
}

impl Waiters {
    /// Puts `waker` at `key` if the key is of this round, or in a new entry; returns the
    /// waker it replaced, to be dropped outside the lock.
    fn put(&mut self, key: &mut Option<Key>, waker: Waker) -> Option<Waker> {
        if let Some(key) = key.filter(|key| key.round == self.round) {
            return self.entries[key.index].replace(waker);
        }
        let index = match self.free.pop() {
            Some(index) => {
                self.entries[index] = Some(waker);
                index
            }
            None => {
                self.entries.push(Some(waker));
                self.entries.len() - 1
            }
        };
        *key = Some(Key {
            index,
            round: self.round,
        });
        None
    }

    /// Takes the waker at `key` back, if `wake_all` has not already.
    fn remove(&mut self, key: Key) -> Option<Waker> {
        if key.round != self.round {
            return None;
        }
        self.free.push(key.index);
        self.entries[key.index].take()
    }

    fn len(&self) -> usize {
        self.entries.len() - self.free.len()
    }
}

// === impl Registration ===

impl Registration<'_> {
    /// Asks to be woken through `waker` when a slot is freed: a new entry, or this
    /// registration's own entry, updated, if it is still there.
    pub(crate) fn register(&mut self, waker: &Waker) {
        let room = self.room;
        let waker = waker.clone();
        let replaced = {
            let mut waiters = room.waiters.lock();
            let replaced = waiters.put(&mut self.key, waker);
            room.waiting.store(waiters.len(), Ordering::Release);
            replaced
        };
        drop(replaced);
    }
}

impl Registration<'_> {
    /// Registers `waker`, for a waiter that looks at what [`Room::wake_all_after_change`]
    /// publishes: the fence pairs with that one, so that of a waiter that registers then
    /// looks, and a thread that changes what it looks at then reads `waiting`, at least one
    /// sees the other's write.
    pub(crate) fn register_then_look(&mut self, waker: &Waker) {
        self.register(waker);
        fence(Ordering::SeqCst);
    }
}

impl Drop for Registration<'_> {
    fn drop(&mut self) {
        let Some(key) = self.key else {
            return;
        };
        let room = self.room;
        let removed = {
            let mut waiters = room.waiters.lock();
            let removed = waiters.remove(key);
            room.waiting.store(waiters.len(), Ordering::Release);
            removed
        };
        drop(removed);
    }
}

// === impl Signal ===

/// How a thread waits for room: a flag it sleeps on, set through a [`Waker`].
pub(crate) struct Signal {
    set: Mutex<bool>,
    woken: Condvar,
}

impl Signal {
    pub(crate) fn new() -> WakerArc<Self> {
        WakerArc::new(Self {
            set: Mutex::new(false),
            woken: Condvar::new(),
        })
    }

    /// Sleeps until woken, or until `deadline` if there is one, and clears the flag. Returns
    /// whether the deadline passed first.
    pub(crate) fn wait(&self, deadline: Option<Instant>) -> bool {
        let mut set = self.set.lock();
        let mut expired = false;
        while !*set && !expired {
            match deadline {
                None => self.woken.wait(&mut set),
                Some(deadline) => expired = self.woken.wait_until(&mut set, deadline).timed_out(),
            }
        }
        *set = false;
        expired
    }
}

impl Wake for Signal {
    fn wake(self: WakerArc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &WakerArc<Self>) {
        *self.set.lock() = true;
        self.woken.notify_one();
    }
}
