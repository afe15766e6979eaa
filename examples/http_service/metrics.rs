//! The queue's measurements, exported through the `metrics` facade: an [`Observer`] that
//! records into histograms, a gauge and counters, labelled with the queue's name. Any recorder
//! installed before it is built receives them; the service installs a Prometheus one.

use metrics::{Counter, Gauge, Histogram, counter, gauge, histogram};
use singular_queue::{BatchTimes, CommandTimes, Observer};

pub(crate) struct QueueMetrics {
    queue_time: Histogram,
    apply_time: Histogram,
    commit_time: Histogram,
    batch_size: Histogram,
    waiting: Gauge,
    panicked: Counter,
    failed_commits: Counter,
}

impl QueueMetrics {
    /// Registers the queue's metrics, labelled `queue="<name>"`, with the installed recorder.
    pub(crate) fn new(queue: &str) -> Self {
        let queue = queue.to_owned();
        Self {
            queue_time: histogram!("singular_queue_queue_seconds", "queue" => queue.clone()),
            apply_time: histogram!("singular_queue_apply_seconds", "queue" => queue.clone()),
            commit_time: histogram!("singular_queue_commit_seconds", "queue" => queue.clone()),
            batch_size: histogram!("singular_queue_batch_size", "queue" => queue.clone()),
            waiting: gauge!("singular_queue_waiting", "queue" => queue.clone()),
            panicked: counter!("singular_queue_panicked_total", "queue" => queue.clone()),
            failed_commits: counter!("singular_queue_failed_commits_total", "queue" => queue.clone()),
        }
    }
}

// ANCHOR: observer
/// Runs on the worker thread between commands: records and returns, nothing more.
impl Observer for QueueMetrics {
    fn command(&mut self, times: &CommandTimes) {
        self.queue_time.record(times.queue_time.as_secs_f64());
        self.apply_time.record(times.apply_time.as_secs_f64());
        if times.panicked {
            self.panicked.increment(1);
        }
    }

    fn batch(&mut self, times: &BatchTimes) {
        self.batch_size.record(times.size as f64);
        self.waiting.set(times.waiting as f64);
        if let Some(commit_time) = times.commit_time {
            self.commit_time.record(commit_time.as_secs_f64());
            if !times.committed {
                self.failed_commits.increment(1);
            }
        }
    }
}
// ANCHOR_END: observer
