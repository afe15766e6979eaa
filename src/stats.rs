//! Counters kept without locks, and the snapshot users read.

use std::time::Duration;

use crate::sync::atomic::{AtomicU64, Ordering};

/// A snapshot of a queue's counters, from [`Handle::stats`](crate::Handle::stats).
///
/// Every command handed to the queue ends up in exactly one of these counters. Refused ones,
/// handed back to their callers, in `refused_closed`, `rejected` or `timed_out`. Accepted ones
/// (`submitted`) in `applied`, `panicked`, `dropped` or `not_applied`, or are still waiting
/// (`depth`) or being applied. So once the queue is quiet:
///
/// ```text
/// submitted == applied + panicked + dropped + not_applied
/// ```
///
/// (One exception: a panic in your own [`Backpressure`](crate::Backpressure) policy or
/// [`on_evict`](crate::Builder::on_evict) callback unwinds into the submitting call, and that
/// call's command is dropped with it, uncounted.)
///
/// Counters are read one by one while the queue runs, so a snapshot taken under load is not
/// an atomic cut: it is exact only once submitters and the worker are quiet.
///
/// # Examples
///
/// ```
/// use singular_queue::{SingularQueue, StateMachine};
/// # struct Counter(u64);
/// # impl StateMachine for Counter {
/// #     type Command = u64;
/// #     type Output = u64;
/// #     fn apply(&mut self, add: u64) -> u64 { self.0 += add; self.0 }
/// # }
///
/// let queue = SingularQueue::builder(Counter(0)).capacity(8).spawn().unwrap();
/// queue.call(1).unwrap();
/// let stats = queue.stats();
/// assert_eq!((stats.submitted, stats.applied, stats.capacity), (1, 1, 8));
/// ```
#[non_exhaustive]
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Stats {
    /// Commands the queue accepted.
    pub submitted: u64,
    /// Commands whose `apply` returned.
    pub applied: u64,
    /// Commands whose `apply` panicked.
    pub panicked: u64,
    /// Accepted commands the queue stopped before applying.
    pub not_applied: u64,
    /// Commands refused because the queue was closed (handed back to their callers).
    pub refused_closed: u64,
    /// Commands refused because the queue was full, shed by its policy, or `call`ed from the
    /// queue's own worker (handed back).
    pub rejected: u64,
    /// Commands refused after waiting for room in vain (handed back).
    pub timed_out: u64,
    /// Accepted commands evicted by newer ones under [`DropOldest`](crate::DropOldest).
    pub dropped: u64,
    /// Batches the worker has taken (see [`BatchInfo`](crate::BatchInfo)).
    pub batches: u64,
    /// The most commands the worker has taken in one batch.
    pub max_batch_size: u64,
    /// The longest a command waited, from its submit (including any wait for room) until the
    /// worker took it. Zero unless
    /// [`Builder::track_queue_time`](crate::Builder::track_queue_time) is on.
    pub max_queue_time: Duration,
    /// Commands waiting in the queue now.
    pub depth: usize,
    /// How many commands the queue holds at most.
    pub capacity: usize,
    /// Commands taken in all batches, for the mean.
    batched: u64,
    /// Sum and count of the measured queue times, for the mean.
    queue_time_total_ns: u64,
    queue_time_count: u64,
}

impl Stats {
    /// The mean number of commands the worker took per batch (0 before the first batch).
    pub fn mean_batch_size(&self) -> f64 {
        if self.batches == 0 {
            return 0.0;
        }
        self.batched as f64 / self.batches as f64
    }

    /// The mean time a command waited in the queue, or `None` if none was measured (see
    /// [`Builder::track_queue_time`](crate::Builder::track_queue_time)).
    pub fn mean_queue_time(&self) -> Option<Duration> {
        let mean = self
            .queue_time_total_ns
            .checked_div(self.queue_time_count)?;
        Some(Duration::from_nanos(mean))
    }
}

/// The live counters behind [`Stats`]. Each is a single atomic: no lock on the hot path.
#[derive(Default)]
pub(crate) struct Counters {
    pub(crate) submitted: Counter,
    pub(crate) applied: Counter,
    pub(crate) panicked: Counter,
    pub(crate) not_applied: Counter,
    pub(crate) refused_closed: Counter,
    pub(crate) rejected: Counter,
    pub(crate) timed_out: Counter,
    pub(crate) dropped: Counter,
    pub(crate) batches: Counter,
    pub(crate) batched: Counter,
    pub(crate) max_batch: Counter,
    pub(crate) queue_time_total: Counter,
    pub(crate) queue_time_max: Counter,
    pub(crate) queue_time_count: Counter,
}

#[derive(Default)]
pub(crate) struct Counter(AtomicU64);

impl Counter {
    pub(crate) fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    /// Raises the counter to `n` if it is lower.
    pub(crate) fn max(&self, n: u64) {
        self.0.fetch_max(n, Ordering::Relaxed);
    }

    pub(crate) fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

impl Counters {
    pub(crate) fn snapshot(&self, depth: usize, capacity: usize) -> Stats {
        Stats {
            submitted: self.submitted.get(),
            applied: self.applied.get(),
            panicked: self.panicked.get(),
            not_applied: self.not_applied.get(),
            refused_closed: self.refused_closed.get(),
            rejected: self.rejected.get(),
            timed_out: self.timed_out.get(),
            dropped: self.dropped.get(),
            batches: self.batches.get(),
            max_batch_size: self.max_batch.get(),
            max_queue_time: Duration::from_nanos(self.queue_time_max.get()),
            depth,
            capacity,
            batched: self.batched.get(),
            queue_time_total_ns: self.queue_time_total.get(),
            queue_time_count: self.queue_time_count.get(),
        }
    }
}
