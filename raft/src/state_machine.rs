//! openraft's state machine, forwarded to the queue: every apply, snapshot and install is a
//! command on the queue's worker, so user code never runs on a tokio thread.

use std::io::{self, Cursor};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use openraft::storage::{RaftStateMachine, Snapshot};
use openraft::{
    BasicNode, ErrorSubject, ErrorVerb, LogId, OptionalSend, RaftSnapshotBuilder, SnapshotMeta,
    StorageError, StoredMembership,
};
use singular_queue::{CallError, Handle};

use crate::applier::{Applier, Done, Image, Op};
use crate::log_store::LogStore;
use crate::{NodeId, Replicated, Response, TypeConfig};

type Entry<S> = openraft::Entry<TypeConfig<S>>;
type Meta = SnapshotMeta<NodeId, BasicNode>;

/// The state machine openraft drives: a handle to the queue and the node's store.
pub(crate) struct QueueMachine<S: Replicated> {
    handle: Handle<Applier<S>>,
    store: LogStore<S>,
    /// Numbers the snapshots this node builds, for their ids.
    built: Arc<AtomicU64>,
}

impl<S: Replicated> QueueMachine<S> {
    pub(crate) fn new(handle: Handle<Applier<S>>, store: LogStore<S>) -> Self {
        Self {
            handle,
            store,
            built: Arc::new(AtomicU64::new(0)),
        }
    }

    fn builder(&self) -> Self {
        Self {
            handle: self.handle.clone(),
            store: self.store.clone(),
            built: Arc::clone(&self.built),
        }
    }

    async fn run(
        &self,
        op: Op<S>,
        subject: ErrorSubject<NodeId>,
    ) -> Result<Done<S::Output>, StorageError<NodeId>> {
        run(&self.handle, op, subject).await
    }
}

/// Runs `op` on the worker. A queue that refuses or fails is a broken state machine (`apply`
/// panicked, so the queue stopped): openraft must stop the node.
async fn run<S: Replicated>(
    handle: &Handle<Applier<S>>,
    op: Op<S>,
    subject: ErrorSubject<NodeId>,
) -> Result<Done<S::Output>, StorageError<NodeId>> {
    handle.call_async(op).await.map_err(|e| {
        StorageError::from_io_error(subject, ErrorVerb::Write, io::Error::other(describe(e)))
    })
}

/// Replaces the worker's state with the snapshot `bytes` that `meta` describes.
pub(crate) async fn install<S: Replicated>(
    handle: &Handle<Applier<S>>,
    meta: &Meta,
    bytes: Vec<u8>,
) -> Result<(), StorageError<NodeId>> {
    let op = Op::Install {
        bytes,
        last_applied: meta.last_log_id,
        membership: meta.last_membership.clone(),
    };
    let subject = ErrorSubject::Snapshot(Some(meta.signature()));
    match run(handle, op, subject.clone()).await? {
        Done::Installed(Ok(())) => Ok(()),
        Done::Installed(Err(e)) => Err(StorageError::from_io_error(
            subject,
            ErrorVerb::Read,
            io::Error::other(e),
        )),
        _ => unreachable!("an install op answers with its outcome"),
    }
}

/// A queue's refusal or failure, as a message (the `Op` it hands back is of no use here).
fn describe<T>(error: CallError<T>) -> String {
    match error {
        CallError::Panicked(message) => format!("the state machine panicked: {message}"),
        other => format!("the state machine's queue failed: {other}"),
    }
}

fn snapshot_error(meta: Option<&Meta>) -> impl Fn(io::Error) -> StorageError<NodeId> + '_ {
    move |e| {
        let subject = ErrorSubject::Snapshot(meta.map(|m| m.signature()));
        StorageError::from_io_error(subject, ErrorVerb::Write, e)
    }
}

impl<S: Replicated> RaftSnapshotBuilder<TypeConfig<S>> for QueueMachine<S> {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig<S>>, StorageError<NodeId>> {
        // One command captures the state and the log position it stands for, together.
        let Done::Snapshot(Image {
            last_applied,
            membership,
            bytes,
        }) = self.run(Op::Snapshot, ErrorSubject::Snapshot(None)).await?
        else {
            unreachable!("a snapshot op answers with an image")
        };
        let number = self.built.fetch_add(1, Ordering::Relaxed);
        let index = last_applied.map_or(0, |id| id.index);
        let meta = Meta {
            last_log_id: last_applied,
            last_membership: membership,
            snapshot_id: format!("{index}-{number}"),
        };
        self.store
            .save_snapshot(meta.clone(), bytes.clone())
            .await
            .map_err(snapshot_error(Some(&meta)))?;
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(bytes)),
        })
    }
}

impl<S: Replicated> RaftStateMachine<TypeConfig<S>> for QueueMachine<S> {
    type SnapshotBuilder = Self;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogId<NodeId>>, StoredMembership<NodeId, BasicNode>), StorageError<NodeId>>
    {
        match self
            .run(Op::AppliedState, ErrorSubject::StateMachine)
            .await?
        {
            Done::AppliedState(last, membership) => Ok((last, membership)),
            _ => unreachable!("an applied-state op answers with the state"),
        }
    }

    async fn apply<I>(
        &mut self,
        entries: I,
    ) -> Result<Vec<Response<S::Output>>, StorageError<NodeId>>
    where
        I: IntoIterator<Item = Entry<S>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let entries = entries.into_iter().collect();
        match self
            .run(Op::Apply(entries), ErrorSubject::StateMachine)
            .await?
        {
            Done::Applied(responses) => Ok(responses),
            _ => unreachable!("an apply op answers with responses"),
        }
    }

    async fn get_snapshot_builder(&mut self) -> Self {
        self.builder()
    }

    async fn begin_receiving_snapshot(
        &mut self,
    ) -> Result<Box<Cursor<Vec<u8>>>, StorageError<NodeId>> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &Meta,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError<NodeId>> {
        let bytes = snapshot.into_inner();
        // On disk first: a crash after it restarts from this snapshot, which is where the
        // state machine is about to be.
        self.store
            .save_snapshot(meta.clone(), bytes.clone())
            .await
            .map_err(snapshot_error(Some(meta)))?;
        install(&self.handle, meta, bytes).await
    }

    async fn get_current_snapshot(
        &mut self,
    ) -> Result<Option<Snapshot<TypeConfig<S>>>, StorageError<NodeId>> {
        let current = self.store.snapshot().await.map_err(snapshot_error(None))?;
        Ok(current.map(|(meta, bytes)| Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(bytes)),
        }))
    }
}
