//! Three in-process nodes: writes replicate; a leader crash, and a partitioned leader, lose no
//! acknowledged write and apply nothing twice, with clients retrying throughout.

mod support;

use std::sync::Arc;
use std::sync::atomic::Ordering;

use support::{Appenders, Cluster, applied, assert_exactly_once, config};

const CLIENTS: u64 = 4;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn writes_reach_every_node_in_the_same_order() {
    let cluster = Arc::new(Cluster::start("order", 3, config(None)).await);
    let acknowledged = Appenders::start(&cluster, CLIENTS, 100).finish().await;
    assert_exactly_once(&cluster, &acknowledged).await;
    Arc::into_inner(cluster).unwrap().shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_leader_crash_loses_no_acknowledged_write_and_applies_none_twice() {
    let cluster = Arc::new(Cluster::start("crash", 3, config(None)).await);
    let appenders = Appenders::start(&cluster, CLIENTS, 300);
    // Let the clients get going, then kill the leader under them.
    let first = cluster.leader().await;
    applied(&*cluster.node(first).await, 100).await;
    cluster.crash(first).await;
    let second = cluster.leader().await;
    assert_ne!(first, second, "a new leader took over");
    // Bring the old leader back: it catches up from its own disk and the new leader's log.
    cluster.restart(first).await;
    let acknowledged = appenders.finish().await;
    let retries = cluster.retries.load(Ordering::Relaxed);
    println!("acknowledged per client: {acknowledged:?}; {retries} retried attempts");
    assert!(retries > 0, "the crash sent clients to retry");
    assert_exactly_once(&cluster, &acknowledged).await;
    Arc::into_inner(cluster).unwrap().shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_partitioned_leader_is_replaced_and_rejoins_when_healed() {
    let cluster = Arc::new(Cluster::start("partition", 3, config(None)).await);
    let appenders = Appenders::start(&cluster, CLIENTS, 300);
    let first = cluster.leader().await;
    applied(&*cluster.node(first).await, 100).await;
    cluster.router.isolate(first);
    let second = cluster.leader_among_all_but(&[first]).await;
    assert_ne!(first, second, "the majority elected a new leader");
    // Writes go on at the majority while the old leader is cut off.
    cluster.progress(50, &[first]).await;
    cluster.router.heal(first);
    cluster.leader().await;
    let acknowledged = appenders.finish().await;
    assert_exactly_once(&cluster, &acknowledged).await;
    Arc::into_inner(cluster).unwrap().shutdown().await;
}
