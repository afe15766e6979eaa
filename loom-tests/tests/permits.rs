//! Loom models of permits: a place held for one command, which nobody else takes, eviction
//! never frees, and a dropped permit gives back to whoever waits for it.
#![cfg(singular_queue_loom)]

use loom::thread;
use singular_queue::{Handle, SingularQueue, SubmitError};
use singular_queue_loom_tests::{Log, check, check_bounded, drop_oldest_queue, shut_down};

/// How many places are free: reserves until refused, then gives them all back.
fn free_places(handle: &Handle<Log>) -> usize {
    let mut permits = Vec::new();
    while let Ok(permit) = handle.try_reserve() {
        permits.push(permit);
    }
    permits.len()
}

/// A permit holder races an evicting submitter for the one place: the permit's command is
/// never refused for room, the evicting submitter waits while the permit holds the place
/// (nothing to evict), each command is applied or evicted exactly once, and afterwards the
/// place is free again.
#[test]
fn a_permit_and_an_evicting_submitter_never_take_the_same_place() {
    check_bounded("a_permit_and_an_evicting_submitter_...", 2, || {
        let (queue, evicted) = drop_oldest_queue();
        let handle = queue.handle();
        let holder = thread::spawn(move || match handle.try_reserve() {
            Ok(permit) => {
                permit.tell(1).unwrap();
                true
            }
            Err(SubmitError::Full(())) => false,
            Err(other) => panic!("{other}"),
        });
        queue.tell(2).unwrap();
        let reserved = holder.join().unwrap();
        queue.wait_until_quiet().unwrap();
        assert_eq!(free_places(&queue), 1);
        let (log, stats) = shut_down(queue);
        let evicted = evicted.lock().unwrap().clone();
        let sent: &[u32] = if reserved { &[1, 2] } else { &[2] };
        for n in sent {
            assert!(
                log.contains(n) != evicted.contains(n),
                "{n}: {log:?} {evicted:?}"
            );
        }
        assert_eq!(stats.submitted, sent.len() as u64);
    });
}

/// A permit dropped unused wakes a thread waiting for room to reserve: the place it gives
/// back is never lost between the two.
#[test]
fn a_permit_dropped_unused_wakes_a_reservation_waiting_for_room() {
    check("a_permit_dropped_unused_wakes_a_reservation_...", || {
        let queue = SingularQueue::builder(Log::default()).capacity(1).manual();
        let handle = queue.handle();
        let held = handle.try_reserve().unwrap();
        let waiter = {
            let handle = queue.handle();
            thread::spawn(move || handle.reserve().map(|permit| permit.tell(7)).is_ok())
        };
        drop(held);
        assert!(waiter.join().unwrap());
        assert_eq!(free_places(&handle), 0);
        assert_eq!(queue.shutdown().unwrap().0, [7]);
    });
}

/// Under `DropOldest`, a place held by a permit is not there to evict: a `try_tell` is refused
/// as full at once rather than spinning until the permit is used.
#[test]
fn a_try_under_drop_oldest_is_refused_when_permits_hold_every_place() {
    check("a_try_under_drop_oldest_is_refused_...", || {
        let (queue, _) = drop_oldest_queue();
        let permit = queue.try_reserve().unwrap();
        assert!(matches!(queue.try_tell(2), Err(SubmitError::Full(2))));
        permit.tell(1).unwrap();
        let (log, _) = shut_down(queue);
        assert_eq!(log, [1]);
    });
}
