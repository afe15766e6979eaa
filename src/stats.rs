//! Counters kept without locks, and the snapshot users read.

use std::fmt;
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
/// an atomic cut: it is exact only once submitters and the worker are quiet. Even under load,
/// a snapshot never counts more outcomes than submits (`applied + panicked + dropped +
/// not_applied <= submitted`): a submit is counted before its command is sent, and outcomes
/// are read before `submitted`.
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
#[derive(Clone, Copy, Default, PartialEq)]
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
    /// Commands refused because the queue was full, shed by its policy, or because the
    /// submitter is a worker that would wait for itself (`Reentrant`, `Deadlock`; handed
    /// back).
    pub rejected: u64,
    /// Commands refused after waiting for room in vain (handed back).
    pub timed_out: u64,
    /// Accepted commands evicted by newer ones under [`DropOldest`](crate::DropOldest).
    pub dropped: u64,
    /// Batches the worker has taken (see [`BatchInfo`](crate::BatchInfo)).
    pub batches: u64,
    /// The most commands the worker has taken in one batch.
    pub max_batch_size: u64,
    /// Batches whose commit ([`StateMachine::try_on_batch_end`](crate::StateMachine::try_on_batch_end))
    /// returned an error.
    pub failed_commits: u64,
    /// States replaced by a fresh one after a panic in `apply`
    /// ([`Builder::restart_on_panic`](crate::Builder::restart_on_panic)).
    pub restarts: u64,
    /// The longest a command waited, from its submit (including any wait for room) until the
    /// worker took it; `None` if none was measured: unless
    /// [`Builder::track_queue_time`](crate::Builder::track_queue_time) (or an
    /// [`observer`](crate::Builder::observer)) is on, or before the first command.
    pub max_queue_time: Option<Duration>,
    /// Commands waiting in the queue now, in every lane; [`Handle::len`](crate::Handle::len)
    /// counts one lane's.
    pub depth: usize,
    /// How many commands the queue holds at most, in every lane.
    pub capacity: usize,
    /// The priority lane's own figures, if the queue has one
    /// ([`Builder::priority_lane`](crate::Builder::priority_lane)). The figures above are the
    /// whole queue's: both lanes.
    pub priority_lane: Option<LaneStats>,
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

    /// The mean time a command waited in the queue, or `None` if none was measured (as for
    /// [`max_queue_time`](Stats::max_queue_time)).
    pub fn mean_queue_time(&self) -> Option<Duration> {
        let mean = self
            .queue_time_total_ns
            .checked_div(self.queue_time_count)?;
        Some(Duration::from_nanos(mean))
    }
}

impl Stats {
    /// The figures of several queues as one: counts, depths and capacities added, maxima
    /// taken, means weighted by what they average.
    pub(crate) fn total<'a>(all: impl IntoIterator<Item = &'a Stats>) -> Stats {
        all.into_iter().fold(Stats::default(), |sum, one| Stats {
            submitted: sum.submitted + one.submitted,
            applied: sum.applied + one.applied,
            panicked: sum.panicked + one.panicked,
            not_applied: sum.not_applied + one.not_applied,
            refused_closed: sum.refused_closed + one.refused_closed,
            rejected: sum.rejected + one.rejected,
            timed_out: sum.timed_out + one.timed_out,
            dropped: sum.dropped + one.dropped,
            batches: sum.batches + one.batches,
            max_batch_size: sum.max_batch_size.max(one.max_batch_size),
            failed_commits: sum.failed_commits + one.failed_commits,
            restarts: sum.restarts + one.restarts,
            max_queue_time: sum.max_queue_time.max(one.max_queue_time),
            depth: sum.depth.saturating_add(one.depth),
            capacity: sum.capacity.saturating_add(one.capacity),
            batched: sum.batched + one.batched,
            queue_time_total_ns: sum
                .queue_time_total_ns
                .saturating_add(one.queue_time_total_ns),
            queue_time_count: sum.queue_time_count + one.queue_time_count,
            priority_lane: match (sum.priority_lane, one.priority_lane) {
                (Some(sum), Some(one)) => Some(sum.plus(&one)),
                (sum, one) => sum.or(one),
            },
        })
    }
}

/// The public figures and the two means; nothing private.
impl fmt::Debug for Stats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Stats")
            .field("submitted", &self.submitted)
            .field("applied", &self.applied)
            .field("panicked", &self.panicked)
            .field("not_applied", &self.not_applied)
            .field("refused_closed", &self.refused_closed)
            .field("rejected", &self.rejected)
            .field("timed_out", &self.timed_out)
            .field("dropped", &self.dropped)
            .field("batches", &self.batches)
            .field("max_batch_size", &self.max_batch_size)
            .field("mean_batch_size", &self.mean_batch_size())
            .field("failed_commits", &self.failed_commits)
            .field("restarts", &self.restarts)
            .field("max_queue_time", &self.max_queue_time)
            .field("mean_queue_time", &self.mean_queue_time())
            .field("depth", &self.depth)
            .field("capacity", &self.capacity)
            .field("priority_lane", &self.priority_lane)
            .finish()
    }
}

/// One lane's figures, in [`Stats::priority_lane`]: what its submitters did, and what waits
/// in it. Commands that reached the worker are counted in the queue's [`Stats`] alone.
///
/// Once the queue is quiet, `submitted == taken + dropped`.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LaneStats {
    /// Commands the lane accepted.
    pub submitted: u64,
    /// Commands refused because the queue was closed.
    pub refused_closed: u64,
    /// Commands refused because the lane was full, shed by its policy, or because the
    /// submitter would wait for itself.
    pub rejected: u64,
    /// Commands refused after waiting for room in vain.
    pub timed_out: u64,
    /// Accepted commands evicted by newer ones of the lane under
    /// [`DropOldest`](crate::DropOldest).
    pub dropped: u64,
    /// Commands the worker has taken out of the lane.
    pub taken: u64,
    /// Commands waiting in the lane now.
    pub depth: usize,
    /// How many commands the lane holds at most.
    pub capacity: usize,
}

impl LaneStats {
    /// Two lanes' figures added.
    fn plus(&self, other: &LaneStats) -> LaneStats {
        LaneStats {
            submitted: self.submitted + other.submitted,
            refused_closed: self.refused_closed + other.refused_closed,
            rejected: self.rejected + other.rejected,
            timed_out: self.timed_out + other.timed_out,
            dropped: self.dropped + other.dropped,
            taken: self.taken + other.taken,
            depth: self.depth.saturating_add(other.depth),
            capacity: self.capacity.saturating_add(other.capacity),
        }
    }
}

/// The worker's live counters behind [`Stats`]: no lock on the hot path. Each lane keeps its
/// submitters' counters ([`SubmitCounters`]) on cache lines of their own, so neither side's
/// writes evict the other's.
#[derive(Default)]
pub(crate) struct Counters {
    pub(crate) worker: Padded<WorkerCounters>,
}

/// Written by submitting threads (shared atomics).
#[derive(Default)]
pub(crate) struct SubmitCounters {
    pub(crate) submitted: Counter,
    pub(crate) refused_closed: Counter,
    pub(crate) rejected: Counter,
    pub(crate) timed_out: Counter,
    pub(crate) dropped: Counter,
    /// Evicted commands whose submitters were told and which `on_evict` received: done with.
    pub(crate) evictions_told: Counter,
    /// Commands the worker has taken out of the lane (its only writer).
    pub(crate) taken: Counter,
}

/// Written by the worker thread alone: see [`Counter::bump`].
#[derive(Default)]
pub(crate) struct WorkerCounters {
    pub(crate) applied: Counter,
    pub(crate) panicked: Counter,
    pub(crate) not_applied: Counter,
    pub(crate) batches: Counter,
    pub(crate) batched: Counter,
    pub(crate) max_batch: Counter,
    pub(crate) queue_time_total: Counter,
    pub(crate) queue_time_max: Counter,
    pub(crate) queue_time_count: Counter,
    /// Commands whose batch has ended, `on_batch_end` and replies included: done with.
    pub(crate) served: Counter,
    /// Batches whose commit returned an error.
    pub(crate) failed_commits: Counter,
    /// States replaced after a panic.
    pub(crate) restarts: Counter,
}

/// Aligns its content to 128 bytes: a cache line, and the one the prefetcher pairs with it.
#[derive(Default)]
#[repr(align(128))]
pub(crate) struct Padded<T>(T);

impl<T> Padded<T> {
    pub(crate) fn new(value: T) -> Self {
        Padded(value)
    }
}

impl<T> std::ops::Deref for Padded<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

#[derive(Default)]
pub(crate) struct Counter(AtomicU64);

impl Counter {
    /// Adds `n`; any thread may call it.
    pub(crate) fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Release);
    }

    /// Takes back `n` added by [`Counter::add`]; any thread may call it.
    pub(crate) fn sub(&self, n: u64) {
        self.0.fetch_sub(n, Ordering::Release);
    }

    /// Adds `n` when this thread is the counter's only writer: a plain load and store, with no
    /// locked read-modify-write on the worker's hot path.
    pub(crate) fn bump(&self, n: u64) {
        self.0.store(self.get().wrapping_add(n), Ordering::Release);
    }

    /// Raises the counter to `n` if it is lower; only writer, as for [`Counter::bump`].
    pub(crate) fn raise(&self, n: u64) {
        if n > self.get() {
            self.0.store(n, Ordering::Release);
        }
    }

    pub(crate) fn get(&self) -> u64 {
        self.0.load(Ordering::Acquire)
    }
}

impl SubmitCounters {
    /// How many accepted commands wait in the lane, from the counters alone: those counted as
    /// submitted and neither taken by the worker nor evicted. Those are read first, like
    /// [`Counters::is_quiet`]; a submit under way may count for a moment, so the caller clamps
    /// to the capacity.
    pub(crate) fn waiting(&self) -> u64 {
        let gone = self.taken.get() + self.dropped.get();
        self.submitted.get().saturating_sub(gone)
    }

    /// The lane's figures; `dropped` is read before `submitted`, as in [`Counters::snapshot`].
    pub(crate) fn snapshot(&self, depth: usize, capacity: usize) -> LaneStats {
        let (dropped, taken) = (self.dropped.get(), self.taken.get());
        LaneStats {
            submitted: self.submitted.get(),
            refused_closed: self.refused_closed.get(),
            rejected: self.rejected.get(),
            timed_out: self.timed_out.get(),
            dropped,
            taken,
            depth,
            capacity,
        }
    }
}

impl Counters {
    /// Whether every command counted as submitted in any lane is done with: served by the
    /// worker, or evicted and told. The done counts are read first: each was counted after
    /// its submit, so a command they count is in `submitted` too, and the queue is quiet if
    /// they cover it (no command is unserved, and no submit is mid-way).
    pub(crate) fn is_quiet<'a>(
        &self,
        lanes: impl Iterator<Item = &'a SubmitCounters> + Clone,
    ) -> bool {
        let told: u64 = lanes.clone().map(|lane| lane.evictions_told.get()).sum();
        let done = self.worker.served.get() + told;
        done >= lanes.map(|lane| lane.submitted.get()).sum()
    }

    /// The queue's figures: the worker's outcomes are read first, then `lanes` makes each
    /// lane's (the normal lane's, and the priority lane's if there is one), whose `submitted`
    /// comes last. A command's submit is counted before it is sent, and each outcome after it
    /// was received, so every outcome read here has its submit counted too, and no snapshot
    /// shows more outcomes than submits.
    pub(crate) fn snapshot(&self, lanes: impl FnOnce() -> (LaneStats, Option<LaneStats>)) -> Stats {
        let worker = &self.worker;
        let applied = worker.applied.get();
        let panicked = worker.panicked.get();
        let not_applied = worker.not_applied.get();
        let queue_time_count = worker.queue_time_count.get();
        let (normal, priority) = lanes();
        let all = priority.map_or(normal, |priority| normal.plus(&priority));
        Stats {
            submitted: all.submitted,
            applied,
            panicked,
            not_applied,
            refused_closed: all.refused_closed,
            rejected: all.rejected,
            timed_out: all.timed_out,
            dropped: all.dropped,
            batches: worker.batches.get(),
            max_batch_size: worker.max_batch.get(),
            failed_commits: worker.failed_commits.get(),
            restarts: worker.restarts.get(),
            max_queue_time: (queue_time_count > 0)
                .then(|| Duration::from_nanos(worker.queue_time_max.get())),
            depth: all.depth,
            capacity: all.capacity,
            priority_lane: priority,
            batched: worker.batched.get(),
            queue_time_total_ns: worker.queue_time_total.get(),
            queue_time_count,
        }
    }
}
