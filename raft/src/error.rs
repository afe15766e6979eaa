use std::fmt;

use crate::{NodeId, Request};

/// Why [`Node::write`](crate::Node::write) returned no output. Each variant gives the request
/// back ([`into_inner`](WriteError::into_inner)) and says what became of it.
///
/// **Retrying the same request is always safe**: its session makes the state machine apply it
/// at most once, and a retry of an applied request returns the first output.
#[non_exhaustive]
pub enum WriteError<C> {
    /// This node is not the leader, or stopped being it before the request was committed. The
    /// request may or may not have been applied: retry it on `leader` (when known).
    NotLeader {
        /// The leader this node knows of.
        leader: Option<NodeId>,
        /// The request, to retry.
        request: Request<C>,
    },
    /// The session has applied a newer request since: this one was not applied now. (An
    /// earlier attempt of it may have been.)
    Superseded(Request<C>),
    /// The request encodes to `size` bytes, more than one frame of the TCP network may carry
    /// (64 MiB): it was not sent, and not applied.
    TooLarge {
        /// Its size, encoded.
        size: usize,
        /// The request, given back.
        request: Request<C>,
    },
    /// The node stopped (shut down, or a fatal error such as a panic in `apply` or a failed
    /// disk) before answering. The request may or may not have been applied: retry it on
    /// another node.
    Stopped {
        /// Why the node stopped.
        reason: String,
        /// The request, to retry.
        request: Request<C>,
    },
}

impl<C> WriteError<C> {
    /// The request, given back.
    pub fn into_inner(self) -> Request<C> {
        match self {
            Self::NotLeader { request, .. }
            | Self::Superseded(request)
            | Self::TooLarge { request, .. }
            | Self::Stopped { request, .. } => request,
        }
    }

    /// The leader to retry on, when this node knows one.
    pub fn leader(&self) -> Option<NodeId> {
        match self {
            Self::NotLeader { leader, .. } => *leader,
            _ => None,
        }
    }
}

impl<C> fmt::Debug for WriteError<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotLeader { leader, request } => f
                .debug_struct("NotLeader")
                .field("leader", leader)
                .field("request", request)
                .finish(),
            Self::Superseded(request) => f.debug_tuple("Superseded").field(request).finish(),
            Self::TooLarge { size, request } => f
                .debug_struct("TooLarge")
                .field("size", size)
                .field("request", request)
                .finish(),
            Self::Stopped { reason, request } => f
                .debug_struct("Stopped")
                .field("reason", reason)
                .field("request", request)
                .finish(),
        }
    }
}

impl<C> fmt::Display for WriteError<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotLeader {
                leader: Some(leader),
                ..
            } => write!(
                f,
                "not the leader (node {leader} is): retry the request there"
            ),
            Self::NotLeader { leader: None, .. } => {
                f.write_str("not the leader, and no leader is known: retry the request later")
            }
            Self::Superseded(_) => {
                f.write_str("the session has applied a newer request: this one was not applied")
            }
            Self::TooLarge { size, .. } => {
                write!(
                    f,
                    "the request is too large to send ({size} bytes): it was not sent"
                )
            }
            Self::Stopped { reason, .. } => write!(f, "the node stopped: {reason}"),
        }
    }
}

impl<C> std::error::Error for WriteError<C> {}

/// Why [`Node::read`](crate::Node::read) or [`Node::read_local`](crate::Node::read_local)
/// returned no value. A read changes nothing, so it can always be run again.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadError {
    /// This node is not the leader: a linearizable read must run on `leader` (when known).
    NotLeader {
        /// The leader this node knows of.
        leader: Option<NodeId>,
    },
    /// A quorum did not confirm this node's leadership: it may have been deposed.
    NotConfirmed(String),
    /// The node stopped.
    Stopped(String),
    /// The read closure panicked (the state is untouched: a read gets `&S`).
    Panicked(String),
}

impl ReadError {
    /// The leader to read from, when this node knows one.
    pub fn leader(&self) -> Option<NodeId> {
        match self {
            Self::NotLeader { leader } => *leader,
            _ => None,
        }
    }
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotLeader {
                leader: Some(leader),
            } => write!(f, "not the leader (node {leader} is): read there"),
            Self::NotLeader { leader: None } => {
                f.write_str("not the leader, and no leader is known")
            }
            Self::NotConfirmed(why) => write!(f, "leadership not confirmed by a quorum: {why}"),
            Self::Stopped(reason) => write!(f, "the node stopped: {reason}"),
            Self::Panicked(message) => write!(f, "the read panicked: {message}"),
        }
    }
}

impl std::error::Error for ReadError {}
