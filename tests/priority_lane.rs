//! The priority lane (`Builder::priority_lane`, `Handle::priority`): drained first up to the
//! burst cap, FIFO within each lane, its own bound, policy, errors and counters, reads and
//! shutdowns after every priority command accepted before them, and no lost wake-up.

mod support;

use std::sync::{Arc, Mutex, mpsc};
use std::task::{Context, Waker};
use std::thread;
use std::time::Duration;

use singular_queue::{DropOldest, Reject, SingularQueue, SubmitError, WaitError, WaitStrategy};
use support::{Op, Probe, hold_worker, within};

/// Normal commands are below 1 000, priority ones from 1 000.
const P: u64 = 1_000;

/// The exact order on a hand-stepped queue, with a burst of 2: two priority commands, one
/// normal, two priority, one normal, the last priority, then the rest of the normal lane.
#[test]
fn the_worker_drains_the_priority_lane_first_up_to_its_burst() {
    let mut queue = SingularQueue::builder(Probe::default())
        .priority_lane(8)
        .max_priority_burst(2)
        .manual();
    let urgent = queue.handle().priority().unwrap();
    for n in 1..=4 {
        queue.tell(Op::Add(n)).unwrap();
    }
    for p in 1..=5 {
        urgent.tell(Op::Add(P + p)).unwrap();
    }
    queue.run_until_idle();
    let p = |n| P + n;
    assert_eq!(
        queue.state().applied,
        [p(1), p(2), 1, p(3), p(4), 2, p(5), 3, 4]
    );
}

/// A priority command submitted while the worker is busy is applied before the normal
/// commands that were waiting, on a spawned queue.
#[test]
fn a_priority_command_jumps_the_waiting_normal_ones() {
    within(Duration::from_secs(30), || {
        let (queue, release) =
            hold_worker(SingularQueue::builder(Probe::default()).priority_lane(4));
        let urgent = queue.priority().unwrap();
        queue.tell(Op::Add(1)).unwrap();
        queue.tell(Op::Add(2)).unwrap();
        let cancel = urgent.submit(Op::Add(P)).unwrap();
        release.send(()).unwrap();
        assert_eq!(cancel.wait(), Ok(1), "first after the held command");
        assert_eq!(queue.shutdown().unwrap().applied, [P, 1, 2]);
    });
}

/// Each lane has its own bound and policy: with the worker held and the normal lane full,
/// the priority lane still takes commands up to its own capacity, then refuses under its
/// `Reject`; the refusals are counted in its own figures and the queue's.
#[test]
fn each_lane_has_its_own_bound_policy_and_counters() {
    within(Duration::from_secs(30), || {
        let builder = SingularQueue::builder(Probe::default())
            .capacity(2)
            .backpressure(Reject)
            .priority_lane(3)
            .priority_backpressure(Reject);
        let (queue, release) = hold_worker(builder);
        let urgent = queue.priority().unwrap();
        for n in 1..=2 {
            queue.tell(Op::Add(n)).unwrap();
        }
        assert!(matches!(queue.tell(Op::Add(3)), Err(SubmitError::Full(_))));
        for p in 1..=3 {
            urgent.tell(Op::Add(P + p)).unwrap();
        }
        assert!(matches!(
            urgent.tell(Op::Add(P + 4)),
            Err(SubmitError::Full(_))
        ));
        assert_eq!((queue.len(), queue.capacity()), (2, 2));
        assert_eq!((urgent.len(), urgent.capacity()), (3, 3));
        let lane = queue.stats().priority_lane.expect("a priority lane");
        assert_eq!((lane.submitted, lane.rejected, lane.depth), (3, 1, 3));
        release.send(()).unwrap();
        queue.wait_until_quiet().unwrap();
        let stats = queue.stats();
        let lane = stats.priority_lane.unwrap();
        assert_eq!((lane.submitted, lane.taken, lane.depth), (3, 3, 0));
        assert_eq!((stats.submitted, stats.applied, stats.rejected), (6, 6, 2));
        assert_eq!(stats.capacity, 5, "both lanes");
        let applied = queue.shutdown().unwrap().applied;
        assert_eq!(applied, [P + 1, P + 2, P + 3, 1, 2]);
    });
}

/// `DropOldest` on the priority lane evicts the lane's own oldest command, never a normal
/// one: its submitter is told `Dropped` and `on_evict` receives it.
#[test]
fn drop_oldest_on_the_priority_lane_evicts_only_from_it() {
    within(Duration::from_secs(30), || {
        let evicted = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&evicted);
        let builder = SingularQueue::builder(Probe::default())
            .capacity(4)
            .priority_lane(1)
            .priority_backpressure(DropOldest)
            .on_evict(move |op: Op| seen.lock().unwrap().extend(op.number()));
        let (queue, release) = hold_worker(builder);
        let urgent = queue.priority().unwrap();
        queue.tell(Op::Add(1)).unwrap();
        let oldest = urgent.submit(Op::Add(P + 1)).unwrap();
        urgent.tell(Op::Add(P + 2)).unwrap();
        assert_eq!(oldest.wait(), Err(WaitError::Dropped));
        assert_eq!(*evicted.lock().unwrap(), [P + 1]);
        release.send(()).unwrap();
        queue.wait_until_quiet().unwrap();
        let stats = queue.stats();
        assert_eq!(
            (stats.dropped, stats.priority_lane.unwrap().dropped),
            (1, 1)
        );
        assert_eq!(queue.shutdown().unwrap().applied, [P + 2, 1]);
    });
}

/// A queue with a burst of 1, its worker held, with three priority commands (`P + 1` to
/// `P + 3`) and one normal (1) waiting; release it with the sender.
fn held_behind_three_urgent_and_one_normal() -> (SingularQueue<Probe>, mpsc::Sender<()>) {
    let builder = SingularQueue::builder(Probe::default())
        .priority_lane(8)
        .max_priority_burst(1);
    let (queue, release) = hold_worker(builder);
    let urgent = queue.priority().unwrap();
    for p in 1..=3 {
        urgent.tell(Op::Add(P + p)).unwrap();
    }
    queue.tell(Op::Add(1)).unwrap();
    (queue, release)
}

/// A read comes after every priority command accepted before it, even when the burst cap
/// makes the worker take a normal message while priority commands wait: the worker holds
/// the read back until they are taken.
#[test]
fn a_read_sees_every_priority_command_accepted_before_it() {
    within(Duration::from_secs(30), || {
        let (queue, release) = held_behind_three_urgent_and_one_normal();
        // Polled once, the read is sent; the worker is still held.
        let mut read = Box::pin(queue.read_async(|probe: &Probe| probe.applied.clone()));
        let mut cx = Context::from_waker(Waker::noop());
        assert!(read.as_mut().poll(&mut cx).is_pending());
        release.send(()).unwrap();
        let seen = singular_queue::model::block_on(read).unwrap_or_else(|_| panic!("refused"));
        // Burst 1: P1, then the normal 1, then P2; the read, next in the normal lane, waits
        // for P3.
        assert_eq!(seen, [P + 1, 1, P + 2, P + 3]);
        queue.shutdown().unwrap();
    });
}

/// A worker asleep on an empty queue is woken by a priority command (a doorbell in the
/// normal lane): 2 000 priority calls from two threads, each answered, with the worker
/// parking between them.
#[test]
fn a_sleeping_worker_is_woken_by_priority_commands() {
    within(Duration::from_secs(60), || {
        let queue = SingularQueue::builder(Probe::default())
            .priority_lane(2)
            .wait_strategy(WaitStrategy::Park)
            .spawn()
            .unwrap();
        let callers: Vec<_> = (0..2)
            .map(|_| {
                let urgent = queue.priority().unwrap();
                thread::spawn(move || {
                    for p in 0..1_000 {
                        urgent.call(Op::Add(P + p)).unwrap();
                    }
                })
            })
            .collect();
        for caller in callers {
            caller.join().unwrap();
        }
        assert_eq!(queue.shutdown().unwrap().applied.len(), 2_000);
    });
}

/// Four normal and two priority threads, each sending 3 000 numbered commands through
/// `tell`, `call`, `submit` and `tell_many` into lanes of capacity 4 and 2 under `Reject`:
/// each thread's accepted commands are applied exactly once and in its order, the refused
/// ones come back as `Full`, and every figure, the queue's and the lane's, agrees exactly.
#[test]
fn each_lane_is_fifo_and_every_command_is_accounted_for_under_load() {
    within(Duration::from_secs(120), || {
        const EACH: u64 = 3_000;
        let queue = SingularQueue::builder(Probe::default())
            .capacity(4)
            .backpressure(Reject)
            .priority_lane(2)
            .priority_backpressure(Reject)
            .spawn()
            .unwrap();
        let threads: Vec<_> = (0..6u64)
            .map(|thread| {
                let handle = if thread < 4 {
                    queue.handle()
                } else {
                    queue.priority().unwrap()
                };
                thread::spawn(move || {
                    let mut accepted = Vec::new();
                    let mut refused = 0;
                    for i in 0..EACH {
                        let n = thread * 100_000 + i;
                        let outcome = match i % 4 {
                            0 => handle.tell(Op::Add(n)).map_err(|_| ()),
                            1 => handle.call(Op::Add(n)).map(drop).map_err(|_| ()),
                            2 => handle.submit(Op::Add(n)).map(drop).map_err(|_| ()),
                            _ => handle.tell_many(vec![Op::Add(n)]).map_err(|_| ()),
                        };
                        match outcome {
                            Ok(()) => accepted.push(n),
                            Err(()) => refused += 1,
                        }
                    }
                    (accepted, refused)
                })
            })
            .collect();
        let results: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        queue.wait_until_quiet().unwrap();
        let stats = queue.stats();
        let applied = queue.shutdown().unwrap().applied;
        let mut total_accepted = 0;
        let mut total_refused = 0;
        for (thread, (accepted, refused)) in results.iter().enumerate() {
            let mine: Vec<_> = (applied.iter().copied())
                .filter(|n| n / 100_000 == thread as u64)
                .collect();
            assert_eq!(&mine, accepted, "thread {thread}: once each, in its order");
            total_accepted += accepted.len() as u64;
            total_refused += refused;
        }
        assert_eq!(applied.len() as u64, total_accepted);
        assert_eq!(
            (stats.submitted, stats.applied),
            (total_accepted, total_accepted)
        );
        assert_eq!(stats.rejected, total_refused);
        let lane = stats.priority_lane.unwrap();
        let priority_accepted: u64 = results[4..].iter().map(|(a, _)| a.len() as u64).sum();
        let priority_refused: u64 = results[4..].iter().map(|(_, r)| r).sum();
        assert_eq!(
            (lane.submitted, lane.taken),
            (priority_accepted, priority_accepted)
        );
        assert_eq!(lane.rejected, priority_refused);
    });
}

/// A shutdown serves every priority command accepted before it, even behind the burst cap;
/// `shutdown_now` hands them back with the normal ones.
#[test]
fn shutdown_serves_and_shutdown_now_returns_the_priority_lane_too() {
    within(Duration::from_secs(30), || {
        for now in [false, true] {
            let (queue, release) = held_behind_three_urgent_and_one_normal();
            let owner = thread::spawn(move || {
                if now {
                    let (probe, unapplied) = queue.shutdown_now().unwrap();
                    let numbers: Vec<_> = unapplied.iter().filter_map(Op::number).collect();
                    (probe.applied, numbers)
                } else {
                    (queue.shutdown().unwrap().applied, Vec::new())
                }
            });
            release.send(()).unwrap();
            let (applied, unapplied) = owner.join().unwrap();
            if now {
                let mut all = [applied, unapplied].concat();
                all.sort_unstable();
                assert_eq!(all, [1, P + 1, P + 2, P + 3]);
            } else {
                assert_eq!(applied, [P + 1, 1, P + 2, P + 3]);
            }
        }
    });
}

/// Permits reserve a place in the lane of the handle they come from.
#[test]
fn permits_and_bulks_use_their_handles_lane() {
    let mut queue = SingularQueue::builder(Probe::default())
        .capacity(1)
        .backpressure(Reject)
        .priority_lane(1)
        .priority_backpressure(Reject)
        .manual();
    let urgent = queue.handle().priority().unwrap();
    let permit = urgent.try_reserve().unwrap();
    assert!(
        urgent.try_reserve().is_err(),
        "the priority lane's one place is held"
    );
    let handle = queue.handle();
    let normal = handle.try_reserve().unwrap();
    normal.tell(Op::Add(1)).unwrap();
    permit.tell(Op::Add(P)).unwrap();
    queue.run_until_idle();
    assert!(
        matches!(urgent.tell_many(vec![Op::Add(P + 1), Op::Add(P + 2)]), Err(SubmitError::Full(rest)) if rest.len() == 1)
    );
    queue.run_until_idle();
    assert_eq!(queue.state().applied, [P, 1, P + 1]);
}

/// A queue without a priority lane has no priority handle and no lane figures.
#[test]
fn without_a_priority_lane_there_is_no_priority_handle() {
    let queue = SingularQueue::new(Probe::default());
    assert!(queue.priority().is_none());
    assert!(queue.stats().priority_lane.is_none());
}
