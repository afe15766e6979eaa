//! Every accepted command is applied exactly once, under load.

mod support;

use std::thread;

use singular_queue::{SingularQueue, Ticket};
use support::Sum;

const THREADS: u64 = 8;
const PER_THREAD: u64 = 100_000;

#[test]
fn mixed_call_submit_tell_from_eight_threads_are_each_applied_once() {
    let queue = SingularQueue::builder(Sum::default())
        .capacity(256)
        .spawn()
        .unwrap();
    let expected: u64 = thread::scope(|scope| {
        let threads: Vec<_> = (0..THREADS)
            .map(|t| {
                let handle = queue.handle();
                scope.spawn(move || {
                    let mut sent = 0;
                    let mut tickets = Vec::new();
                    for i in 0..PER_THREAD {
                        // A distinct value per command, so a duplicate or a loss shows in the sum.
                        let value = t * PER_THREAD + i + 1;
                        // The output is the running total, which includes this command's value.
                        match i % 3 {
                            0 => assert!(handle.call(value).unwrap() >= value),
                            1 => tickets.push((value, handle.submit(value).unwrap())),
                            _ => handle.tell(value).unwrap(),
                        }
                        sent += value;
                        if tickets.len() == 64 {
                            wait_all(&mut tickets);
                        }
                    }
                    wait_all(&mut tickets);
                    sent
                })
            })
            .collect();
        threads.into_iter().map(|t| t.join().unwrap()).sum()
    });

    let handle = queue.handle();
    let sum = queue.shutdown().unwrap();
    let stats = handle.stats();
    assert_eq!(sum.count, THREADS * PER_THREAD);
    assert_eq!(sum.total, expected);
    assert_eq!(stats.submitted, THREADS * PER_THREAD);
    assert_eq!(stats.applied, THREADS * PER_THREAD);
    assert_eq!(stats.panicked + stats.not_applied + stats.refused_closed, 0);
}

fn wait_all(tickets: &mut Vec<(u64, Ticket<u64>)>) {
    for (value, ticket) in tickets.drain(..) {
        assert!(ticket.wait().unwrap() >= value);
    }
}

#[test]
fn dropped_tickets_do_not_cancel_their_commands() {
    let queue = SingularQueue::builder(Sum::default())
        .capacity(8)
        .spawn()
        .unwrap();
    thread::scope(|scope| {
        for _ in 0..4 {
            let handle = queue.handle();
            scope.spawn(move || {
                for _ in 0..10_000 {
                    drop(handle.submit(1).unwrap());
                }
            });
        }
    });
    assert_eq!(queue.shutdown().unwrap().total, 40_000);
}
