//! The queue's places: the worker gives back exactly one per command it takes out, however
//! it groups the give-backs, so the bound never loosens and never shrinks.

mod support;

use singular_queue::{Reject, SingularQueue, SubmitError};
use support::{Sum, free_places};

const CAPACITY: usize = 40;

/// Fills `CAPACITY` places, lets one batch take `taken` of them, and checks that exactly
/// those came back: for every batch size from one command to the whole queue.
#[test]
fn a_batch_of_any_size_gives_back_exactly_its_places() {
    for taken in 1..=CAPACITY {
        let mut queue = SingularQueue::builder(Sum::default())
            .capacity(CAPACITY)
            .max_batch(taken)
            .backpressure(Reject)
            .manual();
        for n in 0..CAPACITY as u64 {
            queue.tell(n).expect("a free place");
        }
        assert!(matches!(queue.tell(99), Err(SubmitError::Full(99))));
        assert_eq!(queue.step(), taken);
        assert_eq!(
            free_places(&queue.handle()),
            taken,
            "after a batch of {taken}"
        );
        queue.run_until_idle();
        assert_eq!(
            free_places(&queue.handle()),
            CAPACITY,
            "after a batch of {taken}"
        );
        let expected: u64 = (0..CAPACITY as u64).sum();
        assert_eq!(queue.shutdown().unwrap().total, expected);
    }
}
