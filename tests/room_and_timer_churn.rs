//! Review probes that held up: room waiters (threads with BlockFor timeouts, async tasks that
//! are cancelled after being woken) and the timer thread's exit/restart churn.

mod support;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Duration;

use futures::executor::block_on;
use futures::future::{Either, select};
use singular_queue::{BlockFor, SingularQueue, StateMachine, SubmitError};
use support::{Op, held_queue, within};

#[derive(Default)]
struct Count(u64, u64);

impl StateMachine for Count {
    type Command = u64;
    type Output = u64;
    fn apply(&mut self, n: u64) -> u64 {
        // A little work, so that submitters really wait for room.
        for _ in 0..200 {
            std::hint::spin_loop();
        }
        self.0 += n;
        self.1 += 1;
        self.0
    }
}

/// Thread submitters with tiny BlockFor timeouts retry what comes back; async submitters race
/// their submit against a short sleep and retry when they lose (cancelling after a wake-up).
/// Every command must be applied exactly once, and nothing may hang.
#[test]
fn timed_out_and_cancelled_room_waiters_leave_no_sleeper_behind() {
    within(Duration::from_secs(120), || {
        let queue = SingularQueue::builder(Count::default())
            .capacity(2)
            .max_batch(1)
            .backpressure(BlockFor(Duration::from_micros(50)))
            .spawn()
            .unwrap();
        let (threads, per) = (6u64, 2000u64);
        let timeouts = Arc::new(AtomicU64::new(0));
        let cancels = Arc::new(AtomicU64::new(0));
        let start = Arc::new(Barrier::new(threads as usize));
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                let h = queue.handle();
                let timeouts = Arc::clone(&timeouts);
                let cancels = Arc::clone(&cancels);
                let start = Arc::clone(&start);
                thread::spawn(move || {
                    start.wait();
                    for _ in 0..per {
                        if t % 2 == 0 {
                            let mut n = 1;
                            loop {
                                match h.tell(n) {
                                    Ok(()) => break,
                                    Err(SubmitError::Timeout(back)) => {
                                        timeouts.fetch_add(1, Ordering::Relaxed);
                                        n = back;
                                    }
                                    Err(e) => panic!("{e:?}"),
                                }
                            }
                        } else {
                            loop {
                                let submit = Box::pin(h.tell_async(1));
                                let nap = Box::pin(async {
                                    thread::yield_now();
                                });
                                match block_on(select(submit, nap)) {
                                    Either::Left((Ok(()), _)) => break,
                                    Either::Left((Err(SubmitError::Timeout(_)), _)) => {
                                        timeouts.fetch_add(1, Ordering::Relaxed);
                                    }
                                    Either::Left((Err(e), _)) => panic!("{e:?}"),
                                    Either::Right(((), pending)) => {
                                        // Poll once more, then cancel.
                                        cancels.fetch_add(1, Ordering::Relaxed);
                                        drop(pending);
                                    }
                                }
                            }
                        }
                    }
                })
            })
            .collect();
        for w in workers {
            w.join().unwrap();
        }
        let stats = queue.stats();
        let state = queue.shutdown().unwrap();
        assert_eq!(state.1, threads * per, "applied exactly once each");
        assert_eq!(stats.submitted, threads * per);
        eprintln!(
            "timeouts {} cancels {}",
            timeouts.load(Ordering::Relaxed),
            cancels.load(Ordering::Relaxed)
        );
    });
}

/// The timer thread exits when no alarm is armed and restarts on the next: churn it from
/// several threads. Every async BlockFor wait on a held queue must end in Timeout.
#[test]
fn timer_thread_churn_never_loses_an_alarm() {
    within(Duration::from_secs(120), || {
        let (queue, release) = held_queue(1, BlockFor(Duration::from_micros(200)));
        queue.tell(Op::Add(0)).unwrap(); // full
        let h = queue.handle();
        let threads: Vec<_> = (0..4)
            .map(|i| {
                let h = h.clone();
                thread::spawn(move || {
                    for k in 0..300u64 {
                        let out = block_on(h.tell_async(Op::Add(k)));
                        assert!(matches!(out, Err(SubmitError::Timeout(_))), "{i}/{k}");
                        if k % 7 == 0 {
                            // Not synchronisation: it lets the timer thread run, find no
                            // alarm and exit, so that the next wait restarts it. Every wait
                            // must time out whether or not it did.
                            (0..16).for_each(|_| thread::yield_now());
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        release.send(()).unwrap();
        let probe = queue.shutdown().unwrap();
        assert_eq!(probe.applied, [0]);
    });
}
