//! A blocking call reuses its thread's reply slot; no call ever receives another command's
//! output (hazard 3). The loom model `a_reused_reply_slot_never_receives_an_earlier_output`
//! explores the race itself; these tests check it on real threads.

mod support;

use std::thread;
use std::time::Duration;

use singular_queue::{Block, CallError, SingularQueue, StateMachine};
use support::{Op, held_queue, within};

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

/// The late output of a call that gave up arrives while the thread's next call is waiting,
/// and the worker is then held before it applies that next call: a late output landing in the
/// waiting call's slot would be seen as its answer.
#[test]
fn a_late_output_never_answers_the_threads_next_call() {
    within(Duration::from_secs(60), || {
        for _ in 0..20 {
            let (queue, release_first) = held_queue(8, Block);
            let late = queue.call_timeout(Op::Add(0), Duration::from_millis(1));
            assert!(matches!(late, Err(CallError::ReplyTimeout)));
            let (hold, started, release_second) = Op::hold();
            queue.tell(hold).unwrap();
            let handle = queue.handle();
            let releaser = thread::spawn(move || {
                // Waits until the next call is queued: the late command, the hold, the call.
                while handle.stats().depth < 3 {
                    thread::yield_now();
                }
                release_first.send(()).unwrap();
                started.recv().unwrap();
                release_second.send(()).unwrap();
            });
            // `Probe` answers with how many numbers it has recorded: 1 late, then 2 for this.
            assert_eq!(queue.call(Op::Add(1)).ok(), Some(2));
            releaser.join().unwrap();
            assert_eq!(queue.shutdown().unwrap().applied, [0, 1]);
        }
    });
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
