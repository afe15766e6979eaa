//! Crash test for the durable store: a child process runs it under concurrent writers and is
//! killed with SIGKILL at a random moment; the parent then recovers from the log and checks
//! that every acknowledged write is there and nothing unacknowledged is half-applied.
//!
//! This file has its own `main` (`harness = false`): run with `SQ_CRASH_CHILD=<log path>`, the
//! same binary is the child. The kill points come from a seed that the test prints; set
//! `SQ_CRASH_SEED` to replay a run.
//!
//! What it proves, and what not: SIGKILL ends the process but keeps the kernel's page cache,
//! so the test shows that every write is *handed to the kernel* before it is acknowledged, and
//! that acknowledgements never run ahead of the log (with `ReplyMode::AfterApply` instead of
//! `AfterBatch` it fails). It cannot show that `fsync` reached the disk; that would need power
//! loss. Torn records are covered by `tests/durable_log.rs`.

#[allow(dead_code)]
#[path = "../examples/durable_kv/store.rs"]
mod store;
#[allow(dead_code)]
#[path = "../examples/durable_kv/wal.rs"]
mod wal;

use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher, RandomState};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::thread;

use singular_queue::{ReplyMode, SingularQueue};
use store::DurableKv;

const CHILD_ENV: &str = "SQ_CRASH_CHILD";
const WRITERS: u64 = 4;
/// A child writes at most this many times per writer, in case nobody kills it.
const MAX_WRITES: u64 = 1_000_000;
/// How many crashes to run, each after a different number of acknowledged writes.
const KILL_POINTS: usize = 6;

fn main() {
    match std::env::var_os(CHILD_ENV) {
        Some(path) => child(Path::new(&path)),
        None => parent(),
    }
}

/// The key and value of writer `w`'s `seq`-th write: a value is always derivable from its key,
/// so a half-applied or misplaced write shows.
fn key(w: u64, seq: u64) -> String {
    format!("w{w}-{seq:07}")
}

fn value(w: u64, seq: u64) -> String {
    format!("value of {w}/{seq}").repeat(1 + (seq % 5) as usize)
}

/// Writes until killed, printing `ack <writer> <seq>` once each write is durable.
fn child(path: &Path) {
    let (store, _) = DurableKv::open(path).expect("open the store");
    let queue = SingularQueue::builder(store)
        .reply_mode(ReplyMode::AfterBatch)
        .spawn()
        .expect("spawn the worker");
    thread::scope(|scope| {
        for w in 0..WRITERS {
            let handle = queue.handle();
            scope.spawn(move || {
                let stdout = std::io::stdout();
                for seq in 0..MAX_WRITES {
                    let set = store::Command::Set {
                        key: key(w, seq),
                        value: value(w, seq),
                    };
                    handle.call(set).expect("durable write");
                    writeln!(stdout.lock(), "ack {w} {seq}").expect("report the ack");
                }
            });
        }
    });
}

fn parent() {
    let dir = std::env::temp_dir().join(format!("sq-crash-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("make a scratch directory");
    let seed = match std::env::var("SQ_CRASH_SEED") {
        Ok(seed) => seed.parse().expect("SQ_CRASH_SEED is a number"),
        Err(_) => RandomState::new().hash_one(std::process::id()),
    };
    println!("crash test seed {seed} (set SQ_CRASH_SEED={seed} to replay)");
    let random = BuildHasherDefault::<DefaultHasher>::default();
    let mut total_acks = 0;
    for run in 0..KILL_POINTS {
        // A random kill point: somewhere in the first few thousand acknowledged writes.
        let kill_after = 1 + random.hash_one((seed, run)) % [10, 100, 1_000, 3_000][run % 4];
        let path = dir.join(format!("run-{run}.wal"));
        let acked = crash_once(&path, kill_after);
        let recovered = verify(&path, &acked);
        total_acks += acked.values().map(|&last| last + 1).sum::<u64>();
        println!(
            "kill point {run}: killed after {kill_after} acks; {} acknowledged, {recovered} recovered",
            acked.values().map(|&last| last + 1).sum::<u64>()
        );
    }
    std::fs::remove_dir_all(&dir).expect("remove the scratch directory");
    println!(
        "crash test: {KILL_POINTS} kill points, {total_acks} acknowledged writes all recovered"
    );
}

/// Runs a child until it has acknowledged `kill_after` writes, kills it with SIGKILL, and
/// returns the last acknowledged sequence number of each writer (acks already printed count).
fn crash_once(path: &Path, kill_after: u64) -> HashMap<u64, u64> {
    let mut child = Command::new(std::env::current_exe().expect("this test binary"))
        .env(CHILD_ENV, path)
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the child");
    let mut lines = BufReader::new(child.stdout.take().expect("the child's stdout")).lines();
    let mut acked = HashMap::new();
    let mut seen = 0;
    for line in lines.by_ref() {
        record_ack(&mut acked, &line.expect("read an ack"));
        seen += 1;
        if seen == kill_after {
            break;
        }
    }
    assert_eq!(
        seen, kill_after,
        "the child stopped acknowledging before the kill"
    );
    child.kill().expect("SIGKILL the child");
    // Acks printed before the kill are acknowledged too: read them to the end.
    for line in lines {
        record_ack(&mut acked, &line.expect("read an ack"));
    }
    let status = child.wait().expect("reap the child");
    assert_eq!(
        status.signal(),
        Some(9),
        "the child died of the SIGKILL, not of itself"
    );
    acked
}

fn record_ack(acked: &mut HashMap<u64, u64>, line: &str) {
    let mut words = line
        .split(' ')
        .skip(1)
        .map(|word| word.parse::<u64>().expect("a number"));
    let (w, seq) = (
        words.next().expect("a writer"),
        words.next().expect("a sequence number"),
    );
    let expected = acked.get(&w).map_or(0, |&last| last + 1);
    assert_eq!(seq, expected, "writer {w} acknowledges its writes in order");
    acked.insert(w, seq);
}

/// Recovers the log and checks it against the acks; returns how many writes it recovered.
fn verify(path: &Path, acked: &HashMap<u64, u64>) -> usize {
    let (store, recovery) = DurableKv::open(path).expect("recover the store");
    let map: &BTreeMap<String, String> = store.map();
    let mut prefixes = 0;
    for w in 0..WRITERS {
        // Each writer waits for its ack before its next write, so its recovered writes are a
        // prefix 0..n that covers every ack, plus at most the one write it had in flight.
        let n = (0..)
            .take_while(|&seq| map.contains_key(&key(w, seq)))
            .count() as u64;
        let acked_through = acked.get(&w).map_or(0, |&last| last + 1);
        assert!(
            n >= acked_through,
            "writer {w}: {acked_through} acked, only {n} recovered"
        );
        assert!(
            n <= acked_through + 1,
            "writer {w}: {n} recovered, only {acked_through} acked"
        );
        for seq in 0..n {
            assert_eq!(
                map[&key(w, seq)],
                value(w, seq),
                "writer {w} write {seq} is corrupt"
            );
        }
        prefixes += n as usize;
    }
    assert_eq!(
        map.len(),
        prefixes,
        "no recovered key outside the writers' prefixes"
    );
    assert_eq!(
        map.len(),
        recovery.records,
        "every recovered record is a distinct write"
    );
    // Recovery is idempotent: a second open finds a clean log of the same records.
    drop(store);
    let (again, second) = DurableKv::open(path).expect("reopen the store");
    assert_eq!(
        (second.records, second.discarded_bytes),
        (recovery.records, 0)
    );
    assert_eq!(again.map().len(), recovery.records);
    recovery.records
}
