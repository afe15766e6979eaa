//! Every policy under load: 8 producers, capacity 1, 2 and 4, 50k commands each. Every producer
//! tallies its own outcomes; the tallies must match the final state and the stats exactly.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::Duration;

use singular_queue::{
    Backpressure, Block, BlockFor, DropOldest, Handle, Reject, SingularQueue, SubmitError,
    WaitError,
};
use support::Sum;

const PRODUCERS: u64 = 8;
const PER_PRODUCER: u64 = 50_000;
const WINDOW: usize = 16;

/// What one producer saw, or all of them added up.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Tally {
    accepted: u64,
    accepted_sum: u64,
    /// Accepted `submit`s, each with a ticket.
    tickets: u64,
    /// Tickets that resolved with an output.
    outputs: u64,
    /// Tickets that resolved `Dropped`.
    dropped_tickets: u64,
    full: u64,
    timed_out: u64,
}

impl std::ops::AddAssign for Tally {
    fn add_assign(&mut self, other: Tally) {
        self.accepted += other.accepted;
        self.accepted_sum += other.accepted_sum;
        self.tickets += other.tickets;
        self.outputs += other.outputs;
        self.dropped_tickets += other.dropped_tickets;
        self.full += other.full;
        self.timed_out += other.timed_out;
    }
}

fn produce(handle: &Handle<Sum>, producer: u64) -> Tally {
    let mut tally = Tally::default();
    let mut tickets = Vec::with_capacity(WINDOW);
    for i in 0..PER_PRODUCER {
        let value = producer * 1_000_000_000 + i + 1;
        let result = if i % 2 == 0 {
            handle.tell(value)
        } else {
            handle.submit(value).map(|ticket| {
                tally.tickets += 1;
                tickets.push(ticket);
            })
        };
        match result {
            Ok(()) => {
                tally.accepted += 1;
                tally.accepted_sum += value;
            }
            Err(error) => {
                assert!(!error.is_closed());
                tally.full += u64::from(error.is_full());
                tally.timed_out += u64::from(error.is_timeout());
                assert_eq!(
                    SubmitError::into_inner(error),
                    value,
                    "the command comes back"
                );
            }
        }
        if tickets.len() == WINDOW {
            settle(&mut tickets, &mut tally);
        }
    }
    settle(&mut tickets, &mut tally);
    tally
}

fn settle(tickets: &mut Vec<singular_queue::Ticket<u64>>, tally: &mut Tally) {
    for ticket in tickets.drain(..) {
        match ticket.wait() {
            Ok(_) => tally.outputs += 1,
            Err(WaitError::Dropped) => tally.dropped_tickets += 1,
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
}

/// Runs the load against one policy and capacity, and checks every count.
fn stress(policy: impl Backpressure<u64> + Copy, capacity: usize) -> Tally {
    let evicted = Arc::new((AtomicU64::new(0), AtomicU64::new(0)));
    let sink = Arc::clone(&evicted);
    let queue = SingularQueue::builder(Sum::default())
        .capacity(capacity)
        .backpressure(policy)
        .on_evict(move |value| {
            sink.0.fetch_add(1, Ordering::Relaxed);
            sink.1.fetch_add(value, Ordering::Relaxed);
        })
        .spawn()
        .unwrap();
    let mut total = Tally::default();
    thread::scope(|scope| {
        let producers: Vec<_> = (0..PRODUCERS)
            .map(|p| {
                let handle = queue.handle();
                scope.spawn(move || produce(&handle, p))
            })
            .collect();
        for producer in producers {
            total += producer.join().unwrap();
        }
    });
    // Read once the worker has stopped: until then the last tells may still be queued.
    let handle = queue.handle();
    let sum = queue.shutdown().unwrap();
    let stats = handle.stats();
    let (evicted_count, evicted_sum) = (
        evicted.0.load(Ordering::Relaxed),
        evicted.1.load(Ordering::Relaxed),
    );

    // Every command offered was accepted or refused (and handed back).
    assert_eq!(
        total.accepted + total.full + total.timed_out,
        PRODUCERS * PER_PRODUCER
    );
    // Every accepted command was applied exactly once or evicted exactly once.
    assert_eq!(sum.count + evicted_count, total.accepted);
    assert_eq!(sum.total + evicted_sum, total.accepted_sum);
    // The stats agree with the producers' own tallies.
    assert_eq!(stats.submitted, total.accepted);
    assert_eq!(stats.applied, sum.count);
    assert_eq!(stats.dropped, evicted_count);
    assert_eq!(stats.rejected, total.full);
    assert_eq!(stats.timed_out, total.timed_out);
    assert_eq!(
        stats.submitted,
        stats.applied + stats.dropped + stats.panicked + stats.not_applied
    );
    // Every ticket resolved to its output or to `Dropped`; evicted tells make up the rest.
    assert_eq!(total.outputs + total.dropped_tickets, total.tickets);
    assert!(total.dropped_tickets <= evicted_count);
    total
}

fn stress_all_capacities(name: &str, policy: impl Backpressure<u64> + Copy) {
    for capacity in [1, 2, 4] {
        let tally = stress(policy, capacity);
        println!("{name} capacity {capacity}: {tally:?}");
    }
}

#[test]
fn block_loses_nothing_under_load() {
    stress_all_capacities("Block", Block);
}

#[test]
fn block_for_loses_nothing_under_load() {
    stress_all_capacities("BlockFor(20us)", BlockFor(Duration::from_micros(20)));
}

#[test]
fn reject_loses_nothing_under_load() {
    stress_all_capacities("Reject", Reject);
}

#[test]
fn drop_oldest_loses_nothing_under_load() {
    stress_all_capacities("DropOldest", DropOldest);
}
