//! Who waits for whom: a worker must never wait for itself, directly or through other queues.
//!
//! A worker that waits for its own queue waits for itself (hazard 5), and a worker of queue A
//! that waits for queue B while B's worker waits for A is the same deadlock spread over two
//! threads (hazard 11). Each worker marks its thread with its queue's identity when it starts.
//! Before a worker blocks on a queue (for room, for a call's output, on a ticket), it records
//! the edge "my queue waits for that queue" in one process-wide wait-for graph, checking under
//! the graph's lock that the other queue's worker is not already waiting, through any chain of
//! edges, for this one. Of two workers closing a cycle at once, the lock lets one in and
//! refuses the other. An edge goes when its wait ends: when the waiter stops waiting, or,
//! for a reply, as soon as the reply is completed, before the waiter runs again (else a worker
//! woken but not yet scheduled would be taken for blocked, and a call to it refused). Threads
//! that are not workers never appear in the graph: nothing waits for them, so they cannot
//! close a cycle, and they pay one thread-local read.
//!
//! A thread may serve more than one queue: the thread that owns hand-stepped queues (see
//! `ManualQueue`) is the worker of each of them, and may be a spawned queue's worker too (a
//! manual queue built inside `apply`). Its waits are edges out of every queue it serves.

use std::cell::{Cell, RefCell};

use crate::WouldDeadlock;
use crate::sync::Mutex;
use crate::sync::thread::thread_local;

/// A queue's identity: the address of its shared part, stable while any handle lives.
pub(crate) type QueueId = usize;

/// The most queues one thread can serve at once.
const MAX_SERVED: usize = 16;

thread_local! {
    /// The queues whose worker this thread is: none on most threads. A value with no `Drop`,
    /// so that it outlives the thread's other thread-locals: a manual queue kept in one is
    /// dropped at thread exit, serving what was accepted, and its waits must still be refused.
    // loom's `thread_local!` does not accept a `const { }` initialiser.
    #[allow(clippy::missing_const_for_thread_local)]
    static SERVES: RefCell<Served> = RefCell::new(Served { queues: [0; MAX_SERVED], len: 0 });
}

/// How a pending future of the crate's records its wait, if its thread blocks: on its reply
/// slot (settled when the reply comes), or as a plain edge.
pub(crate) type Watch = Box<dyn Fn() -> Result<Waiting, WouldDeadlock>>;

thread_local! {
    /// How the last future of the crate's that was polled on this worker thread, and left
    /// pending, would record its wait. Read by `model::block_on` before it sleeps.
    // loom's `thread_local!` does not accept a `const { }` initialiser.
    #[allow(clippy::missing_const_for_thread_local)]
    static PENDING_ON: RefCell<Option<Watch>> = RefCell::new(None);
}

/// Notes how a future of the crate's, pending on this thread, would record its wait. Only on
/// a thread that serves queues: elsewhere a wait is never refused, and this costs one read.
pub(crate) fn note_pending(watch: impl Fn() -> Result<Waiting, WouldDeadlock> + 'static) {
    if on_a_worker() {
        let replaced = PENDING_ON.try_with(|pending| pending.replace(Some(Box::new(watch))));
        drop(replaced);
    }
}

/// What the last pending future noted, if anything; clears the note.
pub(crate) fn take_pending() -> Option<Watch> {
    PENDING_ON.try_with(RefCell::take).ok().flatten()
}

thread_local! {
    /// The queue whose evicted commands this thread is telling (running `on_evict`), or 0.
    // loom's `thread_local!` does not accept a `const { }` initialiser.
    #[allow(clippy::missing_const_for_thread_local)]
    static TELLING: Cell<QueueId> = Cell::new(0);
}

/// While alive, this thread is telling `queue`'s evicted commands; restores the outer value.
pub(crate) struct Telling(QueueId);

/// Marks this thread as telling `queue`'s evicted commands until the guard drops.
pub(crate) fn telling_evictions(queue: QueueId) -> Telling {
    Telling(
        TELLING
            .try_with(|telling| telling.replace(queue))
            .unwrap_or(0),
    )
}

/// Whether this thread is telling `queue`'s evicted commands: the queue is not quiet until it
/// is done.
pub(crate) fn is_telling_evictions(queue: QueueId) -> bool {
    TELLING
        .try_with(Cell::get)
        .is_ok_and(|telling| telling == queue)
}

impl Drop for Telling {
    fn drop(&mut self) {
        let _ = TELLING.try_with(|telling| telling.set(self.0));
    }
}

/// A small set of queue ids, stored inline.
struct Served {
    queues: [QueueId; MAX_SERVED],
    len: usize,
}

impl Served {
    fn as_slice(&self) -> &[QueueId] {
        &self.queues[..self.len]
    }

    fn insert(&mut self, queue: QueueId) {
        assert!(
            self.len < MAX_SERVED,
            "a thread can serve at most {MAX_SERVED} queues at once (hand-stepped queues \
             included): shut some down first"
        );
        self.queues[self.len] = queue;
        self.len += 1;
    }

    fn remove(&mut self, queue: QueueId) {
        if let Some(index) = self.as_slice().iter().position(|&q| q == queue) {
            self.queues.copy_within(index + 1..self.len, index);
            self.len -= 1;
        }
    }
}

/// An edge of the graph: the worker of `from` waits for the worker of `to`. One wait of a
/// thread that serves several queues is one edge from each, all with the same id.
struct Edge {
    id: u64,
    from: QueueId,
    to: QueueId,
}

/// The edges, and the next edge's id. A few edges at most, so a list.
struct Graph {
    edges: Vec<Edge>,
    next_id: u64,
}

crate::sync::global! {
    static GRAPH: Mutex<Graph> = Mutex::new(Graph { edges: Vec::new(), next_id: 1 });
}

/// The identity of the queue whose shared part is `queue`.
pub(crate) fn id_of<T>(queue: &T) -> QueueId {
    std::ptr::from_ref(queue).addr()
}

/// Marks the current thread as the worker of `queue`.
///
/// # Panics
///
/// If the thread already serves `MAX_SERVED` queues.
pub(crate) fn mark_worker(queue: QueueId) {
    with_served(|served| served.insert(queue));
}

/// The current thread no longer serves `queue` (a hand-stepped queue that was dropped).
pub(crate) fn unmark_worker(queue: QueueId) {
    with_served(|served| served.remove(queue));
}

/// The node of `queue`'s commit threads in the graph: apart from its worker's, because
/// outputs and the worker's end wait for commits, but room does not. (A queue's id is the
/// address of its shared part, never odd.)
pub(crate) fn commits_of(queue: QueueId) -> QueueId {
    queue | 1
}

/// Whether the current thread is the worker of `queue`, or one of its commit threads.
pub(crate) fn is_worker(queue: QueueId) -> bool {
    let mine = |served: &mut Served| {
        let served = served.as_slice();
        served.contains(&queue) || served.contains(&commits_of(queue))
    };
    with_served(mine).unwrap_or(false)
}

/// Whether the current thread is a queue's worker.
pub(crate) fn on_a_worker() -> bool {
    with_served(|served| served.len > 0).unwrap_or(false)
}

/// Runs `f` on the queues this thread serves; `None` if the thread-local is gone (under loom,
/// at a model thread's end).
fn with_served<R>(f: impl FnOnce(&mut Served) -> R) -> Option<R> {
    SERVES.try_with(|served| f(&mut served.borrow_mut())).ok()
}

/// The edge "this worker waits for a queue", removed when dropped (or settled earlier by the
/// reply that ends the wait). Holds nothing on a thread that is not a worker.
#[must_use]
pub(crate) struct Waiting {
    /// The edge's id, or 0 for none.
    id: u64,
}

impl Waiting {
    /// No edge: the wait cannot be part of a cycle.
    pub(crate) fn none() -> Self {
        Self { id: 0 }
    }

    /// The edge's id (0 for none), for a reply slot to settle the edge when it completes.
    pub(crate) fn id(&self) -> u64 {
        self.id
    }
}

/// Records that the current thread is about to wait for `target`'s worker and its commits
/// (an output, the queue's end, quiet), or refuses if that wait would close a cycle.
///
/// A worker can wait on more than one queue at once (a wait nested in user code that runs
/// while it waits, such as `on_evict`), so the walk follows every edge out of each queue.
pub(crate) fn wait_for(target: QueueId) -> Result<Waiting, WouldDeadlock> {
    wait_for_nodes(&[target, commits_of(target)])
}

/// Records that the current thread is about to wait for room in `target`, which its worker
/// makes whatever its commit threads do; or refuses if that wait would close a cycle.
pub(crate) fn wait_for_room(target: QueueId) -> Result<Waiting, WouldDeadlock> {
    wait_for_node(target)
}

/// Records that the current thread is about to wait for `node` alone: a queue's worker and
/// not its commit threads (code the worker runs between batches, such as a snapshot's marker,
/// never waits for a commit), or a snapshot's cut, whose own edges lead to the shards not yet
/// there; or refuses if that wait would close a cycle.
pub(crate) fn wait_for_node(node: QueueId) -> Result<Waiting, WouldDeadlock> {
    wait_for_nodes(&[node])
}

/// What a wait for a reply from a queue waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Awaited {
    /// A command's output: the worker, and its commit threads (an output may be held for its
    /// batch's commit).
    Output,
    /// The worker alone (a snapshot's result, computed between batches).
    Worker,
}

/// Records that the current thread is about to wait for `awaited` of `queue`, or refuses if
/// that wait would close a cycle.
pub(crate) fn wait_for_reply(queue: QueueId, awaited: Awaited) -> Result<Waiting, WouldDeadlock> {
    match awaited {
        Awaited::Output => wait_for(queue),
        Awaited::Worker => wait_for_node(queue),
    }
}

/// Adds the edge "`from` waits for `to`'s worker" for a node that is not a queue (a snapshot's
/// cut), without a check: until a worker waits for the node, nothing leads to it, so the edge
/// closes no cycle; a worker that then waits for it is checked through it. Removed when the
/// guard drops.
pub(crate) fn add_edge(from: QueueId, to: QueueId) -> Waiting {
    let mut graph = GRAPH.lock();
    let id = graph.next_id;
    graph.next_id += 1;
    graph.edges.push(Edge { id, from, to });
    Waiting { id }
}

fn wait_for_nodes(targets: &[QueueId]) -> Result<Waiting, WouldDeadlock> {
    let mine = with_served(|served| served.as_slice().to_vec()).unwrap_or_default();
    if mine.is_empty() {
        return Ok(Waiting::none());
    }
    let mut graph = GRAPH.lock();
    let mut frontier = targets.to_vec();
    let mut seen = Vec::new();
    while let Some(queue) = frontier.pop() {
        if mine.contains(&queue) {
            return Err(WouldDeadlock);
        }
        if seen.contains(&queue) {
            continue;
        }
        seen.push(queue);
        let next = graph.edges.iter().filter(|edge| edge.from == queue);
        frontier.extend(next.map(|edge| edge.to));
    }
    let id = graph.next_id;
    graph.next_id += 1;
    for from in mine {
        let edges = targets.iter().map(|&to| Edge { id, from, to });
        graph.edges.extend(edges);
    }
    Ok(Waiting { id })
}

/// Removes edge `id`: its wait is over, whether or not its thread has run yet. Called by the
/// worker that completes the reply a worker waits for, so that the waiter, woken but not yet
/// running, is not taken for blocked.
pub(crate) fn settle(id: u64) {
    GRAPH.lock().edges.retain(|edge| edge.id != id);
}

impl Drop for Waiting {
    fn drop(&mut self) {
        if self.id != 0 {
            settle(self.id);
        }
    }
}
