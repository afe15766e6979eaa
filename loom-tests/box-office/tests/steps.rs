//! The box office's state machine, stepped by hand: deterministic, no timing, every command's
//! effect asserted as it happens.

use box_office::{Command, Seats, SoldOut};
use singular_queue::{CallError, SingularQueue};

#[test]
fn the_last_seat_goes_to_the_first_buyer_in_line() {
    let (seats, left_now) = Seats::new(1);
    let mut queue = SingularQueue::builder(seats).max_batch(1).manual();
    let first = queue.submit(Command::Buy).unwrap();
    let second = queue.submit(Command::Buy).unwrap();

    assert_eq!(queue.step(), 1);
    assert_eq!(queue.state().left(), 0);
    assert_eq!(left_now.load(std::sync::atomic::Ordering::Acquire), 0);
    assert_eq!(first.wait(), Ok(Ok(0)));
    assert!(!second.is_ready(), "the second buyer is still in line");

    assert_eq!(queue.step(), 1);
    assert_eq!(second.wait(), Ok(Err(SoldOut)));
    assert_eq!(queue.shutdown().unwrap().left(), 0);
}

#[test]
fn a_call_on_the_stepping_thread_is_refused_instead_of_hanging() {
    let (seats, _) = Seats::new(1);
    let queue = SingularQueue::builder(seats).manual();
    // Only this thread could apply the command, and it would be waiting.
    let refused = queue.handle().call(Command::Buy);
    assert!(matches!(refused, Err(CallError::Reentrant(Command::Buy))));
}
