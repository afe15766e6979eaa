//! Queued reads (`Handle::read`): in order with the commands, linearizable, and every way one
//! is refused or fails handing the closure back or naming why.

mod support;

use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
use std::thread;
use std::time::{Duration, Instant};

use singular_queue::{CallError, DropOldest, OnPanic, SingularQueue, StateMachine};
use support::within;

#[path = "support/linearizable.rs"]
mod linearizable;

/// A counter per client (`support::Tally`): writes only, no `Get` variant.
type Counters = support::Tally;

/// Eight threads each tell 2 000 increments to their own counter and read it after each
/// tenth: every read sees exactly the thread's own tells so far (read your writes), however
/// the others interleave, under `Block` and under `DropOldest` at capacity 2 (where an
/// eviction may send a read again behind newer commands; evicted tells are not counted).
#[test]
fn every_read_sees_exactly_the_commands_accepted_before_it() {
    within(Duration::from_secs(60), || {
        for drop_oldest in [false, true] {
            let builder = SingularQueue::builder(Counters::default()).capacity(2);
            let queue = if drop_oldest {
                builder.backpressure(DropOldest).spawn().unwrap()
            } else {
                builder.spawn().unwrap()
            };
            thread::scope(|scope| {
                for client in 0..8 {
                    let handle = queue.handle();
                    scope.spawn(move || {
                        for n in 1..=2000_u64 {
                            handle.tell(client).unwrap();
                            if n % 10 == 0 {
                                let read = move |c: &Counters| c.0.get(&client).copied();
                                let seen = handle.read(read).unwrap_or_else(|e| panic!("{e}"));
                                let seen = seen.unwrap_or(0);
                                if drop_oldest {
                                    assert!(seen <= n);
                                } else {
                                    assert_eq!(seen, n);
                                }
                            }
                        }
                    });
                }
            });
            let stats = queue.stats();
            let state = queue.shutdown().unwrap();
            let applied: u64 = state.0.values().sum();
            assert_eq!(applied, stats.applied);
            assert_eq!(
                stats.submitted,
                8 * 2000,
                "reads are not counted as commands"
            );
        }
    });
}

/// The project's linearizability checker, with every get done by `read` and every other
/// operation by `call`: six threads, 120 operations each, ten runs.
#[test]
fn reads_mixed_with_calls_are_linearizable() {
    let mut checked = 0;
    for run in 0..10_u64 {
        let queue = SingularQueue::builder(linearizable::Registers::default())
            .capacity(4)
            .spawn()
            .unwrap();
        let events: Vec<(u64, linearizable::Event)> = thread::scope(|scope| {
            let threads: Vec<_> = (0..6_u64)
                .map(|t| {
                    let handle = queue.handle();
                    scope.spawn(move || {
                        let random = BuildHasherDefault::<DefaultHasher>::default();
                        let mut events = Vec::new();
                        for i in 0..120_u64 {
                            let roll = random.hash_one((run, t, i));
                            let (key, op) = (roll % 8, linearizable::random_op(roll));
                            let start = Instant::now();
                            let output = match op {
                                linearizable::Op::Get => {
                                    let read = handle.read(move |r: &linearizable::Registers| {
                                        r.0.get(&key).copied()
                                    });
                                    (read.unwrap_or_else(|_| panic!("read refused")), false)
                                }
                                op => handle.call((key, op)).unwrap(),
                            };
                            events.push((key, linearizable::Event::ended(op, output, start)));
                        }
                        events
                    })
                })
                .collect();
            threads
                .into_iter()
                .flat_map(|t| t.join().unwrap())
                .collect()
        });
        checked += linearizable::check_per_key(events, run);
        queue.shutdown().unwrap();
    }
    assert_eq!(checked, 10 * 6 * 120);
}

/// Reads the state from inside `apply`, where a read would wait for itself.
struct Nested(Option<Result<u64, String>>);

impl StateMachine for Nested {
    type Command = singular_queue::Handle<Nested>;
    type Output = ();
    fn apply(&mut self, handle: Self::Command) {
        self.0 = Some(match handle.read(|_: &Nested| 7) {
            Err(CallError::Reentrant(f)) => {
                Err(format!("reentrant, and f still gives {}", f(self)))
            }
            other => Ok(other.map_err(|e| e.to_string()).unwrap()),
        });
    }
}

#[test]
fn a_read_from_its_own_worker_is_refused_with_the_closure_back() {
    let queue = SingularQueue::new(Nested(None));
    queue.call(queue.handle()).unwrap();
    let nested = queue
        .read(|n: &Nested| n.0.clone())
        .unwrap_or_else(|_| panic!("refused"));
    assert_eq!(
        nested,
        Some(Err("reentrant, and f still gives 7".to_owned()))
    );
}

#[test]
fn a_read_of_a_closed_queue_hands_the_closure_back() {
    let queue = SingularQueue::new(Counters::default());
    let handle = queue.handle();
    queue.shutdown().unwrap();
    match handle.read(|c: &Counters| c.0.len()) {
        Err(CallError::Closed(f)) => assert_eq!(f(&Counters::default()), 0),
        Err(other) => panic!("{other}"),
        Ok(_) => panic!("read a closed queue"),
    }
}

/// A read that panics is its caller's error alone: even under `OnPanic::Stop` the state is
/// not poisoned, since a read cannot change it.
#[test]
fn a_panicking_read_fails_alone_and_poisons_nothing() {
    support::quiet_panics();
    let queue = SingularQueue::builder(Counters::default())
        .on_panic(OnPanic::Stop)
        .spawn()
        .unwrap();
    queue.tell(1).unwrap();
    let failed = queue.read(|_: &Counters| -> u64 { panic!("planted in a read") });
    assert!(matches!(failed, Err(CallError::Panicked(ref m)) if m.contains("planted")));
    queue.tell(1).unwrap();
    let count = queue
        .read(|c: &Counters| c.0[&1])
        .unwrap_or_else(|_| panic!("refused"));
    assert_eq!(count, 2);
    assert_eq!(queue.shutdown().unwrap().0[&1], 2);
}

/// Reads racing `shutdown_now` from four threads: each ends, with the state or
/// `NotApplied` or `Closed`, never hanging.
#[test]
fn reads_racing_shutdown_now_all_end() {
    within(Duration::from_secs(60), || {
        for _ in 0..50 {
            let queue = SingularQueue::new(Counters::default());
            let readers: Vec<_> = (0..4_u64)
                .map(|client| {
                    let handle = queue.handle();
                    thread::spawn(move || {
                        for _ in 0..50 {
                            let _ = handle.tell(client);
                            match handle.read(|c: &Counters| c.0.len()) {
                                Ok(_) => {}
                                Err(CallError::NotApplied | CallError::Closed(_)) => return,
                                Err(other) => panic!("{other}"),
                            }
                        }
                    })
                })
                .collect();
            drop(queue.shutdown_now());
            readers.into_iter().for_each(|r| r.join().unwrap());
        }
    });
}

/// On a hand-stepped queue a read from another thread is answered by the owner's step, the
/// commands behind it are applied by the same `run_until_idle` (a read first in the channel
/// once made the step report no command and stop: found by review), and the owner's own
/// read, which would wait for itself, is refused.
#[test]
fn a_manual_queue_answers_reads_on_its_steps() {
    within(Duration::from_secs(30), || {
        let mut queue = SingularQueue::builder(Counters::default()).manual();
        let own = queue.handle().read(|c: &Counters| c.0.len());
        assert!(matches!(own, Err(CallError::Reentrant(_))));
        let handle = queue.handle();
        let (tid, reader_tid) = std::sync::mpsc::channel();
        let reader = thread::spawn(move || {
            tid.send(support::current_tid()).unwrap();
            handle.read(|c: &Counters| c.0.len()).ok()
        });
        // Asleep in `read`: the read is in the channel, ahead of the two tells.
        support::wait_until_asleep(&[reader_tid.recv().unwrap()]);
        queue.tell(3).unwrap();
        queue.tell(3).unwrap();
        assert_eq!(queue.run_until_idle(), 2);
        assert_eq!(reader.join().unwrap(), Some(0));
        assert_eq!((queue.state().0[&3], queue.handle().len()), (2, 0));
    });
}

/// Panics when dropped: a capture of a read that the queue never runs.
struct Grenade;

impl Drop for Grenade {
    fn drop(&mut self) {
        panic!("a read's capture, dropped");
    }
}

/// A read queued behind a command that poisons the state is never run: it ends with
/// `NotApplied`, and its closure, whose capture panics when dropped, is dropped without that
/// panic taking the error's place (it escaped `read` once: found by review).
#[test]
fn a_read_the_queue_never_runs_ends_not_applied_even_if_its_closure_panics_when_dropped() {
    support::quiet_panics();
    within(Duration::from_secs(30), || {
        let queue = SingularQueue::builder(support::Probe::default())
            .on_panic(OnPanic::Stop)
            .spawn()
            .unwrap();
        let (hold, started, release) = support::Op::hold();
        queue.tell(hold).unwrap();
        started.recv().unwrap();
        queue.tell(support::Op::Panic).unwrap();
        let handle = queue.handle();
        let (tid, reader_tid) = std::sync::mpsc::channel();
        let reader = thread::spawn(move || {
            tid.send(support::current_tid()).unwrap();
            let grenade = Grenade;
            let read = handle.read(move |p: &support::Probe| {
                let _keep = &grenade;
                p.applied.len()
            });
            matches!(read, Err(CallError::NotApplied))
        });
        support::wait_until_asleep(&[reader_tid.recv().unwrap()]);
        release.send(()).unwrap();
        assert!(
            reader.join().unwrap(),
            "the read ends NotApplied, without a panic"
        );
        assert!(queue.shutdown().is_err(), "poisoned");
    });
}

// === Async reads ===

/// Eight tasks on a two-thread runtime each tell 500 increments to their own counter and
/// read it asynchronously after each tenth: every read sees exactly the task's own tells so
/// far, as a blocking read does.
#[test]
fn every_async_read_sees_exactly_the_commands_accepted_before_it() {
    within(Duration::from_secs(60), || {
        let queue = SingularQueue::builder(Counters::default())
            .capacity(4)
            .spawn()
            .unwrap();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .build()
            .unwrap();
        runtime.block_on(async {
            let tasks: Vec<_> = (0..8)
                .map(|client| {
                    let handle = queue.handle();
                    tokio::spawn(async move {
                        for told in 1..=500u64 {
                            handle.tell_async(client).await.unwrap();
                            if told % 10 == 0 {
                                let seen = handle
                                    .read_async(move |c: &Counters| c.0[&client])
                                    .await
                                    .unwrap_or_else(|_| panic!("refused"));
                                assert_eq!(seen, told);
                            }
                        }
                    })
                })
                .collect();
            for task in tasks {
                task.await.unwrap();
            }
        });
        let counters = queue.shutdown().unwrap();
        assert_eq!(counters.0.values().sum::<u64>(), 8 * 500);
    });
}

/// An async read polled from the queue's own worker is refused with the closure back; one
/// of a closed queue too.
#[test]
fn an_async_read_that_would_never_return_hands_the_closure_back() {
    struct Polls(Option<String>);
    impl StateMachine for Polls {
        type Command = singular_queue::Handle<Polls>;
        type Output = ();
        fn apply(&mut self, handle: Self::Command) {
            let read = singular_queue::model::block_on(handle.read_async(|_: &Polls| 7));
            self.0 = Some(match read {
                Err(CallError::Reentrant(f)) => format!("reentrant, f gives {}", f(self)),
                other => format!("{:?}", other.map_err(|e| e.to_string())),
            });
        }
    }
    let queue = SingularQueue::new(Polls(None));
    queue.call(queue.handle()).unwrap();
    let handle = queue.handle();
    let polls = queue.shutdown().unwrap();
    assert_eq!(polls.0.as_deref(), Some("reentrant, f gives 7"));
    match singular_queue::model::block_on(handle.read_async(|_: &Polls| 8)) {
        Err(CallError::Closed(f)) => assert_eq!(f(&Polls(None)), 8),
        _ => panic!("expected Closed"),
    }
}

/// Sets its flag when dropped.
struct Flag(std::sync::Arc<std::sync::atomic::AtomicBool>);

impl Drop for Flag {
    fn drop(&mut self) {
        self.0.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

/// An async read dropped before the worker reaches it is cancelled: its closure is dropped
/// with the future and never runs; the commands around it are applied.
#[test]
fn a_cancelled_async_read_never_runs() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, mpsc};
    use std::task::{Context, Waker};
    within(Duration::from_secs(30), || {
        let (started, release) = (mpsc::channel(), mpsc::channel::<()>());
        let (started_tx, started_rx) = started;
        let (release_tx, release_rx) = release;
        let release_rx = std::sync::Mutex::new(release_rx);
        let queue = SingularQueue::new(Counters::default());
        let handle = queue.handle();
        // Holds the worker inside a read until released.
        let holding = thread::spawn(move || {
            handle
                .read(move |_: &Counters| {
                    started_tx.send(()).unwrap();
                    release_rx.lock().unwrap().recv().unwrap();
                })
                .unwrap_or_else(|_| panic!("refused"));
        });
        started_rx.recv().unwrap();
        let (ran, dropped) = (
            Arc::new(AtomicBool::new(false)),
            Arc::new(AtomicBool::new(false)),
        );
        let (flag, ran_in_read) = (Flag(Arc::clone(&dropped)), Arc::clone(&ran));
        let mut read = Box::pin(queue.read_async(move |_: &Counters| {
            let _flag = &flag;
            ran_in_read.store(true, Ordering::SeqCst);
        }));
        let mut cx = Context::from_waker(Waker::noop());
        assert!(
            read.as_mut().poll(&mut cx).is_pending(),
            "the worker is held"
        );
        drop(read);
        assert!(dropped.load(Ordering::SeqCst), "dropped with the future");
        queue.tell(1).unwrap();
        release_tx.send(()).unwrap();
        holding.join().unwrap();
        let seen = queue
            .read(|c: &Counters| c.0[&1])
            .unwrap_or_else(|_| panic!());
        assert_eq!(seen, 1);
        assert!(!ran.load(Ordering::SeqCst), "a cancelled read never runs");
    });
}
