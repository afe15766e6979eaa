//! Three in-process nodes: writes replicate; a leader crash, and a partitioned leader, lose no
//! acknowledged write and apply nothing twice, with clients retrying throughout.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use singular_queue_raft::Session;
use support::{Cluster, Cmd, Kv, config};

const CLIENTS: u64 = 4;

/// Each client appends 1, 2, 3, … to its own list, one request at a time, retrying each
/// until it is acknowledged, until `stop` is set; returns how many it had acknowledged.
async fn append_until(
    cluster: Arc<Cluster>,
    client: u64,
    stop: Arc<AtomicU64>,
    at_least: u64,
) -> u64 {
    let mut session = Session::new(client);
    let mut acknowledged = 0;
    while acknowledged < at_least || stop.load(Ordering::SeqCst) == 0 {
        let value = acknowledged + 1;
        let output = cluster
            .write(session.request(Cmd::Append(client, value)))
            .await;
        // The output is the list's length after this append: once, and in order.
        assert_eq!(
            output,
            (Some(value), true),
            "client {client}'s append {value}"
        );
        acknowledged = value;
    }
    acknowledged
}

/// Every client's list is exactly 1..=acknowledged, on every node: nothing lost, nothing twice.
fn assert_exactly_once(state: &Kv, acknowledged: &[u64]) {
    for (client, &count) in (0..).zip(acknowledged) {
        let expected: Vec<u64> = (1..=count).collect();
        assert_eq!(
            state.lists.get(&client).cloned().unwrap_or_default(),
            expected,
            "client {client}"
        );
    }
}

async fn run_clients(
    cluster: &Arc<Cluster>,
    stop: &Arc<AtomicU64>,
    at_least: u64,
) -> Vec<tokio::task::JoinHandle<u64>> {
    (0..CLIENTS)
        .map(|client| {
            tokio::spawn(append_until(
                Arc::clone(cluster),
                client,
                Arc::clone(stop),
                at_least,
            ))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn writes_reach_every_node_in_the_same_order() {
    let cluster = Arc::new(Cluster::start("order", 3, config(None)).await);
    let stop = Arc::new(AtomicU64::new(1));
    let clients = run_clients(&cluster, &stop, 100).await;
    let mut acknowledged = Vec::new();
    for client in clients {
        acknowledged.push(client.await.unwrap());
    }
    let states = cluster.settled_states().await;
    assert_eq!(states.len(), 3);
    for state in states.values() {
        assert_exactly_once(state, &acknowledged);
    }
    Arc::into_inner(cluster).unwrap().shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_leader_crash_loses_no_acknowledged_write_and_applies_none_twice() {
    let cluster = Arc::new(Cluster::start("crash", 3, config(None)).await);
    let stop = Arc::new(AtomicU64::new(0));
    let clients = run_clients(&cluster, &stop, 300).await;
    // Let the clients get going, then kill the leader under them.
    let first = cluster.leader().await;
    cluster
        .node(first)
        .await
        .raft()
        .wait(None)
        .applied_index_at_least(Some(100), "warm up")
        .await
        .unwrap();
    cluster.crash(first).await;
    let second = cluster.leader().await;
    assert_ne!(first, second, "a new leader took over");
    // Bring the old leader back: it catches up from its own disk and the new leader's log.
    cluster.restart(first).await;
    stop.store(1, Ordering::SeqCst);
    let mut acknowledged = Vec::new();
    for client in clients {
        acknowledged.push(client.await.unwrap());
    }
    let retries = cluster.retries.load(Ordering::Relaxed);
    println!("acknowledged per client: {acknowledged:?}; {retries} retried attempts");
    assert!(retries > 0, "the crash sent clients to retry");
    let states = cluster.settled_states().await;
    assert_eq!(states.len(), 3);
    for state in states.values() {
        assert_exactly_once(state, &acknowledged);
    }
    Arc::into_inner(cluster).unwrap().shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_partitioned_leader_is_replaced_and_rejoins_when_healed() {
    let cluster = Arc::new(Cluster::start("partition", 3, config(None)).await);
    let stop = Arc::new(AtomicU64::new(0));
    let clients = run_clients(&cluster, &stop, 300).await;
    let first = cluster.leader().await;
    cluster
        .node(first)
        .await
        .raft()
        .wait(None)
        .applied_index_at_least(Some(100), "warm up")
        .await
        .unwrap();
    cluster.router.isolate(first);
    let second = cluster.leader_among_all_but(&[first]).await;
    assert_ne!(first, second, "the majority elected a new leader");
    // Writes go on at the majority while the old leader is cut off.
    let before = cluster
        .node(second)
        .await
        .raft()
        .metrics()
        .borrow()
        .last_applied;
    let target = before.map_or(0, |id| id.index) + 50;
    cluster
        .node(second)
        .await
        .raft()
        .wait(None)
        .applied_index_at_least(Some(target), "progress")
        .await
        .unwrap();
    cluster.router.heal(first);
    cluster.leader().await;
    stop.store(1, Ordering::SeqCst);
    let mut acknowledged = Vec::new();
    for client in clients {
        acknowledged.push(client.await.unwrap());
    }
    let states = cluster.settled_states().await;
    assert_eq!(states.len(), 3);
    for state in states.values() {
        assert_exactly_once(state, &acknowledged);
    }
    Arc::into_inner(cluster).unwrap().shutdown().await;
}
