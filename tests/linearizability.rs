//! Linearizability: threads run random `call`s (get / set / compare-and-set / delete) against a
//! key-value state machine, recording when each operation was invoked and when it returned. A
//! Wing & Gong search (with Lowe's memoisation) must find, for every key, an order of the
//! operations that respects real time and explains every result.

use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
use std::thread;
use std::time::Instant;

use singular_queue::SingularQueue;

#[path = "support/linearizable.rs"]
mod linearizable;

use linearizable::{Event, Op, Registers, history, linearizable, random_op};

const THREADS: usize = 6;
const OPS_PER_THREAD: usize = 120;
const KEYS: u64 = 12;
const RUNS: usize = 10;

/// Runs the workload once and returns each key's history.
fn record_histories(seed: u64) -> HashMap<u64, Vec<Event>> {
    let queue = SingularQueue::builder(Registers::default())
        .capacity(4)
        .spawn()
        .unwrap();
    let events: Vec<(u64, Event)> = thread::scope(|scope| {
        let threads: Vec<_> = (0..THREADS)
            .map(|t| {
                let handle = queue.handle();
                scope.spawn(move || {
                    let random = BuildHasherDefault::<DefaultHasher>::default();
                    let mut events = Vec::with_capacity(OPS_PER_THREAD);
                    for i in 0..OPS_PER_THREAD {
                        let roll = random.hash_one((seed, t, i));
                        let key = roll % KEYS;
                        let op = random_op(roll);
                        let start = Instant::now();
                        let output = handle.call((key, op)).unwrap();
                        events.push((key, Event::ended(op, output, start)));
                    }
                    events
                })
            })
            .collect();
        threads
            .into_iter()
            .flat_map(|t| t.join().unwrap())
            .collect()
    });
    queue.shutdown().unwrap();
    let mut histories: HashMap<u64, Vec<Event>> = HashMap::new();
    for (key, event) in events {
        histories.entry(key).or_default().push(event);
    }
    histories
}

#[test]
fn every_run_of_concurrent_calls_is_linearizable() {
    let mut checked = 0;
    for run in 0..RUNS {
        for (key, history) in record_histories(run as u64) {
            assert!(
                linearizable(&history, None),
                "run {run}, key {key}: {history:#?}"
            );
            checked += history.len();
        }
    }
    println!("{RUNS} runs, {checked} operations, every key's history linearizable");
    assert_eq!(checked, RUNS * THREADS * OPS_PER_THREAD);
}

#[test]
fn the_checker_rejects_a_history_that_is_not_linearizable() {
    // A set of 1 returns; a get that starts afterwards still sees nothing.
    let stale_read = history(&[
        (Op::Set(1), (None, true), 0, 1),
        (Op::Get, (None, false), 2, 3),
    ]);
    assert!(!linearizable(&stale_read, None));
    // Two compare-and-sets from empty cannot both succeed.
    let cas = Op::Cas {
        expected: None,
        new: 5,
    };
    let double_cas = history(&[(cas, (None, true), 0, 10), (cas, (None, true), 1, 11)]);
    assert!(!linearizable(&double_cas, None));
}

#[test]
fn the_checker_accepts_overlapping_operations_in_either_order() {
    // The get overlaps the set, so it may see the value before or after it.
    for seen in [None, Some(1)] {
        let overlap = history(&[
            (Op::Set(1), (None, true), 0, 10),
            (Op::Get, (seen, false), 5, 6),
        ]);
        assert!(linearizable(&overlap, None), "get saw {seen:?}");
    }
}
