//! Per-call limits for async callers: never wait for room (`try_call_async`), wait at most so
//! long (`*_timeout_async`), on any executor, with the command handed back whenever it was not
//! accepted and the error saying which side of acceptance the time ran out on.

mod support;

use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use futures::executor::block_on;

use singular_queue::{Block, CallError, DropOldest, SingularQueue, StateMachine, SubmitError};
use support::{Op, Sum, held_queue, within};

const SHORT: Duration = Duration::from_millis(20);

#[test]
fn try_call_async_hands_the_command_back_at_once_where_block_would_wait() {
    let (queue, release) = held_queue(1, Block);
    queue.tell(Op::Add(1)).unwrap(); // full
    match block_on(queue.try_call_async(Op::Add(2))) {
        Err(CallError::Full(command)) => assert_eq!(command.number(), Some(2)),
        other => panic!("expected Full, got {:?}", other.map(|_| ())),
    }
    release.send(()).unwrap();
    queue.wait_until_quiet().unwrap();
    // With room, it waits for the output.
    assert_eq!(block_on(queue.try_call_async(Op::Add(3))).unwrap(), 2);
    assert_eq!(queue.stats().rejected, 1);
    assert_eq!(queue.shutdown().unwrap().applied, [1, 3]);
}

#[test]
fn call_timeout_async_says_timeout_with_the_command_when_it_never_got_in() {
    let (queue, release) = held_queue(1, Block);
    queue.tell(Op::Add(1)).unwrap();
    // No executor timer: only the crate's own timer thread can end this wait.
    match block_on(queue.call_timeout_async(Op::Add(2), SHORT)) {
        Err(CallError::Timeout(command)) => assert_eq!(command.number(), Some(2)),
        other => panic!("expected Timeout, got {:?}", other.map(|_| ())),
    }
    release.send(()).unwrap();
    let stats = queue.stats();
    assert_eq!((stats.submitted, stats.timed_out), (2, 1));
    assert_eq!(queue.shutdown().unwrap().applied, [1]);
}

#[test]
fn call_timeout_async_says_reply_timeout_once_accepted_and_the_command_is_still_applied_once() {
    let (queue, release) = held_queue(4, Block);
    assert!(matches!(
        block_on(queue.call_timeout_async(Op::Add(7), SHORT)),
        Err(CallError::ReplyTimeout)
    ));
    release.send(()).unwrap();
    queue.wait_until_quiet().unwrap();
    let stats = queue.stats();
    assert_eq!((stats.submitted, stats.applied, stats.timed_out), (2, 2, 0));
    assert_eq!(queue.shutdown().unwrap().applied, [7]);
}

#[test]
fn submit_and_tell_timeout_async_hand_the_command_back_after_their_limit() {
    let (queue, release) = held_queue(1, Block);
    queue.tell(Op::Add(1)).unwrap();
    let refused = block_on(queue.submit_timeout_async(Op::Add(2), SHORT)).unwrap_err();
    assert!(matches!(&refused, SubmitError::Timeout(Op::Add(2))));
    let refused = block_on(queue.tell_timeout_async(Op::Add(3), SHORT)).unwrap_err();
    assert_eq!(refused.into_inner().number(), Some(3));
    release.send(()).unwrap();
    queue.wait_until_quiet().unwrap();
    let ticket = block_on(queue.submit_timeout_async(Op::Add(4), SHORT)).unwrap();
    assert_eq!(block_on(ticket).unwrap(), 2);
    block_on(queue.tell_timeout_async(Op::Add(5), SHORT)).unwrap();
    assert_eq!(queue.stats().timed_out, 2);
    assert_eq!(queue.shutdown().unwrap().applied, [1, 4, 5]);
}

#[test]
fn a_timeout_async_call_under_drop_oldest_never_waits_and_evicts_as_a_plain_call() {
    let (queue, release) = held_queue(1, DropOldest);
    let evicted = queue.submit(Op::Add(1)).unwrap();
    let mut calling = Box::pin(queue.call_timeout_async(Op::Add(2), Duration::from_secs(60)));
    block_on(async { assert!(futures::poll!(&mut calling).is_pending()) }); // accepted, waits
    assert!(matches!(
        block_on(evicted),
        Err(singular_queue::WaitError::Dropped)
    ));
    release.send(()).unwrap();
    assert_eq!(block_on(calling).unwrap(), 1);
    assert_eq!(queue.shutdown().unwrap().applied, [2]);
}

/// The output of a call that gave up: its `Drop` must run on the worker, not on the caller
/// that no longer waits for it.
struct Late(mpsc::Sender<Option<String>>);

impl Drop for Late {
    fn drop(&mut self) {
        let _ = self.0.send(thread::current().name().map(str::to_owned));
    }
}

struct MakesLate(mpsc::Receiver<()>);

impl StateMachine for MakesLate {
    type Command = mpsc::Sender<Option<String>>;
    type Output = Late;

    fn apply(&mut self, dropped: Self::Command) -> Late {
        self.0.recv().unwrap();
        Late(dropped)
    }
}

#[test]
fn the_late_output_of_a_timed_out_async_call_is_dropped_by_the_worker() {
    let (release, held) = mpsc::channel();
    let queue = SingularQueue::new(MakesLate(held));
    let (dropped, where_dropped) = mpsc::channel();
    assert!(matches!(
        block_on(queue.call_timeout_async(dropped, SHORT)),
        Err(CallError::ReplyTimeout)
    ));
    release.send(()).unwrap();
    assert_eq!(
        where_dropped.recv().unwrap().as_deref(),
        Some("singular-queue")
    );
    drop(queue);
}

/// Many tasks with deadlines from 0 to 63 µs race a small queue: each call is applied once and
/// answered, or timed out before acceptance (command back), or timed out after it (applied
/// once all the same). The state and the counters agree exactly.
#[test]
fn timed_async_calls_under_load_account_for_every_command_exactly() {
    within(Duration::from_secs(120), || {
        let queue = SingularQueue::builder(Sum::default())
            .capacity(4)
            .backpressure(Block)
            .spawn()
            .unwrap();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .build()
            .unwrap();
        let outcomes = runtime.block_on(async {
            let tasks: Vec<_> = (0..4000u64)
                .map(|n| {
                    let handle = queue.handle();
                    tokio::spawn(async move {
                        // A few calls have all the time they need, so some are answered
                        // however slow the machine.
                        let limit = if n % 500 == 0 {
                            Duration::from_secs(60)
                        } else {
                            Duration::from_micros(n % 64)
                        };
                        match handle.call_timeout_async(1, limit).await {
                            Ok(_) => (1, 0, 0),
                            Err(CallError::ReplyTimeout) => (0, 1, 0),
                            Err(CallError::Timeout(1)) => (0, 0, 1),
                            Err(other) => panic!("{other}"),
                        }
                    })
                })
                .collect();
            let mut totals = (0u64, 0u64, 0u64);
            for task in tasks {
                let (ok, late, refused) = task.await.unwrap();
                totals = (totals.0 + ok, totals.1 + late, totals.2 + refused);
            }
            totals
        });
        let (answered, late, refused) = outcomes;
        assert_eq!(answered + late + refused, 4000);
        assert!(
            answered > 0 && late + refused > 0,
            "{outcomes:?}: tested nothing"
        );
        queue.wait_until_quiet().unwrap();
        let stats = queue.stats();
        assert_eq!(stats.submitted, answered + late);
        assert_eq!(stats.timed_out, refused);
        assert_eq!(queue.shutdown().unwrap().count, answered + late);
    });
}
