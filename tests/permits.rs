//! Permits: a place in the queue held for one command. The permit's command is never refused
//! for room and never waits; nobody else takes the place, `DropOldest` cannot evict it, and a
//! permit dropped unused gives it back. No place is ever lost.

mod support;

use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use futures::executor::block_on;

use singular_queue::{Block, DropOldest, Reject, SingularQueue, SubmitError, WaitError};
use support::{Op, Sum, current_tid, free_places, held_queue, wait_until_asleep, within};

#[test]
fn a_permit_holds_its_place_against_every_policy_and_its_command_always_gets_in() {
    for policy in 0..3 {
        let builder = SingularQueue::builder(support::Probe::default()).capacity(2);
        let builder = match policy {
            0 => builder.backpressure(Block),
            1 => builder.backpressure(Reject),
            _ => builder.backpressure(DropOldest),
        };
        let (queue, release) = support::hold_worker(builder);
        let permit = queue.try_reserve().unwrap();
        queue.tell(Op::Add(1)).unwrap(); // the other place
        assert!(matches!(queue.try_reserve(), Err(SubmitError::Full(()))));
        if policy == 2 {
            // DropOldest evicts the waiting command, never the held place.
            let evicted = queue.submit(Op::Add(1)).unwrap();
            queue.tell(Op::Add(2)).unwrap();
            assert!(matches!(block_on(evicted), Err(WaitError::Dropped)));
        } else {
            let refused = queue.tell_timeout(Op::Add(9), Duration::ZERO).unwrap_err();
            assert!(refused.is_full() || refused.is_timeout());
        }
        let ticket = permit.submit(Op::Add(3)).unwrap();
        release.send(()).unwrap();
        assert_eq!(block_on(ticket).unwrap(), 2);
        let expected: &[u64] = if policy == 2 { &[2, 3] } else { &[1, 3] };
        assert_eq!(queue.shutdown().unwrap().applied, expected);
    }
}

#[test]
fn a_permit_dropped_unused_gives_its_place_back() {
    let mut queue = SingularQueue::builder(Sum::default()).capacity(3).manual();
    let handle = queue.handle();
    let permits: Vec<_> = (0..3).map(|_| handle.try_reserve().unwrap()).collect();
    assert_eq!(free_places(&handle), 0);
    assert!(matches!(handle.try_tell(1), Err(SubmitError::Full(1))));
    drop(permits);
    assert_eq!(free_places(&handle), 3);
    handle.tell(1).unwrap();
    assert_eq!(free_places(&handle), 2);
    queue.run_until_idle();
    assert_eq!(free_places(&handle), 3);
    assert_eq!(queue.shutdown().unwrap().total, 1);
}

#[test]
fn a_permit_used_after_close_hands_the_command_back_and_the_place_is_not_leaked() {
    let queue = SingularQueue::builder(Sum::default())
        .capacity(1)
        .spawn()
        .unwrap();
    let handle = queue.handle();
    let permit = handle.try_reserve().unwrap();
    handle.close();
    assert!(matches!(permit.tell(5), Err(SubmitError::Closed(5))));
    assert!(matches!(handle.try_reserve(), Err(SubmitError::Closed(()))));
    assert!(matches!(
        block_on(handle.reserve_async()),
        Err(SubmitError::Closed(()))
    ));
    assert_eq!(queue.stats().refused_closed, 1);
    assert_eq!(queue.shutdown().unwrap().count, 0);
}

#[test]
fn reserving_waits_for_room_and_times_out_without_holding_anything() {
    let (queue, release) = held_queue(1, Reject);
    let held = queue.try_reserve().unwrap();
    // A reservation waits whatever the policy; bounded, it gives up with Timeout(()).
    assert!(matches!(
        queue.reserve_timeout(Duration::from_millis(10)),
        Err(SubmitError::Timeout(()))
    ));
    assert!(matches!(
        block_on(queue.reserve_timeout_async(Duration::from_millis(10))),
        Err(SubmitError::Timeout(()))
    ));
    // A blocking reservation and a task both wait; the dropped permit lets one in, whose
    // command lets the other in once the worker takes it.
    let (tid_tx, tid) = mpsc::channel();
    let waiter = {
        let handle = queue.handle();
        thread::spawn(move || {
            tid_tx.send(current_tid()).unwrap();
            handle.reserve().unwrap().tell(Op::Add(1)).unwrap();
        })
    };
    wait_until_asleep(&[tid.recv().unwrap()]);
    let mut task = Box::pin(queue.reserve_async());
    block_on(async { assert!(futures::poll!(&mut task).is_pending()) });
    drop(held);
    waiter.join().unwrap();
    release.send(()).unwrap();
    block_on(task).unwrap().tell(Op::Add(2)).unwrap();
    queue.wait_until_quiet().unwrap();
    assert_eq!(free_places(&queue), 1);
    assert_eq!(queue.shutdown().unwrap().applied, [1, 2]);
}

#[test]
fn a_reservation_cancelled_while_waiting_holds_no_place() {
    let (queue, release) = held_queue(2, Block);
    let held: Vec<_> = (0..2).map(|_| queue.try_reserve().unwrap()).collect();
    block_on(async {
        let mut waiting: Vec<_> = (0..100).map(|_| Box::pin(queue.reserve_async())).collect();
        for task in &mut waiting {
            assert!(futures::poll!(task).is_pending());
        }
        drop(held); // wakes them: each tries once more and gets, or not, a place
        for task in &mut waiting[..10] {
            let _ = futures::poll!(task);
        }
        // Dropped: a place a task got goes back with its permit.
    });
    release.send(()).unwrap();
    assert_eq!(free_places(&queue), 2);
    drop(queue);
}

#[test]
fn under_drop_oldest_a_queue_full_of_permits_refuses_a_try_and_lets_a_tell_wait() {
    let queue = SingularQueue::builder(Sum::default())
        .capacity(2)
        .backpressure(DropOldest)
        .spawn()
        .unwrap();
    let held: Vec<_> = (0..2).map(|_| queue.try_reserve().unwrap()).collect();
    // Nothing to evict: a try is refused rather than wait...
    assert!(matches!(queue.try_tell(1), Err(SubmitError::Full(1))));
    assert!(matches!(
        queue.tell_timeout(2, Duration::from_millis(5)),
        Err(SubmitError::Timeout(2))
    ));
    // ...and a plain tell waits for a place, as Block does.
    let (tid_tx, tid) = mpsc::channel();
    let teller = {
        let handle = queue.handle();
        thread::spawn(move || {
            tid_tx.send(current_tid()).unwrap();
            handle.tell(3)
        })
    };
    wait_until_asleep(&[tid.recv().unwrap()]);
    for permit in held {
        permit.tell(10).unwrap();
    }
    teller.join().unwrap().unwrap();
    queue.wait_until_quiet().unwrap();
    let stats = queue.stats();
    assert_eq!(stats.submitted, stats.applied + stats.dropped);
    let sum = queue.shutdown().unwrap();
    assert_eq!(sum.total, 23 - 10 * stats.dropped);
}

#[test]
fn on_the_manual_queues_own_thread_a_blocking_reservation_in_a_full_queue_is_refused() {
    let mut queue = SingularQueue::builder(Sum::default()).capacity(1).manual();
    let handle = queue.handle();
    handle.tell(1).unwrap();
    assert!(matches!(handle.reserve(), Err(SubmitError::Deadlock(()))));
    assert!(matches!(
        block_on(handle.reserve_async()),
        Err(SubmitError::Deadlock(()))
    ));
    queue.run_until_idle();
    handle.reserve().unwrap().tell(2).unwrap();
    queue.run_until_idle();
    assert_eq!(queue.shutdown().unwrap().total, 3);
}

/// Permit holders, blocking submitters and evicting submitters race a small queue: every
/// command is applied or evicted exactly once, and afterwards every place is free again.
#[test]
fn permits_and_submitters_under_load_lose_no_command_and_no_place() {
    for evicting in [false, true] {
        within(Duration::from_secs(120), move || {
            let builder = SingularQueue::builder(Sum::default()).capacity(4);
            let queue = if evicting {
                builder.backpressure(DropOldest).spawn().unwrap()
            } else {
                builder.backpressure(Block).spawn().unwrap()
            };
            let threads: Vec<_> = (0..4)
                .map(|t| {
                    let handle = queue.handle();
                    thread::spawn(move || {
                        let mut sent = 0u64;
                        for n in 0..2000u64 {
                            if t % 2 == 0 {
                                let permit = handle.reserve().unwrap();
                                if n % 3 == 0 {
                                    drop(permit);
                                    continue;
                                }
                                permit.tell(1).unwrap();
                            } else {
                                handle.tell(1).unwrap();
                            }
                            sent += 1;
                        }
                        sent
                    })
                })
                .collect();
            let sent: u64 = threads.into_iter().map(|t| t.join().unwrap()).sum();
            queue.wait_until_quiet().unwrap();
            let stats = queue.stats();
            assert_eq!(stats.submitted, sent);
            assert_eq!(stats.applied + stats.dropped, sent);
            assert_eq!(evicting, stats.dropped > 0, "{stats:?}");
            assert_eq!(free_places(&queue), 4);
            assert_eq!(queue.shutdown().unwrap().count, stats.applied);
        });
    }
}
