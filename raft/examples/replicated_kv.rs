//! A key-value store replicated on three processes.
//!
//! With no arguments it runs a demo: it starts three nodes as child processes on 127.0.0.1,
//! writes keys, kills the leader with `SIGKILL`, writes on, restarts the killed node on its
//! directory, waits until it has caught up, and checks that every acknowledged write is there,
//! and that the three nodes hold the same state.
//!
//! ```sh
//! cargo run -p singular-queue-raft --example replicated_kv
//! # or one node per terminal:
//! cargo run -p singular-queue-raft --example replicated_kv -- node 1 /tmp/kv1 127.0.0.1:7001 127.0.0.1:7002 127.0.0.1:7003
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command as Process, Stdio};
use std::sync::Arc;
use std::time::Duration;

use openraft::Config;
use serde::{Deserialize, Serialize};
use singular_queue::StateMachine;
use singular_queue_raft::{
    Node, NodeId, Replicated, Session, SnapshotError, TcpClient, TcpNetwork, serve,
};

// The state machine and `run_node` are `pub(crate)` for `raft/tests/processes.rs`, which
// compiles this file as a module and runs its nodes in processes of its own.

/// The replicated state: string keys and values, and counters.
#[derive(Debug, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Kv {
    pub(crate) values: BTreeMap<String, String>,
    pub(crate) counters: BTreeMap<String, u64>,
}

#[derive(Clone, Serialize, Deserialize)]
pub(crate) enum Command {
    Put(String, String),
    Get(String),
    /// Adds one to a counter: applied twice, it would show.
    Increment(String),
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) enum Output {
    Value(Option<String>),
    Count(u64),
}

impl StateMachine for Kv {
    type Command = Command;
    type Output = Output;

    fn apply(&mut self, command: Command) -> Output {
        match command {
            Command::Put(key, value) => Output::Value(self.values.insert(key, value)),
            Command::Get(key) => Output::Value(self.values.get(&key).cloned()),
            Command::Increment(key) => {
                let count = self.counters.entry(key).or_default();
                *count += 1;
                Output::Count(*count)
            }
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

/// Runs node `id` on `addrs[id - 1]`, with its files in `dir`, until killed. Node 1
/// initialises the cluster the first time.
pub(crate) async fn run_node(id: NodeId, dir: PathBuf, addrs: Vec<String>) -> std::io::Result<()> {
    let config = Config {
        heartbeat_interval: 100,
        election_timeout_min: 400,
        election_timeout_max: 800,
        // A snapshot every 100 entries, and no log kept behind it: a node that was down
        // while the log moved past the leader's snapshot catches up by that snapshot.
        snapshot_policy: openraft::SnapshotPolicy::LogsSinceLast(100),
        max_in_snapshot_log_to_keep: 0,
        ..Config::default()
    };
    let listener = tokio::net::TcpListener::bind(&addrs[id as usize - 1]).await?;
    let node = Arc::new(Node::start(id, dir, Kv::default(), TcpNetwork::new(), config).await?);
    if id == 1
        && !node
            .raft()
            .is_initialized()
            .await
            .map_err(std::io::Error::other)?
    {
        let members = (1..).zip(addrs.iter().cloned());
        node.initialize(members)
            .await
            .map_err(std::io::Error::other)?;
    }
    println!("node {id} serving on {}", addrs[id as usize - 1]);
    serve(listener, node).await;
    Ok(())
}

/// The three nodes of the demo (and of `raft/tests/processes.rs`), as child processes of
/// this binary.
pub(crate) struct Cluster {
    dir: PathBuf,
    addrs: Vec<String>,
    children: BTreeMap<NodeId, Child>,
}

/// Set in a node started by a [`Cluster`]: the node ends when its parent closes its stdin,
/// however the parent ends, rather than run on as an orphan.
const CHILD: &str = "REPLICATED_KV_CHILD";

impl Cluster {
    pub(crate) fn start(dir: &Path) -> Self {
        // Three free ports: bound, noted, released for the nodes.
        let listeners: Vec<_> = (0..3)
            .map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap())
            .collect();
        let addrs = listeners
            .iter()
            .map(|l| l.local_addr().unwrap().to_string())
            .collect();
        drop(listeners);
        let mut cluster = Self {
            dir: dir.to_owned(),
            addrs,
            children: BTreeMap::new(),
        };
        for id in 1..=3 {
            cluster.spawn(id);
        }
        cluster
    }

    /// Starts node `id` on its directory.
    pub(crate) fn spawn(&mut self, id: NodeId) {
        let child = Process::new(std::env::current_exe().unwrap())
            .arg("node")
            .arg(id.to_string())
            .arg(self.dir.join(id.to_string()))
            .args(&self.addrs)
            .env(CHILD, "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        self.children.insert(id, child);
    }

    /// Kills node `id` with `SIGKILL`: no goodbye, no flush.
    pub(crate) fn kill(&mut self, id: NodeId) {
        let mut child = self.children.remove(&id).unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
    }

    pub(crate) fn client(&self) -> TcpClient<Kv> {
        TcpClient::new((1..).zip(self.addrs.iter().cloned()))
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for (_, mut child) in std::mem::take(&mut self.children) {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

const DEADLINE: Duration = Duration::from_secs(20);

/// Puts `key{i}` for each `i` in `range`, then increments the counter `writes`; returns how
/// many increments were acknowledged.
async fn put(
    client: &mut TcpClient<Kv>,
    session: &mut Session,
    range: std::ops::Range<u64>,
) -> u64 {
    let mut count = 0;
    for i in range {
        let put = Command::Put(format!("key{i}"), format!("value{i}"));
        client
            .write_retrying(session.request(put), DEADLINE)
            .await
            .expect("a put");
        let increment = session.request(Command::Increment("writes".into()));
        let Output::Count(n) = client
            .write_retrying(increment, DEADLINE)
            .await
            .expect("an increment")
        else {
            unreachable!()
        };
        count = n;
    }
    count
}

/// Waits until node `id` has applied as far as the leader has.
async fn wait_until_caught_up(client: &mut TcpClient<Kv>, id: NodeId) {
    let give_up = tokio::time::Instant::now() + DEADLINE;
    loop {
        assert!(
            tokio::time::Instant::now() < give_up,
            "node {id} never caught up"
        );
        if let Ok(status) = client.status(id).await
            && let Some(leader) = status.leader
            && let Ok(leading) = client.status(leader).await
            && status.last_applied >= leading.last_applied
        {
            return;
        }
        // The node is restarting or replaying; ask again in a moment.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn leader(client: &mut TcpClient<Kv>) -> NodeId {
    for _ in 0..400 {
        for id in 1..=3 {
            if let Ok(Some(leader)) = client.status(id).await.map(|s| s.leader) {
                return leader;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no leader was elected");
}

async fn demo() {
    let dir = std::env::temp_dir().join(format!("replicated-kv-{}", std::process::id()));
    let mut cluster = Cluster::start(&dir);
    let mut client = cluster.client();
    let mut session = Session::random();

    let before = put(&mut client, &mut session, 0..100).await;
    let first = leader(&mut client).await;
    println!("100 keys written; node {first} leads; killing it with SIGKILL");
    cluster.kill(first);
    let after = put(&mut client, &mut session, 100..200).await;
    let second = leader(&mut client).await;
    println!("100 more keys written on node {second}, the new leader");
    cluster.spawn(first);
    wait_until_caught_up(&mut client, first).await;
    println!("node {first} restarted from its directory and caught up");

    // Read every key back through the log: every acknowledged write is there.
    for i in 0..200 {
        let get = session.request(Command::Get(format!("key{i}")));
        let value = client.write_retrying(get, DEADLINE).await.expect("a get");
        assert_eq!(value, Output::Value(Some(format!("value{i}"))), "key{i}");
    }
    assert_eq!((before, after), (100, 200), "each increment applied once");
    println!("all 200 keys present, and 200 increments applied exactly once");

    // Each node's own copy of the state, once it has applied what the leader has: the same.
    let mut states = Vec::new();
    for id in 1..=3 {
        wait_until_caught_up(&mut client, id).await;
        states.push(client.local_state(id).await.expect("a node's state"));
    }
    assert!(
        states.iter().all(|state| *state == states[0]),
        "the same state"
    );
    assert_eq!(
        (states[0].values.len(), states[0].counters.get("writes")),
        (200, Some(&200))
    );
    println!("the three nodes hold the same state");
    drop(cluster); // and its directory
}

/// Runs `node <id> <dir> <addr1> <addr2> <addr3>` (`args`, after the program's name) until
/// killed; as a [`Cluster`]'s child, also until its stdin closes.
pub(crate) fn node_main(args: &[String]) {
    let id = args[1].parse().expect("a node id: 1, 2 or 3");
    if std::env::var_os(CHILD).is_some() {
        std::thread::spawn(|| {
            let _ = std::io::Read::read_to_end(&mut std::io::stdin(), &mut Vec::new());
            std::process::exit(0);
        });
    }
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime
        .block_on(run_node(id, PathBuf::from(&args[2]), args[3..].to_vec()))
        .unwrap();
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        None | Some("demo") => tokio::runtime::Runtime::new().unwrap().block_on(demo()),
        Some("node") if args.len() == 6 => node_main(&args),
        _ => {
            eprintln!("usage: replicated_kv [demo | node <id> <dir> <addr1> <addr2> <addr3>]");
            std::process::exit(2);
        }
    }
}
