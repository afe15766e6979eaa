//! Closing from any handle, awaiting the end, and the owner's async shutdown: every command is
//! applied or handed back, and nothing waits forever.

mod support;

use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use singular_queue::{SingularQueue, SubmitError, model};
use support::{Op, Sum, within};

/// Submitters race a close from another thread: each command is applied or handed back as
/// closed, and the state holds exactly the accepted ones.
#[test]
fn a_close_racing_many_submitters_applies_or_hands_back_every_command() {
    within(Duration::from_secs(60), || {
        let queue = SingularQueue::builder(Sum::default())
            .capacity(8)
            .spawn()
            .unwrap();
        let (started, under_way) = mpsc::channel();
        let submitters: Vec<_> = (0..4)
            .map(|_| {
                let (handle, started) = (queue.handle(), started.clone());
                thread::spawn(move || {
                    let mut accepted = 0;
                    for n in 0.. {
                        if n == 100 {
                            started.send(()).unwrap();
                        }
                        match handle.tell(1) {
                            Ok(()) => accepted += 1,
                            Err(SubmitError::Closed(1)) => return accepted,
                            Err(other) => panic!("{other}"),
                        }
                    }
                    unreachable!()
                })
            })
            .collect();
        (0..4).for_each(|_| under_way.recv().unwrap());
        let closer = queue.handle();
        thread::spawn(move || closer.close()).join().unwrap();
        let accepted: u64 = submitters.into_iter().map(|s| s.join().unwrap()).sum();
        model::block_on(queue.closed());
        assert!(queue.handle().is_closed());
        let stats = queue.stats();
        assert_eq!(stats.submitted, accepted);
        assert_eq!(stats.refused_closed, 4);
        assert_eq!(queue.shutdown().unwrap().total, accepted);
    });
}

#[test]
fn every_task_awaiting_closed_wakes_whoever_closes() {
    within(Duration::from_secs(60), || {
        for close_by_owner in [false, true] {
            let queue = SingularQueue::new(Sum::default());
            let waiters: Vec<_> = (0..3)
                .map(|_| {
                    let handle = queue.handle();
                    thread::spawn(move || model::block_on(handle.closed()))
                })
                .collect();
            queue.tell(7).unwrap();
            let state = if close_by_owner {
                queue.shutdown().unwrap()
            } else {
                queue.handle().close();
                model::block_on(queue.closed());
                queue.shutdown().unwrap()
            };
            assert_eq!(state.total, 7);
            waiters.into_iter().for_each(|w| w.join().unwrap());
        }
    });
}

#[test]
fn a_close_while_the_worker_is_busy_still_applies_what_was_accepted() {
    within(Duration::from_secs(60), || {
        let (queue, release) = support::held_queue(8, singular_queue::Block);
        for n in 1..=3 {
            queue.tell(Op::Add(n)).unwrap();
        }
        queue.handle().close();
        assert!(matches!(
            queue.tell(Op::Add(9)),
            Err(SubmitError::Closed(Op::Add(9)))
        ));
        release.send(()).unwrap();
        model::block_on(queue.closed());
        assert_eq!(queue.shutdown().unwrap().applied, [1, 2, 3]);
    });
}

#[test]
fn a_poisoned_queue_closed_from_a_handle_finishes() {
    within(Duration::from_secs(60), || {
        support::quiet_panics();
        let (queue, release) = support::held_queue(8, singular_queue::Block);
        let panicking = queue.submit(Op::Panic).unwrap();
        let behind = queue.submit(Op::Add(2)).unwrap();
        release.send(()).unwrap();
        assert!(panicking.wait().unwrap_err().is_panicked());
        queue.handle().close();
        model::block_on(queue.closed());
        assert!(behind.wait().unwrap_err().is_not_applied());
        let poisoned = queue.shutdown().unwrap_err();
        assert_eq!(poisoned.unapplied().len(), 1);
    });
}

#[test]
fn a_manual_queue_closed_from_a_handle_is_still_served_by_its_steps() {
    let mut queue = SingularQueue::builder(Sum::default()).capacity(2).manual();
    queue.tell(1).unwrap();
    queue.tell(2).unwrap();
    let handle = queue.handle();
    handle.close();
    handle.close();
    assert!(matches!(handle.tell(3), Err(SubmitError::Closed(3))));
    assert_eq!(queue.run_until_idle(), 2);
    assert_eq!(queue.shutdown().unwrap().total, 3);
    model::block_on(handle.closed()); // finished: resolves at once
}

#[test]
fn the_owner_shuts_down_from_async_code() {
    within(Duration::from_secs(60), || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .build()
            .unwrap();
        let state = runtime.block_on(async {
            let queue = SingularQueue::new(Sum::default());
            let handle = queue.handle();
            let client = tokio::spawn(async move {
                for _ in 0..100 {
                    handle.tell_async(1).await.unwrap();
                }
            });
            client.await.unwrap();
            queue.shutdown_async().await.unwrap()
        });
        assert_eq!(state.total, 100);
    });
}
