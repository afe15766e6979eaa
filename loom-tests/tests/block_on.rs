//! Loom models of `model::block_on` on the thread that steps a manual queue: its recorded
//! wait is settled by the reply that ends it (from the hostile review).
#![cfg(singular_queue_loom)]

use loom::thread;
use singular_queue::{CallError, Handle, SingularQueue, StateMachine, model};
use singular_queue_loom_tests::{Log, check_bounded};

/// On `true`, calls the hand-stepped queue it holds a handle to; answers 0 if the call was
/// served, 1 if refused as a deadlock, 2 otherwise.
struct CallsManual(Handle<Log>);

impl StateMachine for CallsManual {
    type Command = bool;
    type Output = u8;
    fn apply(&mut self, call: bool) -> u8 {
        if !call {
            return 0;
        }
        match self.0.call(7) {
            Ok(_) => 0,
            Err(CallError::Deadlock(_)) => 1,
            Err(_) => 2,
        }
    }
}

/// The owner of a manual queue block_on's a ticket of a spawned queue; the spawned worker
/// answers it and then calls the manual queue, which the owner steps once answered. The call
/// would be served, so it must not be refused as a deadlock.
#[test]
fn a_worker_calling_a_manual_queue_whose_owner_block_on_was_answered_is_not_refused() {
    check_bounded("block_on_edge_outlives_its_reply", 2, || {
        let mut manual = SingularQueue::builder(Log::default()).capacity(1).manual();
        let q = SingularQueue::builder(CallsManual(manual.handle()))
            .capacity(2)
            .spawn()
            .unwrap();
        let first = q.submit(false).unwrap();
        let mut second = q.submit(true).unwrap();
        assert_eq!(model::block_on(first), Ok(0));
        let answer = loop {
            manual.run_until_idle();
            if let Some(answer) = second.try_wait() {
                break answer;
            }
            thread::yield_now();
        };
        drop(q);
        drop(manual);
        assert_eq!(answer, Ok(0), "1 = the call was refused as a deadlock");
    });
}
