//! Soak: a mixed workload across every policy, phase after phase, checking the books after
//! each phase and that memory stays flat. One second by default; `SQ_SOAK_SECS=600` for ten
//! minutes.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use singular_queue::{
    Backpressure, Block, BlockFor, DropOldest, Reject, SingularQueue, StateMachine,
};

const THREADS: u64 = 8;
const PHASE: Duration = Duration::from_millis(250);
/// How far the resident set may grow from the end of the first phase to the end of the run.
const RSS_GROWTH_LIMIT: u64 = 32 << 20;

#[derive(Default)]
struct Sum {
    total: u64,
    count: u64,
}

impl StateMachine for Sum {
    type Command = u64;
    type Output = u64;
    fn apply(&mut self, value: u64) -> u64 {
        self.total += value;
        self.count += 1;
        self.total
    }
}

/// The resident set size of this process, from `/proc/self/statm`.
fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("read /proc/self/statm");
    let pages: u64 = statm
        .split(' ')
        .nth(1)
        .expect("resident pages")
        .parse()
        .expect("a number");
    pages * 4096
}

/// One phase: eight threads submit in a mix of ways for a while; every accepted command must be
/// applied or evicted exactly once, every refused one handed back. Returns commands accepted.
fn phase(n: u64, policy: impl Backpressure<u64>) -> u64 {
    let evicted = Arc::new(AtomicU64::new(0));
    let sink = Arc::clone(&evicted);
    let queue = SingularQueue::builder(Sum::default())
        .capacity(1 + (n % 16) as usize)
        .backpressure(policy)
        .on_evict(move |value| {
            sink.fetch_add(value, Ordering::Relaxed);
        })
        .spawn()
        .unwrap();
    let deadline = Instant::now() + PHASE;
    let accepted: Vec<(u64, u64)> = thread::scope(|scope| {
        let threads: Vec<_> = (0..THREADS)
            .map(|t| {
                let handle = queue.handle();
                scope.spawn(move || {
                    let (mut count, mut sum) = (0, 0);
                    let mut i = 0;
                    while Instant::now() < deadline {
                        i += 1;
                        let value = t << 40 | i;
                        let result = match i % 4 {
                            // A call error without the command is an accepted command
                            // that was then evicted: counted with the evictions.
                            0 => match handle.call(value) {
                                Err(error) => error.into_inner().map_or(Ok(()), |c| Err(Some(c))),
                                Ok(_) => Ok(()),
                            },
                            1 => handle
                                .submit(value)
                                .map(drop)
                                .map_err(|e| Some(e.into_inner())),
                            _ => handle.tell(value).map_err(|e| Some(e.into_inner())),
                        };
                        match result {
                            Ok(()) => (count, sum) = (count + 1, sum + value),
                            Err(back) => assert_eq!(back, Some(value)),
                        }
                    }
                    (count, sum)
                })
            })
            .collect();
        threads.into_iter().map(|t| t.join().unwrap()).collect()
    });
    let stats = queue.stats();
    let state = queue.shutdown().unwrap();
    let count: u64 = accepted.iter().map(|a| a.0).sum();
    let sum: u64 = accepted.iter().map(|a| a.1).sum();
    assert_eq!(state.count + stats.dropped, count);
    assert_eq!(state.total + evicted.load(Ordering::Relaxed), sum);
    count
}

#[test]
fn a_mixed_workload_across_policies_loses_nothing_and_keeps_memory_flat() {
    let seconds: f64 = std::env::var("SQ_SOAK_SECS")
        .ok()
        .map_or(1.0, |s| s.parse().unwrap());
    let end = Instant::now() + Duration::from_secs_f64(seconds);
    let mut baseline = None;
    let (mut phases, mut commands, mut peak) = (0u64, 0u64, 0u64);
    while phases < 4 || Instant::now() < end {
        commands += match phases % 4 {
            0 => phase(phases, Block),
            1 => phase(phases, BlockFor(Duration::from_micros(100))),
            2 => phase(phases, Reject),
            _ => phase(phases, DropOldest),
        };
        phases += 1;
        let rss = rss_bytes();
        peak = peak.max(rss);
        let baseline = *baseline.get_or_insert(rss);
        assert!(
            rss <= baseline + RSS_GROWTH_LIMIT,
            "resident set grew from {baseline} to {rss} bytes after {phases} phases"
        );
    }
    println!(
        "soak: {seconds} s, {phases} phases, {commands} commands accepted and accounted for, \
         resident set {} MiB at first, {} MiB at the end, {} MiB at most",
        baseline.unwrap() >> 20,
        rss_bytes() >> 20,
        peak >> 20
    );
}
