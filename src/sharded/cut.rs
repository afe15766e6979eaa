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
//! as closed) fails the cut and releases the waiters. The cut is a node of the wait-for graph,
//! with an edge to each shard's worker until that shard arrives; a worker waiting at the cut
//! waits for that node. So a shard's worker blocked on another shard that waits at the cut (a
//! call from `apply`, a wait for room) closes a cycle that the graph sees: whichever wait
//! comes second is refused, the worker's (which fails the cut: `Deadlock`) or the call's
//! (`CallError::Deadlock`). One node rather than an edge from each waiter to each shard not
//! there: a cut of n shards adds n edges, not n² (found by review: n⁴ work at 256 shards).
//! The edges lead to the shards' workers, not their commit threads: reaching a marker never
//! waits for a commit (found by review).
//!
//! [`ShardedHandle::snapshot`]: crate::ShardedHandle::snapshot

use crate::SnapshotError;
use crate::sync::{Arc, Condvar, Mutex};
use crate::waits::{self, QueueId, Waiting};

/// One snapshot's barrier, shared by its markers.
pub(crate) struct Cut {
    /// How many shards take part.
    shards: usize,
    state: Mutex<State>,
    changed: Condvar,
}

struct State {
    /// The cut's edge to each shard's worker, until that shard reaches its marker.
    not_there: Vec<Option<Waiting>>,
    /// How many shards have reached their marker.
    arrived: usize,
    /// Why the cut failed, if it did: every waiter goes on, and nobody computes.
    failed: Option<SnapshotError>,
}

impl Cut {
    /// A cut across the shards whose queue ids these are, linked into the wait-for graph.
    pub(crate) fn new(shards: &[QueueId]) -> Arc<Self> {
        let cut = Arc::new(Self {
            shards: shards.len(),
            state: Mutex::new(State {
                not_there: Vec::new(),
                arrived: 0,
                failed: None,
            }),
            changed: Condvar::new(),
        });
        let node = cut.node();
        let edges = shards
            .iter()
            .map(|&shard| Some(waits::add_edge(node, shard)));
        cut.state.lock().not_there = edges.collect();
        cut
    }

    /// The cut's node in the wait-for graph: its address, which no live queue's id can be.
    fn node(&self) -> QueueId {
        waits::id_of(self)
    }

    /// Called on shard `shard`'s worker at its marker: waits until every shard has reached its
    /// marker (`Ok`), or the cut fails (`Err`, with why).
    pub(crate) fn arrive(&self, shard: usize) -> Result<(), SnapshotError> {
        let mut state = self.state.lock();
        if let Some(failed) = &state.failed {
            return Err(failed.clone());
        }
        state.arrived += 1;
        // Nobody waits for this shard any more.
        drop(state.not_there[shard].take());
        if state.arrived == self.shards {
            self.changed.notify_all();
            return Ok(());
        }
        let _waiting = match waits::wait_for_node(self.node()) {
            Ok(waiting) => waiting,
            Err(_) => {
                self.fail_locked(&mut state, SnapshotError::Deadlock);
                return Err(SnapshotError::Deadlock);
            }
        };
        while state.arrived < self.shards && state.failed.is_none() {
            self.changed.wait(&mut state);
        }
        state.failed.clone().map_or(Ok(()), Err)
    }

    /// Fails the cut, unless it already failed: every waiter goes on without computing.
    pub(crate) fn fail(&self, why: SnapshotError) {
        let mut state = self.state.lock();
        self.fail_locked(&mut state, why);
    }

    fn fail_locked(&self, state: &mut State, why: SnapshotError) {
        state.failed.get_or_insert(why);
        // Nobody will wait for the rest.
        state
            .not_there
            .iter_mut()
            .for_each(|edge| drop(edge.take()));
        self.changed.notify_all();
    }

    /// Why the cut failed, if it did.
    pub(crate) fn failure(&self) -> Option<SnapshotError> {
        self.state.lock().failed.clone()
    }
}
