//! Published views: a value the worker computes from the state after each batch, which any
//! thread reads without queuing behind the commands.

use std::fmt;
use std::mem;

use crate::on_panic;
use crate::sync::{Arc, Mutex};

/// The latest view of a queue's state, published by its worker; made by
/// [`Builder::publish`](crate::Builder::publish).
///
/// Reading it ([`latest`](View::latest)) never queues behind the commands and never waits
/// for the worker: it clones an `Arc` under a lock that the worker holds only to swap one
/// `Arc` for another. A `View` is `Clone + Send + Sync` and cannot submit anything, so it can
/// be handed to code that should only look (a metrics endpoint, a UI thread).
///
/// # Consistency
///
/// - A view is computed **from the state after a whole batch**: after every command the
///   worker took in that batch was applied, before the batch's commit
///   ([`on_batch_end`](crate::StateMachine::on_batch_end)) runs. It is never computed in the
///   middle of a batch, so it is never torn; it is the state after `on_start` until the first
///   batch ends, and the state the queue was built with before that.
/// - Views are published in the worker's order: a thread that reads twice never sees an older
///   view the second time.
/// - A view may lag: a command applied since the last batch ended is not in it. A caller
///   whose [`call`](crate::Handle::call) returned sees its own write in the view only under
///   [`ReplyMode::AfterBatch`](crate::ReplyMode::AfterBatch), which replies after the view
///   is published; with immediate replies, use [`Handle::read`](crate::Handle::read) to read
///   one's own writes.
/// - A view is the state **as applied, not as committed**: it is published before the
///   batch's commit. If the commit then fails, the view holds the batch (as a
///   [`read`](crate::Handle::read) would) while its callers under `AfterBatch` are told
///   [`NotCommitted`](crate::WaitError::NotCommitted).
/// - A state poisoned by a panic in `apply` is not published: the view stays the one before
///   the batch that panicked. Nothing is published after the queue is poisoned, so changes
///   made by `on_stop` never reach a view.
///
/// # Examples
///
/// ```
/// use singular_queue::{ReplyMode, SingularQueue, StateMachine};
///
/// struct Scores(Vec<u32>);
///
/// impl StateMachine for Scores {
///     type Command = u32;
///     type Output = ();
///     fn apply(&mut self, score: u32) {
///         self.0.push(score);
///     }
/// }
///
/// let (builder, best) = SingularQueue::builder(Scores(Vec::new()))
///     .reply_mode(ReplyMode::AfterBatch) // a caller sees its own write in the view
///     .publish(|scores: &Scores| scores.0.iter().copied().max());
/// let queue = builder.spawn().unwrap();
/// assert_eq!(*best.latest(), None);
///
/// queue.call(7).unwrap();
/// queue.call(3).unwrap();
/// assert_eq!(*best.latest(), Some(7));
/// ```
pub struct View<V> {
    latest: Arc<Mutex<Arc<V>>>,
}

impl<V> View<V> {
    /// The view the worker published last.
    pub fn latest(&self) -> Arc<V> {
        Arc::clone(&self.latest.lock())
    }
}

impl<V> Clone for View<V> {
    fn clone(&self) -> Self {
        Self {
            latest: Arc::clone(&self.latest),
        }
    }
}

impl<V> fmt::Debug for View<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("View").finish_non_exhaustive()
    }
}

/// The worker's side of a view: computes it and publishes it.
pub(crate) trait Publish<S>: Send {
    /// Computes a view of `state` and makes it the latest; `Err` with the panic's message if
    /// the view's function panicked (the latest view is then unchanged). A panic in an old
    /// view's `Drop` is caught and ignored: the view it dropped was not needed any more.
    fn publish(&mut self, state: &S) -> Result<(), String>;
}

/// Publishes `make(&state)` into a [`View`].
pub(crate) struct Publisher<V, F> {
    make: F,
    latest: Arc<Mutex<Arc<V>>>,
    /// The view before the latest, once no reader holds it: its allocation is reused for the
    /// next view, so that a publication allocates nothing while readers keep up.
    spare: Option<Arc<V>>,
}

impl<V, F> Publisher<V, F> {
    /// A publisher whose view starts as `first`, and the view it publishes to.
    pub(crate) fn new(make: F, first: V) -> (Self, View<V>) {
        let latest = Arc::new(Mutex::new(Arc::new(first)));
        let view = View {
            latest: Arc::clone(&latest),
        };
        let publisher = Self {
            make,
            latest,
            spare: None,
        };
        (publisher, view)
    }
}

impl<S, V, F> Publish<S> for Publisher<V, F>
where
    V: Send + Sync,
    F: FnMut(&S) -> V + Send,
{
    fn publish(&mut self, state: &S) -> Result<(), String> {
        let make = &mut self.make;
        let view = on_panic::catch(|| make(state))?;
        let fresh = match self.spare.take() {
            Some(mut spare) => {
                let reused = Arc::get_mut(&mut spare).expect("no reader holds the spare");
                let old = mem::replace(reused, view);
                // Its own `catch`: the new view is already out of harm's way (found by review:
                // dropped in place, a panicking `Drop` took the new view down with it).
                let _ = on_panic::catch(move || drop(old));
                spare
            }
            None => Arc::new(view),
        };
        // The lock is held for the swap alone: the old view's `Drop`, user code, runs after.
        let mut previous = mem::replace(&mut *self.latest.lock(), fresh);
        if Arc::get_mut(&mut previous).is_some() {
            self.spare = Some(previous);
        } else {
            // The last reader may let go in between, leaving the `Drop` to this thread.
            let _ = on_panic::catch(move || drop(previous));
        }
        Ok(())
    }
}

impl<V, F> Drop for Publisher<V, F> {
    /// The spare is dropped under a `catch` of its own, so that a panic in its `Drop` cannot
    /// become a second panic while the rest of the publisher unwinds.
    fn drop(&mut self) {
        let spare = self.spare.take();
        let _ = on_panic::catch(move || drop(spare));
    }
}
