//! `Sharded` under two hazards a hostile review found: a policy that waits for another shard
//! while a snapshot holds it at the cut (or takes the snapshot itself) as its shard closes or
//! is poisoned, and a wait for room that was granted while a snapshot waits. Each test states
//! the promise it checks. Where a test must know that a thread is blocked (no
//! event announces it), it waits until the thread is asleep in the kernel.

// Test plumbing: channels and shared slots, typed in place.
#![allow(clippy::type_complexity)]

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};
use std::thread;
use std::time::Duration;

use singular_queue::{
    Backpressure, Decision, Load, OnPanic, Route, Router, Sharded, ShardedHandle, SnapshotError,
    StateMachine, SubmitError,
};
use support::{current_tid, wait_until_asleep, within};

/// A command names its shard explicitly (`Cmd::shard`), so tests place commands exactly.
enum Op {
    Add(u64),
    /// Says "started", then waits for the release.
    Hold(mpsc::Sender<()>, mpsc::Receiver<()>),
    /// Tells the worker's thread id.
    Tid(mpsc::Sender<u32>),
    Panic,
    /// A submit whose policy runs a snapshot (see `SnapshotPolicy`).
    Snap,
    /// A submit whose policy calls `Add(0)` on shard `.0` (see `SnapshotPolicy`).
    CallOther(usize),
    /// From `apply`: tells `Add(n)` to shard `to` through the sharded handle.
    Forward(ShardedHandle<St>, usize, u64),
}

struct Cmd {
    shard: usize,
    op: Op,
}

fn cmd(shard: usize, op: Op) -> Cmd {
    Cmd { shard, op }
}

#[derive(Debug, Default)]
struct St {
    sum: u64,
    /// What each `Forward` got back.
    forwards: Vec<Result<(), String>>,
}

impl StateMachine for St {
    type Command = Cmd;
    type Output = u64;
    fn apply(&mut self, command: Cmd) -> u64 {
        match command.op {
            Op::Add(n) => self.sum += n,
            Op::Hold(started, release) => {
                started.send(()).unwrap();
                release.recv().unwrap();
            }
            Op::Tid(tx) => tx.send(current_tid()).unwrap(),
            Op::Panic => panic!("planted"),
            Op::Snap | Op::CallOther(_) => {}
            Op::Forward(handle, to, n) => {
                let result = handle.tell(cmd(to, Op::Add(n)));
                self.forwards.push(result.map_err(|e| e.to_string()));
            }
        }
        self.sum
    }
}

struct Explicit;
impl Router<Cmd> for Explicit {
    fn route(&self, command: &Cmd, _shards: usize) -> Route {
        Route::Shard(command.shard)
    }
}

fn hold(handle: &ShardedHandle<St>, shard: usize) -> mpsc::Sender<()> {
    let (started_tx, started) = mpsc::channel();
    let (release, release_rx) = mpsc::channel();
    handle
        .tell(cmd(shard, Op::Hold(started_tx, release_rx)))
        .unwrap();
    started.recv().unwrap();
    release
}

fn worker_tid(handle: &ShardedHandle<St>, shard: usize) -> u32 {
    let (tx, rx) = mpsc::channel();
    handle.call(cmd(shard, Op::Tid(tx))).ok().unwrap();
    rx.recv().unwrap()
}

/// A policy that, for `Op::Snap`, takes a snapshot of the sharded queue it belongs to, then
/// waits for room like `Block`.
#[derive(Clone, Default)]
struct SnapshotPolicy {
    handle: Arc<OnceLock<ShardedHandle<St>>>,
    result: Arc<Mutex<Option<Result<Vec<u64>, SnapshotError>>>>,
    call_result: Arc<Mutex<Option<Result<u64, String>>>>,
    tid: Arc<Mutex<Option<u32>>>,
    entered: Arc<Mutex<Option<mpsc::Sender<()>>>>,
}

impl Backpressure<Cmd> for SnapshotPolicy {
    fn decide(&self, command: &Cmd, _load: &Load<'_>) -> Decision {
        if let Op::Snap = command.op {
            *self.tid.lock().unwrap() = Some(current_tid());
            if let Some(tx) = self.entered.lock().unwrap().take() {
                tx.send(()).unwrap();
            }
            let handle = self.handle.get().unwrap();
            let result = handle.snapshot(|s: &St| s.sum);
            *self.result.lock().unwrap() = Some(result);
        }
        if let Op::CallOther(to) = command.op {
            *self.tid.lock().unwrap() = Some(current_tid());
            if let Some(tx) = self.entered.lock().unwrap().take() {
                tx.send(()).unwrap();
            }
            let handle = self.handle.get().unwrap();
            let result = handle.call(cmd(to, Op::Add(0)));
            *self.call_result.lock().unwrap() = Some(result.map_err(|e| e.to_string()));
        }
        Decision::Wait
    }
}

/// Submits `op` to shard 0 on a thread of its own, and returns once its policy is asleep in
/// what `op` makes it do.
fn submit_through_the_policy(
    sharded: &Sharded<St>,
    policy: &SnapshotPolicy,
    op: Op,
) -> thread::JoinHandle<Result<(), SubmitError<Cmd>>> {
    let (entered_tx, entered) = mpsc::channel();
    *policy.entered.lock().unwrap() = Some(entered_tx);
    let handle = sharded.handle();
    let submitter = thread::spawn(move || handle.tell(cmd(0, op)));
    entered.recv().unwrap();
    wait_until_asleep(&[policy.tid.lock().unwrap().unwrap()]);
    submitter
}

fn with_snapshot_policy(max_batch: usize) -> (Sharded<St>, SnapshotPolicy) {
    let policy = SnapshotPolicy::default();
    let p = policy.clone();
    let sharded = Sharded::builder(2, Explicit, |_| St::default())
        .configure(move |_, b| {
            b.backpressure(p.clone())
                .on_panic(OnPanic::Stop)
                .max_batch(max_batch)
        })
        .spawn()
        .unwrap();
    policy.handle.set(sharded.handle()).ok().unwrap();
    (sharded, policy)
}

/// PROMISE: never hangs. A snapshot taken from a `Backpressure` policy while the shard is
/// closed from a handle. The worker, finishing on its own, waits for the gate to be quiet
/// before it looks at its channel, and the policy's snapshot waits for the worker to reach its
/// marker there: a hang while the policy ran inside the gate (found by review). The policy
/// now runs before the gate: the worker drains, the snapshot completes, and the submit is
/// refused as closed.
#[test]
fn a_snapshot_from_a_policy_racing_a_close_completes() {
    within(Duration::from_secs(20), || {
        let (sharded, policy) = with_snapshot_policy(1);
        let release = hold(&sharded, 0);
        // The submitter sleeps on its snapshot's tickets: the markers are in.
        let submitter = submit_through_the_policy(&sharded, &policy, Op::Snap);
        sharded.shards()[0].close();
        release.send(()).unwrap();
        assert!(submitter.join().unwrap().unwrap_err().is_closed());
        let result = policy.result.lock().unwrap().take().unwrap();
        assert_eq!(result, Ok(vec![0, 0]));
        drop(sharded);
    });
}

/// PROMISE: never hangs. As above, with a panic that poisons the shard (`OnPanic::Stop`) ahead
/// of the marker, in its own batch: the marker is dropped unrun, and the snapshot says so.
#[test]
fn a_snapshot_from_a_policy_racing_a_poisoning_panic_ends() {
    within(Duration::from_secs(20), || {
        support::quiet_panics();
        let (sharded, policy) = with_snapshot_policy(1);
        let release = hold(&sharded, 0);
        sharded.tell(cmd(0, Op::Panic)).unwrap();
        let submitter = submit_through_the_policy(&sharded, &policy, Op::Snap);
        release.send(()).unwrap();
        assert!(submitter.join().unwrap().unwrap_err().is_closed());
        let result = policy.result.lock().unwrap().take().unwrap();
        assert_eq!(result, Err(SnapshotError::NotApplied));
        drop(sharded);
    });
}

/// Shard 0's `apply` tells shard 1, which is full (`Block`): shard 0's worker waits for room.
/// Shard 1 then takes the command that filled it (making room) and reaches its marker at once.
/// A worker waiting for room counts as waiting until it runs again (it may lose the place to
/// another submitter: see `Handle`), so the cut may refuse to wait for it, as `Deadlock`: a
/// snapshot to retry, documented on `SnapshotError::Deadlock` (found by review). PROMISE:
/// the snapshot ends, with a cut or `Deadlock`, and the forward is applied once.
#[test]
fn a_wait_for_room_granted_meanwhile_ends_the_snapshot_and_applies_the_forward() {
    let runs = 20;
    let refused = AtomicUsize::new(0);
    for _ in 0..runs {
        let sharded = Sharded::builder(2, Explicit, |_| St::default())
            .configure(|_, b| b.capacity(1))
            .spawn()
            .unwrap();
        let tid0 = worker_tid(&sharded, 0);
        let release = hold(&sharded, 1);
        sharded.tell(cmd(1, Op::Add(1))).unwrap(); // shard 1 is now full
        sharded
            .tell(cmd(0, Op::Forward(sharded.handle(), 1, 10)))
            .unwrap();
        wait_until_asleep(&[tid0]); // shard 0's worker waits for room in shard 1
        let handle = sharded.handle();
        let (marked_tx, marked) = mpsc::channel();
        let snapshotter = thread::spawn(move || {
            marked_tx.send(current_tid()).unwrap();
            handle.snapshot(|s: &St| s.sum)
        });
        let tid = marked.recv().unwrap();
        wait_until_asleep(&[tid]); // the markers are in
        release.send(()).unwrap();
        let result = snapshotter.join().unwrap();
        sharded.wait_until_quiet().unwrap();
        let states = sharded.shutdown();
        let s0 = states[0].as_ref().unwrap();
        assert_eq!(s0.forwards, vec![Ok(())], "the forward got its room");
        assert_eq!(states[1].as_ref().unwrap().sum, 11, "applied once");
        if result == Err(SnapshotError::Deadlock) {
            refused.fetch_add(1, Ordering::Relaxed);
        } else {
            assert_eq!(result, Ok(vec![0, 1]));
        }
    }
    println!(
        "{} of {runs} snapshots refused",
        refused.load(Ordering::Relaxed)
    );
}

/// PROMISE: never hangs. Shard 0's policy calls shard 1, while shard 1 waits at a snapshot's
/// cut for shard 0 (the call lands behind shard 1's marker), and `close()` makes shard 0's
/// worker wait for its gate to be quiet before it looks at its channel, where its marker is.
/// While the policy ran inside the gate, that was a three-way wait the wait-for graph never
/// saw (worker 0 -> submitter -> shard 1 -> worker 0; found by review). Now the submit is
/// refused as closed, the policy's call is applied, and the snapshot completes.
#[test]
fn a_policy_calling_another_shard_during_a_snapshot_and_a_close_ends() {
    within(Duration::from_secs(20), || {
        let (sharded, policy) = with_snapshot_policy(1);
        let release = hold(&sharded, 0);
        // A snapshot: shard 1 reaches its marker and waits at the cut for shard 0.
        let snapshotter = support::snapshot_in_the_background(sharded.handle(), |s: &St| s.sum);
        // A submit to shard 0 whose policy calls shard 1 (behind shard 1's marker).
        let submitter = submit_through_the_policy(&sharded, &policy, Op::CallOther(1));
        sharded.close();
        release.send(()).unwrap();
        assert!(submitter.join().unwrap().unwrap_err().is_closed());
        assert_eq!(snapshotter.join().unwrap(), Ok(vec![0, 0]));
        let call = policy.call_result.lock().unwrap().take();
        assert!(call.is_some_and(|call| call.is_ok() || call.unwrap_err().contains("closed")));
        drop(sharded);
    });
}

/// The same three-way wait with the default settings (no `max_batch(1)`), a poisoning panic
/// instead of a close: shard 0 has a backlog longer than one batch ahead of its marker, and
/// a command that panics (`OnPanic::Stop`) in it. The marker is dropped unrun; the snapshot
/// says so; the submit to the poisoned shard is refused as closed.
#[test]
fn a_policy_calling_another_shard_during_a_snapshot_and_a_poisoning_panic_ends() {
    within(Duration::from_secs(20), || {
        support::quiet_panics();
        let (sharded, policy) = with_snapshot_policy(singular_queue::DEFAULT_MAX_BATCH);
        let release = hold(&sharded, 0);
        sharded.tell(cmd(0, Op::Panic)).unwrap();
        for _ in 0..singular_queue::DEFAULT_MAX_BATCH {
            sharded.tell(cmd(0, Op::Add(1))).unwrap();
        }
        let snapshotter = support::snapshot_in_the_background(sharded.handle(), |s: &St| s.sum);
        let submitter = submit_through_the_policy(&sharded, &policy, Op::CallOther(1));
        release.send(()).unwrap();
        assert!(submitter.join().unwrap().unwrap_err().is_closed());
        assert_eq!(snapshotter.join().unwrap(), Err(SnapshotError::NotApplied));
        assert_eq!(policy.call_result.lock().unwrap().take(), Some(Ok(0)));
        drop(sharded);
    });
}
