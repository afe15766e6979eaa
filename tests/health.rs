//! Cheap health figures on a handle (`len`, `is_empty`, `capacity`), and what bounds a batch.

mod support;

use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use singular_queue::{DropOldest, Handle, Reject, SingularQueue, StateMachine};
use support::{Sum, within};

#[test]
fn len_counts_exactly_what_waits_through_submits_evictions_refusals_and_steps() {
    let mut queue = SingularQueue::builder(Sum::default())
        .capacity(3)
        .max_batch(2)
        .backpressure(DropOldest)
        .manual();
    let handle = queue.handle();
    assert_eq!(
        (handle.len(), handle.is_empty(), handle.capacity()),
        (0, true, 3)
    );
    for n in 1..=3 {
        handle.tell(n).unwrap();
        assert_eq!(handle.len(), n as usize);
    }
    handle.tell(4).unwrap(); // evicts 1: still 3 waiting
    assert_eq!(handle.len(), 3);
    assert_eq!(queue.step(), 2);
    assert_eq!(handle.len(), 1);
    assert!(!handle.is_empty());
    queue.run_until_idle();
    assert!(handle.is_empty());

    let rejecting = SingularQueue::builder(Sum::default())
        .capacity(1)
        .backpressure(Reject)
        .manual();
    rejecting.tell(1).unwrap();
    assert!(rejecting.tell(2).is_err());
    assert_eq!(
        rejecting.handle().len(),
        1,
        "a refused command never counts"
    );
    let (_, unapplied) = rejecting.shutdown_now().unwrap();
    assert_eq!(unapplied, [1]);
}

/// Under load from many threads, every command taken or evicted leaves `len`: once quiet,
/// nothing waits.
#[test]
fn len_is_zero_once_quiet_after_load_from_many_threads() {
    within(Duration::from_secs(60), || {
        let queue = SingularQueue::builder(Sum::default())
            .capacity(4)
            .backpressure(DropOldest)
            .spawn()
            .unwrap();
        let submitters: Vec<_> = (0..4)
            .map(|_| {
                let handle = queue.handle();
                thread::spawn(move || (0..5_000).for_each(|_| handle.tell(1).unwrap()))
            })
            .collect();
        submitters.into_iter().for_each(|s| s.join().unwrap());
        queue.wait_until_quiet().unwrap();
        assert_eq!((queue.len(), queue.is_empty()), (0, true));
        let stats = queue.stats();
        assert_eq!(stats.applied + stats.dropped, 20_000);
        queue.shutdown().unwrap();
    });
}

/// Tells its own queue the next number down, so commands arrive while its batch runs.
struct Countdown(Arc<Mutex<Option<Handle<Countdown>>>>, Vec<u64>);

impl StateMachine for Countdown {
    type Command = u64;
    type Output = ();
    fn apply(&mut self, n: u64) {
        self.1.push(n);
        if n > 0 {
            let me = self.0.lock().unwrap().clone().unwrap();
            me.tell(n - 1).unwrap();
        }
    }
}

/// With a capacity of 2, a batch still takes what arrives while it runs, up to `max_batch`:
/// `max_batch`, not the capacity, bounds a batch.
#[test]
fn max_batch_not_capacity_bounds_a_batch() {
    let me = Arc::new(Mutex::new(None));
    let mut queue = SingularQueue::builder(Countdown(Arc::clone(&me), Vec::new()))
        .capacity(2)
        .max_batch(8)
        .manual();
    *me.lock().unwrap() = Some(queue.handle());
    queue.tell(20).unwrap();
    assert_eq!(
        queue.step(),
        8,
        "four times the capacity, stopped by max_batch"
    );
    assert_eq!(queue.stats().max_batch_size, 8);
    assert_eq!(queue.run_until_idle(), 13);
    me.lock().unwrap().take();
    let state = queue.shutdown().unwrap();
    assert_eq!(state.1, (0..=20).rev().collect::<Vec<_>>());
}
