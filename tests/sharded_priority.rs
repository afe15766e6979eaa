//! The priority lane through a sharded handle (`ShardedHandle::priority`): it exists only when
//! every shard has a lane, routes as the plain handle does, jumps each shard's queue, keeps
//! each lane's own bound, order and figures under load, and a snapshot's cut comes after the
//! priority commands accepted before it.

mod support;

use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use singular_queue::{Reject, Route, Router, Sharded, SubmitError};
use support::{Op, Probe, snapshot_in_the_background, within};

/// Priority commands are numbered from 1 000 000.
const P: u64 = 1_000_000;

/// `Add(n)` goes to shard `n % shards`; a panic command spans shards.
struct ByParity;

impl Router<Op> for ByParity {
    fn route(&self, op: &Op, shards: usize) -> Route {
        match op.number() {
            Some(n) => Route::Shard((n % shards as u64) as usize),
            None => Route::CrossShard,
        }
    }
}

/// Two shards of `Probe`, each with a priority lane of `capacity`, the rest as `configure`
/// leaves it.
fn two_shards(
    capacity: usize,
    configure: impl Fn(singular_queue::Builder<Probe>) -> singular_queue::Builder<Probe> + 'static,
) -> Sharded<Probe> {
    Sharded::builder(2, ByParity, |_| Probe::default())
        .configure(move |_, builder| configure(builder.priority_lane(capacity)))
        .spawn()
        .unwrap()
}

/// Holds every shard's worker inside `apply`; send on each sender to release its shard.
fn hold_every_shard(sharded: &Sharded<Probe>) -> Vec<mpsc::Sender<()>> {
    let mut releases = Vec::new();
    for shard in sharded.shards() {
        let (hold, started, release) = Op::hold();
        shard.tell(hold).unwrap();
        started.recv().unwrap();
        releases.push(release);
    }
    releases
}

#[test]
fn there_is_a_priority_handle_only_when_every_shard_has_a_lane() {
    let one_lane = Sharded::builder(2, ByParity, |_| Probe::default())
        .configure(|shard, builder| match shard {
            0 => builder.priority_lane(4),
            _ => builder,
        })
        .spawn()
        .unwrap();
    assert!(one_lane.priority().is_none());
    assert!(one_lane.shards()[0].priority().is_some());

    let both = two_shards(4, |b| b);
    let urgent = both.priority().unwrap();
    assert!(urgent.priority().is_some(), "a priority handle has one too");
    assert_eq!(urgent.shards()[1].capacity(), 4, "its shards are the lanes");
    assert!(format!("{urgent:?}").contains("priority: true"));
    assert!(format!("{:?}", both.handle()).contains("priority: false"));
}

/// With both workers held, priority commands sent after normal ones are applied first on
/// their own shard, in the order sent; the normal ones follow in theirs.
#[test]
fn urgent_commands_jump_each_shards_queue() {
    within(Duration::from_secs(30), || {
        let sharded = two_shards(8, |b| b);
        let urgent = sharded.priority().unwrap();
        let releases = hold_every_shard(&sharded);
        for n in 0..8 {
            sharded.tell(Op::Add(n)).unwrap();
        }
        for n in 0..6 {
            urgent.tell(Op::Add(P + n)).unwrap();
        }
        assert_eq!(urgent.len(), 6, "the lanes' depth");
        assert_eq!(sharded.len(), 8, "the normal lanes' depth");
        for release in releases {
            release.send(()).unwrap();
        }
        let states = sharded.shutdown();
        let applied: Vec<Vec<u64>> = states.into_iter().map(|s| s.unwrap().applied).collect();
        assert_eq!(applied[0], [P, P + 2, P + 4, 0, 2, 4, 6]);
        assert_eq!(applied[1], [P + 1, P + 3, P + 5, 1, 3, 5, 7]);
    });
}

/// Each handle's `len` and `is_empty` count its own lanes (found by review: the docs said
/// otherwise); `stats().total.depth` counts every lane.
#[test]
fn each_handle_counts_its_own_lanes_and_the_figures_count_all() {
    within(Duration::from_secs(30), || {
        let sharded = two_shards(4, |b| b);
        let urgent = sharded.priority().unwrap();
        let releases = hold_every_shard(&sharded);
        urgent.tell(Op::Add(P)).unwrap();
        urgent.tell(Op::Add(P + 1)).unwrap();
        sharded.tell(Op::Add(2)).unwrap();
        assert_eq!((sharded.len(), urgent.len()), (1, 2));
        assert!(!sharded.is_empty() && !urgent.is_empty());
        let stats = sharded.stats();
        assert_eq!(stats.total.depth, 3);
        assert_eq!(stats.shards[0].depth, 2);
        assert_eq!(sharded.shards()[0].len(), 1);
        assert_eq!(urgent.shards()[0].len(), 1);
        for release in releases {
            release.send(()).unwrap();
        }
        sharded.wait_until_quiet().unwrap();
        assert!(urgent.is_empty() && sharded.is_empty());
    });
}

/// A command whose keys span shards comes back from the priority handle too, counted in the
/// same figure as the plain handle's refusals.
#[test]
fn a_cross_shard_command_on_the_priority_handle_comes_back_and_is_counted() {
    let sharded = two_shards(4, |b| b);
    let urgent = sharded.priority().unwrap();
    let refused = urgent.tell(Op::Panic).unwrap_err();
    assert!(matches!(refused, SubmitError::CrossShard(_)));
    assert!(matches!(refused.into_inner(), Op::Panic));
    assert!(matches!(
        sharded.tell(Op::Panic),
        Err(SubmitError::CrossShard(_))
    ));
    assert_eq!(sharded.stats().cross_shard, 2);
    assert_eq!(urgent.call(Op::Add(P + 1)).ok(), Some(1));
}

/// With a burst of 1 the worker alternates lanes, so it reaches a snapshot's marker in the
/// normal lane before the last priority commands; the cut still comes after every priority
/// command its shard accepted before the marker.
#[test]
fn a_snapshot_comes_after_the_priority_commands_accepted_before_it() {
    within(Duration::from_secs(30), || {
        let sharded = two_shards(8, |b| b.max_priority_burst(1));
        let urgent = sharded.priority().unwrap();
        let releases = hold_every_shard(&sharded);
        for n in 0..2 {
            sharded.tell(Op::Add(n)).unwrap();
        }
        for n in 0..8 {
            urgent.tell(Op::Add(P + n)).unwrap();
        }
        let snapshot = snapshot_in_the_background(sharded.handle(), |p: &Probe| p.applied.len());
        for release in releases {
            release.send(()).unwrap();
        }
        assert_eq!(snapshot.join().unwrap(), Ok(vec![5, 5]));
        for state in sharded.shutdown() {
            assert_eq!(state.unwrap().applied.len(), 5);
        }
    });
}

/// Four threads send through the plain handle and four through the priority handle, whose
/// small lanes refuse when full. Every command is applied exactly once or handed back as
/// full; each thread's commands keep their order on each shard within their lane; the
/// lanes' figures match what was sent exactly.
#[test]
fn each_lane_keeps_its_bound_order_and_figures_under_load() {
    const THREADS: u64 = 4;
    const EACH: u64 = 2_000;
    within(Duration::from_secs(120), || {
        let sharded = two_shards(2, |b| b.capacity(16).priority_backpressure(Reject));
        let plain = sharded.handle();
        let urgent = sharded.priority().unwrap();
        let senders: Vec<_> = (0..2 * THREADS)
            .map(|t| {
                let handle = if t < THREADS {
                    plain.clone()
                } else {
                    urgent.clone()
                };
                let base = if t < THREADS { t * EACH } else { P + t * EACH };
                thread::spawn(move || {
                    let mut refused = 0;
                    for n in base..base + EACH {
                        match handle.tell(Op::Add(n)) {
                            Ok(()) => {}
                            Err(SubmitError::Full(op)) => {
                                assert_eq!(op.number(), Some(n), "the command comes back");
                                refused += 1;
                            }
                            Err(e) => panic!("unexpected refusal: {e}"),
                        }
                    }
                    refused
                })
            })
            .collect();
        let refused: Vec<u64> = senders.into_iter().map(|s| s.join().unwrap()).collect();
        assert_eq!(refused[..THREADS as usize], [0; THREADS as usize], "Block");
        let urgent_refused: u64 = refused.iter().sum();

        sharded.wait_until_quiet().unwrap();
        let stats = sharded.stats();
        let lanes: Vec<_> = stats
            .shards
            .iter()
            .map(|s| s.priority_lane.unwrap())
            .collect();
        let lane_submitted: u64 = lanes.iter().map(|l| l.submitted).sum();
        assert_eq!(lane_submitted, THREADS * EACH - urgent_refused);
        assert_eq!(stats.total.applied, 2 * THREADS * EACH - urgent_refused);

        let mut applied = Vec::new();
        for (shard, state) in sharded.shutdown().into_iter().enumerate() {
            let state = state.unwrap().applied;
            assert!(
                state.iter().all(|n| n % 2 == shard as u64),
                "routed by parity"
            );
            let priority = state.iter().filter(|&&n| n >= P).count() as u64;
            assert_eq!(priority, lanes[shard].submitted, "the lane's own figure");
            for t in 0..2 * THREADS {
                let base = if t < THREADS { t * EACH } else { P + t * EACH };
                let mine: Vec<u64> = state
                    .iter()
                    .copied()
                    .filter(|n| (base..base + EACH).contains(n))
                    .collect();
                assert!(mine.is_sorted(), "thread {t}'s order on shard {shard}");
            }
            applied.extend(state);
        }
        applied.sort_unstable();
        applied.dedup();
        assert_eq!(
            applied.len() as u64,
            2 * THREADS * EACH - urgent_refused,
            "once each"
        );
    });
}
