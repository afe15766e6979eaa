//! A replicated key-value state machine and a cluster of in-process nodes, shared by the
//! replicated crate's tests.
#![allow(dead_code, unreachable_pub)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use openraft::{Config, ServerState, SnapshotPolicy};
use serde::{Deserialize, Serialize};
use singular_queue::StateMachine;
use singular_queue_raft::{Node, NodeId, Replicated, Request, Router, Session, SnapshotError};
use tokio::sync::Mutex;

#[path = "../../../tests/support/linearizable.rs"]
pub mod linearizable;

use linearizable::{Op, Output, step};

/// Registers (for the linearizability checker) and append-only lists (for exactly-once).
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Kv {
    pub registers: BTreeMap<u64, u64>,
    pub lists: BTreeMap<u64, Vec<u64>>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Cmd {
    /// An operation on one register.
    Register(u64, #[serde(with = "OpDef")] Op),
    /// Appends a value to a list; answers with the list's new length.
    Append(u64, u64),
    /// Panics in `apply`: a bug in the user's state machine.
    Panic,
}

/// serde for the checker's [`Op`] (the core crate's tests do not use serde).
#[derive(Serialize, Deserialize)]
#[serde(remote = "Op")]
enum OpDef {
    Get,
    Set(u64),
    Cas { expected: Option<u64>, new: u64 },
    Delete,
}

impl StateMachine for Kv {
    type Command = Cmd;
    type Output = Output;

    fn apply(&mut self, command: Cmd) -> Output {
        match command {
            Cmd::Register(key, op) => {
                let (next, output) = step(self.registers.get(&key).copied(), op);
                match next {
                    Some(value) => self.registers.insert(key, value),
                    None => self.registers.remove(&key),
                };
                output
            }
            Cmd::Append(list, value) => {
                let list = self.lists.entry(list).or_default();
                list.push(value);
                (Some(list.len() as u64), true)
            }
            Cmd::Panic => panic!("apply panicked on purpose"),
        }
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

/// Timeouts roomy enough for a loaded 2-core machine; a snapshot every `snapshot_every`
/// entries, with no log kept behind it, so that lagging nodes catch up by snapshot.
pub fn config(snapshot_every: Option<u64>) -> Config {
    Config {
        heartbeat_interval: 50,
        election_timeout_min: 300,
        election_timeout_max: 600,
        snapshot_policy: snapshot_every
            .map_or(SnapshotPolicy::Never, SnapshotPolicy::LogsSinceLast),
        max_in_snapshot_log_to_keep: 0,
        purge_batch_size: 1,
        ..Config::default()
    }
}

/// A fresh directory under cargo's scratch space for integration tests.
pub fn scratch_dir(test: &str) -> PathBuf {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("raft-{test}-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// In-process nodes on a [`Router`], each with its own directory; nodes can crash and
/// restart from their disk.
pub struct Cluster {
    pub router: Router<Kv>,
    dir: PathBuf,
    config: Config,
    nodes: Mutex<BTreeMap<NodeId, Arc<Node<Kv>>>>,
    pub ids: Vec<NodeId>,
    /// Write attempts that failed or timed out and were retried.
    pub retries: AtomicU64,
    /// The node that answered the last write (0: none yet), where clients try first, as a
    /// real client remembers its leader.
    last_answered: AtomicU64,
}

impl Cluster {
    /// Starts nodes 1..=n, initialises the cluster on node 1 and waits for a leader.
    pub async fn start(test: &str, n: u64, config: Config) -> Self {
        let cluster = Self {
            router: Router::new(),
            dir: scratch_dir(test),
            config,
            nodes: Mutex::new(BTreeMap::new()),
            ids: (1..=n).collect(),
            retries: AtomicU64::new(0),
            last_answered: AtomicU64::new(0),
        };
        for &id in &cluster.ids {
            cluster.restart(id).await;
        }
        let members = cluster.ids.iter().map(|&id| (id, format!("node-{id}")));
        cluster.node(1).await.initialize(members).await.unwrap();
        cluster.leader().await;
        cluster
    }

    /// Starts node `id` on its directory (a new node, or one that crashed).
    pub async fn restart(&self, id: NodeId) {
        let dir = self.dir.join(id.to_string());
        let node = Node::start(
            id,
            dir,
            Kv::default(),
            self.router.network(id),
            self.config.clone(),
        )
        .await
        .unwrap();
        self.router.add(id, node.raft().clone());
        self.nodes.lock().await.insert(id, Arc::new(node));
    }

    /// Stops node `id` as a crash would: it stops answering at once, and what it had only in
    /// memory is gone. Its directory stays for a restart.
    pub async fn crash(&self, id: NodeId) {
        self.router.remove(id);
        let node = self.nodes.lock().await.remove(&id).expect("the node is up");
        node.shutdown().await.unwrap();
    }

    pub async fn node(&self, id: NodeId) -> Arc<Node<Kv>> {
        Arc::clone(self.nodes.lock().await.get(&id).expect("the node is up"))
    }

    /// Node `id`'s metrics as they stand.
    pub async fn metrics(&self, id: NodeId) -> openraft::RaftMetrics<NodeId, openraft::BasicNode> {
        self.node(id).await.raft().metrics().borrow().clone()
    }

    pub async fn live(&self) -> Vec<NodeId> {
        self.nodes.lock().await.keys().copied().collect()
    }

    /// The leader, once a node is leader and every live node agrees (`except` the ones
    /// cut off).
    pub async fn leader(&self) -> NodeId {
        self.leader_among_all_but(&[]).await
    }

    /// The leader that every live node but `except` agrees on.
    pub async fn leader_among_all_but(&self, except: &[NodeId]) -> NodeId {
        let mut metrics: Vec<_> = {
            let nodes = self.nodes.lock().await;
            let members = nodes.iter().filter(|(id, _)| !except.contains(id));
            members.map(|(_, node)| node.raft().metrics()).collect()
        };
        loop {
            if let Some(leader) = agreed_leader(&metrics) {
                return leader;
            }
            // Wait for any node's metrics to change: no polling.
            let changes = metrics.iter_mut().map(|m| Box::pin(m.changed()));
            let (changed, ..) = futures::future::select_all(changes).await;
            changed.expect("a live node's metrics stay open");
        }
    }

    /// Writes `request` until some node answers, retrying the same request on the leader it
    /// names (or another live node) after an error or a second without an answer. Between
    /// tries it backs off 20 ms, as a real client would while an election runs.
    pub async fn write(&self, request: Request<Cmd>) -> Output {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        let mut hint = Some(self.last_answered.load(Ordering::Relaxed));
        for turn in 0.. {
            assert!(
                tokio::time::Instant::now() < deadline,
                "no node took {request:?}"
            );
            let node = self.pick(hint.take(), turn).await;
            let write = node.write(request.clone());
            match tokio::time::timeout(Duration::from_secs(1), write).await {
                Ok(Ok(output)) => {
                    self.last_answered.store(node.id(), Ordering::Relaxed);
                    return output;
                }
                Ok(Err(error)) => hint = error.leader().filter(|&leader| leader != node.id()),
                Err(_elapsed) => {}
            }
            self.retries.fetch_add(1, Ordering::Relaxed);
            back_off(hint).await;
        }
        unreachable!()
    }

    /// The `n`th live node, counting round.
    async fn nth(&self, n: usize) -> Arc<Node<Kv>> {
        let nodes = self.nodes.lock().await;
        Arc::clone(nodes.values().nth(n % nodes.len()).unwrap())
    }

    /// The hinted node if it is live; else a live node, preferring the leader; `turn`
    /// rotates through the others.
    async fn pick(&self, hint: Option<NodeId>, turn: usize) -> Arc<Node<Kv>> {
        let nodes = self.nodes.lock().await;
        if let Some(node) = hint.and_then(|id| nodes.get(&id)) {
            return Arc::clone(node);
        }
        let leader = nodes
            .values()
            .find(|n| n.raft().metrics().borrow().state == ServerState::Leader);
        match leader {
            Some(leader) if turn % 3 != 2 => Arc::clone(leader),
            _ => Arc::clone(nodes.values().nth(turn % nodes.len()).unwrap()),
        }
    }

    /// Runs a linearizable read of register `key` on whichever node can, retrying as
    /// [`write`](Cluster::write) does.
    pub async fn read(&self, key: u64) -> Option<u64> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        let mut hint = None;
        for turn in 0.. {
            assert!(
                tokio::time::Instant::now() < deadline,
                "no node could read {key}"
            );
            // The first try goes to any node, leader or not: only the leader may answer.
            let node = match turn {
                0 => self.nth(key as usize).await,
                _ => self.pick(hint.take(), turn).await,
            };
            let read = node.read(move |kv: &Kv| kv.registers.get(&key).copied());
            match tokio::time::timeout(Duration::from_secs(1), read).await {
                Ok(Ok(value)) => return value,
                Ok(Err(error)) => hint = error.leader().filter(|&leader| leader != node.id()),
                Err(_elapsed) => {}
            }
            back_off(hint).await;
        }
        unreachable!()
    }

    /// Waits until the leader that all live nodes but `except` follow has applied `more`
    /// entries beyond what it had applied.
    pub async fn progress(&self, more: u64, except: &[NodeId]) {
        let leader = self.node(self.leader_among_all_but(except).await).await;
        let now = leader
            .raft()
            .metrics()
            .borrow()
            .last_applied
            .map_or(0, |id| id.index);
        applied(&leader, now + more).await;
    }

    /// Waits until every live node has applied at least up to the leader's last log index,
    /// then returns each live node's state.
    pub async fn settled_states(&self) -> BTreeMap<NodeId, Kv> {
        let leader = self.node(self.leader().await).await;
        let last = leader.raft().metrics().borrow().last_log_index;
        let mut states = BTreeMap::new();
        for id in self.live().await {
            let node = self.node(id).await;
            node.raft()
                .wait(Some(Duration::from_secs(30)))
                .applied_index_at_least(last, "catch up")
                .await
                .unwrap();
            states.insert(id, node.read_local(Kv::clone).await.unwrap());
        }
        states
    }

    pub async fn shutdown(self) {
        for id in self.live().await {
            self.crash(id).await;
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A client's pause before its next try: short when a node named the leader, longer while
/// no leader is known (an election takes a few hundred milliseconds).
async fn back_off(hint: Option<NodeId>) {
    let pause = if hint.is_some() { 5 } else { 20 };
    tokio::time::sleep(Duration::from_millis(pause)).await;
}

type Metrics = tokio::sync::watch::Receiver<openraft::RaftMetrics<NodeId, openraft::BasicNode>>;

/// The leader these nodes all follow in one term, if there is one.
fn agreed_leader(metrics: &[Metrics]) -> Option<NodeId> {
    let now: Vec<_> = metrics.iter().map(|m| m.borrow().clone()).collect();
    let leader = now.iter().find(|m| m.state == ServerState::Leader)?;
    now.iter()
        .all(|m| m.current_leader == Some(leader.id) && m.current_term == leader.current_term)
        .then_some(leader.id)
}

/// Clients appending 1, 2, 3, … to their own lists (list `i` for client `i`), one request at a
/// time, each retried until answered; each answer must be the list's new length: applied
/// once, in order.
pub struct Appenders {
    stop: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<u64>>,
}

impl Appenders {
    /// Starts `clients` clients, each to append at least `at_least` values.
    pub fn start(cluster: &Arc<Cluster>, clients: u64, at_least: u64) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let tasks = (0..clients)
            .map(|client| {
                tokio::spawn(append(
                    Arc::clone(cluster),
                    client,
                    Arc::clone(&stop),
                    at_least,
                ))
            })
            .collect();
        Self { stop, tasks }
    }

    /// Lets the clients stop once they have appended enough; returns how many appends each
    /// had acknowledged.
    pub async fn finish(self) -> Vec<u64> {
        self.stop.store(true, Ordering::SeqCst);
        let mut acknowledged = Vec::new();
        for task in self.tasks {
            acknowledged.push(task.await.unwrap());
        }
        acknowledged
    }
}

async fn append(cluster: Arc<Cluster>, client: u64, stop: Arc<AtomicBool>, at_least: u64) -> u64 {
    let mut session = Session::new(client);
    let mut acknowledged = 0;
    while acknowledged < at_least || !stop.load(Ordering::SeqCst) {
        let value = acknowledged + 1;
        let output = cluster
            .write(session.request(Cmd::Append(client, value)))
            .await;
        assert_eq!(
            output,
            (Some(value), true),
            "client {client}'s append {value}"
        );
        acknowledged = value;
    }
    acknowledged
}

/// Every client's list is exactly `1..=acknowledged`, on every node of the cluster: nothing
/// lost, nothing twice.
pub async fn assert_exactly_once(cluster: &Cluster, acknowledged: &[u64]) {
    let states = cluster.settled_states().await;
    assert_eq!(states.len(), cluster.ids.len(), "every node is up");
    for (id, state) in states {
        for (client, &count) in (0..).zip(acknowledged) {
            let expected: Vec<u64> = (1..=count).collect();
            let list = state.lists.get(&client).cloned().unwrap_or_default();
            assert_eq!(list, expected, "node {id}, client {client}");
        }
    }
}

/// Waits until `node` has applied the log up to `index`.
pub async fn applied(node: &Node<Kv>, index: u64) {
    let wait = node.raft().wait(Some(Duration::from_secs(60)));
    wait.applied_index_at_least(Some(index), "applied")
        .await
        .unwrap();
}
