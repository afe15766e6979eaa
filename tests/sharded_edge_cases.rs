//! `Sharded` at the edges a second hostile review probed, after the first review's fixes: a
//! shard's commit thread taking or blocking a snapshot, results whose `Drop` panics, cycles
//! through two cuts, a custom policy (deciding before the gate) racing a close, and
//! snapshots racing a close. Every test has a watchdog; where one must know that a thread is
//! blocked (no event announces it), it waits until the thread is asleep in the kernel.
#![allow(clippy::type_complexity)]

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use singular_queue::{
    Backpressure, BatchInfo, Commit, Decision, Load, Route, Router, Sharded, ShardedHandle,
    SingularQueue, SnapshotError, StateMachine,
};
use support::{current_tid, survives_in_a_child, wait_until_asleep, within};

type Job = Box<dyn FnOnce() + Send>;

#[derive(Default)]
struct St {
    id: usize,
    sum: u64,
    armed: Option<Job>,
}
enum Op {
    Add(u64),
    /// The next commit's job (on the shard's commit thread) runs this.
    Arm(Job),
    /// Runs in `apply`.
    Run(Job),
}
struct Cmd(usize, Op);

impl StateMachine for St {
    type Command = Cmd;
    type Output = u64;
    fn apply(&mut self, Cmd(_, op): Cmd) -> u64 {
        match op {
            Op::Add(n) => self.sum += n,
            Op::Arm(job) => self.armed = Some(job),
            Op::Run(job) => job(),
        }
        self.sum
    }
    fn start_commit(&mut self, _: BatchInfo) -> Commit {
        match self.armed.take() {
            Some(job) => Commit::later(move || {
                job();
                Ok(())
            }),
            None => Commit::done(Ok(())),
        }
    }
}

struct Explicit;
impl Router<Cmd> for Explicit {
    fn route(&self, c: &Cmd, _: usize) -> Route {
        Route::Shard(c.0)
    }
}

fn shards(n: usize) -> Sharded<St> {
    Sharded::new(n, Explicit, |id| St {
        id,
        ..St::default()
    })
}

/// PROMISE: `Deadlock` only for a wait that would never end. A shard's commit job (a
/// checkpoint, say) takes a snapshot of its own sharded queue. No shard's worker waits for
/// that commit thread to reach its marker (the fix's own argument for the cut's edges), so
/// the snapshot completes. The caller's check and its waits for the results once counted
/// the shards' commit threads too, and refused it (found by review).
#[test]
fn a_commit_job_may_snapshot_its_own_sharded_queue() {
    within(Duration::from_secs(20), || {
        let sharded = shards(2);
        let handle = sharded.handle();
        let (tx, rx) = mpsc::channel();
        let job: Job = Box::new(move || {
            let snap = handle.snapshot(|s: &St| s.sum);
            tx.send(snap).unwrap();
        });
        sharded.tell(Cmd(0, Op::Arm(job))).ok().unwrap();
        let snap = rx.recv().unwrap();
        assert_eq!(snap, Ok(vec![0, 0]), "a commit job's snapshot");
    });
}

/// An unrelated queue whose `apply` takes a snapshot once told to go.
struct Other;
enum Ask {
    Nothing,
    Snap(
        ShardedHandle<St>,
        mpsc::Receiver<()>,
        mpsc::Sender<Result<Vec<u64>, SnapshotError>>,
    ),
}
/// Two shards, and a queue of `Other` whose worker takes a snapshot of them once `go` is
/// sent; the snapshot comes out of the receiver.
fn a_worker_waiting_to_snapshot() -> (
    Sharded<St>,
    SingularQueue<Other>,
    mpsc::Sender<()>,
    mpsc::Receiver<Result<Vec<u64>, SnapshotError>>,
) {
    let sharded = shards(2);
    let q = SingularQueue::new(Other);
    let (go, go_rx) = mpsc::channel();
    let (out, out_rx) = mpsc::channel();
    q.tell(Ask::Snap(sharded.handle(), go_rx, out))
        .ok()
        .unwrap();
    (sharded, q, go, out_rx)
}

impl StateMachine for Other {
    type Command = Ask;
    type Output = ();
    fn apply(&mut self, ask: Ask) {
        if let Ask::Snap(handle, go, out) = ask {
            go.recv().unwrap();
            out.send(handle.snapshot(|s: &St| s.sum)).unwrap();
        }
    }
}

/// PROMISE: `Deadlock` only for a wait that would never end. Queue Q's `apply` takes a
/// snapshot while shard 0's commit job waits for Q (a call). Shard 0's worker is idle and
/// reaches its marker at once (it never waits for its commit thread), so the snapshot would
/// complete and then Q serves the job's call. It was refused while the caller's check and
/// its waits for the results counted the shards' commit threads (found by review).
#[test]
fn a_snapshot_from_a_worker_that_a_shards_commit_job_calls_completes() {
    within(Duration::from_secs(20), || {
        let (sharded, q, go, out_rx) = a_worker_waiting_to_snapshot();
        let (tid_tx, tid_rx) = mpsc::channel();
        let (called_tx, called_rx) = mpsc::channel();
        let qh = q.handle();
        let job: Job = Box::new(move || {
            tid_tx.send(current_tid()).unwrap();
            called_tx.send(qh.call(Ask::Nothing).is_ok()).unwrap();
        });
        sharded.tell(Cmd(0, Op::Arm(job))).ok().unwrap();
        // The commit job is asleep in its call to Q (Q's worker waits for `go`).
        wait_until_asleep(&[tid_rx.recv().unwrap()]);
        go.send(()).unwrap();
        let snap = out_rx.recv().unwrap();
        assert!(called_rx.recv().unwrap(), "the job's call");
        assert_eq!(snap, Ok(vec![0, 0]), "Q's snapshot");
    });
}

/// Panics when dropped.
struct Bomb;
impl Drop for Bomb {
    fn drop(&mut self) {
        panic!("bomb dropped");
    }
}

/// PROMISE: the error reaches the caller. `f` panics on shard 0, and returns a value whose
/// `Drop` panics on shards 1 and 2. Dropped under one `catch`, the second panic came during
/// the first's unwinding and aborted the process (found by review); each result is now
/// dropped under its own.
#[test]
fn a_failed_snapshot_with_two_results_that_panic_when_dropped_returns_the_error() {
    survives_in_a_child(
        "a_failed_snapshot_with_two_results_that_panic_when_dropped_returns_the_error",
        || {
            within(Duration::from_secs(20), || {
                support::quiet_panics();
                let sharded = shards(3);
                let snap = sharded.snapshot(|s: &St| {
                    assert!(s.id != 0, "f fails on shard 0");
                    Bomb
                });
                assert!(matches!(snap, Err(SnapshotError::Panicked(_))));
                std::mem::forget(sharded);
            });
        },
    );
}

/// A policy of the user's own: decides by the command's number, counting its decisions.
struct Mixed(Arc<AtomicU64>);
impl Backpressure<u64> for Mixed {
    fn decide(&self, n: &u64, _: &Load<'_>) -> Decision {
        self.0.fetch_add(1, Ordering::Relaxed);
        match n % 4 {
            0 => Decision::Wait,
            1 => Decision::RejectIfFull,
            2 => Decision::EvictOldest,
            _ => Decision::WaitFor(Duration::from_millis(1)),
        }
    }
}

/// PROMISE: nothing lost, stats exact. Submitters under a custom policy (which now decides
/// outside the gate), `tell` and `tell_many`, race a `close` from a handle. Every command is
/// applied once, evicted (told), or handed back; the counters agree.
#[test]
fn a_custom_policy_racing_a_close_loses_nothing() {
    within(Duration::from_secs(60), || {
        for round in 0..30 {
            let decisions = Arc::new(AtomicU64::new(0));
            let evicted = Arc::new(AtomicU64::new(0));
            let ev = Arc::clone(&evicted);
            let queue = SingularQueue::builder(support::Sum::default())
                .capacity(3)
                .backpressure(Mixed(Arc::clone(&decisions)))
                .on_evict(move |_| {
                    ev.fetch_add(1, Ordering::Relaxed);
                })
                .spawn()
                .unwrap();
            let accepted = Arc::new(AtomicU64::new(0));
            let refused = Arc::new(AtomicU64::new(0));
            let sent = Arc::new(AtomicUsize::new(0));
            let mut threads = Vec::new();
            for t in 0..3u64 {
                let (h, acc, refd, sent) = (
                    queue.handle(),
                    Arc::clone(&accepted),
                    Arc::clone(&refused),
                    Arc::clone(&sent),
                );
                threads.push(thread::spawn(move || {
                    for i in 0..300u64 {
                        sent.fetch_add(1, Ordering::Relaxed);
                        if t == 2 && i % 10 == 0 {
                            let batch: Vec<u64> = (0..5).map(|k| i + k).collect();
                            match h.tell_many(batch) {
                                Ok(()) => acc.fetch_add(5, Ordering::Relaxed),
                                Err(e) => {
                                    let back = e.into_inner().len() as u64;
                                    acc.fetch_add(5 - back, Ordering::Relaxed);
                                    refd.fetch_add(back, Ordering::Relaxed)
                                }
                            };
                        } else {
                            match h.tell(i * 3 + t) {
                                Ok(()) => acc.fetch_add(1, Ordering::Relaxed),
                                Err(_) => refd.fetch_add(1, Ordering::Relaxed),
                            };
                        }
                    }
                }));
            }
            let closer = queue.handle();
            let at = 100 + round * 20;
            while sent.load(Ordering::Relaxed) < at {
                thread::yield_now();
            }
            closer.close();
            for t in threads {
                t.join().unwrap();
            }
            let after = queue.handle();
            let state = queue.shutdown().unwrap();
            let stats = after.stats();
            let (acc, refd, ev) = (
                accepted.load(Ordering::Relaxed),
                refused.load(Ordering::Relaxed),
                evicted.load(Ordering::Relaxed),
            );
            assert_eq!(
                state.count + ev,
                acc,
                "round {round}: applied + evicted = accepted"
            );
            assert_eq!(stats.submitted, acc, "round {round}: submitted");
            assert_eq!(stats.applied, state.count, "round {round}: applied");
            assert_eq!(stats.dropped, ev, "round {round}: dropped");
            assert_eq!(
                stats.refused_closed + stats.rejected + stats.timed_out,
                refd,
                "round {round}: refusals counted {stats:?}"
            );
        }
    });
}

/// PROMISE: snapshots are consistent cuts and never hang, with markers going in while the
/// shards close from a handle (`Closed` after some markers went in), repeatedly: each ends,
/// with a cut or an error, and later snapshots/calls on a fresh queue are not refused as
/// deadlocks by anything left in the wait-for graph.
#[test]
fn snapshots_racing_close_leave_nothing_behind() {
    within(Duration::from_secs(60), || {
        for round in 0..40 {
            let sharded = shards(4);
            let h = sharded.handle();
            let snapper = thread::spawn(move || {
                let mut outcomes = Vec::new();
                for _ in 0..5 {
                    outcomes.push(h.snapshot(|s: &St| s.sum));
                }
                outcomes
            });
            for k in 0..(round % 7) {
                let _ = sharded.tell(Cmd(k % 4, Op::Add(1)));
            }
            sharded.shards()[round % 4].close();
            let outcomes = snapper.join().unwrap();
            for o in &outcomes {
                assert!(
                    matches!(
                        o,
                        Ok(_) | Err(SnapshotError::Closed | SnapshotError::NotApplied)
                    ),
                    "{o:?}"
                );
            }
            drop(sharded);
        }
        // A fresh pair: a worker calling the other queue and snapshotting must not be refused.
        let (_sharded, _q, go, out_rx) = a_worker_waiting_to_snapshot();
        go.send(()).unwrap();
        assert_eq!(out_rx.recv().unwrap(), Ok(vec![0, 0]));
    });
}

fn tid_of(h: &ShardedHandle<St>, shard: usize) -> u32 {
    let (tx, rx) = mpsc::channel();
    h.call(Cmd(
        shard,
        Op::Run(Box::new(move || tx.send(current_tid()).unwrap())),
    ))
    .ok()
    .unwrap();
    rx.recv().unwrap()
}

/// Holds `shard` in `apply` until released; then runs `then` there.
fn hold_then(h: &ShardedHandle<St>, shard: usize, then: Job) -> mpsc::Sender<()> {
    let (started_tx, started) = mpsc::channel();
    let (release, release_rx) = mpsc::channel::<()>();
    let job: Job = Box::new(move || {
        started_tx.send(()).unwrap();
        release_rx.recv().unwrap();
        then();
    });
    h.tell(Cmd(shard, Op::Run(job))).ok().unwrap();
    started.recv().unwrap();
    release
}

/// PROMISE: never hangs; a wait that would deadlock is refused. Two sharded queues, a cycle
/// through both cuts: A0 waits at A's cut for A1; A1 calls B0, which waits at B's cut for B1;
/// B1 calls A0. The last wait must be refused, and everything must end.
#[test]
fn a_cycle_through_two_cuts_is_refused() {
    within(Duration::from_secs(20), || {
        let a = shards(2);
        let b = shards(2);
        let (a0, b0) = (tid_of(&a, 0), tid_of(&b, 0));
        let (bh, ah) = (b.handle(), a.handle());
        let (a1_tid_tx, a1_tid) = mpsc::channel();
        let (a1_out_tx, a1_out) = mpsc::channel();
        let release_a1 = hold_then(
            &a,
            1,
            Box::new(move || {
                a1_tid_tx.send(current_tid()).unwrap();
                a1_out_tx.send(bh.call(Cmd(0, Op::Add(1))).is_ok()).unwrap();
            }),
        );
        let (b1_out_tx, b1_out) = mpsc::channel();
        let release_b1 = hold_then(
            &b,
            1,
            Box::new(move || {
                b1_out_tx
                    .send(ah.call(Cmd(0, Op::Add(1))).map_err(|e| e.to_string()))
                    .unwrap();
            }),
        );
        let (ha, hb) = (a.handle(), b.handle());
        let (stx, srx) = mpsc::channel();
        let stx2 = stx.clone();
        let snap_a = thread::spawn(move || {
            stx.send(current_tid()).unwrap();
            ha.snapshot(|s: &St| s.sum)
        });
        let snap_b = thread::spawn(move || {
            stx2.send(current_tid()).unwrap();
            hb.snapshot(|s: &St| s.sum)
        });
        // Both snapshots' markers are in (their callers sleep on the results) ...
        wait_until_asleep(&[srx.recv().unwrap(), srx.recv().unwrap()]);
        wait_until_asleep(&[a0, b0]); // ... and both shards 0 sleep at their cuts
        release_a1.send(()).unwrap();
        wait_until_asleep(&[a1_tid.recv().unwrap()]); // A1 in its call to B0
        release_b1.send(()).unwrap();
        let b1 = b1_out.recv().unwrap();
        let a1 = a1_out.recv().unwrap();
        let (sa, sb) = (snap_a.join().unwrap(), snap_b.join().unwrap());
        eprintln!("B1's call {b1:?}, A1's call {a1}, snapshots {sa:?} {sb:?}");
        assert!(a1);
        assert!(b1.is_err(), "B1's call closes the cycle: {b1:?}");
        assert!(sa.is_ok() && sb.is_ok());
    });
}
