//! Linearizable reads across a failover: clients run random register operations (writes
//! through the log, gets as linearizable reads off the log) while the leader crashes and
//! comes back, and while the next leader is cut off and healed; the checker must find, for
//! every key, an order that respects real time and explains every result.

mod support;

use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use singular_queue_raft::Session;
use support::linearizable::{Event, Op, linearizable, random_op};
use support::{Cluster, Cmd, config};

const CLIENTS: u64 = 4;
/// The most operations a client runs (the checker takes up to 128 per key).
const MAX_OPS_PER_CLIENT: u64 = 120;
const KEYS: u64 = 6;

/// One client's random operations, each with when it was invoked and when it returned, until
/// `stop` is set.
async fn client(cluster: Arc<Cluster>, id: u64, stop: Arc<AtomicBool>) -> Vec<(u64, Event)> {
    let random = BuildHasherDefault::<DefaultHasher>::default();
    let mut session = Session::new(id);
    let mut events = Vec::new();
    for i in 0..MAX_OPS_PER_CLIENT {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        let roll = random.hash_one((id, i));
        let key = roll % KEYS;
        let op = random_op(roll);
        let start = Instant::now();
        let output = match op {
            Op::Get => (cluster.read(key).await, false),
            _ => cluster.write(session.request(Cmd::Register(key, op))).await,
        };
        events.push((key, Event::ended(op, output, start)));
    }
    events
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reads_and_writes_stay_linearizable_across_a_crash_and_a_partition() {
    let cluster = Arc::new(Cluster::start("linearizable", 3, config(Some(50))).await);
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|id| tokio::spawn(client(Arc::clone(&cluster), id, Arc::clone(&stop))))
        .collect();
    let first = cluster.leader().await;
    let node = cluster.node(first).await;
    node.raft()
        .wait(None)
        .applied_index_at_least(Some(40), "warm up")
        .await
        .unwrap();
    drop(node);
    let crashed_at = Instant::now();
    cluster.crash(first).await;
    assert_ne!(cluster.leader().await, first, "a new leader took over");
    cluster.restart(first).await;
    // Then cut the new leader off: until it hears of its successor it still believes it
    // leads, and a read it served from its own state would be stale.
    let second = cluster.leader().await;
    cluster.router.isolate(second);
    assert_ne!(cluster.leader_among_all_but(&[second]).await, second);
    cluster.router.heal(second);
    cluster.leader().await;
    let healed_at = Instant::now();
    // A few more operations after the heal, then stop.
    let leader = cluster.node(cluster.leader().await).await;
    let applied = leader
        .raft()
        .metrics()
        .borrow()
        .last_applied
        .map_or(0, |id| id.index);
    let wait = leader.raft().wait(None);
    wait.applied_index_at_least(Some(applied + 20), "after the heal")
        .await
        .unwrap();
    drop(leader);
    stop.store(true, Ordering::SeqCst);
    let mut histories: HashMap<u64, Vec<Event>> = HashMap::new();
    for client in clients {
        for (key, event) in client.await.unwrap() {
            histories.entry(key).or_default().push(event);
        }
    }
    let mut checked = 0;
    for (key, history) in &histories {
        assert!(linearizable(history, None), "key {key}: {history:#?}");
        checked += history.len();
    }
    let all = || histories.values().flatten();
    assert!(
        all().any(|e| e.end < crashed_at),
        "operations ran before the crash"
    );
    assert!(
        all().any(|e| e.start > healed_at),
        "operations ran after the heal"
    );
    let retries = cluster.retries.load(Ordering::Relaxed);
    println!("{checked} operations linearizable across a failover; {retries} retried attempts");
    Arc::into_inner(cluster).unwrap().shutdown().await;
}
