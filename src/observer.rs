//! A hook that hands the worker's measurements to your metrics system, as it makes them.

use std::time::Duration;

/// One command the worker applied, as it measured it: handed to [`Observer::command`].
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CommandTimes {
    /// How long the command waited: from its submit (including any wait for room) until the
    /// worker took it.
    pub queue_time: Duration,
    /// How long its `apply` ran.
    pub apply_time: Duration,
    /// Whether its `apply` panicked.
    pub panicked: bool,
}

/// One batch the worker finished, as it measured it: handed to [`Observer::batch`].
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchTimes {
    /// Commands the worker took in the batch (applied, panicked or set aside).
    pub size: usize,
    /// How long the commit ([`StateMachine::try_on_batch_end`](crate::StateMachine::try_on_batch_end))
    /// ran, or `None` if the batch had none (nothing applied, or the state is poisoned).
    pub commit_time: Option<Duration>,
    /// Whether a commit ran and succeeded: `false` if it failed or panicked, or none ran.
    pub committed: bool,
    /// Commands waiting in the queue as the batch ended: a depth gauge, sampled by the worker.
    pub waiting: usize,
}

/// Receives the worker's measurements, to export to a metrics system (`metrics`, Prometheus,
/// OpenTelemetry) without the crate depending on one: set it with
/// [`Builder::observer`](crate::Builder::observer).
///
/// Both methods run on the worker thread, between commands, so an observer needs no lock of
/// its own: record into a histogram handle, or keep local sums and publish them. Keep them
/// short: the next command waits for them. A panic in an observer is caught and ignored (the
/// queue's work matters more than one lost sample); calling the queue from inside is refused,
/// as from `apply`.
///
/// With an observer set, the queue stamps each command at submit (as
/// [`Builder::track_queue_time`](crate::Builder::track_queue_time) does) and reads the clock
/// around each `apply` and each commit: about three clock reads per command. Without one, the
/// worker pays one branch per command.
///
/// # Examples
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use std::time::Duration;
/// use singular_queue::{CommandTimes, Observer, SingularQueue, StateMachine};
/// # struct Counter(u64);
/// # impl StateMachine for Counter {
/// #     type Command = u64;
/// #     type Output = u64;
/// #     fn apply(&mut self, add: u64) -> u64 { self.0 += add; self.0 }
/// # }
///
/// /// Keeps the slowest apply, for a dashboard to read.
/// #[derive(Clone, Default)]
/// struct Slowest(Arc<Mutex<Duration>>);
///
/// impl Observer for Slowest {
///     fn command(&mut self, times: &CommandTimes) {
///         let mut slowest = self.0.lock().unwrap();
///         *slowest = (*slowest).max(times.apply_time);
///     }
/// }
///
/// let slowest = Slowest::default();
/// let queue = SingularQueue::builder(Counter(0))
///     .observer(slowest.clone())
///     .spawn()
///     .unwrap();
/// queue.call(1).unwrap();
/// drop(queue);
/// assert!(*slowest.0.lock().unwrap() > Duration::ZERO);
/// ```
pub trait Observer: Send + 'static {
    /// Called after each command the worker applied (or whose `apply` panicked). Commands set
    /// aside by a shutdown or a poisoned state are not applied, and not reported here.
    fn command(&mut self, times: &CommandTimes) {
        let _ = times;
    }

    /// Called after each batch, once its commit ran and its replies went out (before
    /// [`wait_until_quiet`](crate::Handle::wait_until_quiet) counts it as served). Strictly,
    /// once per group of commands a commit covered: under a pipelined commit
    /// ([`Commit::later`](crate::Commit::later)) a group may span several batches, and a
    /// [restart](crate::Builder::restart_on_panic) in the middle of a batch splits it, the
    /// part applied to the old state reported as not committed.
    fn batch(&mut self, times: &BatchTimes) {
        let _ = times;
    }
}
