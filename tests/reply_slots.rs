//! A blocking call reuses its thread's reply slot; no call ever receives another command's
//! output (hazard 3). The loom model `a_reused_reply_slot_never_receives_an_earlier_output`
//! explores the race itself; these tests check it under load.

mod support;

use std::thread;
use std::time::Duration;

use singular_queue::{Block, CallError, SingularQueue, StateMachine};
use support::{Op, held_queue};

/// Answers each command with itself, and counts them.
#[derive(Default)]
struct Echo {
    applied: u64,
}

impl StateMachine for Echo {
    type Command = u64;
    type Output = u64;

    fn apply(&mut self, command: u64) -> u64 {
        self.applied += 1;
        command
    }
}

#[test]
fn a_call_that_timed_out_never_hands_its_output_to_the_next_call() {
    let (queue, mut release) = held_queue(4, Block);
    for round in 0..200u64 {
        // Accepted, but the worker is held: the reply stays with the worker, pending.
        let late = queue.call_timeout(Op::Add(round), Duration::from_millis(1));
        assert!(
            matches!(late, Err(CallError::ReplyTimeout)),
            "round {round}"
        );
        release.send(()).unwrap();
        // The late output lands in the old slot, never in this call's.
        assert_eq!(
            queue.call(Op::Add(round)).ok(),
            Some(2 * round as usize + 2)
        );
        let (hold, started, next_release) = Op::hold();
        queue.tell(hold).unwrap();
        started.recv().unwrap();
        release = next_release;
    }
    release.send(()).unwrap();
    assert_eq!(queue.shutdown().unwrap().applied.len(), 400);
}

#[test]
fn calls_from_eight_threads_each_get_their_own_output_even_after_timeouts() {
    const THREADS: u64 = 8;
    const PER_THREAD: u64 = 20_000;
    let queue = SingularQueue::new(Echo::default());
    let late: u64 = thread::scope(|scope| {
        let threads: Vec<_> = (0..THREADS)
            .map(|t| {
                let handle = queue.handle();
                scope.spawn(move || {
                    let mut late = 0;
                    for i in 0..PER_THREAD {
                        let command = t * PER_THREAD + i;
                        // Every seventh call gives up at once, leaving its reply with the worker.
                        let output = if i % 7 == 0 {
                            handle.call_timeout(command, Duration::ZERO)
                        } else {
                            handle.call(command)
                        };
                        match output {
                            Ok(output) => assert_eq!(output, command),
                            Err(CallError::ReplyTimeout) => late += 1,
                            Err(other) => panic!("call {command} failed: {other}"),
                        }
                    }
                    late
                })
            })
            .collect();
        threads.into_iter().map(|t| t.join().unwrap()).sum()
    });
    let handle = queue.handle();
    let echo = queue.shutdown().unwrap();
    assert_eq!(echo.applied, THREADS * PER_THREAD);
    assert_eq!(handle.stats().applied, THREADS * PER_THREAD);
    println!(
        "{late} of {} calls gave up before their reply",
        THREADS * PER_THREAD
    );
}
