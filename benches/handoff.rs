//! The handoff between clients and the worker, against the designs a user would otherwise
//! pick, in one process, with runs of different designs interleaved.
//!
//! `cargo bench --bench handoff` (add `-- --quick` for a run of under three minutes).
//! Prints a markdown table, then `ratio <name> <value>` lines.

// The counting allocator below is the only unsafe code in the project, and it is here, in a
// benchmark: the library itself is `#![forbid(unsafe_code)]`.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::HashMap;
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::Instant;

use singular_queue::{SingularQueue, StateMachine};

mod ring;

// === allocation counting ===

struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: every call is forwarded unchanged to the system allocator; counting has no effect on
// the memory handed out.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract, which we pass on.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System.alloc` with this layout, as the caller guarantees.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

// === the work each design does per command ===

mod work;

use work::{Counter, Expensive, Work};

#[derive(Default)]
struct Kv(HashMap<u64, u64>);

impl Work for Kv {
    fn apply(&mut self, x: u64) -> u64 {
        self.0.insert(x % 4096, x).unwrap_or(0)
    }
}

/// Runs any `Work` as a singular-queue state machine, counting the commands it applied (the
/// view `QueueView` publishes).
#[derive(Default)]
struct Machine<W> {
    work: W,
    applied: u64,
}

impl<W: Work> StateMachine for Machine<W> {
    type Command = u64;
    type Output = u64;
    fn apply(&mut self, x: u64) -> u64 {
        self.applied += 1;
        self.work.apply(x)
    }
}

// === the designs ===

/// A running design: clients call it from many threads.
trait Server: Sync {
    fn call(&self, x: u64) -> u64;
    fn tell(&self, x: u64);
    /// Keeps `depth` commands in flight; returns when `n` have been answered.
    fn pipeline(&self, _n: u64, _depth: usize) {
        unreachable!("`Design::start` offers pipelining only where a design has tickets")
    }
    /// Tells `0..n` in bulks of `BULK`.
    fn tell_many(&self, _n: u64) {
        unreachable!("`Design::start` offers bulks only where a design has them")
    }
    /// Waits until every command sent so far has been applied.
    fn flush(&self) {
        self.call(0);
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Design {
    Queue,
    /// The queue, publishing a view of its state after each batch (`Builder::publish`).
    QueueView,
    /// The queue with a priority lane (`Builder::priority_lane`), unused: the normal lane's
    /// cost of the worker's look at the other.
    QueueLane,
    Naive,
    StdMpsc,
    TokioActor,
    Mutex,
    RawFlume,
    RawStdSync,
    RawRing,
    RawStdList,
}

const DESIGNS: [Design; 11] = [
    Design::Queue,
    Design::QueueView,
    Design::QueueLane,
    Design::Naive,
    Design::StdMpsc,
    Design::TokioActor,
    Design::Mutex,
    Design::RawFlume,
    Design::RawStdSync,
    Design::RawRing,
    Design::RawStdList,
];

impl Design {
    fn name(self) -> &'static str {
        match self {
            Design::Queue => "singular-queue",
            Design::QueueView => "singular-queue, publishing a view",
            Design::QueueLane => "singular-queue, with a priority lane",
            Design::Naive => "naive (flume + reply channel)",
            Design::StdMpsc => "std mpsc + reply channel",
            Design::TokioActor => "tokio mpsc + oneshot",
            Design::Mutex => "Arc<parking_lot::Mutex>",
            Design::RawFlume => "raw flume, no reply",
            Design::RawStdSync => "raw std sync_channel, no reply",
            Design::RawRing => "raw safe Vyukov ring, no reply",
            Design::RawStdList => "raw std channel (unbounded), no reply",
        }
    }

    /// Starts the design around `work`; `None` if it cannot run `workload`.
    fn start<W: Work + Default>(self, workload: Workload) -> Option<Box<dyn Server>> {
        let replies = !matches!(workload, Workload::Tell | Workload::TellMany);
        Some(match self {
            Design::Queue => Box::new(Queue(SingularQueue::new(Machine::<W>::default()))),
            Design::QueueView if matches!(workload, Workload::Tell | Workload::Call) => {
                // Nobody reads the view here: its cost to the writers is what is measured.
                let (builder, _view) = SingularQueue::builder(Machine::<W>::default())
                    .publish(|machine: &Machine<W>| machine.applied);
                Box::new(Queue(builder.spawn().expect("spawn")))
            }
            Design::QueueLane if matches!(workload, Workload::Tell | Workload::Call) => {
                let builder = SingularQueue::builder(Machine::<W>::default()).priority_lane(64);
                Box::new(Queue(builder.spawn().expect("spawn")))
            }
            _ if workload == Workload::TellMany => return None,
            Design::Naive => Box::new(naive(W::default())),
            Design::StdMpsc if workload != Workload::Pipelined => Box::new(std_mpsc(W::default())),
            Design::TokioActor => Box::new(tokio_actor(W::default())),
            Design::Mutex if workload != Workload::Pipelined => {
                Box::new(parking_lot::Mutex::new(W::default()))
            }
            Design::RawFlume if !replies => Box::new(raw_flume(W::default())),
            Design::RawStdSync if !replies => Box::new(raw_std_sync(W::default())),
            Design::RawRing if !replies => Box::new(raw_ring(W::default())),
            Design::RawStdList if !replies => Box::new(raw_std_list(W::default())),
            _ => return None,
        })
    }
}

struct Queue<W: Work>(SingularQueue<Machine<W>>);

impl<W: Work> Server for Queue<W> {
    fn call(&self, x: u64) -> u64 {
        self.0.call(x).expect("open")
    }
    fn tell(&self, x: u64) {
        self.0.tell(x).expect("open");
    }
    fn tell_many(&self, n: u64) {
        for start in (0..n).step_by(BULK) {
            let bulk = (start..n.min(start + BULK as u64)).collect();
            self.0.tell_many(bulk).expect("open");
        }
    }
    fn pipeline(&self, n: u64, depth: usize) {
        let mut tickets = std::collections::VecDeque::with_capacity(depth);
        for x in 0..n {
            if tickets.len() == depth {
                let ticket: singular_queue::Ticket<u64> = tickets.pop_front().expect("full");
                black_box(ticket.wait().expect("applied"));
            }
            tickets.push_back(self.0.submit(x).expect("open"));
        }
        tickets.into_iter().for_each(|t| {
            black_box(t.wait().expect("applied"));
        });
    }
}

impl<W: Work> Server for parking_lot::Mutex<W> {
    fn call(&self, x: u64) -> u64 {
        self.lock().apply(x)
    }
    fn tell(&self, x: u64) {
        self.lock().apply(x);
    }
}

/// A worker thread fed by a channel; dropping it closes the channel and joins the worker.
struct Channel<Tx> {
    tx: Option<Tx>,
    worker: Option<thread::JoinHandle<()>>,
}

impl<Tx> Channel<Tx> {
    fn new(tx: Tx, worker: impl FnOnce() + Send + 'static) -> Self {
        Channel {
            tx: Some(tx),
            worker: Some(thread::spawn(worker)),
        }
    }

    fn tx(&self) -> &Tx {
        self.tx.as_ref().expect("open until dropped")
    }
}

impl<Tx> Drop for Channel<Tx> {
    fn drop(&mut self) {
        drop(self.tx.take());
        if let Some(worker) = self.worker.take() {
            worker.join().expect("the worker finished");
        }
    }
}

type Request<R> = (u64, Option<R>);
type Naive = Channel<flume::Sender<Request<flume::Sender<u64>>>>;
type StdMpsc = Channel<std::sync::mpsc::SyncSender<Request<std::sync::mpsc::Sender<u64>>>>;
type TokioActor = Channel<tokio::sync::mpsc::Sender<Request<tokio::sync::oneshot::Sender<u64>>>>;
type RawFlume = Channel<flume::Sender<u64>>;
type RawRing = Channel<ring::RingSender<u64>>;
/// std's bounded channel, and where its worker acknowledges a flush.
type RawStdSync = Channel<(std::sync::mpsc::SyncSender<u64>, flume::Receiver<()>)>;
/// std's unbounded channel (crossbeam's lock-free list), and where its worker acknowledges.
type RawStdList = Channel<(std::sync::mpsc::Sender<u64>, flume::Receiver<()>)>;

/// A value no client sends: asks the std channel's worker to acknowledge everything before it.
const FLUSH: u64 = u64::MAX;

fn naive(mut work: impl Work) -> Naive {
    let (tx, rx) = flume::bounded::<Request<flume::Sender<u64>>>(1024);
    Channel::new(tx, move || {
        for (x, reply) in rx.iter() {
            let out = work.apply(x);
            if let Some(reply) = reply {
                let _ = reply.send(out);
            }
        }
    })
}

impl Server for Naive {
    fn call(&self, x: u64) -> u64 {
        let (reply, answer) = flume::bounded(1);
        self.tx().send((x, Some(reply))).expect("open");
        answer.recv().expect("answered")
    }
    fn tell(&self, x: u64) {
        self.tx().send((x, None)).expect("open");
    }
    fn pipeline(&self, n: u64, depth: usize) {
        let mut answers = std::collections::VecDeque::with_capacity(depth);
        for x in 0..n {
            if answers.len() == depth {
                let answer: flume::Receiver<u64> = answers.pop_front().expect("full");
                black_box(answer.recv().expect("answered"));
            }
            let (reply, answer) = flume::bounded(1);
            self.tx().send((x, Some(reply))).expect("open");
            answers.push_back(answer);
        }
        answers.into_iter().for_each(|a| {
            black_box(a.recv().expect("answered"));
        });
    }
}

fn std_mpsc(mut work: impl Work) -> StdMpsc {
    let (tx, rx) = std::sync::mpsc::sync_channel::<Request<std::sync::mpsc::Sender<u64>>>(1024);
    Channel::new(tx, move || {
        for (x, reply) in rx.iter() {
            let out = work.apply(x);
            if let Some(reply) = reply {
                let _ = reply.send(out);
            }
        }
    })
}

impl Server for StdMpsc {
    fn call(&self, x: u64) -> u64 {
        let (reply, answer) = std::sync::mpsc::channel();
        self.tx().send((x, Some(reply))).expect("open");
        answer.recv().expect("answered")
    }
    fn tell(&self, x: u64) {
        self.tx().send((x, None)).expect("open");
    }
}

fn tokio_actor(mut work: impl Work) -> TokioActor {
    let (tx, mut rx) =
        tokio::sync::mpsc::channel::<Request<tokio::sync::oneshot::Sender<u64>>>(1024);
    Channel::new(tx, move || {
        while let Some((x, reply)) = rx.blocking_recv() {
            let out = work.apply(x);
            if let Some(reply) = reply {
                let _ = reply.send(out);
            }
        }
    })
}

impl Server for TokioActor {
    fn call(&self, x: u64) -> u64 {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.tx().blocking_send((x, Some(reply))).expect("open");
        answer.blocking_recv().expect("answered")
    }
    fn tell(&self, x: u64) {
        self.tx().blocking_send((x, None)).expect("open");
    }
    fn pipeline(&self, n: u64, depth: usize) {
        let mut answers = std::collections::VecDeque::with_capacity(depth);
        for x in 0..n {
            if answers.len() == depth {
                let answer: tokio::sync::oneshot::Receiver<u64> =
                    answers.pop_front().expect("full");
                black_box(answer.blocking_recv().expect("answered"));
            }
            let (reply, answer) = tokio::sync::oneshot::channel();
            self.tx().blocking_send((x, Some(reply))).expect("open");
            answers.push_back(answer);
        }
        answers
            .into_iter()
            .for_each(|a| drop(black_box(a.blocking_recv())));
    }
}

fn raw_flume(mut work: impl Work) -> RawFlume {
    let (tx, rx) = flume::bounded::<u64>(1024);
    Channel::new(tx, move || {
        for x in rx.iter() {
            black_box(work.apply(x));
        }
    })
}

fn raw_std_sync(work: impl Work) -> RawStdSync {
    let (tx, rx) = std::sync::mpsc::sync_channel::<u64>(1024);
    let (ack, acked) = flume::bounded(1);
    Channel::new((tx, acked), move || serve_raw_std(&rx, &ack, work))
}

fn raw_std_list(work: impl Work) -> RawStdList {
    let (tx, rx) = std::sync::mpsc::channel::<u64>();
    let (ack, acked) = flume::bounded(1);
    Channel::new((tx, acked), move || serve_raw_std(&rx, &ack, work))
}

/// A std channel's worker: applies each value, and acknowledges a `FLUSH`.
fn serve_raw_std(
    rx: &std::sync::mpsc::Receiver<u64>,
    ack: &flume::Sender<()>,
    mut work: impl Work,
) {
    for x in rx.iter() {
        if x == FLUSH {
            ack.send(()).expect("the flusher waits");
        } else {
            black_box(work.apply(x));
        }
    }
}

/// The sending end of either std channel.
trait StdSender: Send + Sync {
    fn send_value(&self, x: u64);
}

impl StdSender for std::sync::mpsc::SyncSender<u64> {
    fn send_value(&self, x: u64) {
        self.send(x).expect("open");
    }
}

impl StdSender for std::sync::mpsc::Sender<u64> {
    fn send_value(&self, x: u64) {
        self.send(x).expect("open");
    }
}

/// `RawStdSync` and `RawStdList`.
impl<Tx: StdSender> Server for Channel<(Tx, flume::Receiver<()>)> {
    fn call(&self, _: u64) -> u64 {
        unreachable!("the raw std channel has no replies")
    }
    fn tell(&self, x: u64) {
        self.tx().0.send_value(x);
    }
    fn flush(&self) {
        self.tx().0.send_value(FLUSH);
        self.tx().1.recv().expect("acknowledged");
    }
}

fn raw_ring(mut work: impl Work) -> RawRing {
    let (tx, rx) = ring::ring::<u64>(1024);
    Channel::new(tx, move || {
        while let Some(x) = rx.recv() {
            black_box(work.apply(x));
        }
    })
}

impl Server for RawRing {
    fn call(&self, _: u64) -> u64 {
        unreachable!("the raw ring has no replies")
    }
    fn tell(&self, x: u64) {
        self.tx().send(x);
    }
    fn flush(&self) {
        while !self.tx().is_empty() {
            thread::yield_now();
        }
    }
}

impl Server for RawFlume {
    fn call(&self, _: u64) -> u64 {
        unreachable!("raw flume has no replies")
    }
    fn tell(&self, x: u64) {
        self.tx().send(x).expect("open");
    }
    fn flush(&self) {
        // Without replies, waiting for the channel to empty is the best view of "applied".
        while !self.tx().is_empty() {
            thread::yield_now();
        }
    }
}

// === the workloads and the measurements ===

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Workload {
    /// `call` round trips on a counter.
    Call,
    /// `call` round trips on a `HashMap<u64, u64>`.
    CallKv,
    /// `tell`: one-way commands on a counter.
    Tell,
    /// `tell_many`: one-way commands in bulks of `BULK`, on a counter (singular-queue only).
    TellMany,
    /// `submit` with 64 tickets in flight per client, on a counter.
    Pipelined,
    /// `call`s whose `apply` does about 1 µs of work.
    Expensive,
}

const WORKLOADS: [Workload; 6] = [
    Workload::Call,
    Workload::CallKv,
    Workload::Tell,
    Workload::TellMany,
    Workload::Pipelined,
    Workload::Expensive,
];

const CLIENTS: [usize; 4] = [1, 2, 4, 8];

/// How many commands `TellMany` tells at once.
const BULK: usize = 64;

/// One run's result: throughput, and (for calls) every latency in nanoseconds.
struct Sample {
    ops_per_sec: f64,
    latencies: Vec<u64>,
}

fn start(design: Design, workload: Workload) -> Option<Box<dyn Server>> {
    match workload {
        Workload::CallKv => design.start::<Kv>(workload),
        Workload::Expensive => design.start::<Expensive>(workload),
        _ => design.start::<Counter>(workload),
    }
}

/// Runs `clients` threads of `ops` operations each against a fresh server.
fn measure(design: Design, workload: Workload, clients: usize, ops: u64) -> Option<Sample> {
    let server = start(design, workload)?;
    let server = &*server;
    let timed = matches!(
        workload,
        Workload::Call | Workload::CallKv | Workload::Expensive
    );
    let begin = Instant::now();
    let latencies: Vec<Vec<u64>> = thread::scope(|scope| {
        let threads: Vec<_> = (0..clients)
            .map(|_| {
                scope.spawn(move || {
                    let mut latencies = Vec::with_capacity(if timed { ops as usize } else { 0 });
                    match workload {
                        Workload::Tell => (0..ops).for_each(|x| server.tell(x)),
                        Workload::TellMany => server.tell_many(ops),
                        Workload::Pipelined => server.pipeline(ops, 64),
                        _ => {
                            for x in 0..ops {
                                let start = Instant::now();
                                black_box(server.call(x));
                                latencies.push(start.elapsed().as_nanos() as u64);
                            }
                        }
                    }
                    latencies
                })
            })
            .collect();
        threads
            .into_iter()
            .map(|t| t.join().expect("client"))
            .collect()
    });
    server.flush();
    let elapsed = begin.elapsed();
    Some(Sample {
        ops_per_sec: (clients as u64 * ops) as f64 / elapsed.as_secs_f64(),
        latencies: latencies.concat(),
    })
}

/// The names an environment variable lists, comma-separated; `None` if it is unset.
fn env_filter(var: &str) -> Option<Vec<String>> {
    let names = std::env::var(var).ok()?;
    Some(names.split(',').map(str::to_owned).collect())
}

/// Whether `filter` lets `item` run: no filter, or one naming it as `Debug` prints it.
fn allows(filter: &Option<Vec<String>>, item: &impl std::fmt::Debug) -> bool {
    filter
        .as_ref()
        .is_none_or(|names| names.contains(&format!("{item:?}")))
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    sorted[((sorted.len() - 1) as f64 * p) as usize]
}

/// The physical limit of a handoff: two threads bouncing one cache line, one write each way per
/// round trip. No queue's call can beat it; `call_p50_vs_pingpong_c1` says how close we come.
fn pingpong_rtt_ns(rounds: u64) -> f64 {
    let line = AtomicU64::new(0);
    let line = &line;
    thread::scope(|scope| {
        scope.spawn(move || {
            for round in 0..rounds {
                while line.load(Ordering::Acquire) != 2 * round + 1 {
                    std::hint::spin_loop();
                }
                line.store(2 * round + 2, Ordering::Release);
            }
        });
        let start = Instant::now();
        for round in 0..rounds {
            line.store(2 * round + 1, Ordering::Release);
            while line.load(Ordering::Acquire) != 2 * round + 2 {
                std::hint::spin_loop();
            }
        }
        start.elapsed().as_nanos() as f64 / rounds as f64
    })
}

/// Heap allocations per operation in steady state, for one client.
fn allocations_per_op(tell: bool) -> f64 {
    let queue = SingularQueue::new(Machine::<Counter>::default());
    let op = |x| {
        if tell {
            queue.tell(x).expect("open");
        } else {
            black_box(queue.call(x).expect("open"));
        }
    };
    (0..10_000).for_each(op); // warm up: the channel and the worker reach steady state
    queue.call(0).expect("open");
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    (0..100_000).for_each(op);
    queue.call(0).expect("open");
    let allocations = ALLOCATIONS.load(Ordering::Relaxed) - before;
    allocations as f64 / 100_000.0
}

fn main() {
    let quick = std::env::args().any(|arg| arg == "--quick")
        || std::env::var_os("SQ_BENCH_QUICK").is_some();
    let (runs, ops) = if quick { (5, 4_000) } else { (7, 20_000) };
    // For profiling, runs only what these name (comma-separated): `SQ_BENCH_ONLY=Tell`
    // (workloads), `SQ_BENCH_DESIGNS=Queue,Mutex` (designs), `SQ_BENCH_CLIENTS=1,4`.
    let workloads = env_filter("SQ_BENCH_ONLY");
    let designs = env_filter("SQ_BENCH_DESIGNS");
    let client_counts = env_filter("SQ_BENCH_CLIENTS");
    let started = Instant::now();

    // (design, workload, clients) -> throughputs, and merged latencies.
    let mut rates: HashMap<(Design, Workload, usize), Vec<f64>> = HashMap::new();
    let mut latencies: HashMap<(Design, Workload, usize), Vec<u64>> = HashMap::new();
    for _ in 0..runs {
        for workload in WORKLOADS.into_iter().filter(|w| allows(&workloads, w)) {
            for clients in CLIENTS.into_iter().filter(|c| allows(&client_counts, c)) {
                // Expensive work is slow by design: fewer operations keep runs short.
                let ops = if workload == Workload::Expensive {
                    ops / 4
                } else {
                    ops
                };
                for design in DESIGNS.into_iter().filter(|d| allows(&designs, d)) {
                    if let Some(sample) = measure(design, workload, clients, ops) {
                        rates
                            .entry((design, workload, clients))
                            .or_default()
                            .push(sample.ops_per_sec);
                        latencies
                            .entry((design, workload, clients))
                            .or_default()
                            .extend(sample.latencies);
                    }
                }
            }
        }
    }

    if workloads.is_some() || designs.is_some() || client_counts.is_some() {
        let mut keys: Vec<_> = rates.keys().copied().collect();
        keys.sort();
        for key @ (design, workload, clients) in keys {
            let rate = median(rates[&key].clone());
            let mut merged = latencies[&key].clone();
            merged.sort_unstable();
            let tail = if merged.is_empty() {
                String::new()
            } else {
                format!(
                    " p50 {} p99 {}",
                    percentile(&merged, 0.5),
                    percentile(&merged, 0.99)
                )
            };
            println!("{workload:?} {design:?} c{clients}: {rate:.0}{tail}");
        }
        let (call, tell) = (allocations_per_op(false), allocations_per_op(true));
        println!("allocations per call {call:.4}, per tell {tell:.4}");
        return;
    }
    println!("## Throughput (operations per second; median of {runs} interleaved runs)\n");
    for workload in WORKLOADS {
        println!("### {workload:?}\n");
        println!(
            "| design | {} |",
            CLIENTS
                .map(|c| format!("{c} client{}", if c == 1 { "" } else { "s" }))
                .join(" | ")
        );
        println!("|---|{}", "---:|".repeat(CLIENTS.len()));
        for design in DESIGNS {
            if !rates.contains_key(&(design, workload, 1)) {
                continue;
            }
            let cells: Vec<String> = CLIENTS
                .iter()
                .map(|&c| format!("{:.0}", median(rates[&(design, workload, c)].clone())))
                .collect();
            println!("| {} | {} |", design.name(), cells.join(" | "));
        }
        println!();
    }

    println!("## Call latency, counter (ns; all runs merged)\n");
    println!("| design | clients | p50 | p99 | p99.9 |");
    println!("|---|---:|---:|---:|---:|");
    for design in DESIGNS {
        for clients in CLIENTS {
            let Some(samples) = latencies.get_mut(&(design, Workload::Call, clients)) else {
                continue;
            };
            samples.sort_unstable();
            println!(
                "| {} | {clients} | {} | {} | {} |",
                design.name(),
                percentile(samples, 0.5),
                percentile(samples, 0.99),
                percentile(samples, 0.999)
            );
        }
    }

    let allocs_per_call = allocations_per_op(false);
    let allocs_per_tell = allocations_per_op(true);
    println!(
        "\nHeap allocations in steady state: {allocs_per_call:.3} per call, {allocs_per_tell:.4} per tell."
    );
    println!(
        "Took {:.0} s{}.\n",
        started.elapsed().as_secs_f64(),
        if quick { " (--quick)" } else { "" }
    );

    let rate = |design, workload, clients| median(rates[&(design, workload, clients)].clone());
    // Each ratio: singular-queue over a baseline, same workload, same client count, same run.
    let ratios = [
        ("call_vs_naive_c1", Design::Naive, Workload::Call, 1),
        ("call_vs_naive_c4", Design::Naive, Workload::Call, 4),
        (
            "call_vs_tokio_actor_c1",
            Design::TokioActor,
            Workload::Call,
            1,
        ),
        (
            "call_vs_tokio_actor_c4",
            Design::TokioActor,
            Workload::Call,
            4,
        ),
        ("tell_vs_raw_flume_c1", Design::RawFlume, Workload::Tell, 1),
        ("tell_vs_raw_flume_c2", Design::RawFlume, Workload::Tell, 2),
        ("tell_vs_raw_flume_c4", Design::RawFlume, Workload::Tell, 4),
        ("tell_vs_raw_flume_c8", Design::RawFlume, Workload::Tell, 8),
        (
            "tell_vs_std_sync_channel_c1",
            Design::RawStdSync,
            Workload::Tell,
            1,
        ),
        (
            "tell_vs_std_sync_channel_c8",
            Design::RawStdSync,
            Workload::Tell,
            8,
        ),
        (
            "expensive_vs_mutex_c4",
            Design::Mutex,
            Workload::Expensive,
            4,
        ),
    ];
    for (name, baseline, workload, clients) in ratios {
        let ours = rate(Design::Queue, workload, clients);
        println!(
            "ratio {name} {:.2}",
            ours / rate(baseline, workload, clients)
        );
    }
    for clients in [1, 4] {
        for workload in [Workload::Tell, Workload::Call] {
            println!(
                "ratio {}_with_view_vs_without_c{clients} {:.2}",
                format!("{workload:?}").to_lowercase(),
                rate(Design::QueueView, workload, clients) / rate(Design::Queue, workload, clients)
            );
            println!(
                "ratio {}_with_priority_lane_vs_without_c{clients} {:.2}",
                format!("{workload:?}").to_lowercase(),
                rate(Design::QueueLane, workload, clients) / rate(Design::Queue, workload, clients)
            );
        }
    }
    for clients in [1, 4] {
        println!(
            "ratio tell_many_vs_tell_c{clients} {:.2}",
            rate(Design::Queue, Workload::TellMany, clients)
                / rate(Design::Queue, Workload::Tell, clients)
        );
    }
    // Candidate transports against the one the queue runs on, all raw.
    for (name, candidate) in [("ring", Design::RawRing), ("std_list", Design::RawStdList)] {
        for clients in CLIENTS {
            println!(
                "ratio transport_{name}_vs_flume_c{clients} {:.2}",
                rate(candidate, Workload::Tell, clients)
                    / rate(Design::RawFlume, Workload::Tell, clients)
            );
        }
    }
    let mut ours = latencies[&(Design::Queue, Workload::Call, 1)].clone();
    ours.sort_unstable();
    let pingpong = median((0..runs).map(|_| pingpong_rtt_ns(ops * 5)).collect());
    println!("pingpong_rtt_ns {pingpong:.0}");
    println!(
        "ratio call_p50_vs_pingpong_c1 {:.2}",
        percentile(&ours, 0.5) as f64 / pingpong
    );
    println!("allocs_per_call {allocs_per_call:.3}");
    println!("allocs_per_tell {allocs_per_tell:.4}");
    println!("p99_call_ns_c1 {}", percentile(&ours, 0.99));
}
