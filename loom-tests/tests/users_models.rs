//! Users' models that fail must fail their test (a panic the test harness sees), not abort
//! the test binary; `model::block_on` loses no wake-up. From the hostile review of the
//! testing-for-users issue. (A model that fails while another of its threads is still blocked
//! aborts under loom 0.7 whatever it holds, so none of these does; see the guide.)
#![cfg(singular_queue_loom)]

use singular_queue::model::{self, thread};
use singular_queue::{SingularQueue, StateMachine};

#[derive(Default)]
struct Sum(u64);

impl StateMachine for Sum {
    type Command = u64;
    type Output = u64;
    fn apply(&mut self, add: u64) -> u64 {
        self.0 += add;
        self.0
    }
}

/// A failing assertion in a spawned loom thread after it made a call (its spare slot is live).
#[test]
#[should_panic]
fn a_failed_assertion_on_a_spawned_thread_after_a_call_fails_its_test() {
    model::check(|| {
        let queue = SingularQueue::builder(Sum::default()).spawn().unwrap();
        let handle = queue.handle();
        let caller = thread::spawn(move || {
            let got = handle.call(1).unwrap();
            assert_eq!(got, 2, "the model's own assertion");
        });
        let _ = caller.join();
        drop(queue);
    });
}

/// `block_on` of a ticket answered by a spawned worker: no lost wake-up in any interleaving.
#[test]
fn block_on_a_ticket_never_loses_the_wake_up() {
    model::check(|| {
        let queue = SingularQueue::builder(Sum::default())
            .capacity(1)
            .spawn()
            .unwrap();
        let ticket = queue.submit(3).unwrap();
        assert_eq!(model::block_on(ticket), Ok(3));
        assert_eq!(queue.shutdown().unwrap().0, 3);
    });
}

/// `block_on` of `call_async` waiting for room behind another submitter.
#[test]
fn block_on_call_async_waiting_for_room_never_loses_the_wake_up() {
    model::check(|| {
        let queue = SingularQueue::builder(Sum::default())
            .capacity(1)
            .spawn()
            .unwrap();
        let handle = queue.handle();
        let other = thread::spawn(move || handle.tell(1).unwrap());
        let got = model::block_on(queue.call_async(2)).unwrap();
        other.join().unwrap();
        assert!(got == 2 || got == 3, "{got}");
        assert_eq!(queue.shutdown().unwrap().0, 3);
    });
}

/// The commonest failing model: an assertion fails while a spawned queue is alive.
#[test]
#[should_panic(expected = "the model's own assertion")]
fn a_failed_assertion_with_a_live_spawned_queue_fails_its_test() {
    model::check(|| {
        let queue = SingularQueue::builder(Sum::default())
            .capacity(1)
            .spawn()
            .unwrap();
        let got = queue.call(1).unwrap();
        assert_eq!(got, 2, "the model's own assertion");
    });
}

/// An assertion fails while a manual queue holds an unanswered ticket and an accepted tell.
#[test]
#[should_panic(expected = "the model's own assertion")]
fn a_failed_assertion_with_a_live_manual_queue_fails_its_test() {
    model::check(|| {
        let mut queue = SingularQueue::builder(Sum::default()).manual();
        let _ticket = queue.submit(1).unwrap();
        queue.tell(2).unwrap();
        assert_eq!(queue.step(), 1, "the model's own assertion");
    });
}

/// An assertion fails on the main thread after a caller on another loom thread finished.
#[test]
#[should_panic(expected = "the model's own assertion")]
fn a_failed_assertion_after_the_caller_joined_fails_its_test() {
    model::check(|| {
        let mut queue = SingularQueue::builder(Sum::default()).manual();
        let handle = queue.handle();
        let caller = thread::spawn(move || handle.tell(1).unwrap());
        caller.join().unwrap();
        assert_eq!(queue.run_until_idle(), 2, "the model's own assertion");
    });
}
