//! Loom models of the handoff between submitters and the worker, through the public API.
//!
//! Run them with `bash loom-tests/run` (or see the book's verification chapter). Each test is
//! one property; each model has two or three threads doing one or two operations each, because
//! loom explores every interleaving of them.
#![cfg(singular_queue_loom)]

use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::sync::{Arc, Mutex};
use loom::thread;
use singular_queue::{
    BatchInfo, BlockFor, CallError, DropOldest, OnPanic, Reject, ReplyMode, SingularQueue,
    StateMachine, Stats, WaitError,
};
use std::future::Future;
use std::time::Duration;

/// The preemption bound used unless `LOOM_MAX_PREEMPTIONS` says otherwise.
const PREEMPTION_BOUND: usize = 3;

/// Runs `model` under loom and reports how many interleavings it explored.
fn check(name: &str, model: impl Fn() + Sync + Send + 'static) {
    // Counted outside the model, with std's atomics: not part of what loom explores.
    let iterations = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = std::sync::Arc::clone(&iterations);
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = builder.preemption_bound.or(Some(PREEMPTION_BOUND));
    let bound = builder.preemption_bound;
    builder.check(move || {
        counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        model();
    });
    let explored = iterations.load(std::sync::atomic::Ordering::Relaxed);
    println!("loom model {name}: {explored} iterations, preemption bound {bound:?}");
}

/// Silences the report of the panics the models cause on purpose. Reports every other panic
/// with a message; loom's own unwinding of a finished model's threads (a panic with a typed
/// payload, which its runtime silences by swapping the hook while other tests set theirs) is
/// not reported. A test fails on a panic whether or not it is reported.
fn quiet_planted_panics() {
    std::panic::set_hook(Box::new(|info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<&str>()
            .copied()
            .or_else(|| payload.downcast_ref::<String>().map(String::as_str));
        if message.is_some_and(|message| !message.contains("asked to panic")) {
            eprintln!("{info}");
        }
    }));
}

/// Records each command; `u32::MAX` panics.
#[derive(Default)]
struct Log(Vec<u32>);

const PANIC: u32 = u32::MAX;

impl StateMachine for Log {
    type Command = u32;
    type Output = usize;
    fn apply(&mut self, n: u32) -> usize {
        assert!(n != PANIC, "asked to panic");
        self.0.push(n);
        self.0.len()
    }
}

fn queue(capacity: usize) -> SingularQueue<Log> {
    SingularQueue::builder(Log::default())
        .capacity(capacity)
        .spawn()
        .unwrap()
}

/// Shuts the queue down and returns its log and final stats, checked (property 9).
fn shut_down(queue: SingularQueue<Log>) -> (Vec<u32>, Stats) {
    let handle = queue.handle();
    let log = queue.shutdown().unwrap().0;
    let stats = handle.stats();
    assert_accounted(&stats, log.len());
    (log, stats)
}

/// Property 9: at quiescence every accepted command is accounted for exactly once.
fn assert_accounted(stats: &Stats, applied: usize) {
    assert_eq!(stats.applied, applied as u64);
    assert_eq!(
        stats.submitted,
        stats.applied + stats.panicked + stats.dropped + stats.not_applied
    );
}

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
    check("a_ticket_dropped_..._leaves_the_command_applied", || {
        let queue = queue(1);
        let ticket = queue.submit(1).unwrap();
        let dropper = thread::spawn(move || drop(ticket));
        let (log, _) = shut_down(queue);
        dropper.join().unwrap();
        assert_eq!(log, [1]);
        // loom checks at the end of each iteration that the reply slot was freed.
    });
}

#[test]
fn a_reused_reply_slot_never_receives_an_earlier_output() {
    check(
        "a_reused_reply_slot_never_receives_an_earlier_output",
        || {
            let queue = queue(2);
            // A timed wait under loom yields once and then times out: the first call may give up
            // while the worker still holds its reply, which then lands at any later point.
            let first = queue.call_timeout(1, Duration::from_secs(60));
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
    check("a_panic_in_apply_wakes_the_waiter_with_an_error", || {
        let queue = SingularQueue::builder(Log::default())
            .capacity(1)
            .on_panic(OnPanic::Continue)
            .spawn()
            .unwrap();
        let ticket = queue.submit(PANIC).unwrap();
        assert!(ticket.wait().unwrap_err().is_panicked());
        let (log, stats) = shut_down(queue);
        assert!(log.is_empty());
        assert_eq!(stats.panicked, 1);
    });
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
    check(
        "two_producers_each_command_applied_once_in_producer_order",
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
    check("drop_oldest_two_producers_...", || {
        let evicted = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&evicted);
        let queue = SingularQueue::builder(Log::default())
            .capacity(1)
            .backpressure(DropOldest)
            .on_evict(move |n| sink.lock().unwrap().push(n))
            .spawn()
            .unwrap();
        // Two producers: a spawned thread, and this one.
        let handle = queue.handle();
        let producer = thread::spawn(move || (2, handle.submit(2).unwrap().wait()));
        let first = (1, queue.submit(1).unwrap().wait());
        let outcomes = [first, producer.join().unwrap()];
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
            let (handle, observer) = (queue.handle(), queue.handle());
            let submitter = thread::spawn(move || handle.tell(1).map_err(|e| e.into_inner()));
            let (log, _) = shut_down(queue);
            match submitter.join().unwrap() {
                Ok(()) => assert_eq!(log, [1]),
                Err(back) => {
                    assert_eq!(back, 1);
                    assert!(log.is_empty());
                }
            }
            // A refusal is counted by the submitter, so read once it has returned.
            let stats = observer.stats();
            assert_eq!(stats.refused_closed + stats.submitted, 1);
        },
    );
}

#[test]
fn block_for_racing_the_worker_is_accepted_or_timed_out_never_both() {
    check("block_for_racing_the_worker_...", || {
        let queue = SingularQueue::builder(Log::default())
            .capacity(1)
            .backpressure(BlockFor(std::time::Duration::from_millis(1)))
            .spawn()
            .unwrap();
        queue.tell(1).unwrap(); // fills the queue unless the worker already took it
        let outcome = queue.tell(2);
        let (log, stats) = shut_down(queue);
        match outcome {
            Ok(()) => assert_eq!(log, [1, 2]),
            Err(error) => {
                assert!(error.is_timeout());
                assert_eq!(error.into_inner(), 2);
                assert_eq!(log, [1]);
            }
        }
        assert_eq!(stats.timed_out + stats.submitted, 2);
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

/// Counts how often it is woken.
struct CountingWaker(AtomicUsize);

impl std::task::Wake for CountingWaker {
    fn wake(self: std::sync::Arc<Self>) {
        self.0.fetch_add(1, Ordering::Release);
    }
}

/// Polls `future` to completion on this thread, polling again only after a wake-up: a lost
/// wake-up leaves it yielding forever, which loom reports. (Stale wake-ups, which the futures
/// contract allows, just cost a poll.)
fn block_on<F: Future>(future: F) -> F::Output {
    let woken = std::sync::Arc::new(CountingWaker(AtomicUsize::new(0)));
    let waker = std::task::Waker::from(std::sync::Arc::clone(&woken));
    let mut context = std::task::Context::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    let mut seen = 0;
    loop {
        if let std::task::Poll::Ready(output) = future.as_mut().poll(&mut context) {
            return output;
        }
        while woken.0.load(Ordering::Acquire) == seen {
            thread::yield_now();
        }
        seen = woken.0.load(Ordering::Acquire);
    }
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

#[test]
fn a_shutdown_never_waits_for_a_task_waiting_for_room_which_then_gets_its_command_back() {
    check(
        "a_shutdown_never_waits_for_a_task_waiting_for_room_...",
        || {
            let queue = queue(1);
            queue.tell(1).unwrap();
            let handle = queue.handle();
            let mut waiting = Box::pin(async move { handle.tell_async(2).await });
            let waker =
                std::task::Waker::from(std::sync::Arc::new(CountingWaker(AtomicUsize::new(0))));
            let first = waiting
                .as_mut()
                .poll(&mut std::task::Context::from_waker(&waker));
            // Whether or not the first poll got in, the shutdown must not wait for the task.
            let (log, _) = shut_down(queue);
            let outcome = match first {
                std::task::Poll::Ready(outcome) => outcome,
                std::task::Poll::Pending => block_on(waiting),
            };
            match outcome {
                Ok(()) => assert_eq!(log, [1, 2]),
                Err(refused) => {
                    assert_eq!(refused.into_inner(), 2);
                    assert_eq!(log, [1]);
                }
            }
        },
    );
}
