//! A user-defined backpressure policy: when the queue is more than 80% full, low-priority
//! jobs are refused at once, while high-priority jobs wait for room.
//!
//! Run it with `cargo run --example load_shedding`.

use std::hint::black_box;
use std::thread;

use singular_queue::{Backpressure, Decision, Load, SingularQueue, StateMachine};

enum Job {
    /// Nice to have: fine to shed under load.
    Low(u64),
    /// Must be done: wait for room rather than fail.
    High(u64),
}

/// The policy: a few lines of plain Rust over the command and the queue's load.
struct ShedLowPriority;

impl Backpressure<Job> for ShedLowPriority {
    fn decide(&self, job: &Job, load: &Load<'_>) -> Decision {
        match job {
            Job::Low(_) if load.depth() * 5 > load.capacity() * 4 => Decision::Reject,
            Job::Low(_) | Job::High(_) => Decision::Wait,
        }
    }
}

/// Sums the jobs it has done, by priority. Each job takes a little work.
#[derive(Default)]
struct Ledger {
    low: u64,
    high: u64,
}

impl StateMachine for Ledger {
    type Command = Job;
    type Output = ();

    fn apply(&mut self, job: Job) {
        let mut spin = 0u64;
        for i in 0..2_000 {
            spin = black_box(spin.wrapping_add(i));
        }
        match job {
            Job::Low(n) => self.low += n,
            Job::High(n) => self.high += n,
        }
    }
}

const LOW_SENDERS: u64 = 4;
const HIGH_SENDERS: u64 = 2;
const JOBS_EACH: u64 = 5_000;

fn main() {
    let queue = SingularQueue::builder(Ledger::default())
        .capacity(100)
        .backpressure(ShedLowPriority)
        .spawn()
        .expect("spawn the worker");

    let (low_accepted, low_shed) = thread::scope(|scope| {
        let low: Vec<_> = (0..LOW_SENDERS)
            .map(|_| {
                let handle = queue.handle();
                scope.spawn(move || {
                    let (mut accepted, mut shed) = (0, 0);
                    for _ in 0..JOBS_EACH {
                        match handle.tell(Job::Low(1)) {
                            Ok(()) => accepted += 1,
                            Err(error) if error.is_full() => shed += 1,
                            Err(error) => panic!("unexpected: {error}"),
                        }
                    }
                    (accepted, shed)
                })
            })
            .collect();
        for _ in 0..HIGH_SENDERS {
            let handle = queue.handle();
            scope.spawn(move || {
                for _ in 0..JOBS_EACH {
                    handle
                        .call(Job::High(1))
                        .expect("high-priority jobs are never shed");
                }
            });
        }
        low.into_iter()
            .map(|sender| sender.join().unwrap())
            .fold((0, 0), |(a, s), (a2, s2)| (a + a2, s + s2))
    });

    let stats = queue.stats();
    let ledger = queue.shutdown().expect("no job panicked");
    println!(
        "high priority: {} of {} done",
        ledger.high,
        HIGH_SENDERS * JOBS_EACH
    );
    println!(
        "low priority:  {low_accepted} done, {low_shed} shed while the queue was over 80% full"
    );

    assert_eq!(ledger.high, HIGH_SENDERS * JOBS_EACH);
    assert_eq!(ledger.low, low_accepted);
    assert_eq!(low_accepted + low_shed, LOW_SENDERS * JOBS_EACH);
    assert_eq!(stats.rejected, low_shed);
}
