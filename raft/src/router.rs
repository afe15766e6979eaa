use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

use openraft::error::{InstallSnapshotError, RPCError, RaftError, RemoteError, Unreachable};
use openraft::network::RPCOption;
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::{AnyError, BasicNode, Raft, RaftNetwork, RaftNetworkFactory};

use crate::{NodeId, Replicated, TypeConfig};

type Rpc<E = openraft::error::Infallible> = RPCError<NodeId, BasicNode, RaftError<NodeId, E>>;

/// An in-process network for tests: nodes of one process reach each other by calls, and a
/// test can cut a node off and heal it.
///
/// Give each node [`network(id)`](Router::network), then [`add`](Router::add) the started
/// node's Raft; [`remove`](Router::remove) it to play a crash.
///
/// # Examples
///
/// ```no_run
/// # use singular_queue_raft::{Node, Replicated, Router};
/// # async fn run<S: Replicated + Default>() -> std::io::Result<()> {
/// let router = Router::new();
/// let network = router.network(1);
/// let node = Node::start(1, "/tmp/node-1", S::default(), network, Default::default()).await?;
/// router.add(1, node.raft().clone());
/// router.isolate(1); // node 1 can neither send nor receive
/// router.heal(1);
/// # Ok(()) }
/// ```
pub struct Router<S: Replicated> {
    inner: Arc<Mutex<Links<S>>>,
}

/// Who is reachable.
struct Links<S: Replicated> {
    nodes: BTreeMap<NodeId, Raft<TypeConfig<S>>>,
    isolated: BTreeSet<NodeId>,
}

impl<S: Replicated> Router<S> {
    /// A network with no nodes.
    pub fn new() -> Self {
        let links = Links {
            nodes: BTreeMap::new(),
            isolated: BTreeSet::new(),
        };
        Self {
            inner: Arc::new(Mutex::new(links)),
        }
    }

    /// The network for node `id` to start with.
    pub fn network(&self, id: NodeId) -> RouterNetwork<S> {
        RouterNetwork {
            router: self.clone(),
            from: id,
        }
    }

    /// Makes node `id` reachable through `raft`.
    pub fn add(&self, id: NodeId, raft: Raft<TypeConfig<S>>) {
        self.links().nodes.insert(id, raft);
    }

    /// Makes node `id` unreachable, as if it crashed.
    pub fn remove(&self, id: NodeId) {
        self.links().nodes.remove(&id);
    }

    /// Cuts node `id` off: nothing it sends arrives, nothing sent to it arrives.
    pub fn isolate(&self, id: NodeId) {
        self.links().isolated.insert(id);
    }

    /// Undoes [`isolate`](Router::isolate).
    pub fn heal(&self, id: NodeId) {
        self.links().isolated.remove(&id);
    }

    fn links(&self) -> MutexGuard<'_, Links<S>> {
        // A panic elsewhere cannot leave these sets half-changed.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The target's Raft, if `from` can reach it.
    fn route(&self, from: NodeId, to: NodeId) -> Result<Raft<TypeConfig<S>>, Unreachable> {
        let links = self.links();
        if links.isolated.contains(&from) || links.isolated.contains(&to) {
            return Err(Unreachable::new(&AnyError::error(format!(
                "{from} and {to} are cut off"
            ))));
        }
        links
            .nodes
            .get(&to)
            .cloned()
            .ok_or_else(|| Unreachable::new(&AnyError::error(format!("node {to} is down"))))
    }
}

impl<S: Replicated> Clone for Router<S> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<S: Replicated> Default for Router<S> {
    fn default() -> Self {
        Self::new()
    }
}

impl<S: Replicated> fmt::Debug for Router<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let links = self.links();
        f.debug_struct("Router")
            .field("nodes", &links.nodes.keys().collect::<Vec<_>>())
            .field("isolated", &links.isolated)
            .finish()
    }
}

/// One node's side of a [`Router`].
pub struct RouterNetwork<S: Replicated> {
    router: Router<S>,
    from: NodeId,
}

impl<S: Replicated> fmt::Debug for RouterNetwork<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RouterNetwork")
            .field("from", &self.from)
            .finish()
    }
}

impl<S: Replicated> RaftNetworkFactory<TypeConfig<S>> for RouterNetwork<S> {
    type Network = RouterLink<S>;

    async fn new_client(&mut self, target: NodeId, _: &BasicNode) -> RouterLink<S> {
        RouterLink {
            router: self.router.clone(),
            from: self.from,
            to: target,
        }
    }
}

/// A connection from one node to another through a [`Router`].
pub struct RouterLink<S: Replicated> {
    router: Router<S>,
    from: NodeId,
    to: NodeId,
}

impl<S: Replicated> fmt::Debug for RouterLink<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RouterLink")
            .field("from", &self.from)
            .field("to", &self.to)
            .finish()
    }
}

impl<S: Replicated> RouterLink<S> {
    #[allow(
        clippy::result_large_err,
        reason = "openraft's RPC error, as its trait returns it"
    )]
    fn target<E: std::error::Error>(&self) -> Result<Raft<TypeConfig<S>>, Rpc<E>> {
        self.router
            .route(self.from, self.to)
            .map_err(RPCError::Unreachable)
    }

    #[allow(
        clippy::result_large_err,
        reason = "openraft's RPC error, as its trait returns it"
    )]
    /// The answer as the sender sees it: the target's error is remote; and a link cut while
    /// the call ran loses the answer.
    fn reply<T, E: std::error::Error>(
        &self,
        result: Result<T, RaftError<NodeId, E>>,
    ) -> Result<T, Rpc<E>> {
        self.target::<E>()?;
        result.map_err(|e| RPCError::RemoteError(RemoteError::new(self.to, e)))
    }
}

impl<S: Replicated> RaftNetwork<TypeConfig<S>> for RouterLink<S> {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig<S>>,
        _: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, Rpc> {
        let result = self.target()?.append_entries(rpc).await;
        self.reply(result)
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig<S>>,
        _: RPCOption,
    ) -> Result<InstallSnapshotResponse<NodeId>, Rpc<InstallSnapshotError>> {
        let result = self.target()?.install_snapshot(rpc).await;
        self.reply(result)
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        _: RPCOption,
    ) -> Result<VoteResponse<NodeId>, Rpc> {
        let result = self.target()?.vote(rpc).await;
        self.reply(result)
    }
}
