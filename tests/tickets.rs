//! Tickets: waiting, polling, timing out, and being dropped.

mod support;

use std::time::Duration;

use singular_queue::SingularQueue;
use support::{Op, Probe};

#[test]
fn a_pending_ticket_times_out_stays_valid_and_then_delivers() {
    let queue = SingularQueue::new(Probe::default());
    let (hold, started, release) = Op::hold();
    queue.tell(hold).unwrap();
    started.recv().unwrap();

    let mut ticket = queue.submit(Op::Add(7)).unwrap();
    // The worker is held, so the result cannot have arrived.
    assert!(!ticket.is_ready());
    assert!(ticket.try_wait().is_none());
    assert!(ticket.wait_timeout(Duration::from_millis(1)).is_none());

    release.send(()).unwrap();
    let output = ticket.wait_timeout(Duration::from_secs(3600));
    assert_eq!(output.unwrap().unwrap(), 1);
}

#[test]
fn try_wait_takes_a_ready_result_once() {
    let queue = SingularQueue::new(Probe::default());
    let mut ticket = queue.submit(Op::Add(1)).unwrap();
    queue.call(Op::Add(2)).unwrap(); // applied after the first: the first is done now
    assert!(ticket.is_ready());
    assert_eq!(ticket.try_wait().unwrap().unwrap(), 1);
    assert!(!ticket.is_ready());
}

#[test]
#[should_panic(expected = "already taken")]
fn a_ticket_whose_result_was_taken_panics_when_asked_again() {
    let queue = SingularQueue::new(Probe::default());
    let mut ticket = queue.submit(Op::Add(1)).unwrap();
    assert_eq!(
        ticket
            .wait_timeout(Duration::from_secs(3600))
            .unwrap()
            .unwrap(),
        1
    );
    let _ = ticket.try_wait();
}

#[test]
fn an_unbounded_timeout_waits_like_wait() {
    let queue = SingularQueue::new(Probe::default());
    let mut ticket = queue.submit(Op::Add(1)).unwrap();
    assert_eq!(ticket.wait_timeout(Duration::MAX).unwrap().unwrap(), 1);
}

#[test]
fn tickets_dropped_before_and_after_completion_leave_the_commands_applied() {
    let queue = SingularQueue::new(Probe::default());
    let (hold, started, release) = Op::hold();
    queue.tell(hold).unwrap();
    started.recv().unwrap();
    drop(queue.submit(Op::Add(1)).unwrap()); // dropped while queued
    let done = queue.submit(Op::Add(2)).unwrap();
    release.send(()).unwrap();
    queue.call(Op::Add(3)).unwrap();
    drop(done); // dropped after completion
    assert_eq!(queue.shutdown().unwrap().applied, [1, 2, 3]);
}

#[test]
fn a_ticket_is_debug_printable_without_a_debug_output() {
    struct Opaque;
    struct Machine;
    impl singular_queue::StateMachine for Machine {
        type Command = ();
        type Output = Opaque;
        fn apply(&mut self, (): ()) -> Opaque {
            Opaque
        }
    }
    let queue = SingularQueue::new(Machine);
    let mut ticket = queue.submit(()).unwrap();
    queue.call(()).unwrap();
    assert_eq!(format!("{ticket:?}"), "Ticket { ready: true }");
    assert!(ticket.try_wait().unwrap().is_ok());
}
