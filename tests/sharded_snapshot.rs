//! `ShardedHandle::snapshot`: a consistent cut across shards under load, and every way one
//! can fail, each ending (never hanging) with the error that names it.

mod support;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::Duration;

use singular_queue::{
    DropOldest, OnPanic, Route, Sharded, ShardedHandle, SnapshotError, StateMachine, by_key, model,
};
use support::within;

/// Counts per key, and can act on its own sharded queue from `apply`.
#[derive(Debug, Default)]
struct Counts(HashMap<u64, u64>);

enum Command {
    Add(u64),
    /// Takes a snapshot from inside `apply`.
    Snapshot(ShardedHandle<Counts>),
    /// Calls `Add(key)` on the shard that owns `key`, from inside `apply`.
    Call(ShardedHandle<Counts>, u64, u64),
    Panic(u64),
}

#[derive(Debug, PartialEq)]
enum Output {
    Count(u64),
    Snapshot(Result<(), SnapshotError>),
    Call(Result<u64, String>),
}

fn key(command: &Command) -> u64 {
    match command {
        Command::Add(key) | Command::Panic(key) | Command::Call(_, key, _) => *key,
        Command::Snapshot(_) => 0,
    }
}

impl StateMachine for Counts {
    type Command = Command;
    type Output = Output;

    fn apply(&mut self, command: Command) -> Output {
        match command {
            Command::Add(key) => {
                let count = self.0.entry(key).or_default();
                *count += 1;
                Output::Count(*count)
            }
            Command::Snapshot(handle) => Output::Snapshot(handle.snapshot(|_| ()).map(drop)),
            Command::Call(handle, _, key) => Output::Call(match handle.call(Command::Add(key)) {
                Ok(Output::Count(count)) => Ok(count),
                Ok(other) => panic!("{other:?}"),
                Err(error) => Err(error.to_string()),
            }),
            Command::Panic(key) => panic!("planted panic on key {key}"),
        }
    }
}

fn counts(shards: usize) -> Sharded<Counts> {
    Sharded::new(shards, by_key(key), |_| Counts::default())
}

/// The first `n` keys owned by `shard`.
fn keys_on(handle: &ShardedHandle<Counts>, shard: usize, n: usize) -> Vec<u64> {
    let owned = (0..).filter(|&k| handle.route(&Command::Add(k)) == Route::Shard(shard));
    owned.take(n).collect()
}

fn add(handle: &ShardedHandle<Counts>, key: u64) -> u64 {
    match handle.call(Command::Add(key)) {
        Ok(Output::Count(count)) => count,
        other => panic!("{other:?}"),
    }
}

/// Two clients make causal chains across two shards: each adds to a key on one shard, waits
/// for the output, then adds to a key on the other (one goes 0 → 1, the other 1 → 0). A third
/// thread takes snapshots throughout. In every snapshot, each chain's second count is at most
/// its first: a snapshot that saw an effect without its cause would have cut backwards.
#[test]
fn no_snapshot_sees_an_effect_without_its_cause() {
    within(Duration::from_secs(120), || {
        let sharded = counts(2);
        let (on_0, on_1) = (keys_on(&sharded, 0, 2), keys_on(&sharded, 1, 2));
        let chains = [(on_0[0], on_1[0]), (on_1[1], on_0[1])];
        let done = AtomicBool::new(false);
        let snapshots = AtomicU64::new(0);
        thread::scope(|scope| {
            for (cause, effect) in chains {
                let handle = sharded.handle();
                let done = &done;
                scope.spawn(move || {
                    for _ in 0..4000 {
                        add(&handle, cause);
                        add(&handle, effect);
                    }
                    done.store(true, Ordering::Release);
                });
            }
            let handle = sharded.handle();
            let (done, snapshots) = (&done, &snapshots);
            scope.spawn(move || {
                while !done.load(Ordering::Acquire) || snapshots.load(Ordering::Relaxed) < 20 {
                    let cut = handle.snapshot(|counts: &Counts| counts.0.clone()).unwrap();
                    let count = |key| cut.iter().find_map(|c| c.get(&key)).copied();
                    for (cause, effect) in chains {
                        let (cause, effect) = (count(cause), count(effect));
                        assert!(effect.unwrap_or(0) <= cause.unwrap_or(0), "{cut:?}");
                    }
                    snapshots.fetch_add(1, Ordering::Relaxed);
                }
            });
        });
        println!("{} snapshots", snapshots.load(Ordering::Relaxed));
        let states = sharded.shutdown();
        let total: u64 = states
            .iter()
            .map(|s| s.as_ref().unwrap().0.values().sum::<u64>())
            .sum();
        assert_eq!(total, 4 * 4000);
    });
}

#[test]
fn a_snapshot_is_the_state_after_every_command_accepted_before_it() {
    let sharded = counts(3);
    for key in 0..300 {
        sharded.tell(Command::Add(key)).unwrap();
    }
    let totals = sharded
        .snapshot(|c: &Counts| c.0.values().sum::<u64>())
        .unwrap();
    assert_eq!(totals.len(), 3);
    assert_eq!(totals.iter().sum::<u64>(), 300);
    let totals = model::block_on(sharded.snapshot_async(|c: &Counts| c.0.len())).unwrap();
    assert_eq!(totals.iter().sum::<usize>(), 300);
}

#[test]
fn a_panic_in_the_snapshot_function_is_reported_and_the_shards_go_on() {
    support::quiet_panics();
    let sharded = counts(2);
    let failed = sharded.snapshot(|_: &Counts| -> u64 { panic!("planted in f") });
    match failed {
        Err(SnapshotError::Panicked(message)) => assert!(message.contains("planted in f")),
        other => panic!("{other:?}"),
    }
    assert_eq!(add(&sharded, 1), 1);
    assert_eq!(sharded.snapshot(|_| ()).unwrap().len(), 2);
}

#[test]
fn a_snapshot_from_inside_apply_is_refused_as_a_deadlock() {
    let sharded = counts(2);
    let output = sharded.call(Command::Snapshot(sharded.handle())).unwrap();
    assert_eq!(output, Output::Snapshot(Err(SnapshotError::Deadlock)));
    assert_eq!(
        SnapshotError::Deadlock.to_string(),
        "waiting for the snapshot would deadlock"
    );
}

#[test]
fn a_snapshot_with_a_poisoned_shard_fails_as_closed_and_the_others_go_on() {
    support::quiet_panics();
    let sharded = Sharded::builder(2, by_key(key), |_| Counts::default())
        .configure(|_, builder| builder.on_panic(OnPanic::Stop))
        .spawn()
        .unwrap();
    let on_1 = keys_on(&sharded, 1, 1)[0];
    assert!(
        sharded
            .call(Command::Panic(on_1))
            .unwrap_err()
            .is_panicked()
    );
    for _ in 0..3 {
        assert_eq!(sharded.snapshot(|_| ()), Err(SnapshotError::Closed));
    }
    assert_eq!(add(&sharded, keys_on(&sharded, 0, 1)[0]), 1);
}

/// Snapshots racing a `shutdown_now` end, each with a snapshot or the error that names why
/// not: a shard closed before its marker, or stopped before reaching it.
#[test]
fn snapshots_racing_shutdown_now_all_end() {
    within(Duration::from_secs(60), || {
        for _ in 0..50 {
            let sharded = counts(2);
            let handle = sharded.handle();
            let snapshots = thread::spawn(move || {
                for key in 0..200 {
                    let _ = handle.tell(Command::Add(key));
                }
                (0..20).map(|_| handle.snapshot(|_| ())).collect::<Vec<_>>()
            });
            drop(sharded.shutdown_now());
            for outcome in snapshots.join().unwrap() {
                match outcome {
                    Ok(_) | Err(SnapshotError::Closed | SnapshotError::NotApplied) => {}
                    Err(other) => panic!("{other}"),
                }
            }
        }
    });
}

/// While snapshots are taken, each shard's `apply` calls the other shard. A worker blocked in
/// such a call while the other waits at the cut is a cycle of waits: the wait-for graph
/// refuses whichever wait comes second (the snapshot, or the call), so nothing hangs, and each
/// call is applied once or refused with the command back.
#[test]
fn calls_between_shards_from_apply_never_hang_a_snapshot() {
    within(Duration::from_secs(120), || {
        let sharded = counts(2);
        let keys = [keys_on(&sharded, 0, 1)[0], keys_on(&sharded, 1, 1)[0]];
        let refused_calls = AtomicU64::new(0);
        let refused_snapshots = AtomicU64::new(0);
        let done = AtomicBool::new(false);
        thread::scope(|scope| {
            for from in 0..2 {
                let handle = sharded.handle();
                let (refused_calls, done) = (&refused_calls, &done);
                scope.spawn(move || {
                    for _ in 0..3000 {
                        let command = Command::Call(handle.clone(), keys[from], keys[1 - from]);
                        match handle.call(command) {
                            Ok(Output::Call(Ok(_))) => {}
                            Ok(Output::Call(Err(error))) => {
                                assert!(error.contains("deadlock"), "{error}");
                                refused_calls.fetch_add(1, Ordering::Relaxed);
                            }
                            other => panic!("{other:?}"),
                        }
                    }
                    done.store(true, Ordering::Release);
                });
            }
            let handle = sharded.handle();
            let (refused_snapshots, done) = (&refused_snapshots, &done);
            scope.spawn(move || {
                while !done.load(Ordering::Acquire) {
                    match handle.snapshot(|_| ()) {
                        Ok(_) => {}
                        Err(SnapshotError::Deadlock) => {
                            refused_snapshots.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(other) => panic!("{other}"),
                    }
                }
            });
        });
        let refused = refused_calls.load(Ordering::Relaxed);
        println!(
            "{refused} calls and {} snapshots refused",
            refused_snapshots.load(Ordering::Relaxed)
        );
        let states = sharded.shutdown();
        let added: u64 = states
            .iter()
            .map(|s| s.as_ref().unwrap().0.values().sum::<u64>())
            .sum();
        assert_eq!(
            added + refused,
            2 * 3000,
            "each call applied once or refused"
        );
    });
}

/// Under `DropOldest`, an eviction that finds a marker at the head sends it again, behind
/// later commands; with snapshots taken from two threads at once their markers may then
/// cross. Every snapshot still ends, with a cut or `Deadlock`, and every command is applied,
/// evicted and told, or handed back.
#[test]
fn concurrent_snapshots_under_drop_oldest_never_hang() {
    within(Duration::from_secs(120), || {
        let sharded = Sharded::builder(2, by_key(key), |_| Counts::default())
            .configure(|_, builder| builder.capacity(2).backpressure(DropOldest))
            .spawn()
            .unwrap();
        let accepted = AtomicU64::new(0);
        thread::scope(|scope| {
            for client in 0..2_u64 {
                let handle = sharded.handle();
                let accepted = &accepted;
                scope.spawn(move || {
                    for n in 0..5000 {
                        if handle.tell(Command::Add(client * 10_000 + n % 64)).is_ok() {
                            accepted.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                });
            }
            for _ in 0..2 {
                let handle = sharded.handle();
                scope.spawn(move || {
                    for _ in 0..300 {
                        match handle.snapshot(|c: &Counts| c.0.len()) {
                            Ok(_) | Err(SnapshotError::Deadlock) => {}
                            Err(other) => panic!("{other}"),
                        }
                    }
                });
            }
        });
        sharded.wait_until_quiet().unwrap();
        let stats = sharded.stats();
        assert_eq!(stats.total.submitted, accepted.load(Ordering::Relaxed));
        assert_eq!(
            stats.total.submitted,
            stats.total.applied + stats.total.dropped
        );
    });
}

/// A snapshot of 512 idle shards ends. Each arriving worker once recorded an edge to every
/// shard not yet there, each checked over the whole wait-for graph: n⁴ work, minutes in a
/// debug build (found by review). The cut is now one node of the graph.
#[test]
fn a_snapshot_of_512_shards_ends() {
    within(Duration::from_secs(60), || {
        let sharded = counts(512);
        let lengths = sharded.snapshot(|c: &Counts| c.0.len()).unwrap();
        assert_eq!(lengths, vec![0; 512]);
    });
}

/// A result whose `Drop` panics, dropped because the snapshot failed (`f` panicked on another
/// shard), must not turn the error into a panic (found by review).
#[test]
fn a_failed_snapshot_drops_the_other_results_without_panicking_out() {
    support::survives_in_a_child(
        "a_failed_snapshot_drops_the_other_results_without_panicking_out",
        || {
            let sharded = counts(3);
            let on_1 = keys_on(&sharded, 1, 1)[0];
            sharded.call(Command::Add(on_1)).unwrap();
            let result = sharded.snapshot(|c: &Counts| {
                assert!(c.0.is_empty(), "f fails on the shard that holds a key");
                support::Grenade
            });
            assert!(matches!(result, Err(SnapshotError::Panicked(_))));
        },
    );
}
