//! Nodes crashed and restarted over and over under load, with a snapshot every few entries
//! and no log kept behind it (from review #4): every restart succeeds, and every acknowledged
//! append is on every node exactly once.

mod support;

use std::sync::Arc;

use support::{Appenders, Cluster, assert_exactly_once, config};

/// `rounds` times: let the clients make progress, crash a node (the leader or a follower),
/// let them make progress without it, restart it on its directory.
async fn churn(name: &str, crash_the_leader: bool, rounds: u64) {
    let cluster = Arc::new(Cluster::start(name, 3, config(Some(7))).await);
    let appenders = Appenders::start(&cluster, 3, 0);
    for round in 0..rounds {
        cluster.progress(10 + 7 * (round % 5), &[]).await;
        let leader = cluster.leader().await;
        let victim = match crash_the_leader {
            true => leader,
            false => *cluster.ids.iter().find(|&&id| id != leader).unwrap(),
        };
        cluster.crash(victim).await;
        cluster.progress(round % 4 * 5, &[victim]).await;
        cluster.restart(victim).await;
    }
    let acknowledged = appenders.finish().await;
    assert_exactly_once(&cluster, &acknowledged).await;
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
