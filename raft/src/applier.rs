//! The state machine the queue's worker runs: the user's state, its client sessions and what
//! Raft needs to know about them, behind one command type.

use std::collections::BTreeMap;
use std::fmt;

use openraft::{BasicNode, EntryPayload, LogId, StoredMembership};
use serde::{Deserialize, Serialize};
use singular_queue::StateMachine;

use crate::{NodeId, Replicated, Request, Response, SnapshotError, TypeConfig};

type Entry<S> = openraft::Entry<TypeConfig<S>>;
type Membership = StoredMembership<NodeId, BasicNode>;

/// A read run on the worker, between two commands; it sends its own result.
pub(crate) type Read<S> = Box<dyn FnOnce(&S) + Send>;

/// What openraft's state-machine task and readers ask of the worker.
pub(crate) enum Op<S: Replicated> {
    /// Apply these log entries in order.
    Apply(Vec<Entry<S>>),
    /// The last applied log id and membership.
    AppliedState,
    /// The state, its sessions and its log position, as one image.
    Snapshot,
    /// Replace everything with the snapshot in these bytes, taken at `last_applied`.
    Install {
        bytes: Vec<u8>,
        last_applied: Option<LogId<NodeId>>,
        membership: Membership,
    },
    /// Run a read.
    Read(Read<S>),
}

/// The worker's answer to an [`Op`].
pub(crate) enum Done<O> {
    Applied(Vec<Response<O>>),
    AppliedState(Option<LogId<NodeId>>, Membership),
    Snapshot(Image),
    /// The snapshot replaced the state, or did not decode (and the state is as it was).
    Installed(Result<(), String>),
    Read,
}

/// A snapshot's bytes and the log position they stand for.
pub(crate) struct Image {
    pub(crate) last_applied: Option<LogId<NodeId>>,
    pub(crate) membership: Membership,
    pub(crate) bytes: Vec<u8>,
}

/// The user's state and what replicating it needs: each session's last request and output,
/// and the last log entry applied.
pub(crate) struct Applier<S: Replicated> {
    state: S,
    sessions: BTreeMap<u64, Last<S::Output>>,
    last_applied: Option<LogId<NodeId>>,
    membership: Membership,
}

/// A session's last applied request and its output.
#[derive(Serialize, Deserialize)]
struct Last<O> {
    seq: u64,
    output: O,
}

/// How a snapshot is laid out in bytes (postcard): the sessions, then the user's own bytes.
/// The log position travels in openraft's snapshot metadata beside it.
#[derive(Serialize, Deserialize)]
struct Layout<O> {
    sessions: BTreeMap<u64, Last<O>>,
    state: Vec<u8>,
}

impl<S: Replicated> Applier<S> {
    /// A fresh state machine at the start of the log.
    pub(crate) fn new(state: S) -> Self {
        Self {
            state,
            sessions: BTreeMap::new(),
            last_applied: None,
            membership: Membership::default(),
        }
    }

    /// The state machine a snapshot's bytes describe, at `last_applied`.
    fn decode(
        bytes: &[u8],
        last_applied: Option<LogId<NodeId>>,
        membership: Membership,
    ) -> Result<Self, SnapshotError> {
        let layout: Layout<S::Output> = postcard::from_bytes(bytes)?;
        Ok(Self {
            state: S::restore(&layout.state)?,
            sessions: layout.sessions,
            last_applied,
            membership,
        })
    }

    fn image(&self) -> Image {
        let layout = LayoutRef {
            sessions: &self.sessions,
            state: self.state.snapshot(),
        };
        Image {
            last_applied: self.last_applied,
            membership: self.membership.clone(),
            bytes: postcard::to_stdvec(&layout).expect("sessions and bytes always encode"),
        }
    }

    fn apply_entry(&mut self, entry: Entry<S>) -> Response<S::Output> {
        self.last_applied = Some(entry.log_id);
        match entry.payload {
            EntryPayload::Blank => Response::Internal,
            EntryPayload::Membership(membership) => {
                self.membership = Membership::new(Some(entry.log_id), membership);
                Response::Internal
            }
            EntryPayload::Normal(request) => self.apply_request(request),
        }
    }

    /// Applies a session's request once: a retry gets the first output back.
    fn apply_request(&mut self, request: Request<S::Command>) -> Response<S::Output> {
        match self.sessions.get(&request.client) {
            Some(last) if request.seq == last.seq => Response::Repeated(last.output.clone()),
            Some(last) if request.seq < last.seq => Response::Superseded,
            _ => {
                let output = self.state.apply(request.command);
                let last = Last {
                    seq: request.seq,
                    output: output.clone(),
                };
                self.sessions.insert(request.client, last);
                Response::Applied(output)
            }
        }
    }
}

/// [`Layout`] borrowing the sessions, to encode without cloning them.
#[derive(Serialize)]
struct LayoutRef<'a, O> {
    sessions: &'a BTreeMap<u64, Last<O>>,
    state: Vec<u8>,
}

impl<S: Replicated> StateMachine for Applier<S> {
    type Command = Op<S>;
    type Output = Done<S::Output>;

    fn apply(&mut self, op: Op<S>) -> Done<S::Output> {
        match op {
            Op::Apply(entries) => {
                Done::Applied(entries.into_iter().map(|e| self.apply_entry(e)).collect())
            }
            Op::AppliedState => Done::AppliedState(self.last_applied, self.membership.clone()),
            Op::Snapshot => Done::Snapshot(self.image()),
            Op::Install {
                bytes,
                last_applied,
                membership,
            } => Done::Installed(match Self::decode(&bytes, last_applied, membership) {
                Ok(installed) => {
                    *self = installed;
                    Ok(())
                }
                Err(e) => Err(format!("the snapshot does not decode: {e}")),
            }),
            Op::Read(read) => {
                read(&self.state);
                Done::Read
            }
        }
    }

    fn on_start(&mut self) {
        self.state.on_start();
    }

    fn on_stop(&mut self) {
        self.state.on_stop();
    }
}

impl<S: Replicated> fmt::Debug for Op<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Apply(_) => "Apply(..)",
            Self::AppliedState => "AppliedState",
            Self::Snapshot => "Snapshot",
            Self::Install { .. } => "Install { .. }",
            Self::Read(_) => "Read(..)",
        })
    }
}
