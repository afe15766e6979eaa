//! A commit that fails without a panic: the batch's callers are told "applied, not
//! committed", and the queue stops or goes on as the builder says.

mod support;

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::Duration;

use singular_queue::{
    BatchInfo, CommitError, OnCommitError, ReplyMode, SingularQueue, StateMachine, SubmitError,
    WaitError,
};
use support::within;

/// Commits every batch but those whose number (from 1) the schedule says fail.
#[derive(Debug)]
struct Disk {
    applied: u64,
    committed: u64,
    batches: u64,
    fails: fn(u64) -> bool,
    /// Makes the error's `Display` panic.
    rotten: bool,
}

#[derive(Debug)]
struct Rotten;

impl fmt::Display for Rotten {
    fn fmt(&self, _: &mut fmt::Formatter<'_>) -> fmt::Result {
        panic!("a rotten error")
    }
}

impl std::error::Error for Rotten {}

impl StateMachine for Disk {
    type Command = u64;
    type Output = u64;
    fn apply(&mut self, n: u64) -> u64 {
        self.applied += 1;
        n
    }
    fn try_on_batch_end(&mut self, _: BatchInfo) -> Result<(), CommitError> {
        self.batches += 1;
        if (self.fails)(self.batches) {
            if self.rotten {
                return Err(Box::new(Rotten));
            }
            return Err(std::io::Error::other("no space left on device").into());
        }
        self.committed = self.applied;
        Ok(())
    }
}

fn disk(fails: fn(u64) -> bool) -> Disk {
    Disk {
        applied: 0,
        committed: 0,
        batches: 0,
        fails,
        rotten: false,
    }
}

fn not_committed(result: Result<u64, WaitError>) -> String {
    match result {
        Err(WaitError::NotCommitted(message)) => message,
        other => panic!("expected NotCommitted, got {other:?}"),
    }
}

#[test]
fn under_continue_a_failed_batch_is_told_and_the_queue_goes_on() {
    let mut queue = SingularQueue::builder(disk(|batch| batch == 2))
        .reply_mode(ReplyMode::AfterBatch)
        .on_commit_error(OnCommitError::Continue)
        .manual();
    let first = queue.submit(1).unwrap();
    queue.step();
    assert_eq!(first.wait(), Ok(1));
    let failed: Vec<_> = (2..=4).map(|n| queue.submit(n).unwrap()).collect();
    assert_eq!(queue.step(), 3);
    for ticket in failed {
        let message = not_committed(ticket.wait());
        assert_eq!(message, "commit failed: no space left on device");
    }
    let after = queue.submit(5).unwrap();
    queue.step();
    assert_eq!(after.wait(), Ok(5), "the queue went on");
    assert_eq!(queue.stats().failed_commits, 1);
    let state = queue.shutdown().unwrap();
    assert_eq!((state.applied, state.committed), (5, 5));
}

#[test]
fn under_stop_a_failed_commit_poisons_the_queue_and_says_why() {
    let mut queue = SingularQueue::builder(disk(|batch| batch == 1))
        .reply_mode(ReplyMode::AfterBatch)
        .max_batch(2)
        .manual();
    let batch: Vec<_> = (1..=2).map(|n| queue.submit(n).unwrap()).collect();
    let behind = queue.submit(3).unwrap();
    assert_eq!(queue.step(), 2);
    for ticket in batch {
        assert!(not_committed(ticket.wait()).contains("no space left"));
    }
    assert!(matches!(queue.submit(9), Err(SubmitError::Closed(9))));
    queue.step();
    assert_eq!(behind.wait(), Err(WaitError::NotApplied));
    let poisoned = queue.shutdown().unwrap_err();
    assert_eq!(poisoned.message(), "commit failed: no space left on device");
    assert_eq!(poisoned.unapplied(), [3]);
}

#[test]
fn an_error_whose_display_panics_still_fails_the_batch_and_the_worker_lives() {
    support::quiet_panics();
    let mut state = disk(|batch| batch == 1);
    state.rotten = true;
    let mut queue = SingularQueue::builder(state)
        .reply_mode(ReplyMode::AfterBatch)
        .on_commit_error(OnCommitError::Continue)
        .manual();
    let ticket = queue.submit(1).unwrap();
    queue.step();
    assert!(not_committed(ticket.wait()).contains("its error panicked: a rotten error"));
    let after = queue.submit(2).unwrap();
    queue.step();
    assert_eq!(after.wait(), Ok(2));
}

/// Many callers, a commit failing every third batch: every call is answered, with its output
/// or `NotCommitted`, and the counts add up exactly.
#[test]
fn under_load_every_caller_hears_committed_or_not_committed() {
    within(Duration::from_secs(60), || {
        const THREADS: u64 = 4;
        const CALLS: u64 = 1_000;
        let queue = SingularQueue::builder(disk(|batch| batch % 3 == 0))
            .reply_mode(ReplyMode::AfterBatch)
            .on_commit_error(OnCommitError::Continue)
            .capacity(8)
            .spawn()
            .unwrap();
        let (committed, lost) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
        let callers: Vec<_> = (0..THREADS)
            .map(|_| {
                let handle = queue.handle();
                let (committed, lost) = (Arc::clone(&committed), Arc::clone(&lost));
                thread::spawn(move || {
                    for n in 0..CALLS {
                        match handle.call(n) {
                            Ok(output) => {
                                assert_eq!(output, n);
                                committed.fetch_add(1, Ordering::Relaxed);
                            }
                            Err(error) if error.is_not_committed() => {
                                lost.fetch_add(1, Ordering::Relaxed);
                            }
                            Err(error) => panic!("{error}"),
                        }
                    }
                })
            })
            .collect();
        callers.into_iter().for_each(|c| c.join().unwrap());
        let (committed, lost) = (
            committed.load(Ordering::Relaxed),
            lost.load(Ordering::Relaxed),
        );
        assert_eq!(committed + lost, THREADS * CALLS);
        let stats = queue.stats();
        assert!(stats.failed_commits > 0 && lost > 0);
        let state = queue.shutdown().unwrap();
        assert_eq!(state.applied, THREADS * CALLS);
        assert_eq!(stats.failed_commits, state.batches / 3);
    });
}
