//! Loom models of the hand-stepped queue: its owner's steps and shutdown racing callers and
//! submitters on other threads.
#![cfg(singular_queue_loom)]

use loom::sync::Arc;
use loom::sync::atomic::{AtomicBool, Ordering};
use loom::thread;
use singular_queue::{SingularQueue, SubmitError};
use singular_queue_loom_tests::{Log, assert_accounted, check};

/// A caller on another thread, waiting for room and then for its output, is answered by the
/// owner's steps; its command is applied exactly once, before the one it tells after.
#[test]
fn a_caller_on_another_thread_is_answered_by_the_owners_steps() {
    check("a_caller_on_another_thread_...", || {
        let mut queue = SingularQueue::builder(Log::default()).capacity(1).manual();
        queue.tell(1).unwrap();
        let (handle, done) = (queue.handle(), Arc::new(AtomicBool::new(false)));
        let finished = Arc::clone(&done);
        let caller = thread::spawn(move || {
            let answer = handle.call(2);
            finished.store(true, Ordering::Release);
            answer
        });
        while !done.load(Ordering::Acquire) {
            queue.step();
            thread::yield_now();
        }
        assert_eq!(caller.join().unwrap(), Ok(2));
        let stats = queue.stats();
        assert_eq!(queue.shutdown().unwrap().0, [1, 2]);
        assert_accounted(&stats, 2);
    });
}

/// The owner's shutdown racing a submitter: the command is applied by the shutdown's last
/// steps, after the one already waiting, and its ticket answered; or handed back as closed.
#[test]
fn a_manual_shutdown_racing_a_submitter_applies_it_or_hands_it_back() {
    check("a_manual_shutdown_racing_a_submitter_...", || {
        let queue = SingularQueue::builder(Log::default()).capacity(2).manual();
        queue.tell(1).unwrap();
        let handle = queue.handle();
        let submitter = thread::spawn(move || match handle.submit(2) {
            Ok(ticket) => Some(ticket.wait().unwrap()),
            Err(SubmitError::Closed(2)) => None,
            Err(other) => panic!("{other}"),
        });
        let stats = queue.handle();
        let log = queue.shutdown().unwrap().0;
        match submitter.join().unwrap() {
            Some(position) => assert_eq!((position, &log[..]), (2, &[1, 2][..])),
            None => assert_eq!(log, [1]),
        }
        assert_accounted(&stats.stats(), log.len());
    });
}
