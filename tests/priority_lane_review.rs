//! The hostile review of the priority lane. The first test failed on the first cut (a
//! hand-stepped queue's `run_until_idle` returned while a read was held back behind a
//! priority command still landing, with a normal command waiting behind the read); the rest
//! are the review's probes that held, kept as regression tests: lost wake-ups under every
//! wait strategy, reads behind floods, eviction during reads, close and shutdown races,
//! permits, bulks, cancelled async submits, custom policies, starvation, sharded snapshots,
//! cycles of queues, restarts and views, and queues without a priority lane.

mod support;

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::task::{Context, Waker};
use std::thread;
use std::time::Duration;

use singular_queue::model;
use singular_queue::{
    Backpressure, BlockFor, Decision, DropOldest, Load, Reject, Sharded, SingularQueue,
    SubmitError, WaitError, WaitStrategy, by_key,
};
use support::{Op, Probe, Sum, books_balance, hold_worker, settle, within};

const P: u64 = 1_000_000;

/// `run_until_idle` "steps until nothing is waiting": a normal command whose `tell` returned
/// before `run_until_idle` was called must have been applied when it returns, even while
/// other threads submit to the priority lane.
#[test]
fn run_until_idle_leaves_no_accepted_command_behind() {
    within(Duration::from_secs(60), || {
        let mut queue = SingularQueue::builder(Probe::default())
            .capacity(1 << 16)
            .priority_lane(4)
            .max_priority_burst(1)
            .manual();
        let stop = Arc::new(AtomicBool::new(false));
        let published = Arc::new(AtomicU64::new(0));
        let flooders: Vec<_> = (0..3)
            .map(|_| {
                let urgent = queue.handle().priority().unwrap();
                let stop = Arc::clone(&stop);
                thread::spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        let _ = urgent.try_tell(Op::Add(P));
                        thread::yield_now();
                    }
                })
            })
            .collect();
        let reader = {
            let handle = queue.handle();
            let stop = Arc::clone(&stop);
            let published = Arc::clone(&published);
            thread::spawn(move || {
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    let mut read = Box::pin(handle.read_async(|p: &Probe| p.applied.len()));
                    // The read is sent at the first poll.
                    let first = read.as_mut().poll(&mut Context::from_waker(Waker::noop()));
                    handle.tell(Op::Add(n)).unwrap();
                    published.store(n, Ordering::SeqCst);
                    if first.is_pending() {
                        let _ = model::block_on(read);
                    }
                }
            })
        };
        let (mut last, mut checked) = (0, 0);
        while checked < 300 {
            let n = published.load(Ordering::SeqCst);
            if n == last {
                // The reader's read waits for a step.
                queue.step();
                continue;
            }
            // `n` was told before it was published: `run_until_idle` must apply it.
            queue.run_until_idle();
            assert!(
                queue.state().applied.contains(&n),
                "run_until_idle returned with {n} accepted and waiting ({} in the normal lane)",
                queue.handle().len()
            );
            (last, checked) = (n, checked + 1);
        }
        stop.store(true, Ordering::Relaxed);
        for f in flooders {
            f.join().unwrap();
        }
        while !reader.is_finished() {
            queue.run_until_idle();
        }
        reader.join().unwrap();
    });
}

// === The review's probes that held ===

/// Lost wake-ups: a worker that sleeps between priority submits, under every wait strategy,
/// with submits that race the worker going to sleep (tell, then a call to observe).
#[test]
fn no_lost_wakeup_under_any_strategy() {
    within(Duration::from_secs(120), || {
        for strategy in [
            WaitStrategy::Park,
            WaitStrategy::SpinThenPark,
            WaitStrategy::BusySpin,
        ] {
            let queue = SingularQueue::builder(Sum::default())
                .priority_lane(1)
                .wait_strategy(strategy)
                .spawn()
                .unwrap();
            let threads: Vec<_> = (0..3)
                .map(|t| {
                    let urgent = queue.priority().unwrap();
                    let normal = queue.handle();
                    thread::spawn(move || {
                        for i in 0..2_000u64 {
                            if (i + t) % 3 == 0 {
                                normal.tell(1).unwrap();
                            }
                            urgent.submit(1).unwrap().wait().unwrap();
                        }
                    })
                })
                .collect();
            settle(&queue, threads);
            queue.shutdown().unwrap();
        }
    });
}

/// A thread's read sees its own priority tell, even when the burst is spent by a flood of
/// priority commands and normal commands wait.
#[test]
fn a_read_sees_its_own_priority_tell_with_the_burst_spent() {
    within(Duration::from_secs(120), || {
        let queue = SingularQueue::builder(Probe::default())
            .capacity(64)
            .priority_lane(4)
            .max_priority_burst(1)
            .spawn()
            .unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let flooders: Vec<_> = (0..2)
            .map(|_| {
                let urgent = queue.priority().unwrap();
                let normal = queue.handle();
                let stop = Arc::clone(&stop);
                thread::spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        urgent.tell(Op::Add(0)).unwrap();
                        normal.tell(Op::Add(0)).unwrap();
                    }
                })
            })
            .collect();
        let urgent = queue.priority().unwrap();
        for i in 1..=500u64 {
            urgent.tell(Op::Add(P + i)).unwrap();
            let seen = queue
                .read(move |p: &Probe| p.applied.contains(&(P + i)))
                .unwrap();
            assert!(seen, "read missed its own priority tell {i}");
        }
        stop.store(true, Ordering::Relaxed);
        for f in flooders {
            f.join().unwrap();
        }
        queue.wait_until_quiet().unwrap();
        books_balance(&queue.stats());
    });
}

/// DropOldest on a priority lane of one place, evicting from several threads while readers
/// read: no hang, every evicted command told `Dropped`, every figure balanced.
#[test]
fn drop_oldest_priority_evicting_while_reads_are_held() {
    within(Duration::from_secs(120), || {
        let evicted = Arc::new(AtomicU64::new(0));
        let seen = Arc::clone(&evicted);
        let queue = SingularQueue::builder(Probe::default())
            .priority_lane(1)
            .priority_backpressure(DropOldest)
            .max_priority_burst(1)
            .on_evict(move |_| {
                seen.fetch_add(1, Ordering::Relaxed);
            })
            .spawn()
            .unwrap();
        let mut threads = Vec::new();
        for t in 0..4u64 {
            let urgent = queue.priority().unwrap();
            threads.push(thread::spawn(move || {
                let mut outcomes = (0u64, 0u64);
                for i in 0..3_000 {
                    let ticket = urgent.submit(Op::Add(t * 10_000 + i)).unwrap();
                    match ticket.wait() {
                        Ok(_) => outcomes.0 += 1,
                        Err(WaitError::Dropped) => outcomes.1 += 1,
                        Err(other) => panic!("{other:?}"),
                    }
                }
                outcomes
            }));
        }
        let readers: Vec<_> = (0..2)
            .map(|_| {
                let h = queue.handle();
                thread::spawn(move || {
                    for _ in 0..2_000 {
                        h.read(|p: &Probe| p.applied.len()).unwrap();
                        h.tell(Op::Add(0)).unwrap();
                    }
                })
            })
            .collect();
        let mut dropped = 0;
        for t in threads {
            dropped += t.join().unwrap().1;
        }
        for r in readers {
            r.join().unwrap();
        }
        queue.wait_until_quiet().unwrap();
        let stats = queue.stats();
        books_balance(&stats);
        assert_eq!(stats.dropped, dropped);
        assert_eq!(evicted.load(Ordering::Relaxed), dropped);
        queue.shutdown().unwrap();
    });
}

/// Priority submitters racing a handle's `close()` and the owner's shutdown: every ticket
/// resolves (applied, or refused as closed), the figures balance.
#[test]
fn priority_submits_racing_close_and_shutdown() {
    within(Duration::from_secs(120), || {
        for round in 0..50 {
            let queue = SingularQueue::builder(Sum::default())
                .capacity(2)
                .priority_lane(1)
                .max_priority_burst(1)
                .wait_strategy(if round % 2 == 0 {
                    WaitStrategy::Park
                } else {
                    WaitStrategy::SpinThenPark
                })
                .spawn()
                .unwrap();
            let accepted = Arc::new(AtomicU64::new(0));
            let threads: Vec<_> = (0..4)
                .map(|t| {
                    let handle = if t % 2 == 0 {
                        queue.priority().unwrap()
                    } else {
                        queue.handle()
                    };
                    let accepted = Arc::clone(&accepted);
                    thread::spawn(move || {
                        let mut tickets = Vec::new();
                        loop {
                            match handle.submit(1) {
                                Ok(ticket) => {
                                    accepted.fetch_add(1, Ordering::Relaxed);
                                    tickets.push(ticket)
                                }
                                Err(SubmitError::Closed(_)) => break,
                                Err(other) => panic!("{other:?}"),
                            }
                            if tickets.len() % 7 == 0 {
                                let _ = handle.read(|s: &Sum| s.total);
                            }
                        }
                        for ticket in tickets {
                            ticket.wait().unwrap();
                        }
                    })
                })
                .collect();
            // Let some go in: wait until something is applied.
            while queue.stats().applied < 50 {
                thread::yield_now();
            }
            if round % 3 == 0 {
                queue.handle().close();
            }
            let sum = queue.shutdown().unwrap();
            for t in threads {
                t.join().unwrap();
            }
            assert_eq!(sum.count, accepted.load(Ordering::Relaxed));
        }
    });
}

/// `shutdown_now` with priority commands waiting: tickets say NotApplied, the commands come
/// back, and the figures balance.
#[test]
fn shutdown_now_hands_back_priority_commands() {
    within(Duration::from_secs(30), || {
        let builder = SingularQueue::builder(Probe::default()).priority_lane(4);
        let (queue, release) = hold_worker(builder);
        let urgent = queue.priority().unwrap();
        let tickets: Vec<_> = (1..=4)
            .map(|p| urgent.submit(Op::Add(P + p)).unwrap())
            .collect();
        let n = queue.submit(Op::Add(1)).unwrap();
        let handle = queue.handle();
        let owner = thread::spawn(move || queue.shutdown_now().unwrap());
        // The owner closes the gate: wait for that, then release.
        while !handle.is_closed() {
            thread::yield_now();
        }
        release.send(()).unwrap();
        let (_, unapplied) = owner.join().unwrap();
        assert_eq!(unapplied.len(), 5);
        for t in tickets {
            assert_eq!(t.wait(), Err(WaitError::NotApplied));
        }
        assert_eq!(n.wait(), Err(WaitError::NotApplied));
        books_balance(&handle.stats());
        assert_eq!(handle.stats().not_applied, 5);
    });
}

/// Dropping the owner with priority commands waiting serves them.
#[test]
fn dropping_the_owner_serves_priority_commands() {
    within(Duration::from_secs(30), || {
        let builder = SingularQueue::builder(Probe::default()).priority_lane(4);
        let (queue, release) = hold_worker(builder);
        let urgent = queue.priority().unwrap();
        let tickets: Vec<_> = (1..=4)
            .map(|p| urgent.submit(Op::Add(P + p)).unwrap())
            .collect();
        let handle = queue.handle();
        let owner = thread::spawn(move || drop(queue));
        while !handle.is_closed() {
            thread::yield_now();
        }
        release.send(()).unwrap();
        owner.join().unwrap();
        for t in tickets {
            assert!(t.wait().is_ok());
        }
        books_balance(&handle.stats());
    });
}

/// Permits on the priority lane: reserve, then close; the permit's command is refused
/// as closed, the place comes back; a dropped permit gives its place back.
#[test]
fn priority_permits_then_close() {
    within(Duration::from_secs(30), || {
        let queue = SingularQueue::builder(Sum::default())
            .priority_lane(2)
            .priority_backpressure(Reject)
            .spawn()
            .unwrap();
        let urgent = queue.priority().unwrap();
        let a = urgent.try_reserve().unwrap();
        let b = urgent.try_reserve().unwrap();
        assert!(urgent.try_reserve().is_err());
        drop(b);
        let c = urgent.try_reserve().unwrap();
        c.tell(5).unwrap();
        queue.wait_until_quiet().unwrap();
        queue.close();
        assert!(matches!(a.tell(7), Err(SubmitError::Closed(7))));
        let stats = queue.stats();
        books_balance(&stats);
        let lane = stats.priority_lane.unwrap();
        assert_eq!((lane.submitted, lane.refused_closed), (1, 1));
        assert_eq!(queue.shutdown().unwrap().total, 5);
    });
}

/// `tell_many` larger than the priority lane's capacity, under Block, waits and lands whole,
/// in order; under Reject it hands the rest back.
#[test]
fn priority_tell_many_larger_than_the_lane() {
    within(Duration::from_secs(30), || {
        let queue = SingularQueue::builder(Probe::default())
            .priority_lane(3)
            .spawn()
            .unwrap();
        let urgent = queue.priority().unwrap();
        urgent
            .tell_many((1..=100).map(|i| Op::Add(P + i)).collect())
            .unwrap();
        let applied = queue.shutdown().unwrap().applied;
        assert_eq!(applied, (1..=100).map(|i| P + i).collect::<Vec<_>>());
    });
}

/// An async priority submit waiting for room, cancelled: nothing counted as accepted, the
/// lane's room still works for the next submitter.
#[test]
fn cancelled_async_priority_submit() {
    within(Duration::from_secs(30), || {
        let builder = SingularQueue::builder(Probe::default()).priority_lane(1);
        let (queue, release) = hold_worker(builder);
        let urgent = queue.priority().unwrap();
        urgent.tell(Op::Add(P)).unwrap();
        {
            let mut fut = Box::pin(urgent.tell_async(Op::Add(P + 1)));
            let mut cx = Context::from_waker(Waker::noop());
            assert!(fut.as_mut().poll(&mut cx).is_pending());
        }
        let u2 = urgent.clone();
        let waiter = thread::spawn(move || u2.tell(Op::Add(P + 2)).unwrap());
        release.send(()).unwrap();
        waiter.join().unwrap();
        queue.wait_until_quiet().unwrap();
        let stats = queue.stats();
        books_balance(&stats);
        assert_eq!(stats.priority_lane.unwrap().submitted, 2);
        assert_eq!(queue.shutdown().unwrap().applied, [P, P + 2]);
    });
}

/// A custom policy on the priority lane sees the lane's load, not the queue's.
#[test]
fn custom_policy_sees_the_lanes_load() {
    struct Spy(Arc<Mutex<Vec<(usize, usize)>>>);
    impl Backpressure<Op> for Spy {
        fn decide(&self, _: &Op, load: &Load<'_>) -> Decision {
            self.0.lock().unwrap().push((load.depth(), load.capacity()));
            Decision::RejectIfFull
        }
    }
    within(Duration::from_secs(30), || {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let builder = SingularQueue::builder(Probe::default())
            .capacity(10)
            .priority_lane(3)
            .priority_backpressure(Spy(Arc::clone(&seen)));
        let (queue, release) = hold_worker(builder);
        for n in 0..5 {
            queue.tell(Op::Add(n)).unwrap();
        }
        let urgent = queue.priority().unwrap();
        for p in 0..4 {
            let _ = urgent.tell(Op::Add(P + p));
        }
        assert_eq!(*seen.lock().unwrap(), [(0, 3), (1, 3), (2, 3), (3, 3)]);
        assert_eq!(
            (urgent.len(), urgent.capacity(), urgent.is_empty()),
            (3, 3, false)
        );
        assert_eq!((queue.len(), queue.capacity()), (5, 10));
        release.send(()).unwrap();
        queue.wait_until_quiet().unwrap();
        assert!(urgent.is_empty());
        let stats = queue.stats();
        books_balance(&stats);
        assert_eq!(stats.priority_lane.unwrap().rejected, 1);
    });
}

/// Starvation: a flood of priority commands from several threads cannot stop the normal
/// lane's calls nor reads.
#[test]
fn the_normal_lane_and_reads_progress_under_a_priority_flood() {
    within(Duration::from_secs(60), || {
        let queue = SingularQueue::builder(Sum::default())
            .priority_lane(8)
            .max_priority_burst(4)
            .spawn()
            .unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let flooders: Vec<_> = (0..4)
            .map(|_| {
                let urgent = queue.priority().unwrap();
                let stop = Arc::clone(&stop);
                thread::spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        urgent.tell(0).unwrap();
                    }
                })
            })
            .collect();
        for _ in 0..300 {
            queue.call(1).unwrap();
            queue.read(|s: &Sum| s.total).unwrap();
        }
        stop.store(true, Ordering::Relaxed);
        for f in flooders {
            f.join().unwrap();
        }
        queue.wait_until_quiet().unwrap();
        books_balance(&queue.stats());
        assert_eq!(queue.shutdown().unwrap().total, 300);
    });
}

/// Sharded shards with priority lanes: snapshots under a flood of priority commands to the
/// shards finish and are consistent (every shard's count, equal tell-pairs).
#[test]
fn sharded_snapshots_with_priority_lanes() {
    within(Duration::from_secs(60), || {
        let sharded = Sharded::builder(2, by_key(|c: &u64| *c), |_| Sum::default())
            .configure(|_, b| b.priority_lane(2).max_priority_burst(1).capacity(4))
            .spawn()
            .unwrap();
        let handle = sharded.handle();
        let stop = Arc::new(AtomicBool::new(false));
        let writers: Vec<_> = (0..2)
            .map(|_| {
                let handle = handle.clone();
                let stop = Arc::clone(&stop);
                thread::spawn(move || {
                    let shards = handle.shards();
                    let urgent: Vec<_> = shards.iter().map(|s| s.priority().unwrap()).collect();
                    while !stop.load(Ordering::Relaxed) {
                        // one on shard 0, then, once applied, one on shard 1: a causal pair.
                        urgent[0].call(0).unwrap();
                        shards[1].tell(1).unwrap();
                        urgent[1].tell(1).unwrap();
                    }
                })
            })
            .collect();
        for _ in 0..300 {
            let counts = handle.snapshot(|s: &Sum| s.count).unwrap();
            assert!(counts[0] * 2 >= counts[1], "cut not consistent: {counts:?}");
        }
        stop.store(true, Ordering::Relaxed);
        for w in writers {
            w.join().unwrap();
        }
        handle.wait_until_quiet().unwrap();
        for s in handle.stats().shards {
            books_balance(&s);
        }
    });
}

/// Wait-for graph: A's worker waits for room in B's priority lane while B's worker calls A:
/// refused, no hang.
#[test]
fn a_worker_waiting_for_room_in_anothers_priority_lane_is_seen() {
    use support::{Exec, Job};
    within(Duration::from_secs(30), || {
        let a = SingularQueue::builder(Exec).spawn().unwrap();
        let b = SingularQueue::builder(Exec)
            .priority_lane(1)
            .spawn()
            .unwrap();
        let (b_started, started) = mpsc::channel();
        let (go, b_go) = mpsc::channel::<()>();
        let a_handle = a.handle();
        // B's worker is held until A's worker waits for room in B's priority lane.
        let b_first = b
            .submit(Box::new(move || {
                b_started.send(()).unwrap();
                b_go.recv().unwrap();
                match a_handle.call(Box::new(|| "a".to_owned())) {
                    Ok(s) => s,
                    Err(e) => format!("{e:?}").chars().take(8).collect(),
                }
            }) as Job)
            .unwrap();
        started.recv().unwrap();
        let urgent = b.priority().unwrap();
        urgent.tell(Box::new(String::new)).unwrap(); // fills the lane
        let entered = Arc::new(AtomicBool::new(false));
        let e2 = Arc::clone(&entered);
        let urgent2 = urgent.clone();
        let a_job = a
            .submit(Box::new(move || {
                e2.store(true, Ordering::SeqCst);
                // waits for room in B's priority lane
                urgent2
                    .tell(Box::new(String::new))
                    .map(|_| "ok".to_owned())
                    .unwrap_or_else(|e| format!("{e:?}"))
            }) as Job)
            .unwrap();
        while !entered.load(Ordering::SeqCst) {
            thread::yield_now();
        }
        go.send(()).unwrap();
        let out = b_first.wait().unwrap();
        let a_out = a_job.wait().unwrap();
        // either B's call was refused (Deadlock) or it went through once A's tell landed.
        assert!(out == "a" || out.starts_with("Deadlock"), "{out}");
        assert!(a_out == "ok" || a_out.starts_with("Deadlock"), "{a_out}");
    });
}

/// restart_on_panic and views with a priority lane: a panicking priority command restarts,
/// the view sees priority commands, figures balance.
#[test]
fn restart_and_views_with_a_priority_lane() {
    within(Duration::from_secs(30), || {
        let (builder, view) = SingularQueue::builder(Probe::default())
            .priority_lane(2)
            .restart_on_panic(|_| Probe::default())
            .publish(|p: &Probe| p.applied.len());
        let queue = builder.spawn().unwrap();
        let urgent = queue.priority().unwrap();
        urgent.call(Op::Add(1)).unwrap();
        assert!(urgent.call(Op::Panic).is_err());
        urgent.call(Op::Add(2)).unwrap();
        // Under `AfterApply` the reply goes out before the batch's view: wait for it.
        queue.wait_until_quiet().unwrap();
        assert_eq!(*view.latest(), 1);
        let stats = queue.stats();
        books_balance(&stats);
        assert_eq!(stats.restarts, 1);
    });
}

/// A hand-stepped queue: a read from another thread right after that thread's priority tell
/// is answered by stepping, and sees the tell; a shutdown with a read waiting ends.
#[test]
fn manual_queue_read_behind_a_landing_priority_command() {
    within(Duration::from_secs(30), || {
        let mut queue = SingularQueue::builder(Probe::default())
            .priority_lane(2)
            .max_priority_burst(1)
            .manual();
        let done = Arc::new(AtomicUsize::new(0));
        let mut threads = Vec::new();
        for t in 0..3u64 {
            let urgent = queue.handle().priority().unwrap();
            let h = queue.handle();
            let done = Arc::clone(&done);
            threads.push(thread::spawn(move || {
                for i in 0..200 {
                    let n = P * (t + 1) + i;
                    let _ = h.tell(Op::Add(0));
                    if urgent.try_tell(Op::Add(n)).is_ok() {
                        let seen = h.read(move |p: &Probe| p.applied.contains(&n)).unwrap();
                        assert!(seen);
                    }
                }
                done.fetch_add(1, Ordering::SeqCst);
            }));
        }
        while done.load(Ordering::SeqCst) < 3 {
            queue.step();
            thread::yield_now();
        }
        for t in threads {
            t.join().unwrap();
        }
        queue.run_until_idle();
        books_balance(&queue.stats());
        queue.shutdown().unwrap();
    });
}

/// A queue without a priority lane: the old paths (Park worker, DropOldest, permits, reads)
/// still account exactly.
#[test]
fn without_a_priority_lane_everything_balances() {
    within(Duration::from_secs(60), || {
        let queue = SingularQueue::builder(Probe::default())
            .capacity(2)
            .backpressure(DropOldest)
            .wait_strategy(WaitStrategy::Park)
            .spawn()
            .unwrap();
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let h = queue.handle();
                thread::spawn(move || {
                    for i in 0..2_000 {
                        match i % 4 {
                            0 => drop(h.submit(Op::Add(i)).unwrap().wait()),
                            1 => {
                                if let Ok(p) = h.try_reserve() {
                                    p.tell(Op::Add(i)).unwrap();
                                }
                            }
                            2 => drop(h.read(|p: &Probe| p.applied.len()).unwrap()),
                            _ => h.tell(Op::Add(t)).unwrap(),
                        }
                    }
                })
            })
            .collect();
        let stats = settle(&queue, threads);
        assert!(stats.priority_lane.is_none());
    });
}

/// BlockFor on the priority lane times out while the normal lane has room; counted in the
/// lane's `timed_out`.
#[test]
fn priority_block_for_times_out_on_its_own_lane() {
    within(Duration::from_secs(30), || {
        let builder = SingularQueue::builder(Probe::default())
            .priority_lane(1)
            .priority_backpressure(BlockFor(Duration::from_millis(20)));
        let (queue, release) = hold_worker(builder);
        let urgent = queue.priority().unwrap();
        urgent.tell(Op::Add(1)).unwrap();
        assert!(matches!(
            urgent.tell(Op::Add(2)),
            Err(SubmitError::Timeout(_))
        ));
        queue.tell(Op::Add(3)).unwrap();
        release.send(()).unwrap();
        queue.wait_until_quiet().unwrap();
        let stats = queue.stats();
        books_balance(&stats);
        assert_eq!(stats.priority_lane.unwrap().timed_out, 1);
        assert_eq!(stats.timed_out, 1);
    });
}

/// Under load on both lanes (DropOldest on both), no snapshot of the figures counts more
/// outcomes than submits, queue-wide or in the lane.
#[test]
fn stats_snapshots_under_load_never_overcount() {
    within(Duration::from_secs(60), || {
        let queue = SingularQueue::builder(Sum::default())
            .capacity(2)
            .backpressure(DropOldest)
            .priority_lane(2)
            .priority_backpressure(DropOldest)
            .spawn()
            .unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let h = if t % 2 == 0 {
                    queue.priority().unwrap()
                } else {
                    queue.handle()
                };
                let stop = Arc::clone(&stop);
                thread::spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        h.tell(1).unwrap();
                    }
                })
            })
            .collect();
        for _ in 0..20_000 {
            let s = queue.stats();
            assert!(
                s.applied + s.panicked + s.dropped + s.not_applied <= s.submitted,
                "{s:?}"
            );
            let lane = s.priority_lane.unwrap();
            assert!(lane.taken + lane.dropped <= lane.submitted, "{lane:?}");
        }
        stop.store(true, Ordering::Relaxed);
        settle(&queue, threads);
    });
}
