//! Loom models of pipelined group commit: the worker hands a commit's job to the commit thread
//! and goes on applying; outputs wait for their own group's job; a failed job fails exactly
//! its group; the worker finishes only after the last group is committed.
#![cfg(singular_queue_loom)]

use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::sync::{Arc, Condvar, Mutex};
use singular_queue::{BatchInfo, Commit, OnCommitError, ReplyMode, SingularQueue, StateMachine};
use singular_queue_loom_tests::{PREEMPTION_BOUND, check_bounded};

/// Counts records written; a commit's job makes every record written before it durable, and
/// fails if it is the commit numbered `failing`.
#[derive(Default)]
struct Log {
    written: usize,
    durable: Arc<AtomicUsize>,
    /// The size of each commit's group, in order.
    groups: Vec<usize>,
    failing: Option<usize>,
    /// How many records were durable when `on_stop` ran.
    at_stop: Option<usize>,
}

impl StateMachine for Log {
    type Command = ();
    type Output = usize;

    fn apply(&mut self, (): ()) -> usize {
        self.written += 1;
        self.written
    }

    fn start_commit(&mut self, info: BatchInfo) -> Commit {
        self.groups.push(info.size);
        let fails = self.failing == Some(self.groups.len());
        let (upto, durable) = (self.written, Arc::clone(&self.durable));
        Commit::later(move || {
            if fails {
                return Err("disk full".into());
            }
            durable.fetch_max(upto, Ordering::SeqCst);
            Ok(())
        })
    }

    fn on_stop(&mut self) {
        self.at_stop = Some(self.durable.load(Ordering::SeqCst));
    }
}

/// A command told, then one called under `AfterBatch`: in one group or two, the output
/// comes back only once the job of its own group has made its record durable.
#[test]
fn an_output_waits_for_its_own_groups_job() {
    check_bounded(
        "an_output_waits_for_its_own_groups_job",
        PREEMPTION_BOUND,
        || {
            let log = Log::default();
            let durable = Arc::clone(&log.durable);
            let queue = SingularQueue::builder(log)
                .reply_mode(ReplyMode::AfterBatch)
                .spawn()
                .unwrap();
            queue.tell(()).unwrap();
            let written = queue.call(()).unwrap();
            assert_eq!(written, 2);
            assert!(durable.load(Ordering::SeqCst) >= written);
            assert_eq!(queue.shutdown().unwrap().written, 2);
        },
    );
}

/// Commands told while a commit runs, then the owner's shutdown racing the job's report: the
/// worker waits for the running job, commits the group left, and only then runs `on_stop`.
#[test]
fn the_worker_finishes_only_after_its_last_group_is_committed() {
    check_bounded(
        "the_worker_finishes_only_after_...",
        PREEMPTION_BOUND,
        || {
            let queue = SingularQueue::builder(Log::default()).spawn().unwrap();
            queue.tell(()).unwrap();
            queue.tell(()).unwrap();
            let log = queue.shutdown().unwrap();
            assert_eq!(log.groups.iter().sum::<usize>(), 2);
            assert_eq!(log.at_stop, Some(2));
        },
    );
}

/// A command told, then one called, and the first commit fails under
/// `OnCommitError::Continue`: the call hears `NotCommitted` exactly when it was in the first
/// group, and its output otherwise.
#[test]
fn a_failed_job_fails_exactly_its_own_group() {
    check_bounded(
        "a_failed_job_fails_exactly_its_own_group",
        PREEMPTION_BOUND,
        || {
            let log = Log {
                failing: Some(1),
                ..Log::default()
            };
            let queue = SingularQueue::builder(log)
                .reply_mode(ReplyMode::AfterBatch)
                .on_commit_error(OnCommitError::Continue)
                .spawn()
                .unwrap();
            queue.tell(()).unwrap();
            let answer = queue.call(());
            let stats = queue.stats();
            let log = queue.shutdown().unwrap();
            let in_the_first_group = log.groups[0] == 2;
            match answer {
                Err(e) => assert!(e.is_not_committed() && in_the_first_group),
                Ok(written) => assert!(written == 2 && !in_the_first_group),
            }
            assert_eq!(stats.failed_commits, 1);
        },
    );
}

/// What the jobs of [`Overtaken`] have done: the first started, the second ended.
#[derive(Default)]
struct Progress {
    first_started: bool,
    second_ended: bool,
}

type Shared = Arc<(Mutex<Progress>, Condvar)>;

/// A state whose first commit's job waits until the second commit's job has ended: with two
/// commit threads, the later group's commit always ends first.
struct Overtaken {
    written: usize,
    commits: usize,
    progress: Shared,
}

impl StateMachine for Overtaken {
    type Command = ();
    type Output = usize;

    fn apply(&mut self, (): ()) -> usize {
        self.written += 1;
        self.written
    }

    fn start_commit(&mut self, _: BatchInfo) -> Commit {
        self.commits += 1;
        let (first, progress) = (self.commits == 1, Arc::clone(&self.progress));
        Commit::later(move || {
            let (lock, changed) = &*progress;
            let mut seen = lock.lock().unwrap();
            if first {
                seen.first_started = true;
                changed.notify_all();
                while !seen.second_ended {
                    seen = changed.wait(seen).unwrap();
                }
            } else {
                seen.second_ended = true;
                changed.notify_all();
            }
            Ok(())
        })
    }
}

/// Two commit threads, and a second group's job that ends before the first's: outputs still
/// go out in commit order, so when the second group's call returns, the first group's output
/// is there too.
#[test]
fn with_two_commit_threads_outputs_still_go_out_in_order() {
    check_bounded("with_two_commit_threads_outputs_...", 1, || {
        let progress = Shared::default();
        let state = Overtaken {
            written: 0,
            commits: 0,
            progress: Arc::clone(&progress),
        };
        let queue = SingularQueue::builder(state)
            .reply_mode(ReplyMode::AfterBatch)
            .commit_threads(2)
            .spawn()
            .unwrap();
        let first = queue.submit(()).unwrap();
        {
            // The first group is alone: its commit has started before the second command.
            let (lock, changed) = &*progress;
            let mut seen = lock.lock().unwrap();
            while !seen.first_started {
                seen = changed.wait(seen).unwrap();
            }
        }
        assert_eq!(queue.call(()), Ok(2));
        assert!(first.is_ready(), "the older output went out first");
        assert_eq!(first.wait(), Ok(1));
        assert_eq!(queue.shutdown().unwrap().written, 2);
    });
}
