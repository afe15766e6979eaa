//! From the hostile review of permits, vacancies, async limits and the observer hook. The
//! first six tests each failed before their fix: `DropOldest` refused or waited while one
//! permit held only part of the room, or while a refused reservation was counted; an evicting
//! submitter swallowed a handle's close nudge; an observer's panicking `Drop` took the state
//! down at shutdown; `ReplyTimeout` promised "applied" for a command that could be evicted.

mod support;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier, mpsc};
use std::thread;
use std::time::Duration;

use singular_queue::{
    BatchTimes, CallError, CommandTimes, DropOldest, Observer, SingularQueue, StateMachine,
    SubmitError, WaitStrategy,
};
use support::{Op, Probe, Sum, free_places, hold_worker, quiet_panics, within};

/// Capacity 2 under DropOldest, worker held: one place is held by a permit, the other by a
/// waiting command. There is always exactly one evictable command in the channel, so every
/// `try_tell` must evict it and get in: DropOldest "never waits and never refuses", and the
/// permit holds only half of the room. Two evicting threads race; when one has just popped the
/// oldest command and not yet sent its own, the other finds the channel empty, sees
/// `reserved > 0`, and falls back to "wait as Block does" — a `try_*` is refused `Full`.
#[test]
fn drop_oldest_with_one_permit_of_two_places_never_refuses_a_try() {
    within(Duration::from_secs(60), || {
        let builder = SingularQueue::builder(Probe::default())
            .capacity(2)
            .backpressure(DropOldest);
        let (queue, release) = hold_worker(builder);
        let permit = queue.try_reserve().unwrap();
        queue.tell(Op::Add(0)).unwrap();
        let refused = AtomicU64::new(0);
        let accepted = AtomicU64::new(0);
        let start = Barrier::new(3);
        thread::scope(|scope| {
            for _ in 0..3 {
                let handle = queue.handle();
                let (refused, accepted, start) = (&refused, &accepted, &start);
                scope.spawn(move || {
                    start.wait();
                    for _ in 0..200_000 {
                        match handle.try_tell(Op::Add(1)) {
                            Ok(()) => accepted.fetch_add(1, Ordering::Relaxed),
                            Err(SubmitError::Full(_)) => refused.fetch_add(1, Ordering::Relaxed),
                            Err(other) => panic!("unexpected {other:?}"),
                        };
                    }
                });
            }
        });
        let refused = refused.into_inner();
        permit.tell(Op::Add(2)).unwrap();
        release.send(()).unwrap();
        queue.wait_until_quiet().unwrap();
        let stats = queue.stats();
        assert_eq!(
            refused, 0,
            "DropOldest try_tell refused Full {refused} times while the channel held an \
             evictable command and the permit held only one of two places; {stats:?}"
        );
        drop(queue);
    });
}

/// The blocking form of the same race: a DropOldest `tell` falls back to waiting for room as
/// Block does, although only one of two places is held by a permit. With the worker held (a
/// long `apply`) such a `tell` blocks until the worker is released.
#[test]
fn drop_oldest_tell_with_one_permit_of_two_places_never_blocks() {
    let builder = SingularQueue::builder(Probe::default())
        .capacity(2)
        .backpressure(DropOldest);
    let (queue, release) = hold_worker(builder);
    let queue = Arc::new(queue);
    let permit_queue = Arc::clone(&queue);
    let (done_tx, done) = mpsc::channel();
    let stop = Arc::new(AtomicBool::new(false));
    let runner = {
        let stop = Arc::clone(&stop);
        thread::spawn(move || {
            let permit = permit_queue.try_reserve().unwrap();
            permit_queue.tell(Op::Add(0)).unwrap();
            let start = Barrier::new(3);
            thread::scope(|scope| {
                for _ in 0..3 {
                    let handle = permit_queue.handle();
                    let (start, stop) = (&start, &stop);
                    scope.spawn(move || {
                        start.wait();
                        for _ in 0..200_000 {
                            if stop.load(Ordering::Relaxed) {
                                return;
                            }
                            handle.tell(Op::Add(1)).unwrap();
                        }
                    });
                }
            });
            drop(permit);
            let _ = done_tx.send(());
        })
    };
    let finished = done.recv_timeout(Duration::from_secs(20)).is_ok();
    // Unblock whatever is stuck, so the process can end.
    stop.store(true, Ordering::Relaxed);
    release.send(()).unwrap();
    runner.join().unwrap();
    assert!(
        finished,
        "a DropOldest tell blocked behind the held worker although a command was evictable"
    );
}

/// Panics when the worker drops it at exit.
struct DropBomb;

impl Observer for DropBomb {
    fn command(&mut self, _: &CommandTimes) {}
    fn batch(&mut self, _: &BatchTimes) {}
}

impl Drop for DropBomb {
    fn drop(&mut self) {
        if !thread::panicking() {
            panic!("observer dropped");
        }
    }
}

/// An observer is user code run on the worker; "panics in it are caught and ignored". Its
/// `Drop` runs as the worker exits: a panic there must not take the state and the commands
/// `shutdown_now` hands back down with it.
#[test]
fn an_observer_whose_drop_panics_loses_neither_state_nor_unapplied_commands() {
    quiet_panics();
    within(Duration::from_secs(30), || {
        let builder = SingularQueue::builder(Probe::default())
            .capacity(8)
            .observer(DropBomb);
        let (queue, release) = hold_worker(builder);
        for n in 1..=3 {
            queue.tell(Op::Add(n)).unwrap();
        }
        // Release once shutdown_now has closed the queue: the three wait and come back.
        let releaser = {
            let handle = queue.handle();
            thread::spawn(move || {
                while !handle.is_closed() {
                    thread::yield_now();
                }
                release.send(()).unwrap();
            })
        };
        let outcome =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| queue.shutdown_now()));
        releaser.join().unwrap();
        let (state, unapplied) = match outcome {
            Ok(parts) => parts.expect("not poisoned"),
            Err(panic) => panic!(
                "shutdown_now panicked ({:?}): the state and the 3 accepted, unapplied \
                 commands it promised to hand back are lost",
                panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
            ),
        };
        assert_eq!(state.applied, Vec::<u64>::new());
        let numbers: Vec<_> = unapplied.iter().filter_map(Op::number).collect();
        assert_eq!(numbers, [1, 2, 3]);
    });
}

/// No permit is ever granted here: one thread only *tries* to reserve in a full queue (and is
/// refused every time). Each failed try bumps `reserved` for a moment; an evicting submitter
/// that meets that moment while another evicter has just popped the oldest command concludes
/// "permits hold the room" and refuses `Full` — under DropOldest, in a queue with no permit.
#[test]
fn drop_oldest_never_refuses_a_try_when_no_permit_is_held() {
    within(Duration::from_secs(60), || {
        let builder = SingularQueue::builder(Probe::default())
            .capacity(1)
            .backpressure(DropOldest);
        let (queue, release) = hold_worker(builder);
        queue.tell(Op::Add(0)).unwrap();
        let refused = AtomicU64::new(0);
        let reservations = AtomicU64::new(0);
        let stop = AtomicBool::new(false);
        let start = Barrier::new(4);
        thread::scope(|scope| {
            let evicters: Vec<_> = (0..3)
                .map(|_| {
                    let handle = queue.handle();
                    let (refused, start) = (&refused, &start);
                    scope.spawn(move || {
                        start.wait();
                        for _ in 0..200_000 {
                            if let Err(refusal) = handle.try_tell(Op::Add(1)) {
                                assert!(refusal.is_full(), "{refusal:?}");
                                refused.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    })
                })
                .collect();
            let handle = queue.handle();
            let (reservations, stop, start) = (&reservations, &stop, &start);
            scope.spawn(move || {
                start.wait();
                while !stop.load(Ordering::Relaxed) {
                    if handle.try_reserve().is_ok() {
                        reservations.fetch_add(1, Ordering::Relaxed);
                    }
                }
            });
            for evicter in evicters {
                evicter.join().unwrap();
            }
            stop.store(true, Ordering::Relaxed);
        });
        release.send(()).unwrap();
        queue.wait_until_quiet().unwrap();
        assert_eq!(
            reservations.into_inner(),
            0,
            "the queue was full throughout"
        );
        let refused = refused.into_inner();
        assert_eq!(
            refused,
            0,
            "DropOldest try_tell refused Full {refused} times; no permit was ever held; {:?}",
            queue.stats()
        );
    });
}

/// `close()` nudges a worker waiting for commands with a `Stop`. A DropOldest submitter in a
/// queue whose room is all held by permits pops that `Stop` while looking for something to
/// evict (`send_evicting`: `Ok(Message::Stop) => {}`), assuming "this submitter's command,
/// sent next, wakes it" — but its command is not sent (nothing to evict, room held: refused
/// `Full`, and then `Closed`). A worker that had already looked at the flags and is waiting
/// for a message never learns the queue closed: `closed()` never completes.
#[test]
fn close_is_not_lost_to_an_evicting_submitter_that_pops_the_nudge() {
    let mut hung = None;
    for round in 0..1000 {
        // The default strategy and the busy one: the worker is between its look at the flags
        // and its wait for a message, where the nudge is all it has.
        let strategy = if round % 2 == 0 {
            WaitStrategy::BusySpin
        } else {
            WaitStrategy::SpinThenPark
        };
        let queue = SingularQueue::builder(Sum::default())
            .capacity(1)
            .backpressure(DropOldest)
            .wait_strategy(strategy)
            .spawn()
            .unwrap();
        let handle = queue.handle();
        let permit = handle.try_reserve().unwrap();
        let start = Barrier::new(2);
        thread::scope(|scope| {
            let evicter = {
                let handle = queue.handle();
                let start = &start;
                scope.spawn(move || {
                    start.wait();
                    loop {
                        match handle.try_tell(1) {
                            Err(SubmitError::Full(_)) => continue,
                            Err(SubmitError::Closed(_)) => return,
                            other => panic!("unexpected {other:?}"),
                        }
                    }
                })
            };
            start.wait();
            for _ in 0..50 {
                thread::yield_now();
            }
            handle.close();
            evicter.join().unwrap();
        });
        assert!(matches!(permit.tell(5), Err(SubmitError::Closed(5))));
        let (done_tx, done) = mpsc::channel();
        let waiter = {
            let handle = queue.handle();
            thread::spawn(move || {
                futures::executor::block_on(handle.closed());
                let _ = done_tx.send(());
            })
        };
        let finished = done.recv_timeout(Duration::from_secs(3)).is_ok();
        drop(queue); // the owner's own Stop ends the worker either way
        waiter.join().unwrap();
        if !finished {
            hung = Some((round, strategy));
            break;
        }
    }
    assert_eq!(
        hung, None,
        "after close(), closed() did not complete within 3s: the worker missed the nudge"
    );
}

/// `CallError::ReplyTimeout` promises "the command is still applied, exactly once" (and
/// `call_timeout_async`'s doc repeats it). Under DropOldest an accepted command whose caller
/// gave up can still be evicted: it is never applied, and the caller was told it would be.
/// `ReplyTimeout` once said "applied exactly once", but under `DropOldest` an accepted command
/// can still be evicted. It now says "accepted, and goes the way of any accepted command": here
/// a newer command evicts it, and exactly one fate is recorded for it.
#[test]
fn after_reply_timeout_the_command_goes_the_way_of_any_accepted_command() {
    within(Duration::from_secs(30), || {
        let evicted = Arc::new(std::sync::Mutex::new(Vec::new()));
        let on_evict = {
            let evicted = Arc::clone(&evicted);
            move |op: Op| evicted.lock().unwrap().extend(op.number())
        };
        let builder = SingularQueue::builder(Probe::default())
            .capacity(1)
            .backpressure(DropOldest)
            .on_evict(on_evict);
        let (queue, release) = hold_worker(builder);
        let answer = futures::executor::block_on(
            queue.call_timeout_async(Op::Add(7), Duration::from_millis(20)),
        );
        assert!(matches!(answer, Err(CallError::ReplyTimeout)), "{answer:?}");
        queue.tell(Op::Add(8)).unwrap(); // evicts 7: it was accepted, not yet applied
        release.send(()).unwrap();
        queue.wait_until_quiet().unwrap();
        let stats = queue.stats();
        let applied = queue.shutdown().unwrap().applied;
        assert_eq!(
            (applied, evicted.lock().unwrap().clone()),
            (vec![8], vec![7])
        );
        assert_eq!((stats.submitted, stats.dropped), (3, 1));
    });
}

/// Records every id it applies.
#[derive(Default)]
struct Ids(Vec<u64>);

impl StateMachine for Ids {
    type Command = u64;
    type Output = u64;
    fn apply(&mut self, id: u64) -> u64 {
        // A few microseconds of work: the queue stays full, submitters wait and time out.
        (0..2000).for_each(|_| std::hint::spin_loop());
        self.0.push(id);
        id
    }
}

/// What a caller was told about one id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Told {
    /// Handed back: must be neither applied nor evicted.
    Refused,
    /// Accepted: applied exactly once or evicted (DropOldest) exactly once.
    Accepted,
    /// Cancelled by a timeout around the future: at most once.
    Unknown,
}

/// Async tasks on a multi-threaded runtime, each cancelled at random await points by a tiny
/// timeout, use every new async entry point and permits against a small queue, alongside
/// blocking DropOldest/Block submitters. Afterwards every id's fate matches what its caller
/// was told, the counters balance, and every place is free again.
#[test]
fn async_limits_permits_and_cancellation_lose_no_place_and_no_command() {
    for evicting in [false, true] {
        within(Duration::from_secs(120), move || {
            let evicted = Arc::new(std::sync::Mutex::new(Vec::new()));
            let builder = SingularQueue::builder(Ids::default()).capacity(3);
            let builder = if evicting {
                let evicted = Arc::clone(&evicted);
                builder
                    .backpressure(DropOldest)
                    .on_evict(move |id| evicted.lock().unwrap().push(id))
            } else {
                builder
            };
            let queue = builder.spawn().unwrap();
            let told = Arc::new(std::sync::Mutex::new(Vec::<(u64, Told)>::new()));
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_time()
                .build()
                .unwrap();
            let mut tasks = Vec::new();
            for t in 0..8u64 {
                let handle = queue.handle();
                let told = Arc::clone(&told);
                tasks.push(runtime.spawn(async move {
                    let mut log = Vec::new();
                    for n in 0..400u64 {
                        let id = t * 1_000_000 + n;
                        let cut = Duration::from_micros(50 + (id * 7919) % 300);
                        let fate = match (t + n) % 6 {
                            0 => match tokio::time::timeout(cut, handle.reserve_async()).await {
                                Ok(Ok(permit)) => match n % 3 {
                                    0 => {
                                        drop(permit);
                                        continue;
                                    }
                                    1 => match permit.tell(id) {
                                        Ok(()) => Told::Accepted,
                                        Err(_) => Told::Refused,
                                    },
                                    _ => match permit.submit(id) {
                                        Ok(ticket) => {
                                            drop(ticket);
                                            Told::Accepted
                                        }
                                        Err(_) => Told::Refused,
                                    },
                                },
                                Ok(Err(e)) => panic!("{e:?}"),
                                Err(_) => continue,
                            },
                            1 => match tokio::time::timeout(
                                cut,
                                handle.call_timeout_async(id, Duration::from_micros(200)),
                            )
                            .await
                            {
                                Ok(Ok(_)) | Ok(Err(CallError::ReplyTimeout)) => Told::Accepted,
                                Ok(Err(CallError::Dropped)) => Told::Accepted,
                                Ok(Err(CallError::Timeout(back) | CallError::Full(back))) => {
                                    assert_eq!(back, id);
                                    Told::Refused
                                }
                                Ok(Err(other)) => panic!("{other:?}"),
                                Err(_) => Told::Unknown,
                            },
                            2 => match tokio::time::timeout(
                                cut,
                                handle.submit_timeout_async(id, Duration::from_micros(100)),
                            )
                            .await
                            {
                                Ok(Ok(ticket)) => {
                                    drop(ticket);
                                    Told::Accepted
                                }
                                Ok(Err(e)) => {
                                    assert_eq!(e.into_inner(), id);
                                    Told::Refused
                                }
                                Err(_) => Told::Unknown,
                            },
                            3 => match tokio::time::timeout(
                                cut,
                                handle.tell_timeout_async(id, Duration::from_micros(100)),
                            )
                            .await
                            {
                                Ok(Ok(())) => Told::Accepted,
                                Ok(Err(e)) => {
                                    assert_eq!(e.into_inner(), id);
                                    Told::Refused
                                }
                                Err(_) => Told::Unknown,
                            },
                            4 => match tokio::time::timeout(cut, handle.try_call_async(id)).await {
                                Ok(Ok(_)) | Ok(Err(CallError::Dropped)) => Told::Accepted,
                                Ok(Err(CallError::Full(back))) => {
                                    assert_eq!(back, id);
                                    Told::Refused
                                }
                                Ok(Err(other)) => panic!("{other:?}"),
                                // Cancelled while waiting for the output: accepted.
                                Err(_) => Told::Unknown,
                            },
                            _ => match tokio::time::timeout(cut, handle.submit_async(id)).await {
                                Ok(Ok(ticket)) => {
                                    drop(ticket);
                                    Told::Accepted
                                }
                                Ok(Err(e)) => panic!("{e:?}"),
                                Err(_) => Told::Unknown,
                            },
                        };
                        log.push((id, fate));
                    }
                    told.lock().unwrap().extend(log);
                }));
            }
            // Blocking submitters alongside.
            let threads: Vec<_> = (0..2u64)
                .map(|t| {
                    let handle = queue.handle();
                    let told = Arc::clone(&told);
                    thread::spawn(move || {
                        let mut log = Vec::new();
                        for n in 0..2000u64 {
                            let id = (100 + t) * 1_000_000 + n;
                            let fate = if n % 2 == 0 {
                                match handle.try_reserve() {
                                    Ok(permit) => {
                                        permit.tell(id).unwrap();
                                        Told::Accepted
                                    }
                                    Err(_) => continue,
                                }
                            } else {
                                handle.tell(id).unwrap();
                                Told::Accepted
                            };
                            log.push((id, fate));
                        }
                        told.lock().unwrap().extend(log);
                    })
                })
                .collect();
            for task in tasks {
                runtime.block_on(task).unwrap();
            }
            for thread in threads {
                thread.join().unwrap();
            }
            queue.wait_until_quiet().unwrap();
            let stats = queue.stats();
            assert_eq!(
                stats.submitted,
                stats.applied + stats.panicked + stats.dropped + stats.not_applied,
                "{stats:?}"
            );
            assert_eq!(free_places(&queue), 3, "a place leaked; {stats:?}");
            let ids = queue.shutdown().unwrap().0;
            let evicted = evicted.lock().unwrap().clone();
            let mut fates = std::collections::HashMap::new();
            for id in ids.iter().chain(&evicted) {
                *fates.entry(*id).or_insert(0) += 1;
            }
            assert!(
                fates.values().all(|&n| n == 1),
                "an id applied or evicted twice"
            );
            for (id, fate) in told.lock().unwrap().iter() {
                let seen = fates.get(id).copied().unwrap_or(0);
                match fate {
                    Told::Refused => assert_eq!(seen, 0, "refused {id} yet applied"),
                    Told::Accepted => assert_eq!(seen, 1, "accepted {id} but lost"),
                    Told::Unknown => assert!(seen <= 1),
                }
            }
            assert_eq!(stats.applied as usize, ids.len());
            assert_eq!(stats.dropped as usize, evicted.len());
        });
    }
}
