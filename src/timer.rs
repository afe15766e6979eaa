//! Deadlines for async submitters, without a timer runtime.
//!
//! An async submit that may wait only so long for room (`BlockFor`) must wake at its deadline
//! even if no slot is freed. With no executor's timer to lean on, the crate keeps one small
//! thread per process, started on first use, that sleeps until the earliest deadline and wakes
//! the tasks whose deadlines have passed. It holds wakers only, never commands.
//!
//! Under loom there is no clock: a deadline wakes its task at once, and the task re-checks.

use std::task::Waker;

use crate::sync::Instant;

#[cfg(not(singular_queue_loom))]
pub(crate) fn wake_at(deadline: Instant, waker: Waker) {
    clock::Timer::global().schedule(deadline, waker);
}

#[cfg(singular_queue_loom)]
pub(crate) fn wake_at(_deadline: Instant, waker: Waker) {
    waker.wake();
}

#[cfg(not(singular_queue_loom))]
mod clock {
    use std::cmp::Reverse;
    use std::collections::BinaryHeap;
    use std::task::Waker;

    use crate::sync::{Condvar, Instant, Mutex, OnceLock, thread};

    pub(super) struct Timer {
        due: Mutex<BinaryHeap<Reverse<Entry>>>,
        earlier: Condvar,
    }

    struct Entry {
        deadline: Instant,
        waker: Waker,
    }

    impl Timer {
        pub(super) fn global() -> &'static Timer {
            static TIMER: OnceLock<Timer> = OnceLock::new();
            TIMER.get_or_init(|| {
                thread::Builder::new()
                    .name("singular-queue-timer".to_owned())
                    .spawn(|| Timer::global().run())
                    .expect("spawn the singular-queue timer thread");
                Timer {
                    due: Mutex::new(BinaryHeap::new()),
                    earlier: Condvar::new(),
                }
            })
        }

        pub(super) fn schedule(&self, deadline: Instant, waker: Waker) {
            let mut due = self.due.lock();
            let earliest = due
                .peek()
                .is_none_or(|Reverse(first)| deadline < first.deadline);
            due.push(Reverse(Entry { deadline, waker }));
            if earliest {
                self.earlier.notify_one();
            }
        }

        fn run(&self) {
            let mut due = self.due.lock();
            loop {
                let now = Instant::now();
                while due
                    .peek()
                    .is_some_and(|Reverse(first)| first.deadline <= now)
                {
                    let Reverse(entry) = due.pop().expect("peeked");
                    entry.waker.wake();
                }
                match due.peek() {
                    Some(Reverse(first)) => {
                        let deadline = first.deadline;
                        self.earlier.wait_until(&mut due, deadline);
                    }
                    None => self.earlier.wait(&mut due),
                }
            }
        }
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
