//! `Sharded<S>` against one queue and against a ractor factory with key-persistent routing,
//! in one process, with the designs' runs interleaved.
//!
//! `cargo bench --bench sharded` (add `-- --quick` for a short run). Each client thread sends
//! its commands fire-and-forget to many keys; a run ends when every command has been applied.
//! Prints a markdown table of commands per second (medians), then `ratio <name> <value>`
//! lines.

use std::collections::HashMap;
use std::thread;
use std::time::{Duration, Instant};

use singular_queue::{Sharded, SingularQueue, StateMachine, by_key};

#[path = "sharded/ractor_factory.rs"]
mod ractor_factory;
mod work;

pub(crate) use work::Work;
use work::{Counter, Expensive};

/// Any `Work` as a state machine of (key, payload) commands.
#[derive(Default)]
struct Machine<W>(W);

impl<W: Work> StateMachine for Machine<W> {
    type Command = (u64, u64);
    type Output = u64;
    fn apply(&mut self, (_, x): (u64, u64)) -> u64 {
        self.0.apply(x)
    }
}

/// The key of client `c`'s `j`-th command: many keys per client, the same in every design.
fn key(client: usize, j: u64) -> u64 {
    client as u64 * 1_000_003 + j % 1024
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Design {
    /// One `SingularQueue`: every key on one worker.
    Single,
    Sharded1,
    Sharded2,
    /// ractor's factory, 2 workers, key-persistent routing.
    RactorFactory,
}

const DESIGNS: [Design; 4] = [
    Design::Single,
    Design::Sharded1,
    Design::Sharded2,
    Design::RactorFactory,
];

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Workload {
    Counter,
    Expensive,
}

const CLIENTS: [usize; 4] = [1, 2, 4, 8];

/// Runs one design once: `clients` threads send `per_client` commands each; returns the time
/// until every command was applied.
fn run<W: Work>(design: Design, clients: usize, per_client: u64) -> Duration {
    match design {
        Design::Single => {
            let queue = SingularQueue::new(Machine::<W>::default());
            let started = Instant::now();
            send(clients, per_client, |command| queue.tell(command).unwrap());
            queue.wait_until_quiet().unwrap();
            let elapsed = started.elapsed();
            assert_eq!(queue.stats().applied, clients as u64 * per_client);
            elapsed
        }
        Design::Sharded1 | Design::Sharded2 => {
            let shards = if design == Design::Sharded1 { 1 } else { 2 };
            let router = by_key(|&(key, _): &(u64, u64)| key);
            let sharded = Sharded::new(shards, router, |_| Machine::<W>::default());
            let started = Instant::now();
            send(clients, per_client, |command| {
                sharded.tell(command).unwrap()
            });
            sharded.wait_until_quiet().unwrap();
            let elapsed = started.elapsed();
            assert_eq!(sharded.stats().total.applied, clients as u64 * per_client);
            elapsed
        }
        Design::RactorFactory => ractor_factory::run::<W>(2, clients, per_client),
    }
}

/// Sends from `clients` threads, each its `per_client` commands, through `tell`.
fn send(clients: usize, per_client: u64, tell: impl Fn((u64, u64)) + Sync) {
    thread::scope(|scope| {
        for client in 0..clients {
            let tell = &tell;
            scope.spawn(move || {
                for j in 0..per_client {
                    tell((key(client, j), j));
                }
            });
        }
    });
}

fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

fn main() {
    let quick = std::env::args().any(|arg| arg == "--quick");
    let (rounds, total) = if quick { (3, 100_000) } else { (7, 400_000) };
    let mut rates: HashMap<(Design, Workload, usize), Vec<f64>> = HashMap::new();
    for _ in 0..rounds {
        for workload in [Workload::Counter, Workload::Expensive] {
            // Expensive work is slow by design: fewer commands keep runs short.
            let total = if workload == Workload::Expensive {
                total / 4
            } else {
                total
            };
            for clients in CLIENTS {
                let per_client = total / clients as u64;
                for design in DESIGNS {
                    let elapsed = match workload {
                        Workload::Counter => run::<Counter>(design, clients, per_client),
                        Workload::Expensive => run::<Expensive>(design, clients, per_client),
                    };
                    let rate = (per_client * clients as u64) as f64 / elapsed.as_secs_f64();
                    let samples = rates.entry((design, workload, clients)).or_default();
                    samples.push(rate);
                }
            }
        }
    }
    let rate = |design, workload, clients| median(rates[&(design, workload, clients)].clone());
    println!("## Commands per second (median of {rounds} interleaved rounds)\n");
    for workload in [Workload::Counter, Workload::Expensive] {
        println!("### {workload:?}\n");
        let header: Vec<String> = CLIENTS.iter().map(|c| format!("{c} clients")).collect();
        println!("| design | {} |", header.join(" | "));
        println!("|---|{}", "---:|".repeat(CLIENTS.len()));
        for design in DESIGNS {
            let cells: Vec<String> = CLIENTS
                .iter()
                .map(|&c| format!("{:.0}", rate(design, workload, c)))
                .collect();
            println!("| {design:?} | {} |", cells.join(" | "));
        }
        println!();
    }
    let ratio = |a, b, workload, clients| rate(a, workload, clients) / rate(b, workload, clients);
    for (name, workload) in [
        ("expensive", Workload::Expensive),
        ("counter", Workload::Counter),
    ] {
        for clients in CLIENTS {
            let vs_single = ratio(Design::Sharded2, Design::Single, workload, clients);
            println!("ratio sharded2_vs_single_{name}_c{clients} {vs_single:.2}");
        }
    }
    for (name, workload) in [("", Workload::Expensive), ("_counter", Workload::Counter)] {
        for clients in CLIENTS {
            let vs_ractor = ratio(Design::Sharded2, Design::RactorFactory, workload, clients);
            println!("ratio sharded2_vs_ractor_factory{name}_c{clients} {vs_ractor:.2}");
        }
    }
    let one = ratio(Design::Sharded1, Design::Single, Workload::Counter, 4);
    println!("ratio sharded1_vs_single_counter_c4 {one:.2}");
}
