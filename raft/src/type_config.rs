use std::cmp::Ordering;
use std::fmt;
use std::io::Cursor;
use std::marker::PhantomData;

use openraft::impls::OneshotResponder;
use openraft::{BasicNode, RaftTypeConfig, TokioRuntime};

use crate::{Replicated, Request, Response};

/// The name of a node in the cluster.
pub type NodeId = u64;

/// openraft's type configuration for a replicated `S`: requests of `S::Command` in the log,
/// responses of `S::Output`, `u64` node ids, [`BasicNode`] addresses, tokio.
///
/// You meet it as the parameter of [`openraft::Raft`], which [`Node::raft`](crate::Node::raft)
/// gives for what this crate does not wrap (metrics, membership changes).
pub struct TypeConfig<S>(PhantomData<fn() -> S>);

impl<S: Replicated> RaftTypeConfig for TypeConfig<S> {
    type D = Request<S::Command>;
    type R = Response<S::Output>;
    type NodeId = NodeId;
    type Node = BasicNode;
    type Entry = openraft::Entry<Self>;
    type SnapshotData = Cursor<Vec<u8>>;
    type AsyncRuntime = TokioRuntime;
    type Responder = OneshotResponder<Self>;
}

// openraft asks the type configuration for the derivable traits; derives would ask `S` for
// them too, so they are written out: every `TypeConfig<S>` is the same unit value.

impl<S> Clone for TypeConfig<S> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<S> Copy for TypeConfig<S> {}

impl<S> Default for TypeConfig<S> {
    fn default() -> Self {
        Self(PhantomData)
    }
}

impl<S> fmt::Debug for TypeConfig<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TypeConfig")
    }
}

impl<S> PartialEq for TypeConfig<S> {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl<S> Eq for TypeConfig<S> {}

impl<S> PartialOrd for TypeConfig<S> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl<S> Ord for TypeConfig<S> {
    fn cmp(&self, _: &Self) -> Ordering {
        Ordering::Equal
    }
}
