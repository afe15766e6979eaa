//! Durable writes: this queue with group commit against a `Mutex` that appends and fsyncs every
//! write, on the same file system, in the same run, runs interleaved.
//!
//! `cargo bench --bench durable` (set `SQ_BENCH_SECONDS` to change the length of each run).

#[allow(dead_code)]
#[path = "../examples/durable_kv/store.rs"]
mod store;
#[allow(dead_code)]
#[path = "../examples/durable_kv/wal.rs"]
mod wal;

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use singular_queue::{ReplyMode, SingularQueue};
use store::{Command, DurableKv};
use wal::{Op, Wal};

const CLIENTS: [usize; 3] = [1, 8, 32];
const RUNS: usize = 5;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Design {
    GroupCommit,
    MutexFsync,
}

fn main() {
    let seconds: f64 = std::env::var("SQ_BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0.5);
    let run_for = Duration::from_secs_f64(seconds);
    let dir = std::env::temp_dir().join(format!("sq-durable-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch directory");

    let mut samples: Vec<(Design, usize, f64)> = Vec::new();
    for run in 0..RUNS {
        for clients in CLIENTS {
            for design in [Design::GroupCommit, Design::MutexFsync] {
                let path = dir.join(format!("{design:?}-{clients}-{run}.wal"));
                let rate = match design {
                    Design::GroupCommit => group_commit(&path, clients, run_for),
                    Design::MutexFsync => mutex_fsync(&path, clients, run_for),
                };
                std::fs::remove_file(&path).expect("remove the log");
                samples.push((design, clients, rate));
            }
        }
    }
    std::fs::remove_dir_all(&dir).expect("remove the scratch directory");

    println!("| clients | group commit (writes/s) | mutex + fsync per write (writes/s) | ratio |");
    println!("|---:|---:|---:|---:|");
    let mut ratios = Vec::new();
    for clients in CLIENTS {
        let group = median(&samples, Design::GroupCommit, clients);
        let mutex = median(&samples, Design::MutexFsync, clients);
        println!(
            "| {clients} | {group:.0} | {mutex:.0} | {:.2} |",
            group / mutex
        );
        ratios.push((clients, group / mutex));
    }
    println!();
    let logs = std::env::temp_dir();
    println!(
        "medians of {RUNS} interleaved runs of {seconds} s each, logs under {}",
        logs.display()
    );
    for (clients, ratio) in ratios {
        println!("ratio durable_group_commit_vs_mutex_fsync_c{clients} {ratio:.2}");
    }
}

fn median(samples: &[(Design, usize, f64)], design: Design, clients: usize) -> f64 {
    let mut rates: Vec<f64> = samples
        .iter()
        .filter(|&&(d, c, _)| d == design && c == clients)
        .map(|&(_, _, rate)| rate)
        .collect();
    rates.sort_by(f64::total_cmp);
    rates[rates.len() / 2]
}

/// Each client writes until the time is up; returns durable writes per second.
fn drive(clients: usize, run_for: Duration, write: impl Fn(usize, u64) + Sync) -> f64 {
    let written = AtomicU64::new(0);
    let start = Instant::now();
    let deadline = start + run_for;
    thread::scope(|scope| {
        for client in 0..clients {
            let (write, written) = (&write, &written);
            scope.spawn(move || {
                let mut n = 0;
                while Instant::now() < deadline {
                    write(client, n);
                    n += 1;
                }
                written.fetch_add(n, Ordering::Relaxed);
            });
        }
    });
    written.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64()
}

fn set(client: usize, n: u64) -> (String, String) {
    (format!("c{client}-{n}"), format!("value {n}"))
}

fn group_commit(path: &Path, clients: usize, run_for: Duration) -> f64 {
    let (store, _) = DurableKv::open(path).expect("open the store");
    let queue = SingularQueue::builder(store)
        .reply_mode(ReplyMode::AfterBatch)
        .spawn()
        .expect("spawn");
    let rate = drive(clients, run_for, |client, n| {
        let (key, value) = set(client, n);
        queue
            .call(Command::Set { key, value })
            .expect("durable write");
    });
    queue.shutdown().expect("no write failed");
    rate
}

fn mutex_fsync(path: &Path, clients: usize, run_for: Duration) -> f64 {
    let (wal, _, _) = Wal::open(path).expect("open the log");
    let store = Mutex::new((std::collections::BTreeMap::new(), wal));
    drive(clients, run_for, |client, n| {
        let (key, value) = set(client, n);
        let mut guard = store.lock();
        let (map, wal) = &mut *guard;
        let op = Op::Set { key, value };
        wal.append(&op).expect("append");
        wal.commit().expect("fsync");
        store::apply_op(map, op);
    })
}
