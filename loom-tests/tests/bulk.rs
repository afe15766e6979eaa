//! Loom models of `tell_many`: a bulk larger than the queue waits for room part by part, and
//! a bulk racing a shutdown is applied or handed back, command by command, never lost.
#![cfg(singular_queue_loom)]

use loom::thread;
use singular_queue::{SingularQueue, SubmitError, WaitStrategy};
use singular_queue_loom_tests::{Log, check_bounded, free_places, queue, shut_down};

/// Three commands told together into two places while another thread tells a fourth: the
/// bulk goes in as places come free (the worker gives them back, and wakes it), all four are
/// applied once, the bulk's in its order, nothing waits forever, and every place comes back.
#[test]
fn a_bulk_larger_than_the_queue_waits_for_room_and_lands_in_order() {
    check_bounded("a_bulk_larger_than_the_queue_...", 2, || {
        // `Park`: the bulk registers for room without yielding first, so the model explores
        // every give-back against its registration.
        let queue = SingularQueue::builder(Log::default())
            .capacity(2)
            .wait_strategy(WaitStrategy::Park)
            .spawn()
            .unwrap();
        let handle = queue.handle();
        let single = thread::spawn(move || handle.tell(4).unwrap());
        queue.tell_many(vec![1, 2, 3]).unwrap();
        single.join().unwrap();
        queue.wait_until_quiet().unwrap();
        assert_eq!(free_places(&queue), 2, "every place back");
        let (log, stats) = shut_down(queue);
        assert_eq!(log.len(), 4);
        let bulk: Vec<_> = log.iter().copied().filter(|&n| n != 4).collect();
        assert_eq!(bulk, [1, 2, 3]);
        assert_eq!(stats.submitted, 4);
    });
}

/// A bulk of two into one place racing the owner's shutdown: each command is applied or comes
/// back as closed, the first before the second.
#[test]
fn a_bulk_racing_a_shutdown_is_applied_or_handed_back_command_by_command() {
    check_bounded("a_bulk_racing_a_shutdown_...", 2, || {
        let queue = queue(1);
        let handle = queue.handle();
        let teller = thread::spawn(move || match handle.tell_many(vec![1, 2]) {
            Ok(()) => Vec::new(),
            Err(SubmitError::Closed(rest)) => rest,
            Err(other) => panic!("{other}"),
        });
        let (mut seen, _) = shut_down(queue);
        seen.extend(teller.join().unwrap());
        assert_eq!(seen, [1, 2]);
    });
}
