//! Loom models of the handoff between submitters and the worker, through the public API.
//!
//! Run them with `bash loom-tests/run` (or see the book's verification chapter). Each test is
//! one property; each model has two or three threads doing one or two operations each, because
//! loom explores every interleaving of them.
#![cfg(singular_queue_loom)]

use loom::sync::Arc;
use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::thread;
use singular_queue::{
    BatchInfo, BlockFor, CallError, OnPanic, Reject, ReplyMode, SingularQueue, StateMachine,
    WaitError,
};
use singular_queue_loom_tests::{
    CountingWaker, DEADLINE, Log, PANIC, assert_accounted, block_on, check, check_bounded,
    drop_oldest_queue, held_full_queue, queue, quiet_planted_panics, shut_down,
};
use std::future::Future;

#[test]
fn ticket_completion_racing_its_waiter_always_wakes_it() {
    check(
        "ticket_completion_racing_its_waiter_always_wakes_it",
        || {
            let queue = queue(1);
            let ticket = queue.submit(7).unwrap();
            assert_eq!(ticket.wait().unwrap(), 1);
            assert_eq!(shut_down(queue).0, [7]);
        },
    );
}

#[test]
fn a_ticket_dropped_before_during_or_after_completion_leaves_the_command_applied() {
    check(
        "a_ticket_dropped_before_during_or_after_completion_leaves_the_command_applied",
        || {
            let queue = queue(1);
            let ticket = queue.submit(1).unwrap();
            let dropper = thread::spawn(move || drop(ticket));
            let (log, _) = shut_down(queue);
            dropper.join().unwrap();
            assert_eq!(log, [1]);
            // loom checks at the end of each iteration that the reply slot was freed.
        },
    );
}

#[test]
fn a_reused_reply_slot_never_receives_an_earlier_output() {
    check(
        "a_reused_reply_slot_never_receives_an_earlier_output",
        || {
            let queue = queue(2);
            // A timed wait under loom yields once and then times out: the first call may give up
            // while the worker still holds its reply, which then lands at any later point.
            let first = queue.call_timeout(1, DEADLINE);
            assert!(matches!(first, Ok(1) | Err(CallError::ReplyTimeout)));
            // This call reuses the first one's slot if, and only if, the worker let go of it.
            assert_eq!(queue.call(2).ok(), Some(2));
            assert_eq!(shut_down(queue).0, [1, 2]);
        },
    );
}

#[test]
fn a_panic_in_apply_wakes_the_waiter_with_an_error() {
    quiet_planted_panics();
    for on_panic in [OnPanic::Continue, OnPanic::Stop] {
        check(
            "a_panic_in_apply_wakes_the_waiter_with_an_error",
            move || {
                let queue = SingularQueue::builder(Log::default())
                    .capacity(1)
                    .on_panic(on_panic)
                    .spawn()
                    .unwrap();
                let ticket = queue.submit(PANIC).unwrap();
                // Racing the panic: applied after it under `Continue`; under `Stop`, refused
                // (the queue closed) or accepted and returned unapplied.
                let behind = queue.submit(1);
                assert!(ticket.wait().unwrap_err().is_panicked());
                let handle = queue.handle();
                let (log, unapplied) = match queue.shutdown() {
                    Ok(state) => (state.0, Vec::new()),
                    Err(poisoned) => {
                        let (state, unapplied) = poisoned.into_parts();
                        (state.0, unapplied)
                    }
                };
                let stats = handle.stats();
                assert_accounted(&stats, log.len());
                assert_eq!(stats.panicked, 1);
                match (on_panic, behind) {
                    (OnPanic::Continue, Ok(ticket)) => {
                        assert_eq!(ticket.wait(), Ok(1));
                        assert_eq!(log, [1]);
                    }
                    (OnPanic::Stop, Ok(ticket)) => {
                        assert_eq!(ticket.wait(), Err(WaitError::NotApplied));
                        assert_eq!((log.len(), unapplied.as_slice()), (0, &[1][..]));
                    }
                    (OnPanic::Stop, Err(refused)) => {
                        assert!(refused.is_closed());
                        assert!(log.is_empty() && unapplied.is_empty());
                    }
                    (_, outcome) => panic!("{on_panic:?}: {outcome:?}"),
                }
            },
        );
    }
}

#[test]
fn shutdown_now_racing_a_waiter_applies_or_returns_the_command_and_wakes_the_waiter() {
    check("shutdown_now_racing_a_waiter_...", || {
        let queue = queue(1);
        let ticket = queue.submit(1).unwrap();
        let waiter = thread::spawn(move || ticket.wait());
        let handle = queue.handle();
        let (log, unapplied) = queue.shutdown_now().unwrap();
        match waiter.join().unwrap() {
            Ok(len) => {
                assert_eq!(len, 1);
                assert_eq!(
                    (log.0.as_slice(), unapplied.as_slice()),
                    (&[1][..], &[][..])
                );
            }
            Err(error) => {
                assert_eq!(error, WaitError::NotApplied);
                assert_eq!(
                    (log.0.as_slice(), unapplied.as_slice()),
                    (&[][..], &[1][..])
                );
            }
        }
        assert_accounted(&handle.stats(), log.0.len());
    });
}

#[test]
fn two_producers_each_command_applied_once_in_producer_order() {
    // Bound 2: each full try through the gate is a dozen loom operations, and at bound 3 the
    // waits for room outside the gate grow this model past ten minutes.
    check_bounded(
        "two_producers_each_command_applied_once_in_producer_order",
        2,
        || {
            let queue = queue(2);
            let handle = queue.handle();
            // The other producer is this thread: two producers and the worker, three threads.
            let producer = thread::spawn(move || {
                handle.tell(21).unwrap();
                handle.tell(22).unwrap();
            });
            queue.tell(11).unwrap();
            queue.tell(12).unwrap();
            producer.join().unwrap();
            let (log, _) = shut_down(queue);
            let from = |tens: u32| {
                log.iter()
                    .copied()
                    .filter(|n| n / 10 == tens)
                    .collect::<Vec<_>>()
            };
            assert_eq!(from(1), [11, 12]);
            assert_eq!(from(2), [21, 22]);
            assert_eq!(log.len(), 4);
        },
    );
}

#[test]
fn reject_at_capacity_one_applies_or_hands_back_each_command() {
    check(
        "reject_at_capacity_one_applies_or_hands_back_each_command",
        || {
            let queue = SingularQueue::builder(Log::default())
                .capacity(1)
                .backpressure(Reject)
                .spawn()
                .unwrap();
            let mut accepted = Vec::new();
            let mut refused = Vec::new();
            for n in 1..=2 {
                match queue.tell(n) {
                    Ok(()) => accepted.push(n),
                    Err(error) => {
                        assert!(error.is_full());
                        refused.push(error.into_inner());
                    }
                }
            }
            let (log, stats) = shut_down(queue);
            assert_eq!(log, accepted, "applied exactly the accepted ones");
            assert_eq!(
                accepted.len() + refused.len(),
                2,
                "never both, never neither"
            );
            assert_eq!(stats.rejected, refused.len() as u64);
        },
    );
}

#[test]
fn drop_oldest_two_producers_each_command_applied_or_dropped_exactly_once() {
    check_bounded("drop_oldest_two_producers_...", 2, || {
        let (queue, evicted) = drop_oldest_queue();
        // Two producers, a spawned thread and this one, two commands each: a producer that
        // evicted may lose the freed slot to the other and evict again.
        let handle = queue.handle();
        let submit_two = |handle: &singular_queue::Handle<Log>, first: u32| {
            let tickets = [first, first + 1].map(|n| (n, handle.submit(n).unwrap()));
            tickets.map(|(n, ticket)| (n, ticket.wait()))
        };
        let producer = thread::spawn(move || submit_two(&handle, 3));
        let mine = submit_two(&queue.handle(), 1);
        let outcomes = mine.into_iter().chain(producer.join().unwrap());
        let (log, stats) = shut_down(queue);
        let evicted = evicted.lock().unwrap().clone();
        for (n, outcome) in outcomes {
            let applied = log.contains(&n);
            let dropped = evicted.contains(&n);
            assert!(
                applied != dropped,
                "{n}: applied {applied}, dropped {dropped}"
            );
            assert_eq!(outcome.is_err_and(|e| e.is_dropped()), dropped);
        }
        assert_eq!(stats.dropped, evicted.len() as u64);
    });
}

#[test]
fn shutdown_racing_a_submit_applies_it_or_hands_it_back() {
    check(
        "shutdown_racing_a_submit_applies_it_or_hands_it_back",
        || {
            let queue = queue(1);
            queue.tell(0).unwrap(); // fills the queue: the racing submitter waits for room
            let (handle, observer) = (queue.handle(), queue.handle());
            let submitter = thread::spawn(move || handle.tell(1).map_err(|e| e.into_inner()));
            let (log, _) = shut_down(queue);
            match submitter.join().unwrap() {
                Ok(()) => assert_eq!(log, [0, 1]),
                Err(back) => {
                    assert_eq!(back, 1);
                    assert_eq!(log, [0]);
                }
            }
            // A refusal is counted by the submitter, so read once it has returned.
            let stats = observer.stats();
            assert_eq!(stats.refused_closed + stats.submitted, 2);
        },
    );
}

#[test]
fn block_for_racing_the_worker_is_accepted_or_timed_out_never_both() {
    check("block_for_racing_the_worker_...", || {
        let (queue, release) = held_full_queue(BlockFor(DEADLINE));
        // The worker is let go while the submit below waits: room comes in time, or not.
        let releaser = thread::spawn(move || release.release());
        let outcome = queue.tell(3);
        releaser.join().unwrap();
        let handle = queue.handle();
        let log = queue.shutdown().unwrap().log;
        match outcome {
            Ok(()) => assert_eq!(log, [1, 2, 3]),
            Err(error) => {
                assert!(error.is_timeout(), "{error:?}");
                assert_eq!(error.into_inner(), 3);
                assert_eq!(log, [1, 2]);
            }
        }
        let stats = handle.stats();
        assert_eq!(stats.timed_out + stats.submitted, 3);
        assert_accounted(&stats, log.len());
    });
}

/// Counts its commits; `on_batch_end` panics once asked to.
struct Committing {
    applied: usize,
    committed: Arc<AtomicUsize>,
    fail_commit: bool,
}

impl StateMachine for Committing {
    type Command = bool;
    type Output = usize;
    fn apply(&mut self, fail_commit: bool) -> usize {
        self.fail_commit |= fail_commit;
        self.applied += 1;
        self.applied
    }
    fn on_batch_end(&mut self, _: BatchInfo) {
        assert!(!self.fail_commit, "asked to panic");
        self.committed.store(self.applied, Ordering::Release);
    }
}

fn committing_queue(committed: &Arc<AtomicUsize>) -> SingularQueue<Committing> {
    SingularQueue::builder(Committing {
        applied: 0,
        committed: Arc::clone(committed),
        fail_commit: false,
    })
    .capacity(2)
    .reply_mode(ReplyMode::AfterBatch)
    .spawn()
    .unwrap()
}

#[test]
fn group_commit_never_replies_before_the_batch_is_committed() {
    check(
        "group_commit_never_replies_before_the_batch_is_committed",
        || {
            let committed = Arc::new(AtomicUsize::new(0));
            let queue = committing_queue(&committed);
            let handle = queue.handle();
            let (watch, other) = (
                Arc::clone(&committed),
                thread::spawn(move || handle.call(false)),
            );
            let mine = queue.call(false).unwrap();
            assert!(committed.load(Ordering::Acquire) >= mine);
            let theirs = other.join().unwrap().unwrap();
            assert!(watch.load(Ordering::Acquire) >= theirs);
            let handle = queue.handle();
            assert_eq!(queue.shutdown().unwrap().applied, 2);
            assert_accounted(&handle.stats(), 2);
        },
    );
}

#[test]
fn a_failed_commit_fails_every_reply_of_its_batch() {
    quiet_planted_panics();
    check("a_failed_commit_fails_every_reply_of_its_batch", || {
        let committed = Arc::new(AtomicUsize::new(0));
        let queue = committing_queue(&committed);
        let handle = queue.handle();
        let other = thread::spawn(move || handle.call(false));
        let mine = queue.call(true);
        // Whatever the batching, the failing command's reply is an error, and a reply that
        // came back Ok belongs to a batch that committed before the failure.
        assert!(mine.unwrap_err().is_not_committed());
        match other.join().unwrap() {
            Ok(applied) => {
                assert!(committed.load(Ordering::Acquire) >= applied)
            }
            Err(error) => {
                assert!(error.is_not_committed() || error.is_closed() || error.is_not_applied())
            }
        }
        assert!(
            queue.shutdown().is_err(),
            "a failed commit poisons the state"
        );
    });
}

#[test]
fn async_ticket_completion_racing_poll_and_a_replaced_waker_always_wakes_the_task() {
    check(
        "async_ticket_completion_racing_poll_and_a_replaced_waker_...",
        || {
            let queue = queue(1);
            let mut ticket = queue.submit(1).unwrap();
            // First poll with one waker, which may race the completion ...
            let first = std::sync::Arc::new(CountingWaker(AtomicUsize::new(0)));
            let waker = std::task::Waker::from(std::sync::Arc::clone(&first));
            let polled =
                std::pin::Pin::new(&mut ticket).poll(&mut std::task::Context::from_waker(&waker));
            match polled {
                std::task::Poll::Ready(output) => assert_eq!(output.unwrap(), 1),
                // ... then wait with another: the task must be woken through the new waker.
                std::task::Poll::Pending => assert_eq!(block_on(ticket).unwrap(), 1),
            }
            assert_eq!(shut_down(queue).0, [1]);
        },
    );
}

#[test]
fn an_async_submit_waiting_for_room_is_woken_when_the_worker_frees_a_slot() {
    check("an_async_submit_waiting_for_room_is_woken_...", || {
        let queue = queue(1);
        queue.tell(1).unwrap(); // fills the queue, unless the worker has taken it already
        block_on(queue.tell_async(2)).unwrap();
        assert_eq!(shut_down(queue).0, [1, 2]);
    });
}
