//! Stopping (from review #4): a panic in `apply` stops the node and every caller hears it;
//! shutdowns, twice and at once, with calls in flight, all return, and free the directory.

mod support;

use std::time::Duration;

use singular_queue_raft::{ReadError, Session, WriteError};
use support::{Cluster, Cmd, Kv, config};

/// Long enough for any of these calls on a loaded machine; a call that takes it has hung.
const LIMIT: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_panic_in_apply_answers_stopped_and_every_node_still_shuts_down() {
    let cluster = Cluster::start("panic", 3, config(None)).await;
    let mut session = Session::new(1);
    cluster.write(session.request(Cmd::Append(1, 1))).await;
    let leader = cluster.node(cluster.leader().await).await;
    let answer = tokio::time::timeout(LIMIT, leader.write(session.request(Cmd::Panic))).await;
    match answer.expect("the write returns") {
        Err(WriteError::Stopped { reason, request }) => {
            assert!(reason.contains("apply panicked on purpose"), "{reason}");
            assert_eq!(request.seq, 2, "the request comes back");
        }
        other => panic!("expected Stopped, got {other:?}"),
    }
    // Every node applies the command, panics the same way and stops: calls fail, never hang.
    for id in cluster.live().await {
        let node = cluster.node(id).await;
        let read = tokio::time::timeout(LIMIT, node.read_local(|kv: &Kv| kv.lists.len())).await;
        match read.expect("read_local returns") {
            Ok(_) | Err(ReadError::Stopped(_)) => {}
            Err(other) => panic!("node {id}: {other:?}"),
        }
        let read = tokio::time::timeout(LIMIT, node.read(|kv: &Kv| kv.lists.len())).await;
        assert!(read.is_ok(), "a linearizable read on node {id} returns");
    }
    for id in cluster.live().await {
        let node = cluster.node(id).await;
        tokio::time::timeout(LIMIT, node.shutdown())
            .await
            .expect("shutdown returns")
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn shutdowns_twice_and_at_once_with_calls_in_flight_all_return() {
    let cluster = Cluster::start("twice", 3, config(None)).await;
    let mut session = Session::new(1);
    for value in 1..=20 {
        cluster.write(session.request(Cmd::Append(1, value))).await;
    }
    let leader_id = cluster.leader().await;
    let leader = cluster.node(leader_id).await;
    let writer = {
        let (leader, request) = (leader.clone(), session.request(Cmd::Append(1, 21)));
        tokio::spawn(async move { leader.write(request).await })
    };
    let reader = {
        let leader = leader.clone();
        tokio::spawn(async move { leader.read(|kv: &Kv| kv.lists.len()).await })
    };
    let (a, b) = tokio::time::timeout(LIMIT, async {
        tokio::join!(leader.shutdown(), leader.shutdown())
    })
    .await
    .expect("two shutdowns at once return");
    a.unwrap();
    b.unwrap();
    tokio::time::timeout(LIMIT, leader.shutdown())
        .await
        .expect("a third returns")
        .unwrap();
    tokio::time::timeout(LIMIT, writer)
        .await
        .expect("the write in flight returns")
        .unwrap()
        .ok();
    tokio::time::timeout(LIMIT, reader)
        .await
        .expect("the read in flight returns")
        .unwrap()
        .ok();
    // A stopped node says so.
    let write = leader.write(session.request(Cmd::Append(1, 99))).await;
    assert!(
        matches!(write, Err(WriteError::Stopped { .. })),
        "{write:?}"
    );
    let read = leader.read(|kv: &Kv| kv.lists.len()).await;
    assert!(matches!(read, Err(ReadError::Stopped(_))), "{read:?}");
    let read = leader.read_local(|kv: &Kv| kv.lists.len()).await;
    assert!(matches!(read, Err(ReadError::Stopped(_))), "{read:?}");
    // Its directory is free: it restarts there, and catches up.
    drop(leader);
    cluster.crash(leader_id).await;
    cluster.restart(leader_id).await;
    let states = cluster.settled_states().await;
    assert_eq!(states.len(), 3);
    cluster.shutdown().await;
}
