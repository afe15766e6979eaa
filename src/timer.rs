//! Deadlines for async submitters, without a timer runtime.
//!
//! An async submit that may wait only so long for room (`BlockFor`) must wake at its deadline
//! even if no slot is freed. With no executor's timer to lean on, the crate keeps one small
//! thread per process, started when an alarm is set and none is running, that sleeps until the
//! earliest deadline and wakes the tasks whose deadlines have passed. It holds wakers only,
//! never commands. An alarm whose future finished is cancelled: its waker is released at once.
//! When no alarm is left, the thread exits; the next alarm starts a new one.
//!
//! No waker is woken, cloned or dropped under a lock of the timer's (hazard 9): a waker may
//! poll or drop its task inline, and the task's alarm takes those locks.
//!
//! Under loom the timer runs as under std, on loom's primitives: a timed wait there yields
//! once and reports that its deadline passed, so a model explores alarms that fire before,
//! during and after their task completes, is cancelled, or sets another.

use std::task::Waker;

use crate::sync::{Arc, Instant, Mutex};

/// A wake-up at a deadline for one task; cancelled when dropped.
pub(crate) struct Alarm {
    waker: Arc<Mutex<Option<Waker>>>,
}

impl Alarm {
    pub(crate) fn set(deadline: Instant, waker: &Waker) -> Alarm {
        let waker = Arc::new(Mutex::new(Some(waker.clone())));
        clock::Timer::global().schedule(deadline, Arc::clone(&waker));
        Alarm { waker }
    }

    /// Whether the alarm went off: its deadline has passed.
    pub(crate) fn has_fired(&self) -> bool {
        self.waker.lock().is_none()
    }

    /// Whether the alarm wakes the task behind `waker`.
    pub(crate) fn wakes(&self, waker: &Waker) -> bool {
        self.waker
            .lock()
            .as_ref()
            .is_some_and(|armed| armed.will_wake(waker))
    }
}

/// A task's deadline: whether it has passed, and an alarm that wakes the task at it.
pub(crate) struct Deadline {
    at: Instant,
    /// Cancelled when the deadline is dropped (its future completed or was dropped).
    alarm: Option<Alarm>,
}

impl Deadline {
    pub(crate) fn new(at: Instant) -> Self {
        Self { at, alarm: None }
    }

    /// Whether the deadline has passed; if not, sees that the task behind `waker` is woken
    /// at it. An alarm that fired says the deadline passed by the timer's clock.
    pub(crate) fn passed_or_arm(&mut self, waker: &Waker) -> bool {
        if Instant::now() >= self.at || self.alarm.as_ref().is_some_and(Alarm::has_fired) {
            return true;
        }
        // Armed for the waker of this poll: a task that moved must be the one woken.
        if !self.alarm.as_ref().is_some_and(|alarm| alarm.wakes(waker)) {
            self.alarm = Some(Alarm::set(self.at, waker));
        }
        false
    }
}

impl Drop for Alarm {
    fn drop(&mut self) {
        let waker = self.waker.lock().take();
        if let Some(waker) = waker {
            clock::Timer::global().cancelled();
            drop(waker);
        }
    }
}

mod clock {
    use std::cmp::Reverse;
    use std::collections::BinaryHeap;
    use std::task::Waker;

    use crate::on_panic;
    use crate::sync::{Arc, Condvar, Instant, Mutex, thread};

    /// Purge cancelled entries once the heap holds this many (and twice its live size after).
    const PURGE_AT: usize = 1024;

    pub(super) struct Timer {
        due: Mutex<Due>,
        /// Signalled when an earlier deadline arrives, or the last alarm is cancelled.
        changed: Condvar,
    }

    struct Due {
        entries: BinaryHeap<Reverse<Entry>>,
        purge_at: usize,
        /// Entries whose waker is still armed: neither fired nor cancelled.
        live: usize,
        /// Whether a timer thread is running (it exits once `live` is 0).
        running: bool,
    }

    struct Entry {
        deadline: Instant,
        waker: Arc<Mutex<Option<Waker>>>,
    }

    impl Timer {
        /// The process's timer. Its thread holds an `Arc` of its own: under loom the global is
        /// dropped when the model's main thread ends, which may be before the thread exits.
        pub(super) fn global() -> &'static Arc<Timer> {
            crate::sync::global! {
                static TIMER: Arc<Timer> = Arc::new(Timer {
                    due: Mutex::new(Due {
                        entries: BinaryHeap::new(),
                        purge_at: PURGE_AT,
                        live: 0,
                        running: false,
                    }),
                    changed: Condvar::new(),
                });
            }
            &TIMER
        }

        pub(super) fn schedule(&self, deadline: Instant, waker: Arc<Mutex<Option<Waker>>>) {
            let mut due = self.due.lock();
            if due.entries.len() >= due.purge_at {
                due.entries
                    .retain(|Reverse(entry)| entry.waker.lock().is_some());
                due.purge_at = PURGE_AT.max(2 * due.entries.len());
            }
            if !due.running {
                // Started under the lock, so that two alarms never start two threads; the
                // new thread waits for the lock. If it cannot start, nothing has changed, and
                // the next alarm tries again.
                let timer = Arc::clone(Timer::global());
                thread::Builder::new()
                    .name("singular-queue-timer".to_owned())
                    .spawn(move || timer.run())
                    .expect("spawn the singular-queue timer thread");
                due.running = true;
            } else if due
                .entries
                .peek()
                .is_none_or(|Reverse(first)| deadline < first.deadline)
            {
                self.changed.notify_one();
            }
            due.entries.push(Reverse(Entry { deadline, waker }));
            due.live += 1;
        }

        /// An alarm was cancelled before it fired.
        pub(super) fn cancelled(&self) {
            let mut due = self.due.lock();
            due.live -= 1;
            if due.live == 0 {
                self.changed.notify_one();
            }
        }

        fn run(&self) {
            let mut due = self.due.lock();
            // The latest deadline a timed wait reported passed: the clock has reached it.
            let mut reached: Option<Instant> = None;
            while due.live > 0 {
                let now = reached.map_or_else(Instant::now, |reached| reached.max(Instant::now()));
                let mut ripe = Vec::new();
                while due
                    .entries
                    .peek()
                    .is_some_and(|Reverse(first)| first.deadline <= now)
                {
                    ripe.push(due.entries.pop().expect("peeked").0);
                }
                if !ripe.is_empty() {
                    drop(due);
                    let fired = fire(ripe);
                    due = self.due.lock();
                    due.live -= fired;
                    continue;
                }
                match due.entries.peek() {
                    Some(Reverse(first)) => {
                        let deadline = first.deadline;
                        if self.changed.wait_until(&mut due, deadline).timed_out() {
                            reached = Some(deadline);
                        }
                    }
                    None => self.changed.wait(&mut due),
                }
            }
            // No alarm is armed: the entries left were all cancelled.
            due.entries.clear();
            due.running = false;
        }
    }

    /// Wakes the tasks of `ripe` entries still armed, outside every lock of the timer's, each
    /// under `catch`: a waker is the executor's code, and may panic, poll its task inline, or
    /// drop it (whose alarm then takes the entry's lock). Returns how many it woke.
    fn fire(ripe: Vec<Entry>) -> usize {
        let mut fired = 0;
        for entry in ripe {
            let waker = entry.waker.lock().take();
            if let Some(waker) = waker {
                fired += 1;
                let _ = on_panic::catch(|| waker.wake());
            }
        }
        fired
    }

    impl PartialEq for Entry {
        fn eq(&self, other: &Self) -> bool {
            self.deadline == other.deadline
        }
    }

    impl Eq for Entry {}

    impl PartialOrd for Entry {
        fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
            Some(self.cmp(other))
        }
    }

    impl Ord for Entry {
        fn cmp(&self, other: &Self) -> std::cmp::Ordering {
            self.deadline.cmp(&other.deadline)
        }
    }
}
