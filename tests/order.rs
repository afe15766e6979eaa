//! Commands are applied in the order they were accepted: per producer, FIFO.

mod support;

use std::thread;

use singular_queue::SingularQueue;
use support::Recorder;

const PRODUCERS: usize = 8;
const PER_PRODUCER: u64 = 50_000;

#[test]
fn each_producer_s_commands_are_applied_in_the_order_it_submitted_them() {
    let queue = SingularQueue::builder(Recorder::default())
        .capacity(64)
        .spawn()
        .unwrap();
    thread::scope(|scope| {
        for producer in 0..PRODUCERS {
            let handle = queue.handle();
            scope.spawn(move || {
                for seq in 0..PER_PRODUCER {
                    // Mix the three ways to submit: order must hold across all of them.
                    match seq % 3 {
                        0 => handle.tell((producer, seq)).unwrap(),
                        1 => drop(handle.submit((producer, seq)).unwrap()),
                        _ => handle.call((producer, seq)).unwrap(),
                    }
                }
            });
        }
    });
    let log = queue.shutdown().unwrap().log;

    assert_eq!(log.len(), PRODUCERS * PER_PRODUCER as usize);
    let mut next = [0u64; PRODUCERS];
    for (producer, seq) in log {
        assert_eq!(seq, next[producer], "producer {producer} out of order");
        next[producer] += 1;
    }
    assert!(next.iter().all(|&n| n == PER_PRODUCER));
}

#[test]
fn a_single_thread_sees_its_commands_applied_in_order() {
    let queue = SingularQueue::builder(Recorder::default())
        .capacity(4)
        .spawn()
        .unwrap();
    let tickets: Vec<_> = (0..1000)
        .map(|seq| queue.submit((0, seq)).unwrap())
        .collect();
    for ticket in tickets {
        ticket.wait().unwrap();
    }
    let log = queue.shutdown().unwrap().log;
    assert_eq!(log, (0..1000).map(|seq| (0, seq)).collect::<Vec<_>>());
}
