use std::any::Any;
use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::sync::Arc;

use openraft::error::{CheckIsLeaderError, ClientWriteError, InitializeError, RaftError};
use openraft::{BasicNode, Config, Raft, RaftNetworkFactory};
use singular_queue::{Handle, SingularQueue};

use crate::applier::{Applier, Op, Read};
use crate::log_store::{LogStore, Released};
use crate::state_machine::{QueueMachine, install};
use crate::{NodeId, ReadError, Replicated, Request, Response, TypeConfig, WriteError};

/// One member of a replicated cluster: openraft for consensus, a [`SingularQueue`] whose
/// worker applies the committed log to your state machine, and a redb file for the log.
///
/// See the [crate documentation](crate) for a walk-through.
pub struct Node<S: Replicated> {
    id: NodeId,
    raft: Raft<TypeConfig<S>>,
    queue: SingularQueue<Applier<S>>,
    /// Completes once openraft's tasks have let go of the database.
    released: tokio::sync::Mutex<Option<Released>>,
}

impl<S: Replicated> Node<S> {
    /// Starts node `id` with its files in `dir` (created if missing), talking to its peers
    /// over `network`.
    ///
    /// A new node starts from `initial`; a node restarted on the same `dir` starts from its
    /// last snapshot there instead, and openraft replays the committed log after it. The node
    /// then waits for [`initialize`](Node::initialize) (once, on one node of a new cluster) or
    /// for a leader to add it.
    ///
    /// # Errors
    ///
    /// When the files cannot be opened, the queue's thread cannot be spawned, the snapshot
    /// does not decode, or `config` is not valid.
    pub async fn start<N>(
        id: NodeId,
        dir: impl AsRef<Path>,
        initial: S,
        network: N,
        config: Config,
    ) -> io::Result<Self>
    where
        N: RaftNetworkFactory<TypeConfig<S>>,
    {
        let path = dir.as_ref().join("raft.redb");
        std::fs::create_dir_all(dir.as_ref())?;
        let (store, released) = tokio::task::spawn_blocking(move || LogStore::open_tracked(&path))
            .await
            .map_err(io::Error::other)??;
        let queue = SingularQueue::builder(Applier::new(initial))
            .name(format!("raft-node-{id}"))
            .spawn()?;
        if let Some((meta, bytes)) = store.snapshot().await? {
            install(&queue.handle(), &meta, bytes)
                .await
                .map_err(io::Error::other)?;
        }
        let config = Arc::new(config.validate().map_err(io::Error::other)?);
        let machine = QueueMachine::new(queue.handle(), store.clone());
        let raft = Raft::new(id, config, network, store, machine)
            .await
            .map_err(io::Error::other)?;
        Ok(Self {
            id,
            raft,
            queue,
            released: tokio::sync::Mutex::new(Some(released)),
        })
    }

    /// Makes a new cluster of `members` (id and address); call it once, on one node.
    ///
    /// # Errors
    ///
    /// When the cluster was already initialised, or this node is not among `members`.
    pub async fn initialize(
        &self,
        members: impl IntoIterator<Item = (NodeId, String)>,
    ) -> Result<(), RaftError<NodeId, InitializeError<NodeId, BasicNode>>> {
        let members: BTreeMap<_, _> = members
            .into_iter()
            .map(|(id, addr)| (id, BasicNode::new(addr)))
            .collect();
        self.raft.initialize(members).await
    }

    /// Replicates `request` and applies it, once committed, on every node; returns its output.
    ///
    /// Make requests with a [`Session`](crate::Session). If this returns an error, or you
    /// stop waiting (a timeout, a dropped future), the request may or may not have been
    /// applied: retry **the same request**, here or on the leader, and its session makes sure
    /// it is applied at most once. A leader cut off from the others cannot commit: its writes
    /// wait until it hears of a new leader, so put a timeout around this call.
    ///
    /// # Errors
    ///
    /// As [`WriteError`] says; each gives the request back.
    pub async fn write(
        &self,
        request: Request<S::Command>,
    ) -> Result<S::Output, WriteError<S::Command>> {
        match self.raft.client_write(request.clone()).await {
            Ok(written) => match written.data {
                Response::Applied(output) | Response::Repeated(output) => Ok(output),
                Response::Superseded => Err(WriteError::Superseded(request)),
                Response::Internal => unreachable!("a request's entry is the user's"),
            },
            Err(RaftError::APIError(ClientWriteError::ForwardToLeader(to))) => {
                Err(WriteError::NotLeader {
                    leader: to.leader_id,
                    request,
                })
            }
            Err(RaftError::APIError(ClientWriteError::ChangeMembershipError(_))) => {
                unreachable!("a request is not a membership change")
            }
            Err(RaftError::Fatal(fatal)) => Err(WriteError::Stopped {
                reason: fatal.to_string(),
                request,
            }),
        }
    }

    /// A linearizable read: runs `read` on the state machine once this node has confirmed,
    /// with a quorum, that it is still the leader, and has applied every write committed
    /// before the call. It sees every write acknowledged before it was called. The read runs
    /// on the queue's worker, between two commands, and never goes through the log.
    ///
    /// # Errors
    ///
    /// [`ReadError::NotLeader`] on a follower; [`ReadError::NotConfirmed`] when a quorum did
    /// not answer; [`ReadError::Stopped`]; [`ReadError::Panicked`] when `read` panicked.
    pub async fn read<R: Send + 'static>(
        &self,
        read: impl FnOnce(&S) -> R + Send + 'static,
    ) -> Result<R, ReadError> {
        match self.raft.ensure_linearizable().await {
            Ok(_) => self.read_local(read).await,
            Err(RaftError::APIError(CheckIsLeaderError::ForwardToLeader(to))) => {
                Err(ReadError::NotLeader {
                    leader: to.leader_id,
                })
            }
            Err(RaftError::APIError(not_enough)) => {
                Err(ReadError::NotConfirmed(not_enough.to_string()))
            }
            Err(RaftError::Fatal(fatal)) => Err(ReadError::Stopped(fatal.to_string())),
        }
    }

    /// A local read: runs `read` on this node's state machine at once, on any node. Cheap,
    /// but **possibly stale**: a follower may lag, and a deposed leader may not know it yet.
    ///
    /// # Errors
    ///
    /// [`ReadError::Stopped`]; [`ReadError::Panicked`] when `read` panicked.
    pub async fn read_local<R: Send + 'static>(
        &self,
        read: impl FnOnce(&S) -> R + Send + 'static,
    ) -> Result<R, ReadError> {
        let (sender, mut receiver) = tokio::sync::oneshot::channel();
        let read: Read<S> = Box::new(move |state| {
            let _ = sender.send(catch_unwind(AssertUnwindSafe(|| read(state))));
        });
        self.handle()
            .call_async(Op::Read(read))
            .await
            .map_err(|e| ReadError::Stopped(e.to_string()))?;
        // The worker ran the read before answering the call: its result is waiting.
        match receiver.try_recv().expect("the read ran") {
            Ok(value) => Ok(value),
            Err(panic) => Err(ReadError::Panicked(panic_message(&*panic))),
        }
    }

    /// This node's id.
    pub fn id(&self) -> NodeId {
        self.id
    }

    /// The leader this node knows of.
    pub async fn leader(&self) -> Option<NodeId> {
        self.raft.current_leader().await
    }

    /// The openraft node underneath, for what this type does not wrap: metrics
    /// ([`Raft::metrics`]), membership changes, snapshots on demand.
    pub fn raft(&self) -> &Raft<TypeConfig<S>> {
        &self.raft
    }

    /// Stops the node: openraft first, then the queue, which applies what it was given. Once
    /// this returns, the node's files are closed, and a new node can start on its directory.
    /// Calls on a stopped node fail with [`WriteError::Stopped`] or [`ReadError::Stopped`].
    /// Stopping twice is stopping once.
    ///
    /// # Errors
    ///
    /// When openraft's core task panicked.
    pub async fn shutdown(&self) -> io::Result<()> {
        let stopped = self.raft.shutdown().await.map_err(io::Error::other);
        self.queue.close();
        self.queue.closed().await;
        if let Some(released) = self.released.lock().await.take() {
            // Every task that held the database has ended once openraft has stopped; the
            // sender cannot be dropped without sending.
            let _ = released.await;
        }
        stopped
    }

    fn handle(&self) -> &Handle<Applier<S>> {
        &self.queue
    }
}

fn panic_message(panic: &(dyn Any + Send)) -> String {
    if let Some(message) = panic.downcast_ref::<&str>() {
        (*message).to_owned()
    } else if let Some(message) = panic.downcast_ref::<String>() {
        message.clone()
    } else {
        "a panic without a message".to_owned()
    }
}

impl<S: Replicated> fmt::Debug for Node<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Node")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}
