//! Each backpressure policy at its edges: empty, full, capacity 1, closed; and per-call limits.

mod support;

use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use singular_queue::{
    Backpressure, Block, BlockFor, CallError, Decision, DropOldest, Load, Reject, SingularQueue,
    SubmitError, WaitError,
};
use support::{Op, Probe, held_queue};

fn refused_number(error: SubmitError<Op>) -> Option<u64> {
    error.into_inner().number()
}

#[test]
fn block_waits_for_room_then_accepts() {
    let (queue, release) = held_queue(1, Block);
    queue.tell(Op::Add(1)).unwrap(); // fills the only slot
    let handle = queue.handle();
    let blocked = thread::spawn(move || handle.call(Op::Add(2)));
    // However long the submitter has waited so far, it has been neither refused nor accepted.
    let stats = queue.stats();
    assert_eq!((stats.depth, stats.rejected, stats.timed_out), (1, 0, 0));
    release.send(()).unwrap();
    assert_eq!(blocked.join().unwrap().unwrap(), 2);
    assert_eq!(queue.shutdown().unwrap().applied, [1, 2]);
}

#[test]
fn block_for_times_out_with_the_command_back() {
    let (queue, release) = held_queue(1, BlockFor(Duration::from_millis(5)));
    queue.tell(Op::Add(1)).unwrap();
    let error = queue.tell(Op::Add(2)).unwrap_err();
    assert!(error.is_timeout());
    assert_eq!(refused_number(error), Some(2));
    let error = queue.call(Op::Add(3)).unwrap_err();
    assert!(error.is_timeout());
    assert_eq!(error.into_inner().and_then(|op| op.number()), Some(3));
    release.send(()).unwrap();
    // Once the worker has taken the waiting command there is room.
    queue.wait_until_quiet().unwrap();
    // With room, BlockFor accepts at once.
    assert_eq!(queue.call(Op::Add(4)).unwrap(), 2);
    let stats = queue.stats();
    assert_eq!(
        (stats.timed_out, stats.rejected, stats.submitted),
        (2, 0, 3)
    );
    assert_eq!(queue.shutdown().unwrap().applied, [1, 4]);
}

#[test]
fn reject_refuses_at_once_when_full_and_accepts_when_not() {
    let (queue, release) = held_queue(2, Reject);
    queue.tell(Op::Add(1)).unwrap();
    let ticket = queue.submit(Op::Add(2)).unwrap();
    let error = queue.submit(Op::Add(3)).unwrap_err();
    assert!(error.is_full());
    assert_eq!(refused_number(error), Some(3));
    assert!(queue.call(Op::Add(4)).unwrap_err().is_full());
    release.send(()).unwrap();
    assert_eq!(ticket.wait().unwrap(), 2);
    let stats = queue.stats();
    assert_eq!((stats.rejected, stats.submitted, stats.applied), (2, 3, 3));
}

#[test]
fn drop_oldest_evicts_the_oldest_waiting_command_never_the_one_in_progress() {
    let evicted = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&evicted);
    let queue = SingularQueue::builder(Probe::default())
        .capacity(2)
        .backpressure(DropOldest)
        .on_evict(move |op: Op| sink.lock().unwrap().push(op.number().unwrap()))
        .spawn()
        .unwrap();
    let (hold, started, release) = Op::hold();
    let held = queue.submit(hold).unwrap();
    started.recv().unwrap();

    let first = queue.submit(Op::Add(1)).unwrap();
    queue.tell(Op::Add(2)).unwrap();
    let third = queue.submit(Op::Add(3)).unwrap(); // evicts 1
    queue.tell(Op::Add(4)).unwrap(); // evicts 2, a tell: only counted
    assert_eq!(first.wait().unwrap_err(), WaitError::Dropped);
    assert_eq!(*evicted.lock().unwrap(), [1, 2]);

    release.send(()).unwrap();
    assert_eq!(
        held.wait().unwrap(),
        0,
        "the command in progress was applied, not evicted"
    );
    assert_eq!(third.wait().unwrap(), 1);
    let stats = queue.stats();
    assert_eq!((stats.submitted, stats.dropped, stats.rejected), (5, 2, 0));
    assert_eq!(queue.shutdown().unwrap().applied, [3, 4]);
}

#[test]
fn drop_oldest_without_on_evict_still_tells_the_caller() {
    let queue = SingularQueue::builder(Probe::default())
        .capacity(1)
        .backpressure(DropOldest)
        .spawn()
        .unwrap();
    let (hold, started, release) = Op::hold();
    queue.tell(hold).unwrap();
    started.recv().unwrap();
    let handle = queue.handle();
    let evicted = thread::scope(|scope| {
        let caller = scope.spawn(|| handle.call(Op::Add(1)));
        // Wait until the caller's command is in the queue, then push it out.
        while queue.stats().submitted < 2 {
            thread::yield_now();
        }
        queue.tell(Op::Add(2)).unwrap();
        caller.join().unwrap()
    });
    assert!(matches!(evicted, Err(CallError::Dropped)));
    release.send(()).unwrap();
    assert_eq!(queue.shutdown().unwrap().applied, [2]);
}

#[test]
fn an_empty_queue_accepts_under_every_policy() {
    fn accepts(policy: impl Backpressure<Op>) {
        let queue = SingularQueue::builder(Probe::default())
            .capacity(1)
            .backpressure(policy)
            .spawn()
            .unwrap();
        assert_eq!(queue.call(Op::Add(1)).unwrap(), 1);
        assert_eq!(queue.try_call(Op::Add(2)).unwrap(), 2);
        assert_eq!(
            queue
                .call_timeout(Op::Add(3), Duration::from_secs(60))
                .unwrap(),
            3
        );
        assert_eq!(queue.shutdown().unwrap().applied, [1, 2, 3]);
    }
    accepts(Block);
    accepts(BlockFor(Duration::from_millis(1)));
    accepts(Reject);
    accepts(DropOldest);
}

#[test]
fn a_closed_queue_refuses_under_every_policy_with_the_command_back() {
    fn refuses(policy: impl Backpressure<Op>) {
        let queue = SingularQueue::builder(Probe::default())
            .backpressure(policy)
            .spawn()
            .unwrap();
        let handle = queue.handle();
        queue.shutdown().unwrap();
        for error in [
            handle.tell(Op::Add(1)).unwrap_err(),
            handle.try_tell(Op::Add(1)).unwrap_err(),
            handle.tell_timeout(Op::Add(1), Duration::ZERO).unwrap_err(),
        ] {
            assert!(error.is_closed());
            assert_eq!(refused_number(error), Some(1));
        }
        assert!(handle.try_submit(Op::Add(1)).unwrap_err().is_closed());
        assert!(handle.try_call(Op::Add(1)).unwrap_err().is_closed());
        assert_eq!(handle.stats().refused_closed, 5);
    }
    refuses(Block);
    refuses(BlockFor(Duration::from_millis(1)));
    refuses(Reject);
    refuses(DropOldest);
}

#[test]
fn try_calls_never_wait_and_timeouts_bound_the_wait_whatever_the_policy() {
    let (queue, release) = held_queue(1, Block);
    queue.tell(Op::Add(1)).unwrap();
    assert!(queue.try_tell(Op::Add(2)).unwrap_err().is_full());
    assert!(queue.try_submit(Op::Add(3)).unwrap_err().is_full());
    assert!(queue.try_call(Op::Add(4)).unwrap_err().is_full());
    let short = Duration::from_millis(2);
    assert!(
        queue
            .tell_timeout(Op::Add(5), short)
            .unwrap_err()
            .is_timeout()
    );
    assert!(
        queue
            .submit_timeout(Op::Add(6), short)
            .unwrap_err()
            .is_timeout()
    );
    assert!(
        queue
            .call_timeout(Op::Add(7), short)
            .unwrap_err()
            .is_timeout()
    );
    release.send(()).unwrap();
    let stats = queue.stats();
    assert_eq!((stats.rejected, stats.timed_out), (3, 3));
    assert_eq!(queue.shutdown().unwrap().applied, [1]);
}

#[test]
fn try_calls_keep_drop_oldest_evicting() {
    let (queue, release) = held_queue(1, DropOldest);
    let first = queue.submit(Op::Add(1)).unwrap();
    let second = queue.try_submit(Op::Add(2)).unwrap();
    assert!(first.wait().unwrap_err().is_dropped());
    release.send(()).unwrap();
    assert_eq!(second.wait().unwrap(), 1);
}

#[test]
fn call_timeout_after_acceptance_still_applies_the_command_exactly_once() {
    let (queue, release) = held_queue(4, Block);
    let error = queue
        .call_timeout(Op::Add(1), Duration::from_millis(2))
        .unwrap_err();
    assert!(error.is_reply_timeout());
    assert!(
        error.into_inner().is_none(),
        "the accepted command is the queue's"
    );
    release.send(()).unwrap();
    assert_eq!(queue.shutdown().unwrap().applied, [1]);
}

/// Sheds low-priority commands (odd numbers) once the queue is at least half full.
struct ShedOdd;

impl Backpressure<Op> for ShedOdd {
    fn decide(&self, op: &Op, load: &Load<'_>) -> Decision {
        let odd = op.number().is_some_and(|n| n % 2 == 1);
        if odd && load.depth() * 2 >= load.capacity() {
            Decision::Reject
        } else {
            Decision::Wait
        }
    }
}

#[test]
fn a_user_defined_policy_decides_from_the_command_and_the_load() {
    let (queue, release) = held_queue(4, ShedOdd);
    queue.tell(Op::Add(1)).unwrap(); // depth 0: accepted
    queue.tell(Op::Add(3)).unwrap(); // depth 1 of 4: accepted
    let shed = queue.tell(Op::Add(5)).unwrap_err(); // depth 2 of 4: shed
    assert!(shed.is_full());
    assert_eq!(refused_number(shed), Some(5));
    queue.tell(Op::Add(6)).unwrap(); // even: waits for room if need be
    release.send(()).unwrap();
    assert_eq!(queue.stats().rejected, 1);
    assert_eq!(queue.shutdown().unwrap().applied, [1, 3, 6]);
}
