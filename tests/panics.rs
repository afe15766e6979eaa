//! A panic in user code is caught, reported to the right caller, and never hangs anyone.

mod support;

use singular_queue::{CallError, OnPanic, SingularQueue, StateMachine, WaitError};
use support::{Grenade, Op, Probe, quiet_panics};

#[test]
fn under_continue_the_panicking_caller_gets_the_message_and_the_queue_goes_on() {
    quiet_panics();
    let queue = SingularQueue::builder(Probe::default())
        .on_panic(OnPanic::Continue)
        .spawn()
        .unwrap();
    queue.call(Op::Add(1)).unwrap();
    let error = queue.call(Op::Panic).unwrap_err();
    assert!(matches!(error, CallError::Panicked(ref m) if m == "boom"));
    assert!(
        queue
            .submit(Op::Panic)
            .unwrap()
            .wait()
            .unwrap_err()
            .is_panicked()
    );
    queue.tell(Op::Panic).unwrap();
    assert_eq!(queue.call(Op::Add(2)).unwrap(), 2);

    let stats = queue.stats();
    assert_eq!(
        (stats.applied, stats.panicked, stats.not_applied),
        (2, 3, 0)
    );
    assert_eq!(queue.shutdown().unwrap().applied, [1, 2]);
}

#[test]
fn under_stop_a_panic_poisons_the_state_and_hands_back_the_rest() {
    quiet_panics();
    let queue = SingularQueue::builder(Probe::default())
        .capacity(32)
        .spawn()
        .unwrap();
    queue.call(Op::Add(1)).unwrap();
    let (hold, started, release) = Op::hold();
    queue.tell(hold).unwrap();
    started.recv().unwrap();
    // Queued behind the held command: the panic, then commands that will never be applied.
    let panicking = queue.submit(Op::Panic).unwrap();
    let behind: Vec<_> = (10..20)
        .map(|n| queue.submit(Op::Add(n)).unwrap())
        .collect();
    queue.tell(Op::Add(20)).unwrap();
    release.send(()).unwrap();

    assert_eq!(
        panicking.wait().unwrap_err(),
        WaitError::Panicked("boom".to_owned())
    );
    for ticket in behind {
        assert_eq!(ticket.wait().unwrap_err(), WaitError::NotApplied);
    }
    assert!(queue.call(Op::Add(99)).unwrap_err().is_closed());
    let handle = queue.handle();

    let Err(poisoned) = queue.shutdown() else {
        panic!("the state should be poisoned")
    };
    // Read once the worker has stopped: until then the last tell may still be on its way.
    let stats = handle.stats();
    let counts = (stats.submitted, stats.applied, stats.panicked);
    assert_eq!((counts, stats.not_applied), ((14, 2, 1), 11));
    assert_eq!(poisoned.message(), "boom");
    let (state, unapplied) = poisoned.into_parts();
    assert_eq!(state.applied, [1]);
    let numbers: Vec<u64> = unapplied.iter().filter_map(Op::number).collect();
    assert_eq!(numbers, (10..=20).collect::<Vec<_>>());
}

#[test]
fn shutdown_now_after_a_panic_also_reports_the_poison() {
    quiet_panics();
    let queue = SingularQueue::new(Probe::default());
    assert!(queue.call(Op::Panic).unwrap_err().is_panicked());
    let Err(poisoned) = queue.shutdown_now() else {
        panic!("the state should be poisoned")
    };
    assert_eq!(poisoned.message(), "boom");
    assert!(poisoned.unapplied().is_empty());
}

/// Panics in the hook the test chooses.
struct Hooked {
    panic_on_start: bool,
    panic_on_stop: bool,
}

impl StateMachine for Hooked {
    type Command = ();
    type Output = ();
    fn apply(&mut self, (): ()) {}
    fn on_start(&mut self) {
        assert!(!self.panic_on_start, "start failed");
    }
    fn on_stop(&mut self) {
        assert!(!self.panic_on_stop, "stop failed");
    }
}

#[test]
fn a_panic_in_on_start_refuses_or_fails_every_command_and_poisons_the_state() {
    quiet_panics();
    let queue = SingularQueue::new(Hooked {
        panic_on_start: true,
        panic_on_stop: false,
    });
    // Accepted before the worker noticed (not applied) or refused after (closed): never Ok.
    let error = queue.call(()).unwrap_err();
    assert!(error.is_not_applied() || error.is_closed(), "{error:?}");
    let Err(poisoned) = queue.shutdown() else {
        panic!("the state should be poisoned")
    };
    assert_eq!(poisoned.message(), "start failed");
}

#[test]
fn a_panic_in_on_stop_poisons_the_state() {
    quiet_panics();
    let queue = SingularQueue::new(Hooked {
        panic_on_start: false,
        panic_on_stop: true,
    });
    queue.call(()).unwrap();
    let Err(poisoned) = queue.shutdown() else {
        panic!("the state should be poisoned")
    };
    assert_eq!(poisoned.message(), "stop failed");
    assert!(poisoned.unapplied().is_empty());
}

#[test]
fn a_non_string_panic_payload_is_still_reported() {
    quiet_panics();
    struct Odd;
    impl StateMachine for Odd {
        type Command = ();
        type Output = ();
        fn apply(&mut self, (): ()) {
            std::panic::panic_any(42_u32);
        }
    }
    let queue = SingularQueue::new(Odd);
    let error = queue.call(()).unwrap_err();
    assert_eq!(
        error,
        CallError::Panicked("a panic with a non-string payload".to_owned())
    );
}

#[test]
fn an_output_that_panics_when_dropped_on_the_worker_does_not_take_it_down() {
    quiet_panics();
    struct Armory(u32);
    impl StateMachine for Armory {
        type Command = ();
        type Output = (u32, Grenade);
        fn apply(&mut self, (): ()) -> (u32, Grenade) {
            self.0 += 1;
            (self.0, Grenade)
        }
    }
    let queue = SingularQueue::new(Armory(0));
    queue.tell(()).unwrap(); // the worker drops this output
    drop(queue.submit(()).unwrap()); // and this one, once it finds the ticket gone
    queue.tell(()).unwrap();
    let (count, grenade) = queue.call(()).unwrap();
    std::mem::forget(grenade);
    assert_eq!(count, 4);
    let stats = queue.stats();
    assert_eq!((stats.applied, stats.panicked), (4, 0));
    assert_eq!(queue.shutdown().unwrap().0, 4);
}

#[test]
fn a_panic_payload_that_panics_when_dropped_is_contained() {
    quiet_panics();
    struct Thrower;
    impl StateMachine for Thrower {
        type Command = bool;
        type Output = ();
        fn apply(&mut self, throw: bool) {
            if throw {
                std::panic::panic_any(Grenade);
            }
        }
    }
    let queue = SingularQueue::builder(Thrower)
        .on_panic(OnPanic::Continue)
        .spawn()
        .unwrap();
    assert!(queue.call(true).unwrap_err().is_panicked());
    queue.call(false).unwrap();
    assert_eq!(queue.stats().applied, 1);
    assert!(queue.shutdown().is_ok());
}
