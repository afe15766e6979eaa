//! Nodes restarted from their disk: a follower catching up by log, one catching up by
//! snapshot (with its sessions), and the whole cluster at once.

mod support;

use std::time::Duration;

use singular_queue_raft::{Request, Session};
use support::{Cluster, Cmd, config};

/// Appends 1..=count to `client`'s list, one acknowledged request at a time.
async fn append(cluster: &Cluster, session: &mut Session, count: u64) {
    let list = session.client();
    for value in 1..=count {
        let output = cluster
            .write(session.request(Cmd::Append(list, value)))
            .await;
        assert_eq!(output.0, Some(value));
    }
}

/// Every live node holds exactly `lists` (client, length): each list is 1..=length.
async fn assert_every_node_has(cluster: &Cluster, lists: &[(u64, u64)]) {
    let states = cluster.settled_states().await;
    assert_eq!(states.len(), cluster.ids.len(), "every node is up");
    for (id, state) in states {
        for &(list, length) in lists {
            let expected: Vec<u64> = (1..=length).collect();
            assert_eq!(state.lists[&list], expected, "node {id}, list {list}");
        }
        assert_eq!(
            state.lists.len(),
            lists.len(),
            "node {id} has no other list"
        );
    }
}

/// A node of the cluster that is not the leader.
async fn a_follower(cluster: &Cluster) -> u64 {
    let leader = cluster.leader().await;
    *cluster.ids.iter().find(|&&id| id != leader).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_restarted_follower_catches_up_by_log() {
    let cluster = Cluster::start("by-log", 3, config(None)).await;
    let mut session = Session::new(1);
    append(&cluster, &mut session, 50).await;
    let follower = a_follower(&cluster).await;
    cluster.crash(follower).await;
    let mut later = Session::new(2);
    append(&cluster, &mut later, 100).await;
    cluster.restart(follower).await;
    assert_every_node_has(&cluster, &[(1, 50), (2, 100)]).await;
    let metrics = cluster.metrics(follower).await;
    assert_eq!(metrics.snapshot, None, "it caught up by log alone");
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_restarted_follower_catches_up_by_snapshot_with_its_sessions() {
    let cluster = Cluster::start("by-snapshot", 3, config(Some(20))).await;
    let mut early = Session::new(1);
    append(&cluster, &mut early, 30).await;
    let follower = a_follower(&cluster).await;
    cluster.crash(follower).await;
    let mut later = Session::new(2);
    append(&cluster, &mut later, 120).await;
    // More entries after session 2's last request, so that the snapshot the follower gets
    // (one every 20 entries) covers that request: its session must come with the snapshot.
    let mut third = Session::new(3);
    append(&cluster, &mut third, 60).await;
    let leader = cluster.node(cluster.leader().await).await;
    // The leader has snapshotted and purged its log past what the follower has.
    let purged_past_30 = |m: &openraft::RaftMetrics<u64, openraft::BasicNode>| {
        m.purged.is_some_and(|id| id.index > 30)
    };
    let wait = leader.raft().wait(Some(Duration::from_secs(30)));
    wait.metrics(purged_past_30, "purged").await.unwrap();
    let purged = leader
        .raft()
        .metrics()
        .borrow()
        .purged
        .map_or(0, |id| id.index);
    assert!(purged > 30, "the leader purged its log up to {purged}");
    cluster.restart(follower).await;
    assert_every_node_has(&cluster, &[(1, 30), (2, 120), (3, 60)]).await;
    let metrics = cluster.metrics(follower).await;
    let snapshot = metrics.snapshot.expect("it caught up by snapshot");
    assert!(
        snapshot.index > 150,
        "the snapshot covers session 2: {snapshot:?}"
    );
    // Make the caught-up node leader: its sessions came with the snapshot, so a retry of an
    // old request is recognised, answered as the first time, and not applied again.
    cluster
        .node(follower)
        .await
        .raft()
        .trigger()
        .elect()
        .await
        .unwrap();
    wait_for_leader(&cluster, follower).await;
    // Session 2's last request, as its client would retry it.
    let retry = Request {
        client: 2,
        seq: 120,
        command: Cmd::Append(2, 120),
    };
    assert_eq!(
        cluster.write(retry).await.0,
        Some(120),
        "the first answer, again"
    );
    assert_every_node_has(&cluster, &[(1, 30), (2, 120), (3, 60)]).await;
    cluster.shutdown().await;
}

/// Waits until `id` leads and everyone agrees (elections can take a few rounds).
async fn wait_for_leader(cluster: &Cluster, id: u64) {
    loop {
        let leader = cluster.leader().await;
        if leader == id {
            return;
        }
        cluster
            .node(id)
            .await
            .raft()
            .trigger()
            .elect()
            .await
            .unwrap();
        let node = cluster.node(id).await;
        let _ = node
            .raft()
            .wait(Some(Duration::from_secs(2)))
            .current_leader(id, "elected")
            .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_whole_cluster_restarts_from_its_disks() {
    let cluster = Cluster::start("whole", 3, config(Some(40))).await;
    let mut session = Session::new(7);
    append(&cluster, &mut session, 100).await;
    for &id in &cluster.ids {
        cluster.crash(id).await;
    }
    for &id in &cluster.ids {
        cluster.restart(id).await;
    }
    cluster.leader().await;
    assert_every_node_has(&cluster, &[(7, 100)]).await;
    // The sessions survived too: the last request, retried, is not applied again.
    let retry = Request {
        client: 7,
        seq: 100,
        command: Cmd::Append(7, 100),
    };
    assert_eq!(cluster.write(retry).await.0, Some(100));
    assert_every_node_has(&cluster, &[(7, 100)]).await;
    cluster.shutdown().await;
}
