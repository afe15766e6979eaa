//! Nodes crashed and restarted over and over under load, with a snapshot every few entries
//! and no log kept behind it (from review #4): every restart succeeds, and every acknowledged
//! append is on every node exactly once.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use singular_queue_raft::Session;
use support::{Cluster, Cmd, config};

/// Three clients appending 1, 2, 3, … to their own lists until `stop`.
async fn clients(cluster: Arc<Cluster>, stop: Arc<AtomicBool>) -> Vec<u64> {
    let tasks: Vec<_> = (0..3u64)
        .map(|client| {
            let (cluster, stop) = (Arc::clone(&cluster), Arc::clone(&stop));
            tokio::spawn(async move {
                let mut session = Session::new(client);
                let mut acknowledged = 0;
                while !stop.load(Ordering::SeqCst) {
                    let value = acknowledged + 1;
                    let output = cluster
                        .write(session.request(Cmd::Append(client, value)))
                        .await;
                    assert_eq!(output.0, Some(value), "client {client}, append {value}");
                    acknowledged = value;
                }
                acknowledged
            })
        })
        .collect();
    let mut acknowledged = Vec::new();
    for task in tasks {
        acknowledged.push(task.await.unwrap());
    }
    acknowledged
}

/// `rounds` times: let the clients make progress, crash a node (the leader or a follower),
/// let them make progress without it, restart it on its directory.
async fn churn(name: &str, crash_the_leader: bool, rounds: u64) {
    let cluster = Arc::new(Cluster::start(name, 3, config(Some(7))).await);
    let stop = Arc::new(AtomicBool::new(false));
    let load = tokio::spawn(clients(Arc::clone(&cluster), Arc::clone(&stop)));
    for round in 0..rounds {
        cluster.progress(10 + 7 * (round % 5)).await;
        let leader = cluster.leader().await;
        let victim = match crash_the_leader {
            true => leader,
            false => *cluster.ids.iter().find(|&&id| id != leader).unwrap(),
        };
        cluster.crash(victim).await;
        cluster.progress(round % 4 * 5).await;
        cluster.restart(victim).await;
    }
    stop.store(true, Ordering::SeqCst);
    let acknowledged = load.await.unwrap();
    for (id, state) in cluster.settled_states().await {
        for (client, &count) in (0..).zip(&acknowledged) {
            let expected: Vec<u64> = (1..=count).collect();
            assert_eq!(
                state.lists.get(&client).cloned().unwrap_or_default(),
                expected,
                "node {id}, client {client}"
            );
        }
    }
    Arc::into_inner(cluster).unwrap().shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_follower_crashed_and_restarted_fifteen_times_under_load() {
    churn("churn-follower", false, 15).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_leader_crashed_and_restarted_ten_times_under_load() {
    churn("churn-leader", true, 10).await;
}
