//! Who waits for whom: a worker must never wait for itself, directly or through other queues.
//!
//! A worker that waits for its own queue waits for itself (hazard 5), and a worker of queue A
//! that waits for queue B while B's worker waits for A is the same deadlock spread over two
//! threads (hazard 11). Each worker marks its thread with its queue's identity when it starts.
//! Before a worker blocks on a queue (for room, for a call's output, on a ticket), it records
//! the edge "my queue waits for that queue" in one process-wide wait-for graph, checking under
//! the graph's lock that the other queue's worker is not already waiting, through any chain of
//! edges, for this one. Every worker waits on one thing at a time, so the graph is a set of
//! chains, and the check walks one chain. Of two workers closing a cycle at once, the lock
//! lets one in and refuses the other. Threads that are not workers never appear in the graph:
//! nothing waits for them, so they cannot close a cycle, and they pay one thread-local read.

use std::cell::Cell;

use crate::sync::Mutex;
use crate::sync::thread::thread_local;

/// A queue's identity: the address of its shared part, stable while any handle lives.
pub(crate) type QueueId = usize;

thread_local! {
    /// The queue whose worker runs on this thread, or 0.
    // loom's `thread_local!` does not accept a `const { }` initialiser.
    #[allow(clippy::missing_const_for_thread_local)]
    static WORKER_OF: Cell<QueueId> = Cell::new(0);
}

crate::sync::global! {
    /// The edges `(waiting worker's queue, queue it waits for)`: a few at most, so a list.
    static GRAPH: Mutex<Vec<(QueueId, QueueId)>> = Mutex::new(Vec::new());
}

/// The identity of the queue whose shared part is `queue`.
pub(crate) fn id_of<T>(queue: &T) -> QueueId {
    std::ptr::from_ref(queue).addr()
}

/// Marks the current thread as the worker of `queue`.
pub(crate) fn mark_worker(queue: QueueId) {
    WORKER_OF.with(|worker_of| worker_of.set(queue));
}

/// Whether the current thread is the worker of `queue`.
pub(crate) fn is_worker(queue: QueueId) -> bool {
    worker_of() == Some(queue)
}

/// The queue whose worker the current thread is, if any (`None` at thread exit too).
fn worker_of() -> Option<QueueId> {
    WORKER_OF
        .try_with(Cell::get)
        .ok()
        .filter(|&queue| queue != 0)
}

/// The edge "this worker waits for a queue", removed when dropped. Holds nothing on a thread
/// that is not a worker, or when an outer wait already recorded the same edge.
#[must_use]
pub(crate) struct Waiting {
    from: Option<QueueId>,
}

impl Waiting {
    /// No edge: the wait cannot be part of a cycle.
    pub(crate) fn none() -> Self {
        Self { from: None }
    }
}

/// Waiting here would never end: the queue waited for is this worker's own, or its worker
/// waits (through other queues) for this one.
#[derive(Debug)]
pub(crate) struct WouldDeadlock;

/// Records that the current thread is about to wait for `target`'s worker, or refuses if that
/// wait would close a cycle.
pub(crate) fn wait_for(target: QueueId) -> Result<Waiting, WouldDeadlock> {
    let Some(me) = worker_of() else {
        return Ok(Waiting::none());
    };
    let mut graph = GRAPH.lock();
    if graph.contains(&(me, target)) {
        return Ok(Waiting::none());
    }
    let mut next = Some(target);
    while let Some(queue) = next {
        if queue == me {
            return Err(WouldDeadlock);
        }
        next = graph
            .iter()
            .find(|&&(from, _)| from == queue)
            .map(|&(_, to)| to);
    }
    graph.push((me, target));
    Ok(Waiting { from: Some(me) })
}

impl Drop for Waiting {
    fn drop(&mut self) {
        if let Some(me) = self.from {
            GRAPH.lock().retain(|&(from, _)| from != me);
        }
    }
}
