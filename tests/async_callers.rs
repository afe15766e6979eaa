//! Async callers on two executors (futures' `block_on` and tokio's runtimes): tickets as
//! futures, waiting for room without blocking a thread, deadlines without a timer runtime, and
//! cancellation at every await point with exact accounting.

mod support;

use std::future::Future;
use std::time::Duration;

use futures::executor::block_on;
use futures::future::join_all;

use singular_queue::{Block, BlockFor, DropOldest, Handle, Reject, SingularQueue, SubmitError};
use support::{Op, Probe, Sum, Tally, held_queue, within};

#[test]
fn a_ticket_is_a_future_on_any_executor() {
    let queue = SingularQueue::new(Sum::default());
    assert_eq!(block_on(queue.submit(1).unwrap()).unwrap(), 1);
    let current = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    assert_eq!(current.block_on(queue.submit(2).unwrap()).unwrap(), 3);
    let multi = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    assert_eq!(multi.block_on(queue.call_async(3)).unwrap(), 6);
    assert_eq!(queue.shutdown().unwrap().total, 6);
}

#[test]
fn a_thousand_tasks_on_one_thread_with_capacity_four_apply_exactly_a_thousand() {
    // futures' block_on over join_all: every task on this one thread.
    let queue = SingularQueue::builder(Sum::default())
        .capacity(4)
        .backpressure(Block)
        .spawn()
        .unwrap();
    let outputs = block_on(join_all((0..1000).map(|_| queue.call_async(1))));
    assert!(outputs.iter().all(Result::is_ok));
    assert_eq!(queue.shutdown().unwrap().count, 1000);

    // tokio's current-thread runtime, with 1000 spawned tasks.
    let queue = SingularQueue::builder(Sum::default())
        .capacity(4)
        .backpressure(Block)
        .spawn()
        .unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    runtime.block_on(async {
        let tasks: Vec<_> = (0..1000)
            .map(|_| {
                let handle = queue.handle();
                tokio::spawn(async move { handle.tell_async(1).await })
            })
            .collect();
        for task in tasks {
            task.await.unwrap().unwrap();
        }
    });
    let handle = queue.handle();
    assert_eq!(queue.shutdown().unwrap().count, 1000);
    assert_eq!(handle.stats().applied, 1000);
}

#[test]
fn sync_and_async_submitters_share_one_queue() {
    let queue = SingularQueue::builder(Sum::default())
        .capacity(2)
        .spawn()
        .unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    std::thread::scope(|scope| {
        for _ in 0..4 {
            let handle = queue.handle();
            scope.spawn(move || (0..2_000).for_each(|_| assert!(handle.call(1).unwrap() > 0)));
        }
        runtime.block_on(async {
            let tasks: Vec<_> = (0..4)
                .map(|_| {
                    let handle = queue.handle();
                    tokio::spawn(async move {
                        for _ in 0..2_000 {
                            handle.call_async(1).await.unwrap();
                        }
                    })
                })
                .collect();
            join_all(tasks)
                .await
                .into_iter()
                .for_each(|task| task.unwrap());
        });
    });
    assert_eq!(queue.shutdown().unwrap().count, 16_000);
}

#[test]
fn a_future_dropped_while_waiting_for_room_drops_its_command_unaccepted() {
    let (queue, release) = held_queue(1, Block);
    queue.tell(Op::Add(1)).unwrap(); // the queue is full now
    block_on(async {
        let mut waiting = Box::pin(queue.submit_async(Op::Add(2)));
        assert!(futures::poll!(&mut waiting).is_pending(), "waits for room");
        let mut telling = Box::pin(queue.tell_async(Op::Add(3)));
        assert!(futures::poll!(&mut telling).is_pending());
        // Cancelled at the "room" await point: neither is accepted.
    });
    assert_eq!(queue.stats().submitted, 2);
    release.send(()).unwrap();
    assert_eq!(queue.shutdown().unwrap().applied, [1]);
}

#[test]
fn a_future_dropped_while_waiting_for_the_output_leaves_its_command_applied_once() {
    let (queue, release) = held_queue(4, Block);
    block_on(async {
        let mut calling = Box::pin(queue.call_async(Op::Add(1)));
        // Accepted at once (there is room), then waiting for the held worker: drop it there.
        assert!(futures::poll!(&mut calling).is_pending());
    });
    assert_eq!(queue.stats().submitted, 2);
    release.send(()).unwrap();
    assert_eq!(queue.shutdown().unwrap().applied, [1]);
}

#[test]
fn block_for_times_out_in_async_code_without_a_timer_runtime() {
    let (queue, release) = held_queue(1, BlockFor(Duration::from_millis(20)));
    queue.tell(Op::Add(1)).unwrap();
    // Nobody frees a slot: only the crate's own timer can wake this task at its deadline.
    let refused = block_on(queue.tell_async(Op::Add(2))).unwrap_err();
    assert!(refused.is_timeout());
    assert_eq!(refused.into_inner().number(), Some(2));
    release.send(()).unwrap();
    assert_eq!(queue.stats().timed_out, 1);
    assert_eq!(queue.shutdown().unwrap().applied, [1]);
}

#[test]
fn reject_and_drop_oldest_behave_in_async_code_as_in_sync_code() {
    let (queue, release) = held_queue(1, Reject);
    queue.tell(Op::Add(1)).unwrap();
    let refused = block_on(queue.submit_async(Op::Add(2))).unwrap_err();
    assert!(matches!(refused, SubmitError::Full(Op::Add(2))));
    release.send(()).unwrap();
    drop(queue);

    let (queue, release) = held_queue(1, DropOldest);
    let first = queue.submit(Op::Add(1)).unwrap();
    let second = block_on(queue.submit_async(Op::Add(2))).unwrap();
    assert!(block_on(first).unwrap_err().is_dropped());
    release.send(()).unwrap();
    assert_eq!(block_on(second).unwrap(), 1);
}

#[test]
fn cancellation_at_every_await_point_under_load_never_duplicates_or_loses_a_command() {
    let queue = SingularQueue::builder(Tally::default())
        .capacity(2)
        .spawn()
        .unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .unwrap();
    let completed: Vec<u64> = runtime.block_on(async {
        let tasks: Vec<_> = (0..8u64)
            .map(|t| {
                let handle = queue.handle();
                tokio::spawn(async move {
                    let mut completed = Vec::new();
                    for i in 0..500u64 {
                        let value = t * 1_000 + i;
                        // A deadline of 0 to 49 µs cancels some calls while they wait for room,
                        // some while they wait for the output, and lets others finish.
                        let limit = Duration::from_micros((value * 7919) % 50);
                        if let Ok(result) =
                            tokio::time::timeout(limit, handle.call_async(value)).await
                        {
                            result.unwrap();
                            completed.push(value);
                        }
                    }
                    completed
                })
            })
            .collect();
        join_all(tasks)
            .await
            .into_iter()
            .flat_map(Result::unwrap)
            .collect()
    });
    let handle = queue.handle();
    let tally = queue.shutdown().unwrap().0;
    let stats = handle.stats();
    // Never duplicated: each value applied at most once.
    assert!(tally.values().all(|&n| n == 1));
    // Never lost: everything accepted was applied, and every completed call among them.
    assert_eq!(stats.submitted, tally.len() as u64);
    assert_eq!(stats.applied, tally.len() as u64);
    assert!(completed.iter().all(|value| tally.contains_key(value)));
    assert!(
        completed.len() < 8 * 500,
        "some calls were cancelled, or this tested nothing"
    );
    println!(
        "{} calls: {} completed, {} cancelled after acceptance, {} cancelled before",
        8 * 500,
        completed.len(),
        tally.len() - completed.len(),
        8 * 500 - tally.len()
    );
}

#[test]
fn a_task_waiting_for_room_does_not_hold_up_a_shutdown_and_then_gets_its_command_back() {
    within(Duration::from_secs(60), || {
        let (queue, release) = held_queue(1, Block);
        queue.tell(Op::Add(1)).unwrap();
        // Polled once, then never again while the queue shuts down.
        let mut waiting = Box::pin(tell_owning(queue.handle(), Op::Add(2)));
        assert!(block_on(async {
            futures::poll!(&mut waiting).is_pending()
        }));
        release.send(()).unwrap();
        assert_eq!(queue.shutdown().unwrap().applied, [1]);
        // Looked at again, it finds the queue closed and hands its command back.
        let refused = block_on(waiting).unwrap_err();
        assert!(refused.is_closed());
        assert_eq!(refused.into_inner().number(), Some(2));
    });
}

/// A `tell_async` whose future owns its handle, so it can outlive the queue.
async fn tell_owning(handle: Handle<Probe>, op: Op) -> Result<(), SubmitError<Op>> {
    handle.tell_async(op).await
}

/// Records which of two wakers has been woken.
struct Flag(std::sync::atomic::AtomicBool);

impl std::task::Wake for Flag {
    fn wake(self: std::sync::Arc<Self>) {
        self.0.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

#[test]
fn a_block_for_deadline_wakes_the_task_through_its_latest_waker() {
    within(Duration::from_secs(60), || {
        let (queue, release) = held_queue(1, BlockFor(Duration::from_millis(20)));
        queue.tell(Op::Add(1)).unwrap();
        let mut waiting = Box::pin(queue.tell_async(Op::Add(2)));
        let flag = || std::sync::Arc::new(Flag(std::sync::atomic::AtomicBool::new(false)));
        let (first, second) = (flag(), flag());
        for flag in [&first, &second] {
            let waker = std::task::Waker::from(std::sync::Arc::clone(flag));
            let polled = waiting
                .as_mut()
                .poll(&mut std::task::Context::from_waker(&waker));
            assert!(polled.is_pending());
        }
        // The task moved to a new waker: the deadline must wake that one.
        while !second.0.load(std::sync::atomic::Ordering::SeqCst) {
            std::thread::yield_now();
        }
        let waker = std::task::Waker::from(second);
        let polled = waiting
            .as_mut()
            .poll(&mut std::task::Context::from_waker(&waker));
        let std::task::Poll::Ready(Err(refused)) = polled else {
            panic!("timed out by now")
        };
        assert!(refused.is_timeout());
        release.send(()).unwrap();
    });
}
