//! The hostile review of `ShardedHandle::priority`: its probes, which held, kept as
//! regression tests (each states what it tried): shards calling each other's lanes, waits for
//! room against snapshots, drops, `shutdown_now`, poison, restart, cancelled async calls,
//! cross-shard refusals in every submit form, and a stress run under `DropOldest` with a
//! close mid-run. Its one finding (what `len` counts on the plain handle) is decided and
//! tested in `sharded_priority.rs`.

#![allow(clippy::type_complexity)]

mod support;

use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use singular_queue::{
    CallError, OnPanic, Route, Router, Sharded, ShardedHandle, SnapshotError, StateMachine,
    SubmitError, WaitError, model,
};
use support::{books_balance, current_tid, wait_until_asleep, within};

enum Op {
    Add(u64),
    Hold(mpsc::Sender<()>, mpsc::Receiver<()>),
    Panic,
    /// From `apply`: tells `Add(n)` to shard `to` through the given (priority) handle.
    Forward(ShardedHandle<St>, usize, u64),
    /// From `apply`: calls `Add(n)` on shard `to` through the given handle.
    CallFwd(ShardedHandle<St>, usize, u64),
    /// From `apply`: snapshot through the handle.
    Snap(ShardedHandle<St>),
    Tid(mpsc::Sender<u32>),
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
    applied: Vec<u64>,
    results: Vec<String>,
}

impl StateMachine for St {
    type Command = Cmd;
    type Output = usize;
    fn apply(&mut self, command: Cmd) -> usize {
        match command.op {
            Op::Add(n) => self.applied.push(n),
            Op::Hold(started, release) => {
                started.send(()).unwrap();
                let _ = release.recv();
            }
            Op::Panic => panic!("planted"),
            Op::Forward(handle, to, n) => {
                let r = handle.tell(cmd(to, Op::Add(n)));
                self.results
                    .push(format!("{:?}", r.map_err(|e| e.to_string())));
            }
            Op::CallFwd(handle, to, n) => {
                let r = handle.call(cmd(to, Op::Add(n)));
                self.results
                    .push(format!("{:?}", r.map_err(|e| e.to_string())));
            }
            Op::Snap(handle) => {
                let r = handle.snapshot(|s: &St| s.applied.len());
                self.results.push(format!("{r:?}"));
            }
            Op::Tid(tx) => tx.send(current_tid()).unwrap(),
        }
        self.applied.len()
    }
}

struct Explicit;
impl Router<Cmd> for Explicit {
    fn route(&self, command: &Cmd, _shards: usize) -> Route {
        if command.shard == usize::MAX {
            Route::CrossShard
        } else {
            Route::Shard(command.shard)
        }
    }
}

fn spawn(
    n: usize,
    lane: usize,
    f: impl Fn(singular_queue::Builder<St>) -> singular_queue::Builder<St> + 'static,
) -> Sharded<St> {
    Sharded::builder(n, Explicit, |_| St::default())
        .configure(move |_, b| f(b.priority_lane(lane)))
        .spawn()
        .unwrap()
}

fn hold(handle: &ShardedHandle<St>, shard: usize) -> mpsc::Sender<()> {
    let (started_tx, started) = mpsc::channel();
    let (release, release_rx) = mpsc::channel();
    handle
        .tell(cmd(shard, Op::Hold(started_tx, release_rx)))
        .ok()
        .unwrap();
    started.recv().unwrap();
    release
}

fn worker_tid(handle: &ShardedHandle<St>, shard: usize) -> u32 {
    let (tx, rx) = mpsc::channel();
    handle.call(cmd(shard, Op::Tid(tx))).ok().unwrap();
    rx.recv().unwrap()
}

fn balanced(sharded: &Sharded<St>) {
    sharded.stats().shards.iter().for_each(books_balance);
}

/// PROBE 2: shards call each other's priority lanes from apply: one refused, no hang.
#[test]
fn probe_cross_priority_calls_cycle() {
    within(Duration::from_secs(30), || {
        let sharded = spawn(2, 4, |b| b);
        let urgent = sharded.priority().unwrap();
        let r0 = hold(&sharded, 0);
        let r1 = hold(&sharded, 1);
        urgent
            .tell(cmd(0, Op::CallFwd(urgent.clone(), 1, 10)))
            .ok()
            .unwrap();
        urgent
            .tell(cmd(1, Op::CallFwd(urgent.clone(), 0, 20)))
            .ok()
            .unwrap();
        r0.send(()).unwrap();
        r1.send(()).unwrap();
        sharded.wait_until_quiet().unwrap();
        balanced(&sharded);
        let states: Vec<St> = sharded.shutdown().into_iter().map(|s| s.unwrap()).collect();
        let all: Vec<String> = states.iter().flat_map(|s| s.results.clone()).collect();
        eprintln!("{all:?}");
    });
}

/// PROBE 3: shard 0's apply waits for room in shard 1's full priority lane while shard 1
/// waits at a snapshot's cut. Ends.
#[test]
fn probe_room_wait_in_priority_lane_vs_cut() {
    within(Duration::from_secs(30), || {
        let sharded = spawn(2, 1, |b| b);
        let urgent = sharded.priority().unwrap();
        let tid0 = worker_tid(&sharded, 0);
        let r1 = hold(&sharded, 1);
        urgent.tell(cmd(1, Op::Add(1))).ok().unwrap(); // fills shard 1's lane
        let r0 = hold(&sharded, 0);
        sharded
            .tell(cmd(0, Op::Forward(urgent.clone(), 1, 2)))
            .ok()
            .unwrap();
        // markers go in behind.
        let snap = {
            let h = sharded.handle();
            thread::spawn(move || h.snapshot(|s: &St| s.applied.clone()))
        };
        // wait: release shard 0 first: it blocks on room in shard 1's lane.
        r0.send(()).unwrap();
        wait_until_asleep(&[tid0]);
        r1.send(()).unwrap();
        let result = snap.join().unwrap();
        eprintln!("snapshot: {result:?}");
        sharded.wait_until_quiet().unwrap();
        balanced(&sharded);
        let states: Vec<St> = sharded.shutdown().into_iter().map(|s| s.unwrap()).collect();
        eprintln!("{:?}", states[0].results);
        let forwarded = states[1].applied.contains(&2);
        assert_eq!(forwarded, states[0].results[0].starts_with("Ok"));
    });
}

/// PROBE 4: the owner dropped while an outside thread blocks on a full priority lane.
#[test]
fn probe_drop_while_priority_submit_blocks() {
    within(Duration::from_secs(30), || {
        let sharded = spawn(2, 1, |b| b);
        let urgent = sharded.priority().unwrap();
        let r1 = hold(&sharded, 1);
        urgent.tell(cmd(1, Op::Add(1))).ok().unwrap();
        let (tid_tx, tid_rx) = mpsc::channel();
        let u = urgent.clone();
        let blocked = thread::spawn(move || {
            tid_tx.send(current_tid()).unwrap();
            u.tell(cmd(1, Op::Add(2)))
        });
        wait_until_asleep(&[tid_rx.recv().unwrap()]);
        let stats_handle = sharded.handle();
        let dropper = thread::spawn(move || drop(sharded));
        // the dropper waits for shard 1's worker: release it once the gate is closed.
        while !stats_handle.is_closed() {
            thread::yield_now();
        }
        r1.send(()).unwrap();
        dropper.join().unwrap();
        match blocked.join().unwrap() {
            Err(SubmitError::Closed(c)) => assert!(matches!(c.op, Op::Add(2))),
            other => panic!("{:?}", other.map_err(|e| e.to_string())),
        }
        let lane = stats_handle.stats().shards[1].priority_lane.unwrap();
        assert_eq!((lane.submitted, lane.refused_closed, lane.taken), (1, 1, 1));
    });
}

/// PROBE 5: shutdown_now with priority commands waiting and a snapshot waiting.
#[test]
fn probe_shutdown_now_with_snapshot_and_priority() {
    within(Duration::from_secs(30), || {
        let sharded = spawn(2, 4, |b| b);
        let urgent = sharded.priority().unwrap();
        let r0 = hold(&sharded, 0);
        let r1 = hold(&sharded, 1);
        let t0 = urgent.submit(cmd(0, Op::Add(1))).ok().unwrap();
        let t1 = urgent.submit(cmd(1, Op::Add(2))).ok().unwrap();
        let snap = support::snapshot_in_the_background(sharded.handle(), |s: &St| s.applied.len());
        let h = sharded.handle();
        let stopper = thread::spawn(move || sharded.shutdown_now());
        while !h.is_closed() {
            thread::yield_now();
        }
        r0.send(()).unwrap();
        r1.send(()).unwrap();
        let states = stopper.join().unwrap();
        assert_eq!(t0.wait(), Err(WaitError::NotApplied));
        assert_eq!(t1.wait(), Err(WaitError::NotApplied));
        assert_eq!(snap.join().unwrap(), Err(SnapshotError::NotApplied));
        for s in states {
            let (_, unapplied) = s.unwrap();
            assert_eq!(unapplied.len(), 1);
        }
        let stats = h.stats();
        assert_eq!(stats.total.not_applied, 2);
    });
}

/// PROBE 6: a poisoned shard (priority command panics); broadcast and snapshot via urgent.
#[test]
fn probe_poisoned_shard_priority() {
    support::quiet_panics();
    within(Duration::from_secs(30), || {
        let sharded = spawn(2, 4, |b| b.on_panic(OnPanic::Stop));
        let urgent = sharded.priority().unwrap();
        assert!(matches!(
            urgent.call(cmd(0, Op::Panic)),
            Err(CallError::Panicked(_))
        ));
        let results = urgent.broadcast(|i| cmd(i, Op::Add(i as u64)));
        assert!(matches!(results[0], Err(SubmitError::Closed(_))));
        assert!(results[1].is_ok());
        assert_eq!(
            urgent.snapshot(|s: &St| s.applied.len()),
            Err(SnapshotError::Closed)
        );
        let lane0 = sharded.stats().shards[0].priority_lane.unwrap();
        assert_eq!(lane0.refused_closed, 1);
        assert!(!urgent.is_closed());
    });
}

/// PROBE 7: restart_on_panic on a shard, driven through the priority handle.
#[test]
fn probe_restart_priority() {
    support::quiet_panics();
    within(Duration::from_secs(30), || {
        let sharded = spawn(2, 4, |b| b.restart_on_panic(|_| St::default()));
        let urgent = sharded.priority().unwrap();
        urgent.call(cmd(0, Op::Add(1))).ok().unwrap();
        assert!(urgent.call(cmd(0, Op::Panic)).is_err());
        urgent.call(cmd(0, Op::Add(2))).ok().unwrap();
        assert_eq!(
            urgent.snapshot(|s: &St| s.applied.clone()),
            Ok(vec![vec![2], vec![]])
        );
        sharded.wait_until_quiet().unwrap();
        balanced(&sharded);
        assert_eq!(sharded.stats().total.restarts, 1);
    });
}

/// PROBE 8: call_async on a full lane, cancelled while waiting for room.
#[test]
fn probe_async_cancel() {
    within(Duration::from_secs(30), || {
        let sharded = spawn(2, 1, |b| b);
        let urgent = sharded.priority().unwrap();
        let r1 = hold(&sharded, 1);
        urgent.tell(cmd(1, Op::Add(1))).ok().unwrap();
        {
            let fut = urgent.call_async(cmd(1, Op::Add(2)));
            let mut fut = std::pin::pin!(fut);
            let waker = std::task::Waker::noop();
            let mut cx = std::task::Context::from_waker(waker);
            assert!(fut.as_mut().poll(&mut cx).is_pending());
        }
        r1.send(()).unwrap();
        sharded.wait_until_quiet().unwrap();
        balanced(&sharded);
        let lane = sharded.stats().shards[1].priority_lane.unwrap();
        assert_eq!(lane.submitted, 1);
        assert_eq!(
            model::block_on(urgent.call_async(cmd(1, Op::Add(3)))).ok(),
            Some(2)
        );
    });
}

/// PROBE 9: a snapshot through the priority handle from a shard's apply: Deadlock.
#[test]
fn probe_snapshot_from_apply_via_priority() {
    within(Duration::from_secs(30), || {
        let sharded = spawn(2, 4, |b| b);
        let urgent = sharded.priority().unwrap();
        urgent.call(cmd(0, Op::Snap(urgent.clone()))).ok().unwrap();
        let states: Vec<St> = sharded.shutdown().into_iter().map(|s| s.unwrap()).collect();
        assert_eq!(states[0].results, ["Err(Deadlock)"]);
    });
}

/// PROBE 10: cross-shard refusals through every form of the priority handle, counted once.
#[test]
fn probe_cross_shard_counting_all_forms() {
    within(Duration::from_secs(30), || {
        let sharded = spawn(2, 4, |b| b);
        let urgent = sharded.priority().unwrap();
        let x = || cmd(usize::MAX, Op::Add(0));
        assert!(urgent.call(x()).is_err());
        assert!(urgent.try_call(x()).is_err());
        assert!(urgent.call_timeout(x(), Duration::from_secs(1)).is_err());
        assert!(urgent.submit(x()).is_err());
        assert!(urgent.try_submit(x()).is_err());
        assert!(urgent.submit_timeout(x(), Duration::from_secs(1)).is_err());
        assert!(urgent.tell(x()).is_err());
        assert!(urgent.try_tell(x()).is_err());
        assert!(urgent.tell_timeout(x(), Duration::from_secs(1)).is_err());
        assert!(model::block_on(urgent.call_async(x())).is_err());
        assert!(model::block_on(urgent.try_call_async(x())).is_err());
        assert!(model::block_on(urgent.call_timeout_async(x(), Duration::from_secs(1))).is_err());
        assert!(model::block_on(urgent.submit_async(x())).is_err());
        assert!(model::block_on(urgent.submit_timeout_async(x(), Duration::from_secs(1))).is_err());
        assert!(model::block_on(urgent.tell_async(x())).is_err());
        assert!(model::block_on(urgent.tell_timeout_async(x(), Duration::from_secs(1))).is_err());
        let stats = sharded.stats();
        assert_eq!(stats.cross_shard, 16);
        assert_eq!(stats.total.rejected, 0);
        assert_eq!(stats.total.submitted, 0);
    });
}

/// PROBE 11: stress. Four threads submit through the priority handle (DropOldest lanes of 2,
/// every form) and two through the plain handle, while snapshots run and then the shards
/// close from a handle. Every command: applied once, told Dropped (evicted, and on_evict got
/// it), or handed back; every figure exact.
#[test]
fn probe_stress_priority_dropoldest_snapshots_close() {
    use singular_queue::DropOldest;
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex};
    const EACH: u64 = 1_500;
    within(Duration::from_secs(120), || {
        let evicted = Arc::new(Mutex::new(Vec::new()));
        let ev = Arc::clone(&evicted);
        let sharded = Sharded::builder(2, Explicit, |_| St::default())
            .configure(move |_, b| {
                let ev = Arc::clone(&ev);
                b.capacity(8)
                    .priority_lane(2)
                    .priority_backpressure(DropOldest)
                    .max_priority_burst(2)
                    .on_evict(move |c: Cmd| {
                        if let Op::Add(n) = c.op {
                            ev.lock().unwrap().push(n)
                        }
                    })
            })
            .spawn()
            .unwrap();
        let urgent = sharded.priority().unwrap();
        let mut threads = Vec::new();
        for t in 0..6u64 {
            let h = if t < 4 {
                urgent.clone()
            } else {
                sharded.handle()
            };
            threads.push(thread::spawn(move || {
                let mut back = Vec::new();
                let mut dropped = Vec::new();
                for i in 0..EACH {
                    let n = t * 1_000_000 + i;
                    let c = cmd((n % 2) as usize, Op::Add(n));
                    let r: Result<(), (Option<Cmd>, bool)> = match i % 4 {
                        0 => h.tell(c).map_err(|e| (Some(e.into_inner()), false)),
                        1 => match h.call(c) {
                            Ok(_) => Ok(()),
                            Err(CallError::Dropped) => Err((None, true)),
                            Err(e) => Err((e.into_inner(), false)),
                        },
                        2 => match h.submit(c) {
                            Ok(ticket) => match ticket.wait() {
                                Ok(_) => Ok(()),
                                Err(WaitError::Dropped) => Err((None, true)),
                                Err(e) => panic!("{e}"),
                            },
                            Err(e) => Err((Some(e.into_inner()), false)),
                        },
                        _ => match model::block_on(h.call_async(c)) {
                            Ok(_) => Ok(()),
                            Err(CallError::Dropped) => Err((None, true)),
                            Err(e) => Err((e.into_inner(), false)),
                        },
                    };
                    match r {
                        Ok(()) => {}
                        Err((Some(c), _)) => back.push(c.op_number()),
                        Err((None, true)) => dropped.push(n),
                        Err((None, false)) => panic!("lost {n}"),
                    }
                }
                (back, dropped)
            }));
        }
        let snapper = {
            let h = sharded.handle();
            thread::spawn(move || {
                let mut n = 0;
                while !h.is_closed() {
                    match h.snapshot(|s: &St| s.applied.len()) {
                        Ok(_) | Err(SnapshotError::Deadlock) => n += 1,
                        Err(SnapshotError::Closed) | Err(SnapshotError::NotApplied) => break,
                        Err(e) => panic!("{e:?}"),
                    }
                }
                n
            })
        };
        // Close after the first thread is half done.
        let closer = {
            let h = sharded.handle();
            thread::spawn(move || {
                while h.stats().total.applied < 3 * EACH {
                    thread::yield_now();
                }
                h.close();
            })
        };
        let mut back = Vec::new();
        let mut told = Vec::new();
        for t in threads {
            let (b, d) = t.join().unwrap();
            back.extend(b);
            told.extend(d);
        }
        closer.join().unwrap();
        let snaps = snapper.join().unwrap();
        let stats = sharded.stats();
        let states: Vec<St> = sharded.shutdown().into_iter().map(|s| s.unwrap()).collect();
        let mut count: HashMap<u64, u32> = HashMap::new();
        for s in &states {
            for &n in &s.applied {
                *count.entry(n).or_default() += 1;
            }
        }
        let evicted = evicted.lock().unwrap().clone();
        for &n in &evicted {
            *count.entry(n).or_default() += 1;
        }
        for &n in &back {
            *count.entry(n).or_default() += 1;
        }
        assert_eq!(count.len() as u64, 6 * EACH, "every command somewhere");
        assert!(count.values().all(|&c| c == 1), "once each");
        for n in &told {
            assert!(evicted.contains(n), "told Dropped but not evicted: {n}");
        }
        let total = &stats.total;
        assert_eq!(
            total.submitted,
            total.applied + total.dropped + total.not_applied,
            "{total:?}"
        );
        assert_eq!(total.dropped as usize, evicted.len());
        assert_eq!(
            (total.refused_closed + total.rejected + total.timed_out) as usize,
            back.len()
        );
        eprintln!(
            "snapshots {snaps}, back {}, evicted {}",
            back.len(),
            evicted.len()
        );
    });
}

trait OpNumber {
    fn op_number(&self) -> u64;
}
impl OpNumber for Cmd {
    fn op_number(&self) -> u64 {
        match self.op {
            Op::Add(n) => n,
            _ => unreachable!(),
        }
    }
}

/// PROBE 12: shard 1 waits at a snapshot's cut with its priority lane filled from outside;
/// then shard 0's `apply` (ahead of its marker) tells shard 1's full lane (Block). The wait
/// for room closes a cycle through the cut: refused as Deadlock, command handed back; the
/// snapshot completes; figures exact.
#[test]
fn probe_room_wait_after_the_other_shard_is_at_the_cut() {
    within(Duration::from_secs(30), || {
        let sharded = spawn(2, 1, |b| b);
        let urgent = sharded.priority().unwrap();
        let tid1 = worker_tid(&sharded, 1);
        let r0 = hold(&sharded, 0);
        sharded
            .tell(cmd(0, Op::Forward(urgent.clone(), 1, 2)))
            .ok()
            .unwrap();
        let snap =
            support::snapshot_in_the_background(sharded.handle(), |s: &St| s.applied.clone());
        wait_until_asleep(&[tid1]); // at the cut
        urgent.tell(cmd(1, Op::Add(1))).ok().unwrap(); // fills shard 1's lane
        r0.send(()).unwrap();
        let result = snap.join().unwrap();
        assert_eq!(result, Ok(vec![vec![], vec![]]));
        sharded.wait_until_quiet().unwrap();
        balanced(&sharded);
        let lane1 = sharded.stats().shards[1].priority_lane.unwrap();
        assert_eq!((lane1.submitted, lane1.rejected), (1, 1));
        let states: Vec<St> = sharded.shutdown().into_iter().map(|s| s.unwrap()).collect();
        assert!(
            states[0].results[0].contains("deadlock"),
            "{:?}",
            states[0].results
        );
    });
}
