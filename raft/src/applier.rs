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

/// How a snapshot is laid out in bytes (CBOR): the sessions, then the user's own bytes.
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
        let layout: Layout<S::Output> = crate::codec::decode(bytes)?;
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
            bytes: crate::codec::encode(&layout).expect("sessions and bytes always encode"),
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

#[cfg(test)]
mod tests {
    use openraft::{CommittedLeaderId, EntryPayload, LogId};

    use super::*;
    use crate::Session;

    /// Appends numbers to a list; answers with its length.
    #[derive(Default, Serialize, Deserialize)]
    struct List(Vec<u64>);

    impl StateMachine for List {
        type Command = u64;
        type Output = usize;
        fn apply(&mut self, n: u64) -> usize {
            self.0.push(n);
            self.0.len()
        }
    }

    impl Replicated for List {
        fn snapshot(&self) -> Vec<u8> {
            crate::codec::encode(self).unwrap()
        }
        fn restore(bytes: &[u8]) -> Result<Self, SnapshotError> {
            Ok(crate::codec::decode(bytes)?)
        }
    }

    fn entry(index: u64, request: Request<u64>) -> Entry<List> {
        openraft::Entry {
            log_id: LogId::new(CommittedLeaderId::new(1, 1), index),
            payload: EntryPayload::Normal(request),
        }
    }

    fn apply(applier: &mut Applier<List>, entries: Vec<Entry<List>>) -> Vec<Response<usize>> {
        match applier.apply(Op::Apply(entries)) {
            Done::Applied(responses) => responses,
            _ => unreachable!(),
        }
    }

    #[test]
    fn a_retried_request_gets_its_first_output_and_is_not_applied_again() {
        let mut applier = Applier::new(List::default());
        let mut session = Session::new(9);
        let (first, second) = (session.request(10), session.request(20));
        let responses = apply(
            &mut applier,
            vec![
                entry(1, first.clone()),
                entry(2, second.clone()),
                entry(3, second),
                entry(4, first),
            ],
        );
        assert_eq!(
            responses,
            [
                Response::Applied(1),
                Response::Applied(2),
                Response::Repeated(2),
                Response::Superseded
            ]
        );
        assert_eq!(applier.state.0, [10, 20]);
        assert_eq!(applier.last_applied.map(|id| id.index), Some(4));
    }

    #[test]
    fn sessions_are_independent() {
        let mut applier = Applier::new(List::default());
        let (mut a, mut b) = (Session::new(1), Session::new(2));
        let responses = apply(
            &mut applier,
            vec![entry(1, a.request(1)), entry(2, b.request(2))],
        );
        assert_eq!(responses, [Response::Applied(1), Response::Applied(2)]);
    }

    #[test]
    fn a_snapshot_carries_the_state_the_sessions_and_the_position() {
        let mut applier = Applier::new(List::default());
        let mut session = Session::new(5);
        let request = session.request(7);
        apply(&mut applier, vec![entry(1, request.clone())]);
        let Done::Snapshot(image) = applier.apply(Op::Snapshot) else {
            unreachable!()
        };
        let mut restored = Applier::new(List::default());
        let op = Op::Install {
            bytes: image.bytes,
            last_applied: image.last_applied,
            membership: image.membership,
        };
        assert!(matches!(restored.apply(op), Done::Installed(Ok(()))));
        assert_eq!(restored.state.0, [7]);
        assert_eq!(restored.last_applied, image.last_applied);
        // The session came along: the retry is recognised.
        assert_eq!(
            apply(&mut restored, vec![entry(2, request)]),
            [Response::Repeated(1)]
        );
        assert_eq!(restored.state.0, [7]);
    }

    #[test]
    fn a_snapshot_that_does_not_decode_leaves_the_state_as_it_was() {
        let mut applier = Applier::new(List(vec![3]));
        let op = Op::Install {
            bytes: vec![0xff; 3],
            last_applied: None,
            membership: Membership::default(),
        };
        assert!(matches!(applier.apply(op), Done::Installed(Err(e)) if e.contains("decode")));
        assert_eq!(applier.state.0, [3]);
    }
}
