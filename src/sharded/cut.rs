//! A consistent cut across shards: the barrier behind [`ShardedHandle::snapshot`].
//!
//! The snapshot puts a marker into every shard's channel, under one lock, so that markers of
//! two snapshots never cross. A worker that reaches its marker ends its batch and waits there
//! until every shard has reached its own; only then does any worker compute `f(&state)` and go
//! on. So no worker applies a command that is behind its marker before every other shard has
//! reached its marker: a command caused by one applied after a marker (its caller saw the
//! output, then submitted to another shard) is submitted after that shard's marker went in,
//! and lands behind it. No causal chain crosses the cut backwards. (Seastar's `map_reduce`
//! visits shards one after another, and does let one cross.)
//!
//! The same holds if a marker is sent again, behind later commands (a `DropOldest` eviction
//! that finds one at the head does that): the cut then sits later in that shard, and is still
//! consistent, since the barrier alone keeps every shard from passing its marker early.
//!
//! Never hangs: a marker that is dropped unrun (its shard stopped, was poisoned, or refused it
//! as closed) fails the cut and releases the waiters. A worker waiting at the cut records in
//! the wait-for graph that it waits for each shard not yet there, and a shard that arrives
//! settles the edges to it. So a shard's worker blocked on another shard that waits at the
//! cut (a call from `apply`, a wait for room) closes a cycle that the graph sees: whichever
//! wait comes second is refused, the worker's (which fails the cut: `Deadlock`) or the
//! call's (`CallError::Deadlock`).
//!
//! [`ShardedHandle::snapshot`]: crate::ShardedHandle::snapshot

use crate::SnapshotError;
use crate::sync::{Condvar, Mutex};
use crate::waits::{self, QueueId, Waiting};

/// One snapshot's barrier, shared by its markers.
pub(crate) struct Cut {
    /// The shards' queue ids, for the wait-for edges.
    shards: Vec<QueueId>,
    state: Mutex<State>,
    changed: Condvar,
}

struct State {
    /// Which shards have reached their marker.
    reached: Vec<bool>,
    /// How many have.
    arrived: usize,
    /// Why the cut failed, if it did: every waiter goes on, and nobody computes.
    failed: Option<SnapshotError>,
    /// For each shard, the wait-for edges of workers waiting for it to arrive.
    edges: Vec<Vec<u64>>,
}

impl Cut {
    pub(crate) fn new(shards: Vec<QueueId>) -> Self {
        let count = shards.len();
        Self {
            shards,
            state: Mutex::new(State {
                reached: vec![false; count],
                arrived: 0,
                failed: None,
                edges: vec![Vec::new(); count],
            }),
            changed: Condvar::new(),
        }
    }

    /// Called on shard `shard`'s worker at its marker: waits until every shard has reached its
    /// marker (`Ok`), or the cut fails (`Err`, with why).
    pub(crate) fn arrive(&self, shard: usize) -> Result<(), SnapshotError> {
        let mut state = self.state.lock();
        if let Some(failed) = &state.failed {
            return Err(failed.clone());
        }
        state.reached[shard] = true;
        state.arrived += 1;
        // Nobody waits for this shard any more.
        for edge in std::mem::take(&mut state.edges[shard]) {
            waits::settle(edge);
        }
        if state.arrived == self.shards.len() {
            self.changed.notify_all();
            return Ok(());
        }
        let _waiting = match self.wait_for_the_rest(&mut state) {
            Ok(waiting) => waiting,
            Err(failed) => {
                self.fail_locked(&mut state, failed.clone());
                return Err(failed);
            }
        };
        while state.arrived < self.shards.len() && state.failed.is_none() {
            self.changed.wait(&mut state);
        }
        state.failed.clone().map_or(Ok(()), Err)
    }

    /// Records that this worker waits for each shard not yet at its marker, or refuses if that
    /// would close a cycle of waits.
    fn wait_for_the_rest(&self, state: &mut State) -> Result<Vec<Waiting>, SnapshotError> {
        let mut waiting = Vec::new();
        for (shard, &id) in self.shards.iter().enumerate() {
            if state.reached[shard] {
                continue;
            }
            let edge = waits::wait_for(id).map_err(|_| SnapshotError::Deadlock)?;
            state.edges[shard].push(edge.id());
            waiting.push(edge);
        }
        Ok(waiting)
    }

    /// Fails the cut, unless it already failed: every waiter goes on without computing.
    pub(crate) fn fail(&self, why: SnapshotError) {
        let mut state = self.state.lock();
        self.fail_locked(&mut state, why);
    }

    fn fail_locked(&self, state: &mut State, why: SnapshotError) {
        state.failed.get_or_insert(why);
        self.changed.notify_all();
    }

    /// Why the cut failed, if it did.
    pub(crate) fn failure(&self) -> Option<SnapshotError> {
        self.state.lock().failed.clone()
    }
}
