//! Loom models of `Sharded`'s consistent snapshot: the barrier at the cut keeps causal chains
//! from crossing it backwards, and a marker that is never reached never leaves a shard
//! waiting.
#![cfg(singular_queue_loom)]

use loom::thread;
use singular_queue::{Route, Router, Sharded, SnapshotError, WaitStrategy};
use singular_queue_loom_tests::{Log, check_bounded};

/// Even commands to shard 0, odd ones to shard 1.
struct Parity;

impl Router<u32> for Parity {
    fn route(&self, command: &u32, _shards: usize) -> Route {
        Route::Shard((command & 1) as usize)
    }
}

/// Two shards whose threads park at once when they wait (spinning only adds interleavings).
fn two_shards() -> Sharded<Log> {
    Sharded::builder(2, Parity, |_| Log::default())
        .configure(|_, shard| shard.wait_strategy(WaitStrategy::Park))
        .spawn()
        .unwrap()
}

/// Two clients and two shards. One client makes a causal chain: it calls 2 on shard 0, and
/// once that is applied, tells 3 to shard 1. The other takes a snapshot of both logs. In every
/// interleaving, a snapshot that holds the effect (3) holds its cause (2); both commands are
/// applied once. Without the barrier (each worker computing at its marker and going on), shard
/// 0 can pass its marker, apply 2, and shard 1 apply 3 before reaching its marker: a cut that
/// crosses the chain backwards.
#[test]
fn a_snapshot_never_holds_an_effect_without_its_cause() {
    check_bounded(
        "a_snapshot_never_holds_an_effect_without_its_cause",
        2,
        || {
            let sharded = two_shards();
            let handle = sharded.handle();
            let chain = thread::spawn(move || {
                handle.call(2).unwrap();
                handle.tell(3).unwrap();
            });
            let cut = sharded.snapshot(|log: &Log| log.0.clone()).unwrap();
            if cut[1].contains(&3) {
                assert!(cut[0].contains(&2), "the effect without its cause: {cut:?}");
            }
            chain.join().unwrap();
            let logs: Vec<Vec<u32>> = sharded
                .shutdown()
                .into_iter()
                .map(|s| s.unwrap().0)
                .collect();
            assert_eq!(logs, [vec![2], vec![3]]);
        },
    );
}

/// A snapshot racing `shutdown_now`: a shard that stops before its marker drops it unrun,
/// which fails the cut and releases the shard waiting there. The snapshot always ends, with
/// a cut, or the error that names the shard's fate.
#[test]
fn a_snapshot_racing_shutdown_now_always_ends() {
    check_bounded("a_snapshot_racing_shutdown_now_always_ends", 2, || {
        let sharded = two_shards();
        let handle = sharded.handle();
        let snapshot = thread::spawn(move || handle.snapshot(|log: &Log| log.0.len()));
        drop(sharded.shutdown_now());
        match snapshot.join().unwrap() {
            Ok(lengths) => assert_eq!(lengths, [0, 0]),
            Err(SnapshotError::Closed | SnapshotError::NotApplied) => {}
            Err(other) => panic!("{other}"),
        }
    });
}
