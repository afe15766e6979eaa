//! Durable writes: this queue with group commit (the `durable_kv` example's store, which
//! fsyncs at the end of each batch), the same store with its commit pipelined (the fsync on
//! the commit thread), and a `Mutex` that
//! appends and fsyncs every write; beside them, fsyncs per second alone, the disk's limit. All
//! on the same file system, in the same run, runs interleaved.
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
use singular_queue::{BatchInfo, Commit, ReplyMode, SingularQueue, StateMachine, WaitStrategy};
use store::{Command, DurableKv};
use wal::{Op, Wal};

const CLIENTS: [usize; 3] = [1, 8, 32];
const RUNS: usize = 5;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Design {
    /// The store as the example runs it: fsync on the worker at the end of each batch.
    BatchEnd,
    /// The same store, fsyncing on the commit thread while the worker goes on.
    Pipelined,
    /// `BatchEnd` with `WaitStrategy::BusySpin`: callers and the worker never sleep, so a
    /// write costs no wake-up (and burns a core per waiting caller).
    BusySpin,
    MutexFsync,
    /// One thread writing a record and fsyncing, alone: the disk's rate of fsyncs.
    FsyncAlone,
}

const DESIGNS: [Design; 5] = [
    Design::BatchEnd,
    Design::Pipelined,
    Design::BusySpin,
    Design::MutexFsync,
    Design::FsyncAlone,
];

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
            for design in DESIGNS {
                if design == Design::FsyncAlone && clients != 1 {
                    continue;
                }
                let path = dir.join(format!("{design:?}-{clients}-{run}.wal"));
                let rate = match design {
                    Design::Pipelined => group_commit(
                        Pipelined(DurableKv::open(&path).expect("open").0),
                        WaitStrategy::SpinThenPark,
                        clients,
                        run_for,
                    ),
                    Design::BatchEnd | Design::BusySpin => group_commit(
                        DurableKv::open(&path).expect("open").0,
                        if design == Design::BusySpin {
                            WaitStrategy::BusySpin
                        } else {
                            WaitStrategy::SpinThenPark
                        },
                        clients,
                        run_for,
                    ),
                    Design::MutexFsync => mutex_fsync(&path, clients, run_for),
                    Design::FsyncAlone => mutex_fsync(&path, 1, run_for),
                };
                std::fs::remove_file(&path).expect("remove the log");
                samples.push((design, clients, rate));
            }
        }
    }
    std::fs::remove_dir_all(&dir).expect("remove the scratch directory");

    println!(
        "| clients | group commit | pipelined group commit | group commit, busy-spin | mutex + fsync per write | group commit / mutex | pipelined / group commit | busy-spin / mutex |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|");
    let rate = |design, clients| median(&samples, design, clients);
    for clients in CLIENTS {
        let (group, piped) = (
            rate(Design::BatchEnd, clients),
            rate(Design::Pipelined, clients),
        );
        let (spin, mutex) = (
            rate(Design::BusySpin, clients),
            rate(Design::MutexFsync, clients),
        );
        println!(
            "| {clients} | {group:.0} | {piped:.0} | {spin:.0} | {mutex:.0} | {:.2} | {:.2} | {:.2} |",
            group / mutex,
            piped / group,
            spin / mutex
        );
    }
    let fsyncs = rate(Design::FsyncAlone, 1);
    println!();
    println!(
        "fsyncs per second alone: {fsyncs:.0}; medians of {RUNS} interleaved runs of {seconds} s each, logs under {}",
        std::env::temp_dir().display()
    );
    for clients in CLIENTS {
        let ratio = rate(Design::BatchEnd, clients) / rate(Design::MutexFsync, clients);
        println!("ratio durable_group_commit_vs_mutex_fsync_c{clients} {ratio:.2}");
    }
    for clients in CLIENTS {
        let ratio = rate(Design::Pipelined, clients) / rate(Design::BatchEnd, clients);
        println!("ratio durable_pipelined_vs_batch_end_c{clients} {ratio:.2}");
    }
    for clients in CLIENTS {
        let ratio = rate(Design::BusySpin, clients) / rate(Design::MutexFsync, clients);
        println!("ratio durable_busy_spin_vs_mutex_fsync_c{clients} {ratio:.2}");
    }
    let best = rate(Design::BatchEnd, 32).max(rate(Design::Pipelined, 32));
    println!(
        "ratio durable_vs_fsync_limit_c32 {:.2}",
        best / (fsyncs * 32.0)
    );
}

/// The example's store with its commit pipelined: the records are written out on the worker
/// and the `fsync` runs on the queue's commit thread while the worker applies the next writes.
struct Pipelined(DurableKv);

impl StateMachine for Pipelined {
    type Command = Command;
    type Output = Option<String>;
    fn apply(&mut self, command: Command) -> Option<String> {
        self.0.apply(command)
    }
    fn start_commit(&mut self, _: BatchInfo) -> Commit {
        match self.0.write_out() {
            Ok(file) => Commit::later(move || Ok(file.sync_data()?)),
            Err(error) => Commit::done(Err(error.into())),
        }
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

fn group_commit<S>(store: S, waiting: WaitStrategy, clients: usize, run_for: Duration) -> f64
where
    S: StateMachine<Command = Command, Output = Option<String>>,
{
    let queue = SingularQueue::builder(store)
        .reply_mode(ReplyMode::AfterBatch)
        .wait_strategy(waiting)
        .spawn()
        .expect("spawn");
    let rate = drive(clients, run_for, |client, n| {
        let (key, value) = set(client, n);
        queue
            .call(Command::Set { key, value })
            .expect("durable write");
    });
    assert!(queue.shutdown().is_ok(), "no write failed");
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
