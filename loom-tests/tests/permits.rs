//! Loom models of places and permits: the worker gives back exactly the places it empties; a
//! permit holds a place for one command, which nobody else takes, eviction never frees, and a
//! dropped permit gives back to whoever waits for it.
#![cfg(singular_queue_loom)]

use loom::sync::{Arc, Condvar, Mutex};
use loom::thread;
use singular_queue::{Handle, Reject, SingularQueue, StateMachine, SubmitError, WaitStrategy};
use singular_queue_loom_tests::{
    Log, check, check_bounded, drop_oldest_queue, free_places, shut_down,
};

/// Two submitters fill a queue of three places under `Reject` while the worker empties it,
/// giving places back in the middle of a batch and at its end (every two commands under
/// loom): however the batches fall, each command is applied or handed back, and once the
/// queue is quiet exactly its three places are free.
#[test]
fn the_worker_gives_back_exactly_the_places_it_empties() {
    check_bounded("the_worker_gives_back_exactly_the_places_...", 2, || {
        let queue = SingularQueue::builder(Log::default())
            .capacity(3)
            .backpressure(Reject)
            .spawn()
            .unwrap();
        let tell = |handle: &Handle<Log>, n| match handle.tell(n) {
            Ok(()) => 1,
            Err(SubmitError::Full(back)) => {
                assert_eq!(back, n);
                0
            }
            Err(other) => panic!("{other}"),
        };
        let handle = queue.handle();
        let other = thread::spawn(move || tell(&handle, 1) + tell(&handle, 2));
        let accepted = tell(&queue, 3) + tell(&queue, 4) + other.join().unwrap();
        queue.wait_until_quiet().unwrap();
        assert_eq!(free_places(&queue), 3);
        let (log, _) = shut_down(queue);
        assert_eq!(log.len(), accepted);
    });
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
        // `Park`: the waiter registers without yielding first, so the model explores the
        // permit dropped at every point of the waiter's registration.
        let queue = SingularQueue::builder(Log::default())
            .capacity(1)
            .wait_strategy(WaitStrategy::Park)
            .manual();
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

/// A handle's close while an evicting submitter looks in the channel: the close's nudge to a
/// sleeping worker may be the only thing there. The submitter must leave it for the worker
/// (its own command is refused: permits hold every place), or the worker sleeps on and
/// `closed()` never completes.
#[test]
fn an_evicting_submitter_never_swallows_a_close_nudge() {
    check("an_evicting_submitter_never_swallows_a_close_nudge", || {
        let (queue, _) = drop_oldest_queue();
        let permit = queue.try_reserve().unwrap();
        let handle = queue.handle();
        let evicter = thread::spawn(move || match handle.try_tell(2) {
            Err(SubmitError::Full(2) | SubmitError::Closed(2)) => {}
            other => panic!("{other:?}"),
        });
        let closer = queue.handle();
        closer.close();
        evicter.join().unwrap();
        assert!(matches!(permit.tell(1), Err(SubmitError::Closed(1))));
        singular_queue::model::block_on(closer.closed());
        let (log, _) = shut_down(queue);
        assert!(log.is_empty());
    });
}

/// Applies commands; command 0 holds the worker until the model releases it.
struct Held(Arc<(Mutex<bool>, Condvar)>, Vec<u32>);

impl StateMachine for Held {
    type Command = u32;
    type Output = ();
    fn apply(&mut self, n: u32) {
        if n == 0 {
            let (released, signal) = &*self.0;
            let mut released = released.lock().unwrap();
            while !*released {
                released = signal.wait(released).unwrap();
            }
        }
        self.1.push(n);
    }
}

/// Under `DropOldest`, a submitter that found every place held by a permit waits for a command
/// to evict. The worker is busy, so no place is freed: the permit holder's send must wake it,
/// and it evicts that command.
#[test]
fn a_permits_command_wakes_a_drop_oldest_submitter_waiting_to_evict() {
    check_bounded("a_permits_command_wakes_a_drop_oldest_...", 2, || {
        let release = Arc::new((Mutex::new(false), Condvar::new()));
        let queue = SingularQueue::builder(Held(Arc::clone(&release), Vec::new()))
            .capacity(1)
            .backpressure(singular_queue::DropOldest)
            .spawn()
            .unwrap();
        queue.tell(0).unwrap(); // holds the worker once it takes it
        let permit = loop {
            match queue.try_reserve() {
                Ok(permit) => break permit,
                Err(_) => thread::yield_now(), // until the worker takes 0
            }
        };
        let handle = queue.handle();
        let evicter = thread::spawn(move || handle.tell(2).unwrap());
        permit.tell(1).unwrap();
        evicter.join().unwrap(); // only an eviction of 1 lets it in
        *release.0.lock().unwrap() = true;
        release.1.notify_all();
        let stats = queue.stats();
        let held = queue.shutdown().unwrap();
        assert_eq!(held.1, [0, 2]);
        assert_eq!(stats.dropped, 1);
    });
}
