//! A commit that fails while an older one still runs poisons the queue at once: no command
//! submitted after it is applied. From the hostile reviews of pipelined group commit (#2 for
//! failures known on the worker, #3 for a job's), where every test here failed (the poison
//! waited for the group's turn in commit order).

mod support;

use std::sync::mpsc;
use std::time::{Duration, Instant};

use singular_queue::{
    BatchInfo, Commit, CommitError, DEFAULT_CAPACITY, ReplyMode, SingularQueue, StateMachine,
    SubmitError, WaitError,
};
use support::{quiet_panics, within};

/// What `start_commit` does, given the commit's number (from 1).
type Script = Box<dyn FnMut(u64) -> Commit + Send>;

/// Records every command applied; each commit does what the script says.
struct Scripted {
    applied: Vec<u64>,
    commits: u64,
    script: Script,
}

impl Scripted {
    fn new(script: impl FnMut(u64) -> Commit + Send + 'static) -> Self {
        Self {
            applied: Vec::new(),
            commits: 0,
            script: Box::new(script),
        }
    }
}

impl StateMachine for Scripted {
    type Command = u64;
    type Output = u64;

    fn apply(&mut self, n: u64) -> u64 {
        self.applied.push(n);
        n
    }

    fn start_commit(&mut self, _: BatchInfo) -> Commit {
        self.commits += 1;
        (self.script)(self.commits)
    }
}

impl std::fmt::Debug for Scripted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scripted")
            .field("applied", &self.applied)
            .field("commits", &self.commits)
            .finish_non_exhaustive()
    }
}

/// The first commit's job waits for the release; the second commit does `second` (it panics
/// or fails at once, on the worker); every later commit succeeds. Each `start_commit`
/// announces its number first.
fn first_held_then(
    second: impl Fn() -> Commit + Send + 'static,
) -> (Scripted, mpsc::Receiver<u64>, mpsc::Sender<()>) {
    let (started_tx, started) = mpsc::channel();
    let (release, held) = mpsc::channel::<()>();
    let mut held = Some(held);
    let state = Scripted::new(move |n| {
        started_tx.send(n).unwrap();
        match n {
            1 => {
                let held = held.take().unwrap();
                Commit::later(move || {
                    let _ = held.recv();
                    Ok(())
                })
            }
            2 => second(),
            _ => Commit::later(|| Ok(())),
        }
    });
    (state, started, release)
}

/// A queue of `capacity` whose outputs wait for their commits, with three commit threads.
fn spawn_pipelined(state: Scripted, capacity: usize) -> SingularQueue<Scripted> {
    SingularQueue::builder(state)
        .reply_mode(ReplyMode::AfterBatch)
        .commit_threads(3)
        .capacity(capacity)
        .spawn()
        .unwrap()
}

/// A hook panic poisons the state (`try_on_batch_end`'s and `start_commit`'s docs; the
/// design's "Hook panics always poison"): the queue closes and nothing more is applied.
/// With commit threads to spare, a `start_commit` that panics while an older commit's job
/// runs must poison at once: before the fix, a command submitted after the panic was applied
/// to the poisoned state and its caller told `Ok` (committed).
#[test]
fn a_command_submitted_after_start_commit_panicked_is_never_applied() {
    quiet_panics();
    within(Duration::from_secs(20), || {
        let (state, started, release) = first_held_then(|| panic!("start_commit blew up"));
        let queue = spawn_pipelined(state, DEFAULT_CAPACITY);
        let first = queue.submit(1).unwrap();
        assert_eq!(started.recv(), Ok(1)); // its job now waits
        let second = queue.submit(2).unwrap();
        assert_eq!(started.recv(), Ok(2)); // and now start_commit panics
        let third = queue.submit(3);
        release.send(()).unwrap();
        assert_eq!(first.wait(), Ok(1));
        assert!(matches!(second.wait(), Err(WaitError::NotCommitted(m)) if m.contains("blew up")));
        let third = third.map(|ticket| ticket.wait());
        let poisoned = queue.shutdown().unwrap_err();
        let applied = poisoned.into_inner().applied;
        assert!(
            !matches!(third, Ok(Ok(_))) && applied == [1, 2],
            "command 3, submitted after start_commit panicked: {third:?}; applied: {applied:?}"
        );
    });
}

/// The same under `OnCommitError::Stop` (the default) with a commit that fails at once
/// (`Commit::done(Err)`): the failure is known on the worker, so the queue closes at once
/// (before the fix, the next command was applied and committed as if nothing had failed).
#[test]
fn a_command_submitted_after_a_failed_commit_under_stop_is_never_applied() {
    within(Duration::from_secs(20), || {
        let (state, started, release) = first_held_then(|| Commit::done(Err("disk gone".into())));
        let queue = spawn_pipelined(state, DEFAULT_CAPACITY);
        let first = queue.submit(1).unwrap();
        assert_eq!(started.recv(), Ok(1));
        let second = queue.submit(2).unwrap();
        assert_eq!(started.recv(), Ok(2)); // and now the commit fails
        let third = queue.submit(3);
        release.send(()).unwrap();
        assert_eq!(first.wait(), Ok(1));
        assert!(matches!(second.wait(), Err(WaitError::NotCommitted(_))));
        let third = third.map(|ticket| ticket.wait());
        let poisoned = queue.shutdown().unwrap_err();
        let applied = poisoned.into_inner().applied;
        assert!(
            !matches!(third, Ok(Ok(_))) && applied == [1, 2],
            "command 3, submitted after the commit failed under Stop: {third:?}; applied: \
             {applied:?}"
        );
    });
}

/// The same when the failure is a `Commit::later` job's, on a commit thread, while an older
/// commit's job still runs: the worker learns of it from the job's report, and must close
/// the queue then, not when the older job ends (review #3: it stayed open for as long as the
/// older job ran, applying about 650,000 commands in 3 s).
#[test]
fn a_commit_job_that_fails_while_an_older_job_runs_closes_the_queue_at_once() {
    within(Duration::from_secs(20), || {
        commit_job_failure_poisons_at_once(|| Err("disk gone".into()));
    });
}

/// The same with a job that panics.
#[test]
fn a_commit_job_that_panics_while_an_older_job_runs_closes_the_queue_at_once() {
    quiet_panics();
    within(Duration::from_secs(20), || {
        commit_job_failure_poisons_at_once(|| panic!("job blew up"));
    });
}

/// Commit 1's job is held; commit 2's job ends as `job` says, on a second commit thread;
/// once it has run, the queue must close while job 1 is still held.
fn commit_job_failure_poisons_at_once(job: fn() -> Result<(), CommitError>) {
    let (ended_tx, ended) = mpsc::channel();
    let (state, started, release) = first_held_then(move || {
        let ended_tx = ended_tx.clone();
        Commit::later(move || {
            let _ = ended_tx.send(());
            job()
        })
    });
    let queue = spawn_pipelined(state, 16);
    let first = queue.submit(1).unwrap();
    assert_eq!(started.recv(), Ok(1)); // its job now waits
    let second = queue.submit(2).unwrap();
    assert_eq!(started.recv(), Ok(2));
    ended.recv().unwrap(); // commit 2's job has failed, while commit 1's is held
    let closed = closes_within(&queue, Duration::from_secs(3));
    release.send(()).unwrap();
    assert_eq!(first.wait(), Ok(1));
    assert!(matches!(second.wait(), Err(WaitError::NotCommitted(_))));
    let applied = queue.stats().applied;
    let _ = queue.shutdown();
    assert!(
        closed,
        "a commit job failed while an older one ran: the queue stayed open for 3 s and applied \
         {} more commands",
        applied - 2
    );
}

/// Tells commands 3, 4, ... until one is refused as closed, for at most `limit`; returns
/// whether one was.
fn closes_within(queue: &SingularQueue<Scripted>, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    let mut n = 3;
    while Instant::now() < deadline {
        match queue.tell(n) {
            Err(SubmitError::Closed(_)) => return true,
            Err(other) => panic!("unexpected {other:?}"),
            Ok(()) => n += 1,
        }
        std::thread::yield_now();
    }
    false
}
