//! A late answer is never taken for the next call's (review #5).
//!
//! Callers stop waiting on their own: an application puts a timeout around
//! `TcpClient::write` (as the book says to), and openraft wraps every `append_entries` in
//! `timeout(heartbeat_interval, network.append_entries(..))` (openraft-0.9.25
//! src/replication/mod.rs:457), whose timer starts before the link's own. A dropped call used
//! to leave its connection open with the answer still coming, and the next call read it: a
//! client was told another request's output, and a leader took an old `Success` for an
//! append the follower had refused. Now a call holds its connection until it has read the
//! answer, and a dropped call drops the connection with it.

mod support;

use std::sync::Arc;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use openraft::error::RaftError;
use openraft::network::RPCOption;
use openraft::raft::{AppendEntriesRequest, AppendEntriesResponse};
use openraft::{
    BasicNode, CommittedLeaderId, Entry, EntryPayload, LogId, RaftNetwork, RaftNetworkFactory,
    ServerState, Vote,
};
use serde::{Deserialize, Serialize};
use singular_queue::StateMachine;
use singular_queue_raft::{
    Node, NodeId, Replicated, Session, SnapshotError, TcpClient, TcpNetwork, TypeConfig, serve,
};
use tokio_util::bytes::Bytes;
use tokio_util::codec::LengthDelimitedCodec;

/// Appends values; `apply` sleeps as long as the command says (a slow apply, or a slow disk).
#[derive(Default, Serialize, Deserialize)]
struct Slow(Vec<u64>);

#[derive(Clone, Serialize, Deserialize)]
struct Cmd {
    sleep_ms: u64,
    value: u64,
    /// Padding, to make a command slow to encode.
    pad: Vec<u64>,
}

impl StateMachine for Slow {
    type Command = Cmd;
    type Output = u64;
    fn apply(&mut self, cmd: Cmd) -> u64 {
        std::thread::sleep(Duration::from_millis(cmd.sleep_ms));
        self.0.push(cmd.value);
        cmd.value
    }
}

impl Replicated for Slow {
    fn snapshot(&self) -> Vec<u8> {
        singular_queue_raft::to_bytes(self)
    }
    fn restore(bytes: &[u8]) -> Result<Self, SnapshotError> {
        singular_queue_raft::from_bytes(bytes)
    }
}

fn cmd(sleep_ms: u64, value: u64) -> Cmd {
    Cmd {
        sleep_ms,
        value,
        pad: Vec::new(),
    }
}

/// An application puts a timeout around `TcpClient::write` (as the book says), retries the
/// same request after it fires (as the book says), and then sends its next request. The next
/// request is answered with the retry's answer: the client is told the wrong output.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_after_a_client_timeout_gets_its_own_answer() {
    let dir = support::scratch_dir("late-client");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let node = Arc::new(
        Node::start(
            1,
            &dir,
            Slow::default(),
            TcpNetwork::new(),
            support::config(None),
        )
        .await
        .unwrap(),
    );
    node.initialize([(1, addr.clone())]).await.unwrap();
    node.raft()
        .wait(Some(Duration::from_secs(10)))
        .state(ServerState::Leader, "leader")
        .await
        .unwrap();
    let server = tokio::spawn(serve(listener, Arc::clone(&node)));

    let mut client = TcpClient::<Slow>::new([(1, addr)]);
    let mut session = Session::new(7);

    // Request 1 applies slowly (600 ms); the application gives up after 200 ms.
    let first = session.request(cmd(600, 1));
    let attempt = tokio::time::timeout(Duration::from_millis(200), client.write(first.clone()));
    assert!(attempt.await.is_err(), "the first attempt timed out");

    // It retries the same request, as documented: the answer is request 1's. Correct so far.
    let retried = client.write(first).await.expect("the retry is answered");
    assert_eq!(retried, 1);

    // Its next request: value 2, applied at once. It must be answered with 2.
    let second = session.request(cmd(0, 2));
    let answer = tokio::time::timeout(Duration::from_secs(5), client.write(second))
        .await
        .expect("answered");
    let state = node.read_local(|s: &Slow| s.0.clone()).await.unwrap();
    server.abort();
    node.shutdown().await.unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(
        answer.ok(),
        Some(2),
        "request 2 (value 2) was answered with another request's output; state: {state:?}"
    );
}

/// A fake peer: answers the first append after `delay` with `first`, every later one at once
/// with `later`, in order on each connection (as `serve` does), on as many connections as
/// the link opens.
async fn fake_peer(
    listener: tokio::net::TcpListener,
    delay: Duration,
    first: fn() -> AppendEntriesResponse<NodeId>,
    later: fn() -> AppendEntriesResponse<NodeId>,
) {
    let calls = Arc::new(std::sync::atomic::AtomicU64::new(0));
    loop {
        let (stream, _) = listener.accept().await.unwrap();
        tokio::spawn(answer(stream, Arc::clone(&calls), delay, first, later));
    }
}

async fn answer(
    stream: tokio::net::TcpStream,
    calls: Arc<std::sync::atomic::AtomicU64>,
    delay: Duration,
    first: fn() -> AppendEntriesResponse<NodeId>,
    later: fn() -> AppendEntriesResponse<NodeId>,
) {
    let mut connection = LengthDelimitedCodec::builder()
        .max_frame_length(64 << 20)
        .new_framed(stream);
    while let Some(Ok(_frame)) = connection.next().await {
        let n = calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
        let answer = if n == 1 {
            tokio::time::sleep(delay).await;
            first()
        } else {
            later()
        };
        let answer: Result<AppendEntriesResponse<NodeId>, RaftError<NodeId>> = Ok(answer);
        let bytes = singular_queue_raft::to_bytes(&answer);
        if connection.send(Bytes::from(bytes)).await.is_err() {
            return;
        }
    }
}

fn append(entries: Vec<Entry<TypeConfig<Slow>>>) -> AppendEntriesRequest<TypeConfig<Slow>> {
    AppendEntriesRequest {
        vote: Vote::new_committed(1, 1),
        prev_log_id: Some(LogId::new(CommittedLeaderId::new(1, 1), 10)),
        leader_commit: None,
        entries,
    }
}

/// openraft's replication calls the link exactly like this. A follower slow to answer one
/// append (an fsync longer than the heartbeat interval) makes the leader take that late
/// answer for the next append's: here a `Success` for an append the follower refused with
/// `Conflict`. A leader that takes `Success` for entries a follower does not have counts them
/// as replicated there and may commit (and acknowledge) without a quorum.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_append_after_openraft_timed_out_the_last_gets_its_own_answer() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let peer = tokio::spawn(fake_peer(
        listener,
        Duration::from_millis(400),
        || AppendEntriesResponse::Success,
        || AppendEntriesResponse::Conflict,
    ));
    let mut network = TcpNetwork::<Slow>::new();
    let mut link = network.new_client(2, &BasicNode::new(addr)).await;
    let ttl = Duration::from_millis(300);

    // A batch of entries that takes a few milliseconds to encode.
    let mut session = Session::new(1);
    let entries = (11..=60)
        .map(|i| Entry {
            log_id: LogId::new(CommittedLeaderId::new(1, 1), i),
            payload: EntryPayload::Normal(session.request(Cmd {
                sleep_ms: 0,
                value: i,
                pad: vec![u64::MAX; 2_000],
            })),
        })
        .collect();
    // As openraft-0.9.25 src/replication/mod.rs:457 does.
    let started = std::time::Instant::now();
    let first = tokio::time::timeout(
        ttl,
        link.append_entries(append(entries), RPCOption::new(ttl)),
    )
    .await;
    assert!(first.is_err(), "openraft's own timeout fired: {first:?}");

    // The next append: the peer answers it with Conflict.
    let second = tokio::time::timeout(
        ttl,
        link.append_entries(append(vec![]), RPCOption::new(ttl)),
    )
    .await;
    eprintln!(
        "second answered {:?} after the first began",
        started.elapsed()
    );
    peer.abort();
    let second = second.expect("answered in time").expect("an answer");
    assert_eq!(
        second,
        AppendEntriesResponse::Conflict,
        "the link returned the first append's late answer as the second's"
    );
}
