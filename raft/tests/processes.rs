//! Three node processes on 127.0.0.1 (the `replicated_kv` example's nodes): clients write
//! throughout while the leader is killed with `SIGKILL` and later restarted on its directory,
//! after the new leader has compacted its log past it, so that it catches up by a snapshot
//! sent over TCP. Every acknowledged write is applied exactly once, on every node.
//!
//! The node processes are this test binary itself (`harness = false`: it has its own `main`):
//! it compiles the example's source as a module, and starts its nodes with the example's
//! `Cluster`, whose children run `node …` as the example does. So the nodes always run the code this binary was built from, whichever
//! targets `cargo test` was asked to build (the example's own binary is not built for
//! `cargo test --test processes`, and may be stale).

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use singular_queue_raft::{NodeId, Session, TcpClient};

#[path = "../examples/replicated_kv.rs"]
#[allow(dead_code)] // The example's `main` and demo.
mod example;

use example::{Cluster, Command, Kv, Output};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("node") {
        // A node process of the test below (the example's `Cluster` starts this binary).
        return example::node_main(&args);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(a_leader_killed_with_sigkill_loses_no_acknowledged_write());
    // As libtest reports it, for the tally of `.ci/test-all`.
    println!("test a_leader_killed_with_sigkill_loses_no_acknowledged_write ... ok");
    println!("test result: ok. 1 passed; 0 failed");
}

const WRITERS: u64 = 3;
const DEADLINE: Duration = Duration::from_secs(30);

/// The counter of writer `id`.
fn counter(id: u64) -> String {
    format!("writer{id}")
}

/// Increments the writer's own counter until `stop`, each request retried until answered;
/// each answer must be the next count: once, in order. Returns the acknowledged count.
async fn writer(mut client: TcpClient<Kv>, id: u64, stop: Arc<AtomicBool>, at_least: u64) -> u64 {
    let mut session = Session::new(id);
    let mut acknowledged = 0;
    while acknowledged < at_least || !stop.load(Ordering::SeqCst) {
        let request = session.request(Command::Increment(counter(id)));
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

/// Asks the nodes until `done` says yes, for at most [`DEADLINE`].
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
        // The nodes are other processes: nothing here can wait on their metrics, so ask
        // again shortly.
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

/// The index node `id` has applied up to (0: nothing, or no answer).
async fn applied(client: &mut TcpClient<Kv>, id: NodeId) -> u64 {
    let status = client.status(id).await;
    status.ok().and_then(|s| s.last_applied).unwrap_or(0)
}

async fn a_leader_killed_with_sigkill_loses_no_acknowledged_write() {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("processes-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut nodes = Cluster::start(&dir);
    let mut observer = nodes.client();
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..WRITERS)
        .map(|id| tokio::spawn(writer(nodes.client(), id, Arc::clone(&stop), 100)))
        .collect();

    // Kill the leader once the writers are under way.
    let first = leader(&mut observer, None).await;
    status_until(&mut observer, "30 writes", async |client| {
        applied(client, first).await >= 30
    })
    .await;
    nodes.kill(first);
    let second = leader(&mut observer, Some(first)).await;
    assert_ne!(second, first);
    // 30 entries past what the new leader had applied when elected: more than the killed
    // leader could have had in flight (three writers, one request each at a time), so the
    // new leader's first entry is at or before `since`, and whatever log the killed node
    // shares with it ends before that.
    let at_kill = applied(&mut observer, second).await;
    let mut since = 0;
    status_until(&mut observer, "writes on the new leader", async |client| {
        since = applied(client, second).await;
        since > at_kill + 30
    })
    .await;
    // Writes go on until the new leader has compacted its log past that: the killed node
    // can only catch up by a snapshot, over TCP.
    status_until(&mut observer, "a purged log", async |client| {
        let status = client.status(second).await;
        status.is_ok_and(|s| s.purged >= Some(since))
    })
    .await;

    // Bring it back on its directory; let the writers finish.
    nodes.spawn(first);
    stop.store(true, Ordering::SeqCst);
    let mut acknowledged = Vec::new();
    for writer in writers {
        acknowledged.push(writer.await.unwrap());
    }

    // Every node catches up with the leader, which has applied every acknowledged write;
    // then each node's own state holds each writer's count exactly.
    let leading = leader(&mut observer, None).await;
    let last = applied(&mut observer, leading).await;
    let mut states = Vec::new();
    for id in 1..=3 {
        status_until(&mut observer, "catching up", async |client| {
            applied(client, id).await >= last
        })
        .await;
        states.push((id, observer.local_state(id).await.unwrap()));
    }
    for (id, state) in &states {
        for (writer, &count) in (0..).zip(&acknowledged) {
            let applied = state.counters.get(&counter(writer)).copied();
            assert_eq!(applied, Some(count), "node {id}, writer {writer}");
        }
        assert_eq!(state.counters.len(), acknowledged.len(), "node {id}");
    }
    let snapshot = observer.status(first).await.unwrap().snapshot;
    assert!(
        snapshot >= Some(since),
        "node {first} caught up by the leader's snapshot: {snapshot:?}, {since}"
    );
    println!(
        "acknowledged per writer: {acknowledged:?}; node {first} was killed, \
         and caught up by snapshot at {snapshot:?}"
    );
}
