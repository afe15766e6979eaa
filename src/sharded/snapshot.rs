//! A snapshot across shards: its markers, and why one can fail.

use std::error::Error;
use std::fmt;

use super::cut::Cut;
use crate::reply::{self, Reply};
use crate::sync::Arc;
use crate::waits::Awaited;
use crate::{Handle, StateMachine, Ticket, WaitError, on_panic};

/// Why [`ShardedHandle::snapshot`](crate::ShardedHandle::snapshot) returned no snapshot.
/// No shard's state was changed by the attempt; it may be tried again (except after
/// `Closed`).
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SnapshotError {
    /// A shard was closed (shut down, closed from a handle, or stopped by a panic) before
    /// its marker could go in.
    Closed,
    /// A shard stopped before reaching its marker: a `shutdown_now`, or a state poisoned by
    /// a panic.
    NotApplied,
    /// Waiting would never end, or could: the caller is a worker that a shard waits for; or a
    /// shard's worker waits (a call from `apply`, a wait for room) for another shard that
    /// waits at the cut. A worker waiting for room counts as waiting until it runs again, even
    /// once room was made for it (it may lose the place to another submitter), so this can
    /// come a moment early; and two snapshots taken at once under
    /// [`DropOldest`](crate::DropOldest) can meet their markers in opposite orders, which
    /// refuses one. Nothing was changed: try again.
    Deadlock,
    /// The snapshot's function panicked on a shard; the panic's message is kept. The shard
    /// goes on (the function only reads the state).
    Panicked(String),
}

impl fmt::Display for SnapshotError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Closed => f.write_str("a shard was closed before the snapshot's marker"),
            Self::NotApplied => {
                f.write_str("a shard stopped before reaching the snapshot's marker")
            }
            Self::Deadlock => f.write_str("waiting for the snapshot would deadlock"),
            Self::Panicked(message) => write!(f, "the snapshot's function panicked: {message}"),
        }
    }
}

impl Error for SnapshotError {}

/// One shard's marker: arrives at the cut when its worker reaches it, and computes there.
/// Dropped unrun, it fails the cut, so no other shard waits for it.
struct Marker<F, R> {
    cut: Arc<Cut>,
    shard: usize,
    /// The function the snapshot computes on each shard's state.
    compute: Arc<F>,
    reply: Option<Reply<R>>,
}

impl<F, R> Marker<F, R> {
    fn reach<S>(mut self, state: &S)
    where
        F: Fn(&S) -> R,
    {
        let reply = self.reply.take().expect("a marker is reached once");
        let result = match self.cut.arrive(self.shard) {
            Ok(()) => on_panic::catch(|| (self.compute)(state)).map_err(WaitError::Panicked),
            Err(_) => Err(WaitError::NotApplied),
        };
        reply.send(result);
    }
}

impl<F, R> Drop for Marker<F, R> {
    fn drop(&mut self) {
        if self.reply.is_some() {
            self.cut.fail(SnapshotError::NotApplied);
        }
    }
}

/// A snapshot whose markers are in: one ticket per shard, and the cut that says whether it
/// held.
pub(super) struct Taking<R> {
    cut: Arc<Cut>,
    tickets: Vec<Ticket<R>>,
}

/// Puts a marker computing `compute` into every shard, in shard order; stops at the first
/// shard that is closed, and fails the cut. The caller holds the lock that keeps the markers
/// of two snapshots in one order.
pub(super) fn mark<S, R, F>(shards: &[Handle<S>], compute: Arc<F>) -> Taking<R>
where
    S: StateMachine,
    R: Send + 'static,
    F: Fn(&S) -> R + Send + Sync + 'static,
{
    let ids: Vec<_> = shards.iter().map(|shard| shard.shared().id()).collect();
    let cut = Cut::new(&ids);
    let mut tickets = Vec::with_capacity(shards.len());
    for (index, shard) in shards.iter().enumerate() {
        let (reply, slot) = reply::pair();
        let marker = Marker {
            cut: Arc::clone(&cut),
            shard: index,
            compute: Arc::clone(&compute),
            reply: Some(reply),
        };
        if let Err(refused) = shard
            .shared()
            .visit(Box::new(move |state| marker.reach(state)))
        {
            cut.fail(SnapshotError::Closed);
            drop(refused);
            break;
        }
        // A marker's result never waits for a commit: its wait waits for the worker alone.
        let shared = shard.shared();
        let ticket = Ticket::awaiting(slot, shared.wait_strategy(), shared.id(), Awaited::Worker);
        tickets.push(ticket);
    }
    Taking { cut, tickets }
}

impl<R: 'static> Taking<R> {
    /// Waits for every shard's result.
    pub(super) fn wait(self) -> Result<Vec<R>, SnapshotError> {
        let results = self.tickets.into_iter().map(Ticket::wait).collect();
        settle(&self.cut, results)
    }

    /// Waits for every shard's result as a task.
    pub(super) async fn wait_async(self) -> Result<Vec<R>, SnapshotError> {
        let mut results = Vec::with_capacity(self.tickets.len());
        for ticket in self.tickets {
            results.push(ticket.await);
        }
        settle(&self.cut, results)
    }
}

/// The snapshot, or why there is none: the cut's failure first (it names the cause; the
/// shards it released only say they did not compute), then the first shard's error. The
/// results of a snapshot that failed are dropped here, under `catch`: their `Drop` is user
/// code, and the error must reach the caller (found by review).
fn settle<R>(cut: &Cut, results: Vec<Result<R, WaitError>>) -> Result<Vec<R>, SnapshotError> {
    let first_error = results.iter().find_map(|result| result.as_ref().err());
    let failed = cut.failure().or_else(|| first_error.map(snapshot_error));
    if let Some(failed) = failed {
        // One at a time: a second panicking `Drop` during the first's unwinding would abort.
        for result in results {
            let _ = on_panic::catch(move || drop(result));
        }
        return Err(failed);
    }
    Ok(results.into_iter().flatten().collect())
}

/// What a shard's failed result says about the snapshot.
fn snapshot_error(error: &WaitError) -> SnapshotError {
    match error {
        WaitError::Panicked(message) => SnapshotError::Panicked(message.clone()),
        WaitError::Deadlock => SnapshotError::Deadlock,
        _ => SnapshotError::NotApplied,
    }
}
