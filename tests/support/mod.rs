//! State machines shared by the integration tests.
#![allow(dead_code, unreachable_pub)]

use std::sync::mpsc;

use singular_queue::{
    Backpressure, Builder, Handle, ShardedHandle, SingularQueue, SnapshotError, StateMachine, Stats,
};

/// Adds every command to a total.
#[derive(Debug, Default)]
pub struct Sum {
    pub total: u64,
    pub count: u64,
}

impl StateMachine for Sum {
    type Command = u64;
    type Output = u64;

    fn apply(&mut self, add: u64) -> u64 {
        self.total += add;
        self.count += 1;
        self.total
    }
}

/// Counts how often each value is applied: per client, per key, or to find duplicates.
#[derive(Debug, Default)]
pub struct Tally(pub std::collections::HashMap<u64, u64>);

impl StateMachine for Tally {
    type Command = u64;
    type Output = ();
    fn apply(&mut self, value: u64) {
        *self.0.entry(value).or_default() += 1;
    }
}

/// Records every command in the order it was applied.
#[derive(Debug, Default)]
pub struct Recorder {
    pub log: Vec<(usize, u64)>,
}

impl StateMachine for Recorder {
    type Command = (usize, u64);
    type Output = ();

    fn apply(&mut self, entry: (usize, u64)) {
        self.log.push(entry);
    }
}

/// A state machine the test steers: it can be held mid-`apply`, and made to panic.
#[derive(Debug, Default)]
pub struct Probe {
    pub applied: Vec<u64>,
}

pub enum Op {
    /// Record the number.
    Add(u64),
    /// Panic with the message "boom".
    Panic,
    /// Say "started" on the first channel, then wait for the release on the second.
    Hold(mpsc::Sender<()>, mpsc::Receiver<()>),
}

impl Op {
    /// A hold command, with the receiver that hears it start and the sender that releases it.
    pub fn hold() -> (Op, mpsc::Receiver<()>, mpsc::Sender<()>) {
        let (started_tx, started_rx) = mpsc::channel();
        let (release_tx, release_rx) = mpsc::channel();
        (Op::Hold(started_tx, release_rx), started_rx, release_tx)
    }

    pub fn number(&self) -> Option<u64> {
        match self {
            Op::Add(n) => Some(*n),
            _ => None,
        }
    }
}

impl StateMachine for Probe {
    type Command = Op;
    type Output = usize;

    fn apply(&mut self, op: Op) -> usize {
        match op {
            Op::Add(n) => self.applied.push(n),
            Op::Panic => panic!("boom"),
            Op::Hold(started, release) => {
                started.send(()).unwrap();
                release.recv().unwrap();
            }
        }
        self.applied.len()
    }
}

/// Runs each command, a closure, on the worker: a queue whose `apply` a test writes inline.
#[derive(Debug)]
pub struct Exec;

/// A command for [`Exec`].
pub type Job = Box<dyn FnOnce() -> String + Send>;

impl StateMachine for Exec {
    type Command = Job;
    type Output = String;

    fn apply(&mut self, job: Job) -> String {
        job()
    }
}

/// Silences the default panic hook's report for the panics these tests cause on purpose.
pub fn quiet_panics() {
    std::panic::set_hook(Box::new(|info| {
        let on_worker = std::thread::current().name() == Some("singular-queue");
        if !on_worker {
            eprintln!("{info}");
        }
    }));
}

/// A queue of `capacity` whose worker is held inside `apply`; release it with the sender.
pub fn held_queue(
    capacity: usize,
    policy: impl Backpressure<Op>,
) -> (SingularQueue<Probe>, mpsc::Sender<()>) {
    let builder = SingularQueue::builder(Probe::default())
        .capacity(capacity)
        .backpressure(policy);
    hold_worker(builder)
}

/// Spawns the queue `builder` configures and holds its worker inside `apply`; release it with
/// the sender.
pub fn hold_worker(builder: Builder<Probe>) -> (SingularQueue<Probe>, mpsc::Sender<()>) {
    let queue = builder.spawn().unwrap();
    let (hold, started, release) = Op::hold();
    queue.tell(hold).unwrap();
    started.recv().unwrap();
    (queue, release)
}

/// Asserts a quiet queue's books balance: every command submitted was applied, panicked,
/// dropped or not applied; every command its priority lane accepted was taken or dropped.
pub fn books_balance(stats: &Stats) {
    assert_eq!(
        stats.submitted,
        stats.applied + stats.panicked + stats.dropped + stats.not_applied,
        "accounting at quiescence: {stats:?}"
    );
    if let Some(lane) = stats.priority_lane {
        assert_eq!(lane.submitted, lane.taken + lane.dropped, "{lane:?}");
    }
}

/// Joins the submitting threads, waits until the queue is quiet, checks its books balance
/// ([`books_balance`]) and returns its figures.
pub fn settle<S: StateMachine, T>(
    queue: &Handle<S>,
    threads: Vec<std::thread::JoinHandle<T>>,
) -> Stats {
    for thread in threads {
        thread.join().unwrap();
    }
    queue.wait_until_quiet().unwrap();
    let stats = queue.stats();
    books_balance(&stats);
    stats
}

/// A worker held inside a read, so that what is submitted meanwhile waits and is then taken
/// in one batch; made by [`hold_in_a_read`].
pub struct HeldRead {
    release: mpsc::Sender<()>,
    reader: std::thread::JoinHandle<()>,
}

impl HeldRead {
    /// Lets the worker go on, and waits for the reading thread.
    pub fn release(self) {
        self.release.send(()).unwrap();
        self.reader.join().unwrap();
    }
}

/// Holds `handle`'s worker inside a read, from a thread of its own; returns once the worker
/// is in it. A read runs after the batch before it has ended (and its commit has started).
pub fn hold_in_a_read<S: StateMachine>(handle: Handle<S>) -> HeldRead {
    let (entered, in_read) = mpsc::channel();
    let (release, released) = mpsc::channel::<()>();
    let reader = std::thread::spawn(move || {
        let held = handle.read(move |_: &S| {
            entered.send(()).unwrap();
            released.recv().unwrap();
        });
        assert!(held.is_ok(), "the read was refused");
    });
    in_read.recv().unwrap();
    HeldRead { release, reader }
}

/// Panics when dropped (unless already unwinding): user code that runs wherever a value is
/// discarded, on whichever thread discards it.
pub struct Grenade;

impl Drop for Grenade {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            panic!("dropped a grenade");
        }
    }
}

/// Runs `test` on its own thread and fails if it has not finished within `limit`: a hang (a
/// lost wake-up, a deadlock) fails the test instead of stalling the whole run.
pub fn within(limit: std::time::Duration, test: impl FnOnce() + Send + 'static) {
    let (done, finished) = mpsc::channel();
    let runner = std::thread::spawn(move || {
        test();
        let _ = done.send(());
    });
    match finished.recv_timeout(limit) {
        Ok(()) => runner.join().unwrap(),
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            std::panic::resume_unwind(runner.join().unwrap_err())
        }
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("hung: not finished within {limit:?}"),
    }
}

// === Waiting for what no event announces ===

/// Polls `condition` until it holds, or fails after `limit`. Only for conditions that no event
/// announces: a thread falling asleep in the kernel, or leaving `/proc/self/task`. Between
/// looks it yields the CPU to the thread it waits for; the test goes on only once the
/// condition is seen to hold, however long that takes (up to `limit`).
pub fn wait_for(what: &str, limit: std::time::Duration, mut condition: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + limit;
    while !condition() {
        assert!(
            std::time::Instant::now() < deadline,
            "{what}: not within {limit:?}"
        );
        std::thread::yield_now();
    }
}

/// The kernel's id of the calling thread, from `/proc/thread-self` ("<pid>/task/<tid>").
pub fn current_tid() -> u32 {
    let link = std::fs::read_link("/proc/thread-self").expect("read /proc/thread-self");
    link.file_name()
        .and_then(|tid| tid.to_str())
        .and_then(|tid| tid.parse().ok())
        .expect("a numeric thread id")
}

/// The scheduler state of one of this process's threads ('R' running, 'S' sleeping, ...), or
/// `None` once it has exited.
pub fn thread_state(tid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")).ok()?;
    // "tid (comm) S ...": the comm may hold spaces and parentheses, the state follows the last ')'.
    stat.rsplit_once(')')?.1.trim_start().chars().next()
}

/// Waits until every thread in `tids` sleeps in the kernel: each announced itself just before
/// a blocking call, so asleep means blocked inside that call.
pub fn wait_until_asleep(tids: &[u32]) {
    wait_for(
        "threads asleep in their blocking call",
        std::time::Duration::from_secs(5),
        || tids.iter().all(|&tid| thread_state(tid) == Some('S')),
    );
}

/// Takes a snapshot of `handle`'s shards on a thread of its own, and returns once that thread
/// is asleep waiting for the results: its markers are in every shard.
pub fn snapshot_in_the_background<S, R>(
    handle: ShardedHandle<S>,
    f: impl Fn(&S) -> R + Send + Sync + 'static,
) -> std::thread::JoinHandle<Result<Vec<R>, SnapshotError>>
where
    S: StateMachine,
    R: Send + 'static,
{
    let (tid, snapshotter_tid) = mpsc::channel();
    let snapshotter = std::thread::spawn(move || {
        tid.send(current_tid()).unwrap();
        handle.snapshot(f)
    });
    wait_until_asleep(&[snapshotter_tid.recv().unwrap()]);
    snapshotter
}

// === A test that must not take its process down ===

/// Runs `body` in a child process (this test binary, running only the test `name`) and fails
/// unless the child exits successfully: a bug that aborts the process (a panic while
/// panicking, a panicking `Drop` on a detached thread) fails the test instead of the run.
pub fn survives_in_a_child(name: &str, body: impl FnOnce()) {
    const CHILD: &str = "SINGULAR_QUEUE_TEST_CHILD";
    if std::env::var_os(CHILD).is_some() {
        body();
        return;
    }
    let output = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", name, "--test-threads=1", "--nocapture"])
        .env(CHILD, "1")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "the child test process died: {:?}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
}

/// How many places are free now: reserves until refused, then gives every place back.
pub fn free_places<S: StateMachine>(handle: &Handle<S>) -> usize {
    let mut permits = Vec::new();
    while let Ok(permit) = handle.try_reserve() {
        permits.push(permit);
    }
    permits.len()
}
