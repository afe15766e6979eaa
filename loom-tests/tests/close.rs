//! Loom models of closing a queue from a handle.
#![cfg(singular_queue_loom)]

use loom::thread;
use singular_queue::{SubmitError, model};
use singular_queue_loom_tests::{check, queue, shut_down};

/// A handle's close racing a submitter, with the worker asleep or busy: the command is applied
/// or handed back as closed, `closed()` completes once the worker has finished, and the
/// owner's shutdown afterwards returns the state.
#[test]
fn a_close_from_a_handle_racing_a_submitter_applies_or_hands_back_and_ends_the_worker() {
    check("a_close_from_a_handle_racing_a_submitter_...", || {
        let queue = queue(1);
        let handle = queue.handle();
        let submitter = thread::spawn(move || match handle.tell(1) {
            Ok(()) => true,
            Err(SubmitError::Closed(1)) => false,
            Err(other) => panic!("{other}"),
        });
        let closer = queue.handle();
        closer.close();
        model::block_on(closer.closed());
        let accepted = submitter.join().unwrap();
        let (log, _) = shut_down(queue);
        assert_eq!(log, if accepted { vec![1] } else { vec![] });
    });
}

/// A handle's close racing the owner's shutdown: neither waits for the other forever, and the
/// command accepted before both is applied.
#[test]
fn a_close_from_a_handle_racing_the_owners_shutdown_never_hangs() {
    singular_queue_loom_tests::check_bounded(
        "a_close_from_a_handle_racing_the_owners_...",
        2,
        || {
            let queue = queue(1);
            queue.tell(1).unwrap();
            let closer = queue.handle();
            let closing = thread::spawn(move || closer.close());
            let (log, _) = shut_down(queue);
            closing.join().unwrap();
            assert_eq!(log, [1]);
        },
    );
}
