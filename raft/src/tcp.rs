//! The real network: openraft's RPCs, and clients' writes, over TCP.
//!
//! Each call is one frame each way on a connection, framed by
//! [`LengthDelimitedCodec`](tokio_util::codec::LengthDelimitedCodec) and encoded as CBOR.
//! A node [`serve`]s its peers and its clients on one port; [`TcpNetwork`] is how a node
//! reaches its peers, and [`TcpClient`](crate::TcpClient) is how an application writes.

use std::fmt;
use std::io;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use openraft::error::{
    InstallSnapshotError, NetworkError, PayloadTooLarge, RPCError, RaftError, RemoteError,
    Unreachable,
};
use openraft::network::RPCOption;
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::{BasicNode, RaftNetwork, RaftNetworkFactory};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::bytes::Bytes;
use tokio_util::codec::{Framed, LengthDelimitedCodec};

use crate::codec::{decode, encode};
use crate::{Node, NodeId, Replicated, Request, TypeConfig, WriteError};

type Rpc<E = openraft::error::Infallible> = RPCError<NodeId, BasicNode, RaftError<NodeId, E>>;
type Connection = Framed<TcpStream, LengthDelimitedCodec>;

/// The largest frame either side accepts: snapshots travel in chunks of openraft's
/// `snapshot_max_chunk_size` (3 MiB by default), so this leaves room.
const MAX_FRAME: usize = 64 << 20;

/// One call: what a peer or a client asks of a node.
#[derive(Serialize, Deserialize)]
#[serde(bound = "")]
pub(crate) enum Call<S: Replicated> {
    Append(AppendEntriesRequest<TypeConfig<S>>),
    Vote(VoteRequest<NodeId>),
    Snapshot(InstallSnapshotRequest<TypeConfig<S>>),
    Write(Request<S::Command>),
    Status,
    State,
}

/// Why a node did not apply a client's request: [`WriteError`] without the request, which
/// the client still holds.
#[derive(Serialize, Deserialize)]
pub(crate) enum Refusal {
    NotLeader(Option<NodeId>),
    Superseded,
    Stopped(String),
}

/// What a node reports of itself to a [`TcpClient`](crate::TcpClient): enough to tell a
/// leader, a node that has caught up, and how far the log has been compacted into snapshots.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    /// This node's id.
    pub id: NodeId,
    /// The leader it knows of.
    pub leader: Option<NodeId>,
    /// The index of the last log entry it applied.
    pub last_applied: Option<u64>,
    /// The index of the last log entry in its latest snapshot (built or installed).
    pub snapshot: Option<u64>,
    /// The index of the last log entry it has discarded (kept only in a snapshot): a peer
    /// that has not got this far can catch up only by snapshot.
    pub purged: Option<u64>,
}

async fn connect(addr: &str) -> io::Result<Connection> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    Ok(LengthDelimitedCodec::builder()
        .max_frame_length(MAX_FRAME)
        .new_framed(stream))
}

/// Why a call got no answer.
pub(crate) enum Failure {
    /// The call is larger than a frame may be: nothing was sent.
    TooLarge(usize),
    /// No connection could be made: nothing was sent.
    Connect(io::Error),
    /// The connection broke or timed out during the call: the call may have arrived.
    Lost(io::Error),
}

impl Failure {
    pub(crate) fn into_io(self) -> io::Error {
        match self {
            Self::TooLarge(size) => io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("a call of {size} bytes is larger than a frame ({MAX_FRAME})"),
            ),
            Self::Connect(e) | Self::Lost(e) => e,
        }
    }
}

/// One connection to one node, made on first use and again after any failure.
pub(crate) struct Line {
    addr: String,
    connection: Option<Connection>,
}

impl Line {
    pub(crate) fn new(addr: String) -> Self {
        Self {
            addr,
            connection: None,
        }
    }

    /// Sends `call` and waits up to `timeout`, in all, for its answer.
    ///
    /// The connection is taken out of the line for the call and put back only once the
    /// answer has been read. A call that fails, times out, or is dropped half-way (a caller's
    /// own timeout, openraft's) takes its connection down with it, so a late answer can never
    /// be read as the next call's (review #5 found exactly that: a retried write told the
    /// previous request's output, and openraft an old `Success` for a refused append).
    pub(crate) async fn call<Q: Serialize, A: DeserializeOwned>(
        &mut self,
        call: &Q,
        timeout: Duration,
    ) -> Result<A, Failure> {
        let bytes = encode(call).map_err(Failure::Lost)?;
        if bytes.len() > MAX_FRAME {
            return Err(Failure::TooLarge(bytes.len()));
        }
        let deadline = tokio::time::Instant::now() + timeout;
        let mut connection = match self.connection.take() {
            Some(connection) => connection,
            None => tokio::time::timeout_at(deadline, connect(&self.addr))
                .await
                .unwrap_or_else(|_| Err(io::Error::from(io::ErrorKind::TimedOut)))
                .map_err(Failure::Connect)?,
        };
        let exchange = async {
            connection.send(Bytes::from(bytes)).await?;
            let frame = connection
                .next()
                .await
                .unwrap_or_else(|| Err(io::Error::from(io::ErrorKind::UnexpectedEof)))?;
            decode(&frame)
        };
        let answer = tokio::time::timeout_at(deadline, exchange)
            .await
            .unwrap_or_else(|_| Err(io::Error::from(io::ErrorKind::TimedOut)));
        if answer.is_ok() {
            self.connection = Some(connection);
        }
        answer.map_err(Failure::Lost)
    }
}

/// Serves `node`'s peers and clients on `listener`, one task per connection. It never
/// returns: drop it (or abort the task that runs it) to stop serving, and every connection it
/// accepted closes with it.
///
/// A failure to accept (out of file handles, say) does not stop it: it pauses a tenth of a
/// second, for handles to be freed, and accepts again. (Review #5 found a node process ended
/// by `EMFILE` after a client opened a thousand idle connections.)
pub async fn serve<S: Replicated>(listener: TcpListener, node: Arc<Node<S>>) {
    let mut connections = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let _ = stream.set_nodelay(true);
                    let connection = LengthDelimitedCodec::builder()
                        .max_frame_length(MAX_FRAME)
                        .new_framed(stream);
                    connections.spawn(answer_calls(connection, Arc::clone(&node)));
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            },
            // Forget the connections that have closed.
            Some(_) = connections.join_next() => {}
        }
    }
}

/// Answers the calls on one connection, in order, until it closes or sends garbage.
async fn answer_calls<S: Replicated>(mut connection: Connection, node: Arc<Node<S>>) {
    while let Some(Ok(frame)) = connection.next().await {
        let Ok(call) = decode::<Call<S>>(&frame) else {
            return;
        };
        let Ok(answer) = answer(&node, call).await else {
            return;
        };
        if connection.send(Bytes::from(answer)).await.is_err() {
            return;
        }
    }
}

async fn answer<S: Replicated>(node: &Node<S>, call: Call<S>) -> io::Result<Vec<u8>> {
    let raft = node.raft();
    match call {
        Call::Append(rpc) => encode(&raft.append_entries(rpc).await),
        Call::Vote(rpc) => encode(&raft.vote(rpc).await),
        Call::Snapshot(rpc) => encode(&raft.install_snapshot(rpc).await),
        Call::Write(request) => encode(&node.write(request).await.map_err(|e| match e {
            WriteError::NotLeader { leader, .. } => Refusal::NotLeader(leader),
            WriteError::Superseded(_) => Refusal::Superseded,
            WriteError::Stopped { reason, .. } => Refusal::Stopped(reason),
            // `Node::write` sends nothing, so it is never too large to send.
            other => Refusal::Stopped(other.to_string()),
        })),
        Call::Status => {
            let metrics = raft.metrics().borrow().clone();
            encode(&Status {
                id: metrics.id,
                leader: metrics.current_leader,
                last_applied: metrics.last_applied.map(|id| id.index),
                snapshot: metrics.snapshot.map(|id| id.index),
                purged: metrics.purged.map(|id| id.index),
            })
        }
        Call::State => {
            let state = node.read_local(|state| state.snapshot()).await;
            encode(&state.map_err(|e| e.to_string()))
        }
    }
}

/// How a node reaches its peers over TCP, at the addresses of their [`BasicNode`]s.
pub struct TcpNetwork<S> {
    _state: PhantomData<fn() -> S>,
}

impl<S> TcpNetwork<S> {
    /// A network that connects to each peer on first use.
    pub fn new() -> Self {
        Self {
            _state: PhantomData,
        }
    }
}

impl<S> Default for TcpNetwork<S> {
    fn default() -> Self {
        Self::new()
    }
}

impl<S> fmt::Debug for TcpNetwork<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TcpNetwork")
    }
}

impl<S: Replicated> RaftNetworkFactory<TypeConfig<S>> for TcpNetwork<S> {
    type Network = TcpLink<S>;

    async fn new_client(&mut self, target: NodeId, node: &BasicNode) -> TcpLink<S> {
        TcpLink {
            target,
            line: Line::new(node.addr.clone()),
            _state: PhantomData,
        }
    }
}

/// A node's connection to one peer.
pub struct TcpLink<S> {
    target: NodeId,
    line: Line,
    _state: PhantomData<fn() -> S>,
}

impl<S> fmt::Debug for TcpLink<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TcpLink")
            .field("target", &self.target)
            .field("addr", &self.line.addr)
            .finish()
    }
}

impl<S: Replicated> TcpLink<S> {
    /// One RPC: a failure to connect is `Unreachable` (openraft backs off), a lost answer is a
    /// network error, and the peer's own error is remote.
    ///
    /// An append of `entries` entries too large for a frame is `PayloadTooLarge`, with a hint
    /// of how many entries would fit, so that openraft sends fewer at a time.
    async fn rpc<A, E>(
        &mut self,
        call: Call<S>,
        entries: u64,
        option: &RPCOption,
    ) -> Result<A, Rpc<E>>
    where
        A: DeserializeOwned,
        E: std::error::Error + DeserializeOwned,
    {
        let answer: Result<A, RaftError<NodeId, E>> =
            match self.line.call(&call, option.hard_ttl()).await {
                Ok(answer) => answer,
                Err(Failure::TooLarge(size)) if entries > 1 => {
                    let fit = (entries * MAX_FRAME as u64 / size as u64 / 2).max(1);
                    return Err(RPCError::PayloadTooLarge(
                        PayloadTooLarge::new_entries_hint(fit),
                    ));
                }
                Err(Failure::Connect(e)) => {
                    return Err(RPCError::Unreachable(Unreachable::new(&e)));
                }
                Err(failure) => {
                    return Err(RPCError::Network(NetworkError::new(&failure.into_io())));
                }
            };
        answer.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }
}

impl<S: Replicated> RaftNetwork<TypeConfig<S>> for TcpLink<S> {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig<S>>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, Rpc> {
        let entries = rpc.entries.len() as u64;
        self.rpc(Call::Append(rpc), entries, &option).await
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig<S>>,
        option: RPCOption,
    ) -> Result<InstallSnapshotResponse<NodeId>, Rpc<InstallSnapshotError>> {
        self.rpc(Call::Snapshot(rpc), 0, &option).await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, Rpc> {
        self.rpc(Call::Vote(rpc), 0, &option).await
    }
}
