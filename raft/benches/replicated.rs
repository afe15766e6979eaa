//! Replicated writes on three in-process nodes, each with a tokio runtime of its own (two
//! worker threads, as a node on this 2-core machine would have), talking through the
//! in-process router, logging to redb files:
//!
//! - **queue**: this crate's [`Node`]: `apply` runs on the queue's worker thread;
//! - **inline**: openraft's memstore-style state machine: `apply` runs on openraft's
//!   state-machine task, on a tokio thread, with the state behind a mutex.
//!
//! Same user `apply`, same log store, same network, same configuration. Printed: writes per
//! second at 1, 16 and 64 clients (medians of interleaved runs, and the ratio), the latency
//! of a linearizable read against a write's, and, with a 1 ms `apply`, how late the leader's
//! quorum acknowledgements got and how many elections a slow apply caused.
//!
//! `cargo bench -p singular-queue-raft --bench replicated [-- --quick]`

use std::collections::BTreeMap;
use std::io::Cursor;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use openraft::storage::{RaftStateMachine, Snapshot};
use openraft::{
    BasicNode, Config, Entry, EntryPayload, LogId, OptionalSend, Raft, RaftSnapshotBuilder,
    SnapshotMeta, StorageError, StoredMembership,
};
use serde::{Deserialize, Serialize};
use singular_queue::StateMachine;
use singular_queue_raft::{
    LogStore, Node, NodeId, Replicated, Request, Response, Router, Session, SnapshotError,
    TypeConfig,
};
use tokio::runtime::Runtime;

type Cfg = TypeConfig<Kv>;

/// How long each `apply` takes, in microseconds (0: as fast as it is).
static APPLY_MICROS: AtomicU64 = AtomicU64::new(0);

/// A key-value map: the user's state machine, the same in both designs.
#[derive(Default, Clone, Serialize, Deserialize)]
struct Kv(BTreeMap<u64, u64>);

impl StateMachine for Kv {
    type Command = (u64, u64);
    type Output = Option<u64>;

    fn apply(&mut self, (key, value): (u64, u64)) -> Option<u64> {
        let micros = APPLY_MICROS.load(Ordering::Relaxed);
        if micros > 0 {
            std::thread::sleep(Duration::from_micros(micros));
        }
        self.0.insert(key, value)
    }
}

impl Replicated for Kv {
    fn snapshot(&self) -> Vec<u8> {
        singular_queue_raft::to_bytes(self)
    }
    fn restore(bytes: &[u8]) -> Result<Self, SnapshotError> {
        singular_queue_raft::from_bytes(bytes)
    }
}

// === the baseline: openraft's memstore-style state machine ===

/// The state and what openraft needs of it, behind a mutex, applied on openraft's task.
#[derive(Default)]
struct Inline {
    kv: Kv,
    last_applied: Option<LogId<NodeId>>,
    membership: StoredMembership<NodeId, BasicNode>,
    snapshot: Option<(SnapshotMeta<NodeId, BasicNode>, Vec<u8>)>,
}

#[derive(Clone, Default)]
struct InlineMachine(Arc<Mutex<Inline>>);

impl RaftSnapshotBuilder<Cfg> for InlineMachine {
    async fn build_snapshot(&mut self) -> Result<Snapshot<Cfg>, StorageError<NodeId>> {
        let mut inline = self.0.lock().unwrap();
        let meta = SnapshotMeta {
            last_log_id: inline.last_applied,
            last_membership: inline.membership.clone(),
            snapshot_id: format!("{:?}", inline.last_applied),
        };
        let bytes = inline.kv.snapshot();
        inline.snapshot = Some((meta.clone(), bytes.clone()));
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(bytes)),
        })
    }
}

impl RaftStateMachine<Cfg> for InlineMachine {
    type SnapshotBuilder = Self;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogId<NodeId>>, StoredMembership<NodeId, BasicNode>), StorageError<NodeId>>
    {
        let inline = self.0.lock().unwrap();
        Ok((inline.last_applied, inline.membership.clone()))
    }

    async fn apply<I>(
        &mut self,
        entries: I,
    ) -> Result<Vec<Response<Option<u64>>>, StorageError<NodeId>>
    where
        I: IntoIterator<Item = Entry<Cfg>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut inline = self.0.lock().unwrap();
        let mut responses = Vec::new();
        for entry in entries {
            inline.last_applied = Some(entry.log_id);
            responses.push(match entry.payload {
                EntryPayload::Blank => Response::Internal,
                EntryPayload::Membership(m) => {
                    inline.membership = StoredMembership::new(Some(entry.log_id), m);
                    Response::Internal
                }
                EntryPayload::Normal(request) => {
                    Response::Applied(inline.kv.apply(request.command))
                }
            });
        }
        Ok(responses)
    }

    async fn get_snapshot_builder(&mut self) -> Self {
        self.clone()
    }

    async fn begin_receiving_snapshot(
        &mut self,
    ) -> Result<Box<Cursor<Vec<u8>>>, StorageError<NodeId>> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<NodeId, BasicNode>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError<NodeId>> {
        let mut inline = self.0.lock().unwrap();
        inline.kv = Kv::restore(snapshot.get_ref()).unwrap();
        inline.last_applied = meta.last_log_id;
        inline.membership = meta.last_membership.clone();
        inline.snapshot = Some((meta.clone(), snapshot.into_inner()));
        Ok(())
    }

    async fn get_current_snapshot(
        &mut self,
    ) -> Result<Option<Snapshot<Cfg>>, StorageError<NodeId>> {
        let inline = self.0.lock().unwrap();
        Ok(inline.snapshot.clone().map(|(meta, bytes)| Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(bytes)),
        }))
    }
}

// === the cluster ===

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Design {
    Queue,
    Inline,
}

/// One node: its runtime, its Raft, and (for the queue design) the node that owns both.
struct Member {
    runtime: Runtime,
    raft: Raft<Cfg>,
    node: Option<Arc<Node<Kv>>>,
}

struct Cluster {
    design: Design,
    members: Vec<Member>,
    dir: std::path::PathBuf,
}

fn config() -> Config {
    Config {
        snapshot_policy: openraft::SnapshotPolicy::LogsSinceLast(100_000),
        ..Config::default()
    }
}

impl Cluster {
    async fn start(design: Design, threads: usize) -> Self {
        static RUN: AtomicU64 = AtomicU64::new(0);
        let run = RUN.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("sq-raft-bench-{}-{run}", std::process::id()));
        let router = Router::new();
        let mut members = Vec::new();
        for id in 1..=3 {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(threads)
                .enable_all()
                .build()
                .unwrap();
            let (network, node_dir) = (router.network(id), dir.join(id.to_string()));
            let (raft, node) = runtime
                .spawn(async move {
                    match design {
                        Design::Queue => {
                            let node = Node::start(id, node_dir, Kv::default(), network, config())
                                .await
                                .unwrap();
                            (node.raft().clone(), Some(Arc::new(node)))
                        }
                        Design::Inline => {
                            std::fs::create_dir_all(&node_dir).unwrap();
                            let log = LogStore::open(node_dir.join("raft.redb")).unwrap();
                            let config = Arc::new(config().validate().unwrap());
                            let raft =
                                Raft::new(id, config, network, log, InlineMachine::default())
                                    .await
                                    .unwrap();
                            (raft, None)
                        }
                    }
                })
                .await
                .unwrap();
            router.add(id, raft.clone());
            members.push(Member {
                runtime,
                raft,
                node,
            });
        }
        let nodes: BTreeMap<_, _> = (1..=3)
            .map(|id| (id, BasicNode::new(format!("{id}"))))
            .collect();
        members[0].raft.initialize(nodes).await.unwrap();
        let wait = members[0].raft.wait(Some(Duration::from_secs(30)));
        wait.metrics(|m| m.current_leader.is_some(), "leader")
            .await
            .unwrap();
        Self {
            design,
            members,
            dir,
        }
    }

    fn leader(&self) -> &Member {
        let id = self.members[0]
            .raft
            .metrics()
            .borrow()
            .current_leader
            .unwrap();
        &self.members[id as usize - 1]
    }

    async fn write(&self, member: &Member, request: Request<(u64, u64)>) {
        match self.design {
            Design::Queue => drop(member.node.as_ref().unwrap().write(request).await.unwrap()),
            Design::Inline => drop(member.raft.client_write(request).await.unwrap()),
        }
    }

    /// A linearizable read (measured on the queue design).
    async fn read(&self, member: &Member, key: u64) -> Option<u64> {
        let node = member.node.as_ref().expect("the queue design");
        node.read(move |kv| kv.0.get(&key).copied()).await.unwrap()
    }

    async fn stop(self) {
        for member in self.members {
            match member.node {
                Some(node) => node.shutdown().await.unwrap(),
                None => member.raft.shutdown().await.unwrap(),
            }
            member.runtime.shutdown_background();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Writes per second with `clients` sessions writing one request at a time for `period`.
async fn throughput(cluster: &Arc<Cluster>, clients: u64, period: Duration) -> f64 {
    let start = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|client| {
            let cluster = Arc::clone(cluster);
            tokio::spawn(async move {
                let mut session = Session::new(client);
                let mut writes = 0u64;
                while start.elapsed() < period {
                    cluster
                        .write(cluster.leader(), session.request((client, writes)))
                        .await;
                    writes += 1;
                }
                writes
            })
        })
        .collect();
    let mut total = 0;
    for task in tasks {
        total += task.await.unwrap();
    }
    total as f64 / start.elapsed().as_secs_f64()
}

/// Percentiles (50th, 99th) in microseconds of `count` sequential operations.
async fn latencies<F: std::future::Future<Output = ()>>(
    count: usize,
    mut op: impl FnMut(u64) -> F,
) -> (f64, f64) {
    let mut samples = Vec::with_capacity(count);
    for i in 0..count {
        let start = Instant::now();
        op(i as u64).await;
        samples.push(start.elapsed().as_secs_f64() * 1e6);
    }
    samples.sort_by(f64::total_cmp);
    (samples[count / 2], samples[count * 99 / 100])
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// With every apply taking 1 ms, 64 clients write for `period` while the leader's metrics
/// are sampled: the longest time without a quorum's acknowledgement, and the elections.
async fn slow_apply(design: Design, threads: usize, period: Duration) -> (u64, u64) {
    APPLY_MICROS.store(1000, Ordering::Relaxed);
    let cluster = Arc::new(Cluster::start(design, threads).await);
    let term = |c: &Cluster| {
        c.members
            .iter()
            .map(|m| m.raft.metrics().borrow().current_term)
            .max()
            .unwrap()
    };
    let first_term = term(&cluster);
    let load = tokio::spawn(throughput_loose(Arc::clone(&cluster), 64, period));
    let mut worst = 0;
    let start = Instant::now();
    while start.elapsed() < period {
        for member in &cluster.members {
            let metrics = member.raft.metrics().borrow().clone();
            if metrics.state == openraft::ServerState::Leader {
                worst = worst.max(metrics.millis_since_quorum_ack.unwrap_or(0));
            }
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    load.await.unwrap();
    let elections = term(&cluster) - first_term;
    APPLY_MICROS.store(0, Ordering::Relaxed);
    Arc::into_inner(cluster).unwrap().stop().await;
    (worst, elections)
}

/// Like [`throughput`], but a client whose write fails (an election under way) tries again.
async fn throughput_loose(cluster: Arc<Cluster>, clients: u64, period: Duration) {
    let start = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|client| {
            let cluster = Arc::clone(&cluster);
            tokio::spawn(async move {
                let mut session = Session::new(client);
                while start.elapsed() < period {
                    let request = session.request((client, 0));
                    let leader = cluster.leader();
                    let result = match cluster.design {
                        Design::Queue => leader
                            .node
                            .as_ref()
                            .unwrap()
                            .write(request)
                            .await
                            .map(drop)
                            .map_err(drop),
                        Design::Inline => leader
                            .raft
                            .client_write(request)
                            .await
                            .map(drop)
                            .map_err(drop),
                    };
                    if result.is_err() {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let (rounds, period) = if quick {
        (3, Duration::from_millis(500))
    } else {
        (5, Duration::from_secs(2))
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        println!("## Replicated writes: 3 in-process nodes, redb logs, {rounds} interleaved rounds of {period:?}");
        println!();
        let mut ratios = Vec::new();
        for clients in [1, 16, 64] {
            let mut samples: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
            for _ in 0..rounds {
                for design in [Design::Queue, Design::Inline] {
                    let cluster = Arc::new(Cluster::start(design, 2).await);
                    let rate = throughput(&cluster, clients, period).await;
                    Arc::into_inner(cluster).unwrap().stop().await;
                    samples.entry(if design == Design::Queue { "queue" } else { "inline" }).or_default().push(rate);
                }
            }
            let (queue, inline) = (median(samples["queue"].clone()), median(samples["inline"].clone()));
            println!("writes_per_sec clients={clients:<3} queue={queue:>9.0} inline={inline:>9.0}");
            ratios.push(format!("ratio replicated_writes_queue_vs_inline_c{clients} {:.2}", queue / inline));
        }
        println!();
        let cluster = Arc::new(Cluster::start(Design::Queue, 2).await);
        let leader = cluster.leader();
        let count = if quick { 300 } else { 2000 };
        let mut session = Session::new(u64::MAX);
        let (write_p50, write_p99) = latencies(count, |i| cluster.write(leader, session.request((i, i)))).await;
        let c = &*cluster;
        let (read_p50, read_p99) = latencies(count, |i| async move {
            let _ = c.read(leader, i).await;
        }).await;
        println!("linearizable_read_us p50={read_p50:.0} p99={read_p99:.0} (a write: p50={write_p50:.0} p99={write_p99:.0})");
        ratios.push(format!("ratio linearizable_read_vs_write_p50 {:.2}", read_p50 / write_p50));
        Arc::into_inner(cluster).unwrap().stop().await;
        println!();
        let slow = if quick { Duration::from_secs(2) } else { Duration::from_secs(5) };
        println!("With a 1 ms apply and 64 clients (heartbeat 50 ms, election timeout 150-300 ms):");
        for threads in [2, 1] {
            for design in [Design::Queue, Design::Inline] {
                let (worst, elections) = slow_apply(design, threads, slow).await;
                let name = if design == Design::Queue { "queue" } else { "inline" };
                println!(
                    "apply_1ms tokio_threads={threads} design={name:<6} worst_ms_since_quorum_ack={worst:<5} elections={elections}"
                );
            }
        }
        println!();
        for ratio in ratios {
            println!("{ratio}");
        }
    });
}
