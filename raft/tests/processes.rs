//! Three node processes on 127.0.0.1 (the `replicated_kv` example's nodes): clients write
//! throughout while the leader is killed with `SIGKILL` and later restarted on its directory.
//! Every acknowledged write is applied exactly once, and the restarted node catches up.
//!
//! The node binary is the example, which `cargo test` builds beside the tests.

use std::path::PathBuf;
use std::process::{Child, Command as Process, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use singular_queue::StateMachine;
use singular_queue_raft::{NodeId, Replicated, Session, SnapshotError, TcpClient};

/// The example's state machine, as its clients see it (the same commands and outputs; the
/// state is never built here).
#[derive(Default, Serialize, Deserialize)]
struct Kv;

#[derive(Clone, Serialize, Deserialize)]
enum Command {
    Put(String, String),
    Get(String),
    Increment(String),
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
enum Output {
    Value(Option<String>),
    Count(u64),
}

impl StateMachine for Kv {
    type Command = Command;
    type Output = Output;
    fn apply(&mut self, _: Command) -> Output {
        unreachable!("only the nodes apply")
    }
}

impl Replicated for Kv {
    fn snapshot(&self) -> Vec<u8> {
        unreachable!("only the nodes snapshot")
    }
    fn restore(_: &[u8]) -> Result<Self, SnapshotError> {
        unreachable!("only the nodes restore")
    }
}

const WRITERS: u64 = 3;
const DEADLINE: Duration = Duration::from_secs(30);

/// The example binary, built by `cargo test` next to this test's.
fn node_binary() -> PathBuf {
    let deps = std::env::current_exe()
        .unwrap()
        .parent()
        .unwrap()
        .to_owned();
    let binary = deps
        .parent()
        .unwrap()
        .join("examples")
        .join("replicated_kv");
    assert!(
        binary.exists(),
        "{} is missing: run `cargo test` for all targets",
        binary.display()
    );
    binary
}

struct Nodes {
    dir: PathBuf,
    addrs: Vec<String>,
    children: Vec<Option<Child>>,
}

impl Nodes {
    fn start() -> Self {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("processes-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let listeners: Vec<_> = (0..3)
            .map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap())
            .collect();
        let addrs = listeners
            .iter()
            .map(|l| l.local_addr().unwrap().to_string())
            .collect();
        drop(listeners);
        let mut nodes = Self {
            dir,
            addrs,
            children: vec![None, None, None],
        };
        for id in 1..=3 {
            nodes.spawn(id);
        }
        nodes
    }

    fn spawn(&mut self, id: NodeId) {
        let child = Process::new(node_binary())
            .arg("node")
            .arg(id.to_string())
            .arg(self.dir.join(id.to_string()))
            .args(&self.addrs)
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        self.children[id as usize - 1] = Some(child);
    }

    /// `SIGKILL`: the process gets no chance to flush or say goodbye.
    fn kill(&mut self, id: NodeId) {
        let mut child = self.children[id as usize - 1].take().unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
    }

    fn client(&self) -> TcpClient<Kv> {
        TcpClient::new((1..).zip(self.addrs.iter().cloned()))
    }
}

impl Drop for Nodes {
    fn drop(&mut self) {
        for mut child in self.children.iter_mut().filter_map(Option::take) {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Increments the writer's own counter until `stop`, each request retried until answered;
/// each answer must be the next count: once, in order. Returns the acknowledged count.
async fn writer(mut client: TcpClient<Kv>, id: u64, stop: Arc<AtomicBool>, at_least: u64) -> u64 {
    let mut session = Session::new(id);
    let mut acknowledged = 0;
    while acknowledged < at_least || !stop.load(Ordering::SeqCst) {
        let request = session.request(Command::Increment(format!("writer{id}")));
        let output = client
            .write_retrying(request, DEADLINE)
            .await
            .expect("an answer within the deadline");
        acknowledged += 1;
        assert_eq!(
            output,
            Output::Count(acknowledged),
            "writer {id}: applied once, in order"
        );
    }
    acknowledged
}

async fn status_until(
    client: &mut TcpClient<Kv>,
    what: &str,
    mut done: impl AsyncFnMut(&mut TcpClient<Kv>) -> bool,
) {
    let give_up = tokio::time::Instant::now() + DEADLINE;
    while !done(client).await {
        assert!(
            tokio::time::Instant::now() < give_up,
            "{what} never happened"
        );
        // Asking a process over TCP: it cannot tell us, so ask again shortly.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The leader a live node reports, other than the `dead` one.
async fn leader(client: &mut TcpClient<Kv>, dead: Option<NodeId>) -> NodeId {
    let mut leader = None;
    status_until(client, "an election", async |client| {
        for id in (1..=3).filter(|&id| Some(id) != dead) {
            if let Ok(status) = client.status(id).await
                && status.leader.is_some()
                && status.leader != dead
            {
                leader = status.leader;
                return true;
            }
        }
        false
    })
    .await;
    leader.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_killed_with_sigkill_loses_no_acknowledged_write() {
    let mut nodes = Nodes::start();
    let mut observer = nodes.client();
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..WRITERS)
        .map(|id| tokio::spawn(writer(nodes.client(), id, Arc::clone(&stop), 100)))
        .collect();

    // Kill the leader once the writers are under way.
    let first = leader(&mut observer, None).await;
    status_until(&mut observer, "30 writes", async |client| {
        client
            .status(first)
            .await
            .is_ok_and(|s| s.last_applied >= Some(30))
    })
    .await;
    nodes.kill(first);
    let second = leader(&mut observer, Some(first)).await;
    assert_ne!(second, first);
    let at_kill = observer.status(second).await.unwrap().last_applied;
    status_until(&mut observer, "writes on the new leader", async |client| {
        client
            .status(second)
            .await
            .is_ok_and(|s| s.last_applied > at_kill.map(|i| i + 30))
    })
    .await;

    // Bring it back on its directory; let the writers finish.
    nodes.spawn(first);
    stop.store(true, Ordering::SeqCst);
    let mut acknowledged = Vec::new();
    for writer in writers {
        acknowledged.push(writer.await.unwrap());
    }
    // The restarted node catches up to the leader.
    let leading = leader(&mut observer, None).await;
    let last = observer.status(leading).await.unwrap().last_applied;
    status_until(
        &mut observer,
        "the restarted node catching up",
        async |client| {
            client
                .status(first)
                .await
                .is_ok_and(|s| s.last_applied >= last)
        },
    )
    .await;
    // One more increment each, through the log: exactly the acknowledged count plus one.
    for (id, &count) in (0..).zip(&acknowledged) {
        let mut session = Session::new(100 + id);
        let request = session.request(Command::Increment(format!("writer{id}")));
        let output = observer.write_retrying(request, DEADLINE).await.unwrap();
        assert_eq!(output, Output::Count(count + 1), "writer {id}");
    }
    println!("acknowledged per writer: {acknowledged:?}; node {first} was killed and caught up");
}
