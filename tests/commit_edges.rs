//! The fallible commit (`try_on_batch_end`, `OnCommitError`, `Stats::failed_commits`) and
//! `Handle::len / is_empty / capacity` at their edges, from the hostile review.

mod support;

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;
use std::time::Duration;

use singular_queue::{
    BatchInfo, CallError, CommitError, DropOldest, Handle, OnCommitError, OnPanic, Reject,
    ReplyMode, SingularQueue, StateMachine, SubmitError, Ticket, WaitError,
};
use support::{books_balance, quiet_panics, settle, wait_for, within};

const LIMIT: Duration = Duration::from_secs(20);

// === A state machine whose commit the test steers ===

enum Cmd {
    Add(u64),
    Panic,
    /// Say "started", then wait for the release.
    Hold(mpsc::Sender<()>, mpsc::Receiver<()>),
}

fn hold() -> (Cmd, mpsc::Receiver<()>, mpsc::Sender<()>) {
    let (started_tx, started_rx) = mpsc::channel();
    let (release_tx, release_rx) = mpsc::channel();
    (Cmd::Hold(started_tx, release_rx), started_rx, release_tx)
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum ErrorKind {
    /// A plain io error, "no space left on device".
    Io,
    /// An error whose `Drop` panics (when not already unwinding); its `Display` is fine.
    DropPanics,
    /// An error whose `Display` panics and whose `Drop` panics too (unconditionally).
    DisplayAndDropPanic,
}

#[derive(Clone, Default)]
struct Knobs {
    /// While set, every commit fails.
    fail: Arc<AtomicBool>,
    /// Calls of `try_on_batch_end`.
    commits: Arc<AtomicU64>,
    /// Every `BatchInfo` seen.
    infos: Arc<Mutex<Vec<BatchInfo>>>,
}

impl fmt::Debug for Flaky {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Flaky({:?})", self.applied)
    }
}

struct Flaky {
    applied: Vec<u64>,
    knobs: Knobs,
    kind: ErrorKind,
}

fn flaky(kind: ErrorKind) -> (Flaky, Knobs) {
    let knobs = Knobs::default();
    let state = Flaky {
        applied: Vec::new(),
        knobs: knobs.clone(),
        kind,
    };
    (state, knobs)
}

#[derive(Debug)]
struct DropBomb;
impl fmt::Display for DropBomb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("no space left on device")
    }
}
impl std::error::Error for DropBomb {}
impl Drop for DropBomb {
    fn drop(&mut self) {
        if !thread::panicking() {
            panic!("the error's drop panicked");
        }
    }
}

#[derive(Debug)]
struct WorstError;
impl fmt::Display for WorstError {
    fn fmt(&self, _: &mut fmt::Formatter<'_>) -> fmt::Result {
        panic!("the error's display panicked")
    }
}
impl std::error::Error for WorstError {}
impl Drop for WorstError {
    fn drop(&mut self) {
        panic!("the error's drop panicked");
    }
}

impl StateMachine for Flaky {
    type Command = Cmd;
    type Output = u64;
    fn apply(&mut self, cmd: Cmd) -> u64 {
        match cmd {
            Cmd::Add(n) => self.applied.push(n),
            Cmd::Panic => panic!("boom"),
            Cmd::Hold(started, release) => {
                started.send(()).unwrap();
                release.recv().unwrap();
            }
        }
        self.applied.len() as u64
    }
    fn try_on_batch_end(&mut self, info: BatchInfo) -> Result<(), CommitError> {
        self.knobs.commits.fetch_add(1, Ordering::SeqCst);
        self.knobs.infos.lock().unwrap().push(info);
        if !self.knobs.fail.load(Ordering::SeqCst) {
            return Ok(());
        }
        Err(match self.kind {
            ErrorKind::Io => std::io::Error::other("no space left on device").into(),
            ErrorKind::DropPanics => Box::new(DropBomb),
            ErrorKind::DisplayAndDropPanic => Box::new(WorstError),
        })
    }
}

fn not_committed<T: fmt::Debug>(result: Result<T, WaitError>) -> String {
    match result {
        Err(WaitError::NotCommitted(message)) => message,
        other => panic!("expected NotCommitted, got {other:?}"),
    }
}

// === The error's Display / Drop ===

/// The error's `Drop` is user code that the worker runs; the claim is that a panic in it is
/// caught. Its `Display` worked, so the callers should still hear why the commit failed.
#[test]
fn an_error_whose_drop_panics_still_names_the_failure() {
    quiet_panics();
    let (state, knobs) = flaky(ErrorKind::DropPanics);
    knobs.fail.store(true, Ordering::SeqCst);
    let mut queue = SingularQueue::builder(state)
        .reply_mode(ReplyMode::AfterBatch)
        .on_commit_error(OnCommitError::Continue)
        .manual();
    let ticket = queue.submit(Cmd::Add(1)).unwrap();
    assert_eq!(queue.step(), 1);
    let message = not_committed(ticket.wait());
    assert!(
        message.contains("no space left on device"),
        "the error displayed fine, but the callers were told: {message:?}"
    );
}

fn display_and_drop_both_panic_body() {
    quiet_panics();
    let (state, knobs) = flaky(ErrorKind::DisplayAndDropPanic);
    knobs.fail.store(true, Ordering::SeqCst);
    let mut queue = SingularQueue::builder(state)
        .reply_mode(ReplyMode::AfterBatch)
        .on_commit_error(OnCommitError::Continue)
        .manual();
    let ticket = queue.submit(Cmd::Add(1)).unwrap();
    assert_eq!(queue.step(), 1);
    let message = not_committed(ticket.wait());
    assert!(message.contains("commit failed"), "{message}");
    assert!(queue.shutdown().is_ok());
}

/// "The error's Display/Drop panicking is caught": an error whose `Display` panics and whose
/// `Drop` panics too. The worker owns the error inside the closure that formats it, so the
/// `Display` panic unwinds through the error's `Drop`: a panic while panicking, which aborts
/// the whole process. Run in a child process so that the abort is observable.
#[test]
fn an_error_whose_display_and_drop_both_panic_does_not_abort_the_process() {
    support::survives_in_a_child(
        "an_error_whose_display_and_drop_both_panic_does_not_abort_the_process",
        display_and_drop_both_panic_body,
    );
}

// === Interactions with panics in the same batch ===

#[test]
fn onpanic_stop_panic_then_failing_commit_in_one_batch() {
    quiet_panics();
    let (state, knobs) = flaky(ErrorKind::Io);
    knobs.fail.store(true, Ordering::SeqCst);
    let mut queue = SingularQueue::builder(state)
        .reply_mode(ReplyMode::AfterBatch)
        .on_panic(OnPanic::Stop)
        .on_commit_error(OnCommitError::Continue)
        .manual();
    let before = queue.submit(Cmd::Add(1)).unwrap();
    let boom = queue.submit(Cmd::Panic).unwrap();
    let after = queue.submit(Cmd::Add(2)).unwrap();
    assert_eq!(queue.step(), 3);
    assert!(not_committed(before.wait()).contains("boom"));
    assert_eq!(boom.wait(), Err(WaitError::Panicked("boom".into())));
    assert_eq!(after.wait(), Err(WaitError::NotApplied));
    assert_eq!(
        knobs.commits.load(Ordering::SeqCst),
        0,
        "no commit on a poisoned state"
    );
    let stats = queue.stats();
    assert_eq!(stats.failed_commits, 0);
    books_balance(&stats);
    assert!(queue.handle().is_closed());
    let poisoned = queue.shutdown().unwrap_err();
    assert!(poisoned.message().contains("boom"), "{poisoned}");
    assert_eq!(poisoned.unapplied().len(), 1);
}

#[test]
fn onpanic_continue_panic_with_stop_commit_failure_poisons_and_sets_aside_the_rest() {
    quiet_panics();
    let (state, knobs) = flaky(ErrorKind::Io);
    knobs.fail.store(true, Ordering::SeqCst);
    let mut queue = SingularQueue::builder(state)
        .reply_mode(ReplyMode::AfterBatch)
        .on_panic(OnPanic::Continue)
        .on_commit_error(OnCommitError::Stop)
        .max_batch(3)
        .manual();
    let handle = queue.handle();
    let first = queue.submit(Cmd::Add(1)).unwrap();
    let boom = queue.submit(Cmd::Panic).unwrap();
    let third = queue.submit(Cmd::Add(2)).unwrap();
    let later: Vec<_> = (0..2)
        .map(|n| queue.submit(Cmd::Add(10 + n)).unwrap())
        .collect();
    assert_eq!(handle.len(), 5);
    assert_eq!(queue.step(), 3);
    assert!(not_committed(first.wait()).starts_with("commit failed: "));
    assert_eq!(boom.wait(), Err(WaitError::Panicked("boom".into())));
    assert!(not_committed(third.wait()).contains("no space left on device"));
    assert!(handle.is_closed());
    assert_eq!(handle.len(), 2, "two accepted commands still wait");
    assert!(matches!(
        handle.try_submit(Cmd::Add(99)),
        Err(SubmitError::Closed(_))
    ));
    assert_eq!(handle.len(), 2, "a refusal does not count");
    assert_eq!(queue.step(), 2);
    assert!(handle.is_empty());
    for ticket in later {
        assert_eq!(ticket.wait(), Err(WaitError::NotApplied));
    }
    let stats = queue.stats();
    assert_eq!(
        (stats.failed_commits, stats.applied, stats.panicked),
        (1, 2, 1)
    );
    assert_eq!(stats.not_applied, 2);
    books_balance(&stats);
    assert_eq!(knobs.commits.load(Ordering::SeqCst), 1);
    let poisoned = queue.shutdown().unwrap_err();
    assert!(poisoned.message().contains("no space left"), "{poisoned}");
    assert_eq!(poisoned.unapplied().len(), 2);
}

/// A panic in the hook poisons, even under `Continue`; it is not a failed commit.
#[test]
fn a_panicking_commit_poisons_even_under_continue() {
    quiet_panics();
    struct PanicCommit;
    impl StateMachine for PanicCommit {
        type Command = u64;
        type Output = u64;
        fn apply(&mut self, n: u64) -> u64 {
            n
        }
        fn try_on_batch_end(&mut self, _: BatchInfo) -> Result<(), CommitError> {
            panic!("fsync exploded")
        }
    }
    let mut queue = SingularQueue::builder(PanicCommit)
        .reply_mode(ReplyMode::AfterBatch)
        .on_commit_error(OnCommitError::Continue)
        .max_batch(1)
        .manual();
    let a = queue.submit(1).unwrap();
    let b = queue.submit(2).unwrap();
    queue.run_until_idle();
    assert!(not_committed(a.wait()).contains("fsync exploded"));
    assert_eq!(b.wait(), Err(WaitError::NotApplied));
    let stats = queue.stats();
    books_balance(&stats);
    assert!(queue.shutdown().is_err());
}

// === Batches cut by max_batch, stepped by hand ===

#[test]
fn max_batch_cuts_fail_only_their_own_batch_and_report_remaining() {
    let (state, knobs) = flaky(ErrorKind::Io);
    let mut queue = SingularQueue::builder(state)
        .reply_mode(ReplyMode::AfterBatch)
        .on_commit_error(OnCommitError::Continue)
        .max_batch(2)
        .manual();
    let tickets: Vec<_> = (1..=5)
        .map(|n| queue.submit(Cmd::Add(n)).unwrap())
        .collect();
    let handle = queue.handle();
    assert_eq!(queue.step(), 2);
    assert_eq!(handle.len(), 3);
    knobs.fail.store(true, Ordering::SeqCst);
    assert_eq!(queue.step(), 2);
    knobs.fail.store(false, Ordering::SeqCst);
    assert_eq!(queue.step(), 1);
    assert_eq!(queue.step(), 0);
    let results: Vec<_> = tickets.into_iter().map(|t| t.wait()).collect();
    assert_eq!(results[0], Ok(1));
    assert_eq!(results[1], Ok(2));
    assert!(matches!(&results[2], Err(WaitError::NotCommitted(m)) if m.contains("no space")));
    assert!(matches!(&results[3], Err(WaitError::NotCommitted(m)) if m.contains("no space")));
    assert_eq!(results[4], Ok(5));
    let infos: Vec<_> = knobs
        .infos
        .lock()
        .unwrap()
        .iter()
        .map(|i| (i.size, i.remaining))
        .collect();
    assert_eq!(infos, vec![(2, 3), (2, 1), (1, 0)]);
    let stats = queue.stats();
    assert_eq!(
        (stats.failed_commits, stats.batches, stats.applied),
        (1, 3, 5)
    );
    books_balance(&stats);
    assert!(handle.is_empty());
    let state = queue.shutdown().unwrap_or_else(|poisoned| {
        panic!("{}: {}", "not poisoned under Continue", poisoned.message())
    });
    assert_eq!(state.applied, vec![1, 2, 3, 4, 5]);
}

// === shutdown_now mid-batch ===

/// What `shutdown_now` returns.
type ShutdownNow = Result<(Flaky, Vec<Cmd>), singular_queue::Poisoned<Flaky>>;

/// What `shutdown_now` returned while the worker held a failing batch, with the held command's
/// ticket, the three commands waiting behind it, and a handle.
struct MidBatch {
    outcome: std::thread::Result<ShutdownNow>,
    held: Ticket<u64>,
    behind: Vec<Ticket<u64>>,
    handle: Handle<Flaky>,
}

/// Holds the worker in a batch whose commit fails, queues three commands behind it, and shuts
/// the queue down now under `policy`.
fn shutdown_now_mid_failing_batch(policy: OnCommitError) -> (MidBatch, Knobs) {
    let (state, knobs) = flaky(ErrorKind::Io);
    knobs.fail.store(true, Ordering::SeqCst);
    let queue = SingularQueue::builder(state)
        .reply_mode(ReplyMode::AfterBatch)
        .on_commit_error(policy)
        .spawn()
        .unwrap();
    let handle = queue.handle();
    let (cmd, started, release) = hold();
    let held = queue.submit(cmd).unwrap();
    started.recv().unwrap();
    let behind: Vec<_> = (0..3).map(|n| queue.submit(Cmd::Add(n)).unwrap()).collect();
    assert_eq!(handle.len(), 3);
    let owner = thread::spawn(move || queue.shutdown_now());
    wait_for("shutdown_now closed the queue", LIMIT, || {
        handle.is_closed()
    });
    release.send(()).unwrap();
    let outcome = owner.join();
    let mid = MidBatch {
        outcome,
        held,
        behind,
        handle,
    };
    (mid, knobs)
}

/// The held command's caller hears "not committed", those behind it "not applied", and the
/// counts balance with nothing left waiting.
fn assert_told(held: Ticket<u64>, behind: Vec<Ticket<u64>>, handle: &Handle<Flaky>) {
    assert!(not_committed(held.wait()).contains("no space"));
    for ticket in behind {
        assert_eq!(ticket.wait(), Err(WaitError::NotApplied));
    }
    let stats = handle.stats();
    assert_eq!(stats.failed_commits, 1);
    books_balance(&stats);
    assert!(handle.is_empty());
}

#[test]
fn shutdown_now_mid_failing_batch_under_stop() {
    within(LIMIT, || {
        let (mid, knobs) = shutdown_now_mid_failing_batch(OnCommitError::Stop);
        let poisoned = mid
            .outcome
            .unwrap()
            .err()
            .expect("the failed commit poisoned the state");
        assert_eq!(poisoned.unapplied().len(), 3);
        assert_told(mid.held, mid.behind, &mid.handle);
        assert_eq!(knobs.commits.load(Ordering::SeqCst), 1);
    });
}

#[test]
fn shutdown_now_mid_failing_batch_under_continue() {
    within(LIMIT, || {
        let (mid, _) = shutdown_now_mid_failing_batch(OnCommitError::Continue);
        let (state, unapplied) = mid
            .outcome
            .unwrap()
            .unwrap_or_else(|poisoned| panic!("Continue: not poisoned: {}", poisoned.message()));
        assert_eq!(unapplied.len(), 3);
        assert!(state.applied.is_empty());
        assert_told(mid.held, mid.behind, &mid.handle);
    });
}

// === call_timeout, tells, async callers, wait_until_quiet ===

#[test]
fn call_timeout_abandoning_a_failing_batch_neither_hangs_nor_miscounts() {
    within(LIMIT, || {
        let (state, knobs) = flaky(ErrorKind::Io);
        knobs.fail.store(true, Ordering::SeqCst);
        let queue = SingularQueue::builder(state)
            .reply_mode(ReplyMode::AfterBatch)
            .on_commit_error(OnCommitError::Continue)
            .spawn()
            .unwrap();
        let handle = queue.handle();
        let (cmd, started, release) = hold();
        queue.tell(cmd).unwrap();
        started.recv().unwrap();
        let caller = handle.clone();
        let timed_out = caller.call_timeout(Cmd::Add(1), Duration::from_millis(20));
        assert!(
            matches!(timed_out, Err(CallError::ReplyTimeout)),
            "{:?}",
            timed_out.err().map(|e| e.is_not_committed())
        );
        release.send(()).unwrap();
        handle.wait_until_quiet().unwrap();
        let next = handle.call(Cmd::Add(2));
        assert!(matches!(next, Err(CallError::NotCommitted(ref m)) if m.contains("no space")));
        handle.wait_until_quiet().unwrap();
        let stats = handle.stats();
        assert_eq!(stats.failed_commits, 2);
        assert_eq!(stats.applied, 3);
        books_balance(&stats);
        assert!(handle.is_empty());
        assert!(queue.shutdown().is_ok());
    });
}

#[test]
fn tells_in_failing_batches_are_counted_and_nothing_hangs() {
    within(LIMIT, || {
        let (state, knobs) = flaky(ErrorKind::Io);
        knobs.fail.store(true, Ordering::SeqCst);
        let queue = SingularQueue::builder(state)
            .reply_mode(ReplyMode::AfterBatch)
            .on_commit_error(OnCommitError::Stop)
            .spawn()
            .unwrap();
        let handle = queue.handle();
        let (cmd, started, release) = hold();
        queue.tell(cmd).unwrap();
        started.recv().unwrap();
        for n in 0..4 {
            queue.tell(Cmd::Add(n)).unwrap();
        }
        release.send(()).unwrap();
        handle.wait_until_quiet().unwrap();
        assert!(handle.is_closed());
        let stats = handle.stats();
        assert_eq!((stats.failed_commits, stats.applied), (1, 5));
        books_balance(&stats);
        let poisoned = queue.shutdown().unwrap_err();
        assert!(poisoned.message().contains("no space"));
        assert_eq!(poisoned.into_inner().applied.len(), 4);
    });
}

#[test]
fn async_callers_hear_not_committed() {
    within(LIMIT, || {
        let (state, knobs) = flaky(ErrorKind::Io);
        knobs.fail.store(true, Ordering::SeqCst);
        let queue = SingularQueue::builder(state)
            .reply_mode(ReplyMode::AfterBatch)
            .on_commit_error(OnCommitError::Continue)
            .spawn()
            .unwrap();
        let out = futures::executor::block_on(queue.call_async(Cmd::Add(1)));
        assert!(matches!(out, Err(CallError::NotCommitted(ref m)) if m.contains("no space")));
        let ticket = queue.submit(Cmd::Add(2)).unwrap();
        let out = futures::executor::block_on(ticket);
        assert!(matches!(out, Err(WaitError::NotCommitted(ref m)) if m.contains("no space")));
        knobs.fail.store(false, Ordering::SeqCst);
        assert_eq!(
            futures::executor::block_on(queue.call_async(Cmd::Add(3))).ok(),
            Some(3)
        );
        queue.wait_until_quiet().unwrap();
        let stats = queue.stats();
        assert_eq!(stats.failed_commits, 2);
        books_balance(&stats);
        assert!(queue.shutdown().is_ok());
    });
}

/// Many threads, commits failing every other time, panics mixed in under `OnPanic::Continue`:
/// every caller hears a true fate, `wait_until_quiet` returns, and the books balance.
#[test]
fn churn_with_failing_commits_balances_and_quiets() {
    quiet_panics();
    within(Duration::from_secs(60), || {
        let (state, knobs) = flaky(ErrorKind::Io);
        let queue = SingularQueue::builder(state)
            .capacity(4)
            .reply_mode(ReplyMode::AfterBatch)
            .on_panic(OnPanic::Continue)
            .on_commit_error(OnCommitError::Continue)
            .max_batch(3)
            .spawn()
            .unwrap();
        let flipper = {
            let fail = knobs.fail.clone();
            let commits = knobs.commits.clone();
            move || fail.store(commits.load(Ordering::SeqCst) % 2 == 0, Ordering::SeqCst)
        };
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let handle = queue.handle();
                let flipper = flipper.clone();
                thread::spawn(move || {
                    let (mut ok, mut nc, mut pn) = (0u64, 0u64, 0u64);
                    for i in 0..200u64 {
                        flipper();
                        let cmd = if i % 17 == 0 {
                            Cmd::Panic
                        } else {
                            Cmd::Add(t * 1000 + i)
                        };
                        if i % 5 == 0 {
                            handle.tell(cmd).unwrap();
                            continue;
                        }
                        match handle.call(cmd) {
                            Ok(_) => ok += 1,
                            Err(CallError::NotCommitted(m)) => {
                                assert!(m.contains("no space"), "{m}");
                                nc += 1
                            }
                            Err(CallError::Panicked(m)) => {
                                assert_eq!(m, "boom");
                                pn += 1
                            }
                            Err(other) => panic!("unexpected {:?}", other.is_not_applied()),
                        }
                    }
                    (ok, nc, pn)
                })
            })
            .collect();
        let stats = settle(&queue, threads);
        assert_eq!(stats.submitted, 800);
        assert!(stats.failed_commits <= stats.batches);
        assert_eq!(knobs.commits.load(Ordering::SeqCst), stats.batches);
        assert!(queue.is_empty());
        assert_eq!(queue.len(), 0);
        assert!(queue.shutdown().is_ok());
    });
}

// === The default method ===

#[test]
fn the_default_try_on_batch_end_runs_on_batch_end_exactly_once_per_batch() {
    quiet_panics();
    struct Counting {
        ends: u64,
    }
    impl StateMachine for Counting {
        type Command = bool;
        type Output = ();
        fn apply(&mut self, panic: bool) {
            assert!(!panic, "asked to");
        }
        fn on_batch_end(&mut self, _: BatchInfo) {
            self.ends += 1;
        }
    }
    for mode in [ReplyMode::AfterApply, ReplyMode::AfterBatch] {
        let mut queue = SingularQueue::builder(Counting { ends: 0 })
            .reply_mode(mode)
            .on_panic(OnPanic::Continue)
            .max_batch(2)
            .manual();
        for i in 0..7 {
            queue.tell(i % 3 == 0).unwrap();
        }
        queue.run_until_idle();
        let stats = queue.stats();
        assert_eq!(stats.batches, 4);
        assert_eq!(queue.state().ends, 4);
        assert_eq!(stats.failed_commits, 0);
        books_balance(&stats);
        assert_eq!(queue.shutdown().ok().unwrap().ends, 4);
    }
}

// === len / is_empty / capacity ===

#[test]
fn len_through_evictions_refusals_and_timeouts() {
    let (state, _knobs) = flaky(ErrorKind::Io);
    let mut queue = SingularQueue::builder(state)
        .capacity(3)
        .backpressure(DropOldest)
        .max_batch(1)
        .manual();
    let handle = queue.handle();
    assert_eq!((handle.len(), handle.capacity()), (0, 3));
    for n in 0..7 {
        handle.tell(Cmd::Add(n)).unwrap();
        assert!(handle.len() <= 3);
    }
    assert_eq!(handle.len(), 3);
    assert_eq!(handle.stats().depth, 3);
    assert_eq!(queue.step(), 1);
    assert_eq!(handle.len(), 2);
    let stats = handle.stats();
    assert_eq!(stats.dropped, 4);
    queue.run_until_idle();
    assert!(handle.is_empty());
    assert_eq!(queue.state().applied, vec![4, 5, 6]);
    books_balance(&handle.stats());

    let (state, _knobs) = flaky(ErrorKind::Io);
    let queue = SingularQueue::builder(state)
        .capacity(2)
        .backpressure(Reject)
        .manual();
    let handle = queue.handle();
    handle.tell(Cmd::Add(1)).unwrap();
    handle.tell(Cmd::Add(2)).unwrap();
    assert!(matches!(
        handle.try_tell(Cmd::Add(3)),
        Err(SubmitError::Full(_))
    ));
    assert!(handle.tell(Cmd::Add(3)).is_err());
    assert_eq!(handle.len(), 2);
    let (state, unapplied) = queue.shutdown_now().ok().unwrap();
    assert!(state.applied.is_empty());
    assert_eq!(unapplied.len(), 2);
    assert!(handle.is_empty());
    assert_eq!(handle.capacity(), 2);
}

#[test]
fn len_with_a_blocked_submitter_timing_out_on_a_spawned_queue() {
    within(LIMIT, || {
        let (state, _knobs) = flaky(ErrorKind::Io);
        let queue = SingularQueue::builder(state).capacity(2).spawn().unwrap();
        let handle = queue.handle();
        let (cmd, started, release) = hold();
        queue.tell(cmd).unwrap();
        started.recv().unwrap();
        handle.tell(Cmd::Add(1)).unwrap();
        handle.tell(Cmd::Add(2)).unwrap();
        assert_eq!(handle.len(), 2);
        let refused = handle.tell_timeout(Cmd::Add(3), Duration::from_millis(10));
        assert!(matches!(refused, Err(SubmitError::Timeout(_))));
        assert_eq!(handle.len(), 2);
        let refused = handle.call_timeout(Cmd::Add(3), Duration::from_millis(10));
        assert!(matches!(refused, Err(CallError::Timeout(_))));
        assert_eq!(handle.len(), 2);
        release.send(()).unwrap();
        queue.wait_until_quiet().unwrap();
        assert!(handle.is_empty());
        let stats = handle.stats();
        assert_eq!(stats.timed_out, 2);
        books_balance(&stats);
        queue.shutdown().ok().unwrap();
    });
}
