//! `Sharded<S>`: routing, the guarantees per key and per thread, exact accounting under load
//! across shards, cross-shard refusals, broadcast, shutdown, and linearizability per key.

mod support;

use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
use std::thread;
use std::time::{Duration, Instant};

use singular_queue::{
    CallError, OnPanic, Reject, Route, Router, Sharded, ShardedHandle, StateMachine, SubmitError,
    WaitError, by_key, by_keys,
};
use support::within;

#[path = "support/linearizable.rs"]
mod linearizable;

const THREADS: u64 = 6;
const PER_THREAD: u64 = 3000;
const KEYS: u64 = 48;

/// A command of the accounting test: `key`, and maybe a second key it also touches, from
/// `client`'s `seq`-th send.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Write {
    key: u64,
    other: Option<u64>,
    client: u64,
    seq: u64,
}

/// Records, per key, every write applied to it, in the order applied.
#[derive(Default)]
struct Journal {
    keys: HashMap<u64, Vec<(u64, u64)>>,
    thread: Option<String>,
}

impl StateMachine for Journal {
    type Command = Write;
    type Output = ();

    fn apply(&mut self, write: Write) {
        self.thread = thread::current().name().map(str::to_owned);
        let applied = self.keys.entry(write.key).or_default();
        applied.push((write.client, write.seq));
    }
}

fn keys_of(write: &Write) -> impl Iterator<Item = u64> + use<> {
    std::iter::once(write.key).chain(write.other)
}

fn journal(shards: usize, capacity: usize) -> Sharded<Journal> {
    Sharded::builder(shards, by_keys(|w: &Write| keys_of(w)), |_| {
        Journal::default()
    })
    .name("journal")
    .configure(move |_, builder| builder.capacity(capacity).backpressure(Reject))
    .spawn()
    .unwrap()
}

/// What one client saw of its sends.
#[derive(Default)]
struct Seen {
    /// Accepted and applied (its output came), or accepted and only told.
    accepted: Vec<Write>,
    /// Handed back, by reason.
    full: u64,
    cross: u64,
}

/// Sends `PER_THREAD` writes from client `client`, by every way the handle offers, and keeps
/// what became of each.
fn send_all(handle: &ShardedHandle<Journal>, client: u64) -> Seen {
    let random = BuildHasherDefault::<DefaultHasher>::default();
    let mut seen = Seen::default();
    let mut tickets = Vec::new();
    for seq in 0..PER_THREAD {
        let roll = random.hash_one((client, seq));
        let key = roll % KEYS;
        let other = ((roll >> 20) % 5 == 0).then_some((roll >> 30) % KEYS);
        let write = Write {
            key,
            other,
            client,
            seq,
        };
        let outcome = match (roll >> 8) % 4 {
            0 => handle.call(write).map_err(refused_call),
            1 => handle.submit(write).map(|t| tickets.push(t)),
            2 => handle.try_tell(write),
            _ => handle.tell_timeout(write, Duration::from_secs(60)),
        };
        match outcome {
            Ok(()) => seen.accepted.push(write),
            Err(SubmitError::Full(back)) | Err(SubmitError::Timeout(back)) => {
                assert_eq!(back, write);
                seen.full += 1;
            }
            Err(SubmitError::CrossShard(back)) => {
                assert_eq!(back, write);
                assert_eq!(handle.route(&write), Route::CrossShard);
                seen.cross += 1;
            }
            Err(other) => panic!("{other}"),
        }
    }
    for ticket in tickets {
        ticket.wait().unwrap();
    }
    seen
}

/// A refused call as the submit error it carries (every accepted call must succeed here).
fn refused_call(error: CallError<Write>) -> SubmitError<Write> {
    match error {
        CallError::Full(write) => SubmitError::Full(write),
        CallError::CrossShard(write) => SubmitError::CrossShard(write),
        other => panic!("{other}"),
    }
}

/// Six threads send 18 000 writes over 48 keys (a fifth also naming a second key) to three
/// shards of capacity 4 that reject when full, by call, submit, try_tell and tell_timeout.
/// Every write is applied exactly once or handed back with its reason (full, or spanning
/// shards); each key's writes from one client are applied in the order sent; each key lives
/// on the one shard its router names; and the figures agree, per shard and in total.
#[test]
fn every_write_across_shards_is_applied_once_in_order_per_key_or_handed_back() {
    within(Duration::from_secs(120), || {
        let sharded = journal(3, 4);
        let seen: Vec<Seen> = thread::scope(|scope| {
            let clients: Vec<_> = (0..THREADS)
                .map(|client| {
                    let handle = sharded.handle();
                    scope.spawn(move || send_all(&handle, client))
                })
                .collect();
            clients.into_iter().map(|c| c.join().unwrap()).collect()
        });
        sharded.wait_until_quiet().unwrap();
        let stats = sharded.stats();
        let router = by_keys(|w: &Write| keys_of(w));
        let states = sharded.shutdown();

        let accepted: Vec<Write> = seen.iter().flat_map(|s| s.accepted.clone()).collect();
        let full: u64 = seen.iter().map(|s| s.full).sum();
        let cross: u64 = seen.iter().map(|s| s.cross).sum();
        assert_eq!(accepted.len() as u64 + full + cross, THREADS * PER_THREAD);
        assert!(cross > 0 && full > 0, "both refusals were exercised");

        let mut applied = 0;
        for (index, state) in states.into_iter().enumerate() {
            let journal = state.unwrap();
            let expected_name = format!("journal-{index}");
            if journal.thread.is_some() {
                assert_eq!(journal.thread.as_deref(), Some(expected_name.as_str()));
            }
            for (key, writes) in journal.keys {
                let probe = Write {
                    key,
                    other: None,
                    client: 0,
                    seq: 0,
                };
                assert_eq!(router.route(&probe, 3), Route::Shard(index), "key {key}");
                for client in 0..THREADS {
                    let mine = writes.iter().filter(|(c, _)| *c == client).map(|(_, s)| *s);
                    let mine: Vec<u64> = mine.collect();
                    let sent = accepted
                        .iter()
                        .filter(|w| w.client == client && w.key == key);
                    let sent: Vec<u64> = sent.map(|w| w.seq).collect();
                    assert_eq!(mine, sent, "key {key}, client {client}");
                }
                applied += writes.len();
            }
        }
        assert_eq!(applied, accepted.len());
        assert_eq!(stats.total.submitted, accepted.len() as u64);
        assert_eq!(stats.total.applied, accepted.len() as u64);
        assert_eq!(stats.total.rejected + stats.total.timed_out, full);
        assert_eq!(stats.cross_shard, cross);
        let per_shard: u64 = stats.shards.iter().map(|s| s.applied).sum();
        assert_eq!(per_shard, stats.total.applied);
        assert_eq!(stats.total.capacity, 12);
    });
}

/// The project's linearizability checker, per key, on random register operations sent by six
/// threads through one sharded handle (three shards of capacity 4), ten runs.
#[test]
fn every_key_through_the_sharded_handle_is_linearizable() {
    let mut checked = 0;
    for run in 0..10_u64 {
        let sharded = Sharded::builder(3, by_key(|c: &(u64, _)| c.0), |_| {
            linearizable::Registers::default()
        })
        .configure(|_, builder| builder.capacity(4))
        .spawn()
        .unwrap();
        let events: Vec<(u64, linearizable::Event)> = thread::scope(|scope| {
            let threads: Vec<_> = (0..6_u64)
                .map(|t| {
                    let handle = sharded.handle();
                    scope.spawn(move || {
                        let random = BuildHasherDefault::<DefaultHasher>::default();
                        (0..120_u64)
                            .map(|i| {
                                let roll = random.hash_one((run, t, i));
                                let (key, op) = (roll % 12, linearizable::random_op(roll));
                                let start = Instant::now();
                                let output = handle.call((key, op)).unwrap();
                                (key, linearizable::Event::ended(op, output, start))
                            })
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            threads
                .into_iter()
                .flat_map(|t| t.join().unwrap())
                .collect()
        });
        checked += linearizable::check_per_key(events, run);
        assert!(sharded.shutdown().into_iter().all(|state| state.is_ok()));
    }
    assert_eq!(checked, 10 * 6 * 120);
}

/// Counts per key; `Panic` panics.
#[derive(Debug, Default)]
struct Counts(HashMap<u64, u64>);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Count {
    Add(u64),
    Panic(u64),
}

fn count_key(command: &Count) -> u64 {
    match *command {
        Count::Add(key) | Count::Panic(key) => key,
    }
}

impl StateMachine for Counts {
    type Command = Count;
    type Output = u64;

    fn apply(&mut self, command: Count) -> u64 {
        match command {
            Count::Add(key) => {
                let count = self.0.entry(key).or_default();
                *count += 1;
                *count
            }
            Count::Panic(key) => panic!("planted panic on key {key}"),
        }
    }
}

fn counts(shards: usize) -> Sharded<Counts> {
    Sharded::new(shards, by_key(count_key), |_| Counts::default())
}

/// A key owned by shard `shard`.
fn key_on(handle: &ShardedHandle<Counts>, shard: usize) -> u64 {
    (0..)
        .find(|&key| handle.route(&Count::Add(key)) == Route::Shard(shard))
        .unwrap()
}

#[test]
fn a_command_spanning_shards_comes_back_named_and_counted() {
    let sharded = Sharded::new(2, by_keys(|keys: &Vec<u64>| keys.clone()), |_| Journal2);
    let spanning = (0..64)
        .map(|other| vec![0, other])
        .find(|keys| sharded.route(keys) == Route::CrossShard)
        .unwrap();
    let error = sharded.call(spanning.clone()).unwrap_err();
    assert!(error.is_cross_shard(), "{error:?}");
    assert_eq!(
        error.to_string(),
        "the command's keys belong to more than one shard"
    );
    assert_eq!(error.into_inner(), Some(spanning.clone()));
    let error = sharded.tell(spanning.clone()).unwrap_err();
    assert!(error.is_cross_shard());
    assert_eq!(format!("{error:?}"), "CrossShard(..)");
    assert_eq!(error.into_inner(), spanning);
    let stats = sharded.stats();
    assert_eq!((stats.cross_shard, stats.total.submitted), (2, 0));
}

/// A state with nothing in it, for routing tests.
struct Journal2;

impl StateMachine for Journal2 {
    type Command = Vec<u64>;
    type Output = ();
    fn apply(&mut self, _: Vec<u64>) {}
}

/// A router that names a shard that does not exist.
struct Broken;

impl Router<Count> for Broken {
    fn route(&self, _: &Count, shards: usize) -> Route {
        Route::Shard(shards)
    }
}

#[test]
fn a_router_naming_a_missing_shard_panics_saying_so() {
    let sharded = Sharded::new(2, Broken, |_| Counts::default());
    let handle = sharded.handle();
    let panic = thread::spawn(move || handle.tell(Count::Add(1)))
        .join()
        .unwrap_err();
    let message = panic.downcast_ref::<String>().unwrap();
    assert!(message.contains("shard 2 of 2"), "{message}");
    assert_eq!(sharded.stats().total.submitted, 0);
}

#[test]
fn broadcast_gives_every_shard_one_command_and_says_which_refused() {
    let sharded = counts(3);
    sharded.shards()[1].close();
    let outcomes = sharded.broadcast(|shard| Count::Add(shard as u64));
    assert_eq!(outcomes.len(), 3);
    assert_eq!(outcomes[0].as_ref().map(|_| ()).ok(), Some(()));
    assert!(matches!(
        outcomes[1],
        Err(SubmitError::Closed(Count::Add(1)))
    ));
    for outcome in outcomes.into_iter().flatten() {
        assert_eq!(outcome.wait(), Ok(1));
    }
}

/// A shard stopped by a panic keeps what it held; the others go on, and shutdown returns
/// every state in shard order, the poisoned one as `Poisoned` with its unapplied commands.
#[test]
fn shutdown_returns_every_state_and_what_a_poisoned_shard_kept() {
    support::quiet_panics();
    let sharded = Sharded::builder(2, by_key(count_key), |_| Counts::default())
        .configure(|_, builder| builder.on_panic(OnPanic::Stop))
        .spawn()
        .unwrap();
    let (zero, one) = (key_on(&sharded, 0), key_on(&sharded, 1));
    sharded.call(Count::Add(zero)).unwrap();
    let panicked = sharded.call(Count::Panic(one)).unwrap_err();
    assert!(panicked.is_panicked());
    assert!(sharded.tell(Count::Add(one)).unwrap_err().is_closed());
    assert_eq!(sharded.call(Count::Add(zero)).unwrap(), 2);
    assert!(!sharded.is_closed(), "one shard still accepts");
    let mut states = sharded.shutdown().into_iter();
    assert_eq!(states.next().unwrap().unwrap().0[&zero], 2);
    let poisoned = states.next().unwrap().unwrap_err();
    assert!(poisoned.message().contains("planted panic"));
}

/// A state that forwards every command to another shard once, from `apply`: the forward is
/// applied there, or refused and recorded here. Nothing is lost whichever shard a shutdown
/// reaches first.
#[derive(Default)]
struct Forwarder {
    to: Option<ShardedHandle<Forwarder>>,
    applied: Vec<(u64, bool)>,
    refused: Vec<(u64, bool)>,
}

impl StateMachine for Forwarder {
    /// (key, already forwarded?, where to forward: a handle, sent once per shard first).
    type Command = (u64, bool, Option<ShardedHandle<Forwarder>>);
    type Output = ();

    fn apply(&mut self, (key, forwarded, to): Self::Command) {
        if let Some(to) = to {
            self.to = Some(to);
            return;
        }
        self.applied.push((key, forwarded));
        if let (false, Some(to)) = (forwarded, &self.to) {
            // The same key goes to the same shard, so forward a key owned elsewhere.
            if let Err(refused) = to.tell((key + 1, true, None)) {
                assert!(refused.is_closed(), "{refused:?}");
                self.refused.push((key + 1, true));
            }
        }
    }
}

/// Shutting down while shards forward to each other from `apply`: every forward is applied
/// on its shard or refused as closed and recorded, exactly once; no shutdown hangs.
#[test]
fn shutdown_while_shards_forward_to_each_other_loses_nothing() {
    within(Duration::from_secs(60), || {
        for _ in 0..20 {
            let sharded = Sharded::new(2, by_key(|c: &(u64, bool, _)| c.0), |_| {
                Forwarder::default()
            });
            let to = sharded.handle();
            for shard in sharded.shards() {
                shard.tell((0, true, Some(to.clone()))).unwrap();
            }
            drop(to);
            let sent = 400;
            for key in 0..sent {
                sharded.tell((key * 2, false, None)).unwrap();
            }
            let states: Vec<Forwarder> = sharded
                .shutdown()
                .into_iter()
                .map(|state| state.unwrap())
                .collect();
            let applied = |forwarded| {
                let all = states.iter().flat_map(|s| &s.applied);
                all.filter(|(_, f)| *f == forwarded).count() as u64
            };
            let refused: u64 = states.iter().map(|s| s.refused.len() as u64).sum();
            assert_eq!(applied(false), sent);
            assert_eq!(applied(true) + refused, sent, "each forward once");
        }
    });
}

/// Closing from a handle closes every shard; `closed()` ends once all have finished.
#[test]
fn close_from_a_handle_closes_every_shard() {
    let sharded = counts(3);
    let handle = sharded.handle();
    for key in 0..30 {
        handle.tell(Count::Add(key)).unwrap();
    }
    handle.close();
    singular_queue::model::block_on(handle.closed());
    assert!(handle.is_closed());
    assert!(handle.tell(Count::Add(1)).unwrap_err().is_closed());
    let total: u64 = sharded
        .shutdown()
        .into_iter()
        .map(|s| s.unwrap().0.values().sum::<u64>())
        .sum();
    assert_eq!(total, 30);
}

/// A shard's panic under `OnPanic::Continue` is its caller's alone.
#[test]
fn a_panic_on_one_shard_is_reported_to_its_caller_only() {
    support::quiet_panics();
    let sharded = Sharded::builder(2, by_key(count_key), |_| Counts::default())
        .configure(|_, builder| builder.on_panic(OnPanic::Continue))
        .spawn()
        .unwrap();
    let ticket = sharded.submit(Count::Panic(3)).unwrap();
    assert!(matches!(ticket.wait(), Err(WaitError::Panicked(_))));
    assert_eq!(sharded.call(Count::Add(3)).unwrap(), 1);
    let handle = sharded.handle();
    let other = thread::spawn(move || handle.call(Count::Add(4)));
    assert_eq!(other.join().unwrap().unwrap(), 1);
    assert_eq!(sharded.stats().total.panicked, 1);
}
