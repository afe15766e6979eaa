//! The observer hook: every applied command and every batch reported once, with figures that
//! agree exactly with `Stats`; a panicking or re-entrant observer never stops the queue.

mod support;

use std::sync::{Arc, Mutex, OnceLock};
use std::thread;
use std::time::Duration;

use singular_queue::{
    BatchInfo, BatchTimes, CallError, CommandTimes, CommitError, Handle, Observer, OnCommitError,
    OnPanic, ReplyMode, SingularQueue, StateMachine,
};
use support::{Sum, quiet_panics, within};

/// Everything an observer was told.
#[derive(Clone, Default)]
struct Seen(Arc<Mutex<Totals>>);

#[derive(Debug, Default)]
struct Totals {
    commands: u64,
    panicked: u64,
    queue_time: Duration,
    batches: u64,
    batched: u64,
    committed: u64,
    commit_times: u64,
    max_waiting: usize,
}

impl Observer for Seen {
    fn command(&mut self, times: &CommandTimes) {
        let mut totals = self.0.lock().unwrap();
        totals.commands += 1;
        totals.panicked += u64::from(times.panicked);
        totals.queue_time += times.queue_time;
    }

    fn batch(&mut self, times: &BatchTimes) {
        let mut totals = self.0.lock().unwrap();
        totals.batches += 1;
        totals.batched += times.size as u64;
        totals.committed += u64::from(times.committed);
        totals.commit_times += u64::from(times.commit_time.is_some());
        totals.max_waiting = totals.max_waiting.max(times.waiting);
    }
}

#[test]
fn under_load_every_command_and_batch_is_reported_once_and_agrees_with_stats() {
    within(Duration::from_secs(60), || {
        let seen = Seen::default();
        let queue = SingularQueue::builder(Sum::default())
            .capacity(16)
            .observer(seen.clone())
            .spawn()
            .unwrap();
        thread::scope(|scope| {
            for _ in 0..4 {
                let handle = queue.handle();
                scope.spawn(move || (0..5000).for_each(|_| handle.tell(1).unwrap()));
            }
        });
        queue.wait_until_quiet().unwrap();
        let stats = queue.stats();
        let totals = seen.0.lock().unwrap();
        assert_eq!(totals.commands, 20_000);
        assert_eq!(stats.applied, 20_000);
        assert_eq!((totals.batches, totals.batched), (stats.batches, 20_000));
        // Every batch applied something, so each ran its commit, and each committed.
        assert_eq!(totals.commit_times, stats.batches);
        assert_eq!(totals.committed, stats.batches);
        assert!(totals.max_waiting <= 16);
        // The observer's queue times are the very samples behind the stats' mean.
        let mean = totals.queue_time.as_nanos() / u128::from(totals.commands);
        assert_eq!(Some(mean), stats.mean_queue_time().map(|m| m.as_nanos()));
    });
}

/// Commits fail on odd batches.
#[derive(Default)]
struct Flaky {
    batches: u64,
}

impl StateMachine for Flaky {
    type Command = u64;
    type Output = u64;

    fn apply(&mut self, n: u64) -> u64 {
        assert!(n != 0, "zero panics");
        n
    }

    fn try_on_batch_end(&mut self, _: BatchInfo) -> Result<(), CommitError> {
        self.batches += 1;
        match self.batches % 2 {
            0 => Ok(()),
            _ => Err("disk full".into()),
        }
    }
}

#[test]
fn batches_report_failed_commits_and_panicked_commands_as_stats_count_them() {
    quiet_panics();
    let seen = Seen::default();
    let mut queue = SingularQueue::builder(Flaky::default())
        .reply_mode(ReplyMode::AfterBatch)
        .on_commit_error(OnCommitError::Continue)
        .on_panic(OnPanic::Continue)
        .observer(seen.clone())
        .manual();
    for round in 0..10 {
        queue.tell(round % 3).unwrap(); // every third panics
        queue.tell(7).unwrap();
        queue.step();
    }
    let stats = queue.stats();
    let totals = seen.0.lock().unwrap();
    assert_eq!((totals.commands, totals.panicked), (20, stats.panicked));
    assert_eq!(stats.panicked, 4);
    assert_eq!(totals.batches, 10);
    assert_eq!(totals.commit_times, 10);
    assert_eq!(totals.committed, 10 - stats.failed_commits);
    assert_eq!(stats.failed_commits, 5);
}

/// Panics on every report.
struct Grumpy;

impl Observer for Grumpy {
    fn command(&mut self, _: &CommandTimes) {
        panic!("observer says no");
    }

    fn batch(&mut self, _: &BatchTimes) {
        panic!("observer says no");
    }
}

#[test]
fn a_panicking_observer_loses_its_samples_and_nothing_else() {
    quiet_panics();
    let queue = SingularQueue::builder(Sum::default())
        .observer(Grumpy)
        .spawn()
        .unwrap();
    for n in 1..=100 {
        assert_eq!(queue.call(1).unwrap(), n);
    }
    let stats = queue.stats();
    assert_eq!((stats.applied, stats.panicked), (100, 0));
    assert_eq!(queue.shutdown().unwrap().count, 100);
}

/// Calls its own queue from the worker: refused, as from `apply`, never a hang.
struct Meddler(Arc<OnceLock<Handle<Sum>>>, Arc<Mutex<Vec<String>>>);

impl Observer for Meddler {
    fn batch(&mut self, _: &BatchTimes) {
        if let Some(handle) = self.0.get() {
            let answer = match handle.call(1) {
                Err(CallError::Reentrant(1)) => "reentrant".to_owned(),
                other => format!("{:?}", other.map_err(|e| e.to_string())),
            };
            self.1.lock().unwrap().push(answer);
        }
    }
}

#[test]
fn an_observer_calling_its_own_queue_is_refused_not_deadlocked() {
    within(Duration::from_secs(30), || {
        let (slot, answers) = (Arc::new(OnceLock::new()), Arc::default());
        let queue = SingularQueue::builder(Sum::default())
            .observer(Meddler(Arc::clone(&slot), Arc::clone(&answers)))
            .spawn()
            .unwrap();
        slot.set(queue.handle()).unwrap();
        queue.call(5).unwrap();
        queue.wait_until_quiet().unwrap();
        assert_eq!(*answers.lock().unwrap(), ["reentrant"]);
        slot.get().unwrap().close(); // the handle in the slot would keep the queue alive
        assert_eq!(queue.shutdown().unwrap().total, 5);
    });
}

#[test]
fn a_queue_is_named_for_its_metrics_and_its_thread() {
    struct Named(Option<String>);
    impl StateMachine for Named {
        type Command = ();
        type Output = ();
        fn apply(&mut self, (): ()) {
            self.0 = thread::current().name().map(str::to_owned);
        }
    }
    let queue = SingularQueue::builder(Named(None))
        .name("orders")
        .spawn()
        .unwrap();
    assert_eq!(queue.handle().name(), "orders");
    queue.call(()).unwrap();
    assert_eq!(queue.shutdown().unwrap().0.as_deref(), Some("orders"));
    assert_eq!(SingularQueue::new(Sum::default()).name(), "singular-queue");
}

#[test]
fn stats_debug_shows_public_figures_and_means_and_nothing_private() {
    let queue = SingularQueue::builder(Sum::default())
        .track_queue_time(true)
        .spawn()
        .unwrap();
    let before = format!("{:?}", queue.stats());
    assert!(before.contains("max_queue_time: None"), "{before}");
    queue.call(1).unwrap();
    // Under `AfterApply` the reply goes out before the batch's figures are counted.
    queue.wait_until_quiet().unwrap();
    let after = format!("{:?}", queue.stats());
    for public in [
        "submitted: 1",
        "mean_batch_size: 1.0",
        "mean_queue_time: Some(",
    ] {
        assert!(after.contains(public), "{public} missing: {after}");
    }
    for private in ["batched", "queue_time_total_ns", "queue_time_count"] {
        assert!(!after.contains(private), "{private} shown: {after}");
    }
}
