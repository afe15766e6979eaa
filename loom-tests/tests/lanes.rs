//! Loom models of the priority lane: the worker's choice between the lanes, the doorbell that
//! wakes it from its sleep on the normal lane, and the messages it holds back behind the
//! priority commands accepted before them.
#![cfg(singular_queue_loom)]

use loom::thread;
use singular_queue::{SingularQueue, StateMachine, WaitStrategy};
use singular_queue_loom_tests::{PREEMPTION_BOUND, check_bounded};

/// Records what it applies.
#[derive(Default)]
struct Log(Vec<u64>);

impl StateMachine for Log {
    type Command = u64;
    type Output = ();
    fn apply(&mut self, entry: u64) {
        self.0.push(entry);
    }
}

/// The worker may be asleep on the normal lane when a priority call comes in: the call is
/// answered (a lost doorbell would leave it waiting forever, which loom reports), and a
/// normal command told at the same time is applied too.
#[test]
fn a_priority_call_wakes_a_sleeping_worker() {
    check_bounded(
        "a_priority_call_wakes_a_sleeping_worker",
        PREEMPTION_BOUND,
        || {
            let queue = SingularQueue::builder(Log::default())
                .priority_lane(1)
                .wait_strategy(WaitStrategy::Park)
                .spawn()
                .unwrap();
            let handle = queue.handle();
            let teller = thread::spawn(move || handle.tell(1).unwrap());
            queue.priority().unwrap().call(100).unwrap();
            teller.join().unwrap();
            let mut log = queue.shutdown().unwrap().0;
            log.sort_unstable();
            assert_eq!(log, [1, 100]);
        },
    );
}

/// With a burst of 1, a thread tells a priority command, then reads, while another thread
/// tells a priority command and a normal one. The read sees its own thread's priority
/// command, however the worker chose between the lanes (with the burst spent, it may take
/// the normal command first, so nothing orders the two lanes' commands), and each command is
/// applied once.
#[test]
fn a_read_sees_the_priority_commands_accepted_before_it() {
    check_bounded(
        "a_read_sees_the_priority_commands_accepted_before_it",
        2,
        || {
            let queue = SingularQueue::builder(Log::default())
                .priority_lane(2)
                .max_priority_burst(1)
                .wait_strategy(WaitStrategy::Park)
                .spawn()
                .unwrap();
            let (handle, urgent) = (queue.handle(), queue.priority().unwrap());
            let other = thread::spawn(move || {
                urgent.tell(200).unwrap();
                handle.tell(2).unwrap();
            });
            queue.priority().unwrap().tell(100).unwrap();
            let seen = queue
                .read(|log: &Log| log.0.contains(&100))
                .unwrap_or_else(|_| panic!("refused"));
            assert!(
                seen,
                "the read ran before a priority command accepted before it"
            );
            other.join().unwrap();
            let mut log = queue.shutdown().unwrap().0;
            log.sort_unstable();
            assert_eq!(log, [2, 100, 200], "each applied once");
        },
    );
}
