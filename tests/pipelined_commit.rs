//! Pipelined group commit: a commit's slow part runs on the commit thread while the worker
//! applies the next commands; outputs are released only once their commit succeeded; a
//! failed or panicking commit fails exactly its group; nothing finishes before the last
//! commit has run.

mod support;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use singular_queue::{
    BatchInfo, BatchTimes, CallError, CommandTimes, Commit, CommitError, MAX_COMMIT_THREADS,
    Observer, OnCommitError, ReplyMode, SingularQueue, StateMachine,
};
use support::{quiet_panics, within};

/// What a commit's job does, given the commit's number (from 1) and how many records it
/// covers.
type Job = Arc<dyn Fn(u64, u64) -> Result<(), CommitError> + Send + Sync>;

/// A log whose records become durable only when a commit's job runs.
struct Log {
    written: u64,
    commits: u64,
    /// How many records the jobs have made durable.
    durable: Arc<AtomicU64>,
    job: Job,
    stopped_with: Arc<Mutex<Option<u64>>>,
    /// Hears how many records are written after each `apply`, if set.
    applied: Option<mpsc::Sender<u64>>,
}

impl StateMachine for Log {
    type Command = u64;
    type Output = u64;

    fn apply(&mut self, _: u64) -> u64 {
        self.written += 1;
        if let Some(applied) = &self.applied {
            applied.send(self.written).unwrap();
        }
        self.written
    }

    fn start_commit(&mut self, _: BatchInfo) -> Commit {
        self.commits += 1;
        let (number, upto) = (self.commits, self.written);
        let (job, durable) = (Arc::clone(&self.job), Arc::clone(&self.durable));
        Commit::later(move || {
            job(number, upto)?;
            durable.fetch_max(upto, Ordering::SeqCst);
            Ok(())
        })
    }

    fn on_stop(&mut self) {
        *self.stopped_with.lock() = Some(self.durable.load(Ordering::SeqCst));
    }
}

impl std::fmt::Debug for Log {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Log")
            .field("written", &self.written)
            .finish_non_exhaustive()
    }
}

struct Fixture {
    durable: Arc<AtomicU64>,
    stopped_with: Arc<Mutex<Option<u64>>>,
}

fn log(
    job: impl Fn(u64, u64) -> Result<(), CommitError> + Send + Sync + 'static,
) -> (Log, Fixture) {
    let durable = Arc::new(AtomicU64::new(0));
    let stopped_with = Arc::new(Mutex::new(None));
    let log = Log {
        written: 0,
        commits: 0,
        durable: Arc::clone(&durable),
        job: Arc::new(job),
        stopped_with: Arc::clone(&stopped_with),
        applied: None,
    };
    (
        log,
        Fixture {
            durable,
            stopped_with,
        },
    )
}

fn after_batch(log: Log) -> SingularQueue<Log> {
    SingularQueue::builder(log)
        .reply_mode(ReplyMode::AfterBatch)
        .spawn()
        .unwrap()
}

/// A job that fails the second commit with `message`, and lets every other one succeed.
fn second_fails(message: &'static str) -> impl Fn(u64, u64) -> Result<(), CommitError> {
    move |number, _| {
        if number == 2 {
            Err(message.into())
        } else {
            Ok(())
        }
    }
}

const CLIENTS: usize = 8;
const CALLS: u64 = 500;

#[test]
fn every_output_comes_back_only_once_its_record_is_durable() {
    within(Duration::from_secs(60), || {
        let (log, fixture) = log(|_, _| Ok(()));
        let queue = after_batch(log);
        let durable = Arc::clone(&fixture.durable);
        thread::scope(|scope| {
            for _ in 0..CLIENTS {
                let (handle, durable) = (queue.handle(), &durable);
                scope.spawn(move || {
                    for n in 0..CALLS {
                        let written = handle.call(n).unwrap();
                        assert!(durable.load(Ordering::SeqCst) >= written);
                    }
                });
            }
        });
        let stats = queue.stats();
        let state = queue.shutdown().unwrap();
        let total = CLIENTS as u64 * CALLS;
        assert_eq!(state.written, total);
        assert_eq!(stats.applied, total);
        assert_eq!(fixture.durable.load(Ordering::SeqCst), total);
        assert!(
            state.commits <= stats.batches,
            "one commit per group, at most one per batch"
        );
    });
}

#[test]
fn the_worker_applies_the_next_commands_while_a_commit_runs() {
    within(Duration::from_secs(10), || {
        // The first commit's job waits until the worker has applied the command behind it:
        // a worker that waited for the job would never get there.
        let (release, job_waits) = mpsc::channel::<()>();
        let job_waits = Mutex::new(job_waits);
        let (mut log, fixture) = log(move |number, _| {
            if number == 1 {
                job_waits.lock().recv().unwrap();
            }
            Ok(())
        });
        let (applied, written) = mpsc::channel();
        log.applied = Some(applied);
        let queue = after_batch(log);
        let first = queue.submit(1).unwrap();
        assert_eq!(written.recv(), Ok(1)); // its commit starts now, and waits
        let mut second = queue.submit(2).unwrap();
        assert_eq!(written.recv(), Ok(2)); // applied while the first commit runs
        assert_eq!(second.try_wait(), None, "held for the second commit");
        release.send(()).unwrap();
        assert_eq!(first.wait(), Ok(1));
        assert_eq!(second.wait(), Ok(2));
        assert_eq!(queue.shutdown().unwrap().written, 2);
        assert_eq!(fixture.durable.load(Ordering::SeqCst), 2);
    });
}

#[test]
fn a_failed_commit_fails_exactly_its_group_and_the_queue_goes_on_under_continue() {
    within(Duration::from_secs(10), || {
        let (log, fixture) = log(second_fails("disk full"));
        let queue = SingularQueue::builder(log)
            .reply_mode(ReplyMode::AfterBatch)
            .on_commit_error(OnCommitError::Continue)
            .spawn()
            .unwrap();
        // One command per group: each call waits for its own commit.
        assert_eq!(queue.call(0), Ok(1));
        match queue.call(0) {
            Err(CallError::NotCommitted(message)) => assert!(message.contains("disk full")),
            other => panic!("{other:?}"),
        }
        assert_eq!(queue.call(0), Ok(3));
        let stats = queue.stats();
        assert_eq!(stats.failed_commits, 1);
        assert_eq!(queue.shutdown().unwrap().written, 3);
        assert_eq!(fixture.durable.load(Ordering::SeqCst), 3);
    });
}

#[test]
fn a_failed_commit_poisons_the_queue_under_stop() {
    within(Duration::from_secs(10), || {
        let (log, _) = log(second_fails("disk gone"));
        let queue = after_batch(log);
        assert_eq!(queue.call(0), Ok(1));
        assert!(matches!(queue.call(0), Err(CallError::NotCommitted(_))));
        assert!(matches!(queue.call(0), Err(CallError::Closed(0))));
        let poisoned = queue.shutdown().unwrap_err();
        assert!(poisoned.message().contains("disk gone"), "{poisoned}");
    });
}

#[test]
fn a_panicking_commit_poisons_the_queue_and_fails_its_group() {
    quiet_panics();
    within(Duration::from_secs(10), || {
        let (log, _) = log(|number, _| {
            assert!(number != 1, "the disk caught fire");
            Ok(())
        });
        let queue = after_batch(log);
        match queue.call(0) {
            Err(CallError::NotCommitted(message)) => assert!(message.contains("caught fire")),
            other => panic!("{other:?}"),
        }
        let poisoned = queue.shutdown().unwrap_err();
        assert!(poisoned.message().contains("caught fire"), "{poisoned}");
    });
}

#[test]
fn shutdown_waits_for_the_running_commit_and_commits_what_is_left() {
    within(Duration::from_secs(10), || {
        let (release, job_waits) = mpsc::channel::<()>();
        let job_waits = Mutex::new(job_waits);
        let (log, fixture) = log(move |number, _| {
            if number == 1 {
                job_waits.lock().recv().unwrap();
            }
            Ok(())
        });
        let queue = SingularQueue::builder(log).spawn().unwrap(); // `AfterApply`
        assert_eq!(queue.call(0), Ok(1)); // its commit now waits
        queue.tell_many(vec![0; 9]).unwrap();
        let stopper = thread::spawn(move || queue.shutdown().map(|log| log.written));
        release.send(()).unwrap();
        assert_eq!(stopper.join().unwrap().ok(), Some(10));
        assert_eq!(fixture.durable.load(Ordering::SeqCst), 10);
        assert_eq!(
            *fixture.stopped_with.lock(),
            Some(10),
            "on_stop after the last commit"
        );
    });
}

#[test]
fn quiet_means_committed_even_when_replies_went_out_at_once() {
    within(Duration::from_secs(30), || {
        let (log, fixture) = log(|_, _| Ok(()));
        let queue = SingularQueue::builder(log).spawn().unwrap(); // `AfterApply`
        let handle = queue.handle();
        for round in 1..=200u64 {
            handle.tell_many(vec![0; 5]).unwrap();
            handle.wait_until_quiet().unwrap();
            assert_eq!(fixture.durable.load(Ordering::SeqCst), round * 5);
        }
        queue.shutdown().unwrap();
    });
}

#[test]
fn a_commit_job_that_calls_its_queue_is_refused_not_hung() {
    within(Duration::from_secs(10), || {
        let handle = Arc::new(Mutex::new(None::<singular_queue::Handle<Log>>));
        let seen = Arc::new(Mutex::new(None));
        let (from_job, into_seen) = (Arc::clone(&handle), Arc::clone(&seen));
        let (log, _) = log(move |number, _| {
            if number == 1 {
                let handle = from_job.lock().clone().expect("set before the first call");
                *into_seen.lock() = Some(format!("{:?}", handle.call(0)));
            }
            Ok(())
        });
        let queue = after_batch(log);
        *handle.lock() = Some(queue.handle());
        assert_eq!(queue.call(0), Ok(1));
        let seen = seen.lock().clone().unwrap();
        assert!(
            seen.contains("Reentrant") || seen.contains("Deadlock"),
            "{seen}"
        );
        drop(handle.lock().take());
        queue.shutdown().unwrap();
    });
}

#[test]
fn a_hand_stepped_queue_runs_the_job_within_the_step() {
    let (log, fixture) = log(|_, _| Ok(()));
    let mut queue = SingularQueue::builder(log)
        .reply_mode(ReplyMode::AfterBatch)
        .manual();
    let mut ticket = queue.submit(0).unwrap();
    assert_eq!(fixture.durable.load(Ordering::SeqCst), 0);
    assert_eq!(queue.step(), 1);
    assert_eq!(fixture.durable.load(Ordering::SeqCst), 1);
    assert_eq!(ticket.try_wait(), Some(Ok(1)));
    queue.shutdown().unwrap();
}

/// Sums what the observer sees of each group.
#[derive(Clone, Default)]
struct Groups(Arc<Mutex<(usize, usize, bool)>>);

impl Observer for Groups {
    fn command(&mut self, _: &CommandTimes) {}
    fn batch(&mut self, batch: &BatchTimes) {
        let mut seen = self.0.lock();
        seen.0 += 1;
        seen.1 += batch.size;
        seen.2 |= !batch.committed || batch.commit_time.is_none();
    }
}

#[test]
fn the_observer_sees_each_group_once_committed() {
    within(Duration::from_secs(30), || {
        let (log, _) = log(|_, _| Ok(()));
        let groups = Groups::default();
        let queue = SingularQueue::builder(log)
            .reply_mode(ReplyMode::AfterBatch)
            .observer(groups.clone())
            .spawn()
            .unwrap();
        thread::scope(|scope| {
            for _ in 0..4 {
                let handle = queue.handle();
                scope.spawn(move || (0..200).for_each(|n| assert!(handle.call(n).is_ok())));
            }
        });
        let commits = queue.shutdown().unwrap().commits;
        let (reports, commands, any_uncommitted) = *groups.0.lock();
        assert_eq!(reports as u64, commits);
        assert_eq!(commands, 800);
        assert!(!any_uncommitted);
    });
}

#[test]
fn a_queue_closed_from_a_handle_finishes_after_its_last_commit() {
    within(Duration::from_secs(10), || {
        let (log, fixture) = log(|_, _| Ok(()));
        let queue = SingularQueue::builder(log).spawn().unwrap();
        let handle = queue.handle();
        handle.tell_many(vec![0; 20]).unwrap();
        handle.close();
        singular_queue::model::block_on(handle.closed());
        assert_eq!(fixture.durable.load(Ordering::SeqCst), 20);
        assert_eq!(queue.shutdown().unwrap().written, 20);
    });
}

#[test]
fn with_several_commit_threads_every_output_still_waits_for_its_record() {
    within(Duration::from_secs(60), || {
        let (log, fixture) = log(|_, _| Ok(()));
        let queue = SingularQueue::builder(log)
            .reply_mode(ReplyMode::AfterBatch)
            .commit_threads(3)
            .spawn()
            .unwrap();
        let durable = Arc::clone(&fixture.durable);
        thread::scope(|scope| {
            for _ in 0..CLIENTS {
                let (handle, durable) = (queue.handle(), &durable);
                scope.spawn(move || {
                    let mut last = 0;
                    for n in 0..CALLS {
                        let written = handle.call(n).unwrap();
                        assert!(durable.load(Ordering::SeqCst) >= written);
                        assert!(written > last, "a thread's writes in order");
                        last = written;
                    }
                });
            }
        });
        let total = CLIENTS as u64 * CALLS;
        assert_eq!(queue.shutdown().unwrap().written, total);
        assert_eq!(fixture.durable.load(Ordering::SeqCst), total);
    });
}

#[test]
#[should_panic(expected = "at least one thread")]
fn no_commit_threads_is_refused_at_build_time() {
    let (log, _) = log(|_, _| Ok(()));
    let _ = SingularQueue::builder(log).commit_threads(0);
}

#[test]
#[cfg(target_os = "linux")]
fn commit_threads_are_clamped_to_the_maximum() {
    // In a process of its own: other tests' threads coming and going make a listing of
    // /proc/self/task skip entries.
    let name = "commit_threads_are_clamped_to_the_maximum";
    support::survives_in_a_child(name, || {
        within(Duration::from_secs(60), counts_the_commit_threads);
    });
}

/// Counts the commit threads a queue asking for `usize::MAX` of them gets.
#[cfg(target_os = "linux")]
fn counts_the_commit_threads() {
    let seen = Arc::new(AtomicU64::new(0));
    let (log, _) = log({
        let seen = Arc::clone(&seen);
        move |_, _| {
            seen.fetch_max(most_commit_threads(), Ordering::SeqCst);
            Ok(())
        }
    });
    let queue = SingularQueue::builder(log)
        .name("clamped")
        .commit_threads(usize::MAX)
        .spawn()
        .unwrap();
    assert_eq!(queue.call(7).unwrap(), 1);
    assert_eq!(queue.shutdown().unwrap().written, 1);
    assert_eq!(seen.load(Ordering::SeqCst), MAX_COMMIT_THREADS as u64);
}

/// The most commit threads seen in listings of the process's threads: a listing can miss
/// threads that are being created, so it reads until it has seen `MAX_COMMIT_THREADS` and
/// then a hundred times more (one more thread would show in those), for at most 10 s.
#[cfg(target_os = "linux")]
fn most_commit_threads() -> u64 {
    let deadline = Instant::now() + Duration::from_secs(10);
    let (mut most, mut after) = (0, 0);
    while after < 100 && Instant::now() < deadline {
        // A thread names itself once it runs; until then it bears the name of the thread
        // that made it: the worker ("clamped", counted once for itself).
        most = most.max(threads_named("clamped-commit") + threads_named("clamped") - 1);
        if most >= MAX_COMMIT_THREADS as u64 {
            after += 1;
        }
        std::thread::yield_now();
    }
    most
}

/// How many of this process's threads are named `name`.
#[cfg(target_os = "linux")]
fn threads_named(name: &str) -> u64 {
    let tasks = std::fs::read_dir("/proc/self/task").unwrap();
    let names =
        tasks.filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok());
    names.filter(|comm| comm.trim_end() == name).count() as u64
}
